#!/usr/bin/python3
"""Train the tutorial's MobileNetV2 (num_classes=10) on Fashion-MNIST: ptq-node's shipped default model.

Run with Debian's torch: /usr/bin/python3 scripts/train_reference.py [--epochs 30] [--out assets/...pth]
Preprocessing (must match lib/io/idx.ts): x/255, normalize mean 0.2860 std 0.3530, grey replicated to
3 channels, 28x28. Light augmentation: random 2-pixel shift (zero-padded in normalized space) and
horizontal flip. SGD momentum 0.9, lr 0.05 cosine, batch 128, weight decay 4e-5.
"""
import argparse, gzip, os, struct, sys, time
import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tutorial_mobilenet_v2 import MobileNetV2  # noqa: E402

MEAN, STD = 0.2860, 0.3530


def read_idx(path):
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rb') as f:
        data = f.read()
    magic, = struct.unpack('>I', data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack('>' + 'I' * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def to_tensor(images):
    x = torch.from_numpy(images.astype(np.float32) / np.float32(255.0))
    x = (x - MEAN) / STD
    return x.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--data', default='/usr/share/datasets/fashion-mnist')
    p.add_argument('--epochs', type=int, default=6)
    p.add_argument('--lr', type=float, default=0.05)
    p.add_argument('--batch-size', type=int, default=128)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument('--out', default='assets/mobilenet_v2_fashion_mnist.pth')
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    xtr = to_tensor(read_idx(os.path.join(a.data, 'train-images-idx3-ubyte.gz')))
    ytr = torch.from_numpy(read_idx(os.path.join(a.data, 'train-labels-idx1-ubyte.gz')).astype(np.int64))
    xte = to_tensor(read_idx(os.path.join(a.data, 't10k-images-idx3-ubyte.gz')))
    yte = torch.from_numpy(read_idx(os.path.join(a.data, 't10k-labels-idx1-ubyte.gz')).astype(np.int64))
    model = MobileNetV2(num_classes=10)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, weight_decay=4e-5, nesterov=True)
    steps_per_epoch = (len(xtr) + a.batch_size - 1) // a.batch_size
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=a.epochs * steps_per_epoch)
    crit = nn.CrossEntropyLoss()
    pad_value = (0.0 - MEAN) / STD
    for epoch in range(a.epochs):
        model.train()
        t0 = time.time()
        perm = torch.randperm(len(xtr))
        tot = 0.0
        for s in range(steps_per_epoch):
            idx = perm[s * a.batch_size:(s + 1) * a.batch_size]
            x = xtr[idx]
            # light augmentation: random shift by up to 2 pixels, random horizontal flip
            xp = nn.functional.pad(x, (2, 2, 2, 2), value=pad_value)
            dx, dy = np.random.randint(0, 5, size=2)
            x = xp[:, :, dy:dy + 28, dx:dx + 28]
            flip = torch.rand(len(x)) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            loss = crit(model(x), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item()
        model.eval()
        with torch.no_grad():
            correct = sum((model(xte[i:i + 500]).argmax(1) == yte[i:i + 500]).sum().item()
                          for i in range(0, len(xte), 500))
        print(f'epoch {epoch + 1}/{a.epochs} loss {tot / steps_per_epoch:.4f} '
              f'test top1 {100.0 * correct / len(xte):.2f}% ({time.time() - t0:.0f} s)', flush=True)
    os.makedirs(os.path.dirname(a.out) or '.', exist_ok=True)
    torch.save(model.state_dict(), a.out)
    print('saved', a.out)


if __name__ == '__main__':
    main()
