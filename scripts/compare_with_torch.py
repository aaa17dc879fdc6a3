#!/usr/bin/python3
"""Checks ptq-node against PyTorch 1.13 on a tutorial MobileNetV2 .pth (dev only; Debian torch).

For each qconfig (default, fbgemm): runs torch's eager PTQ (fuse, prepare, calibrate on the first
calib-batches x batch-size training images in file order, convert; onednn engine) and ptq-node's
`ptq quantize` + `ptq inspect --json` + `ptq eval --save-logits`, then reports: zero points equal,
worst relative scale difference, top-1 of both on the test images, and the share of images whose
every int8 logit is within one output quantization step of torch's.

Usage: /usr/bin/python3 scripts/compare_with_torch.py --weights W.pth [--data DIR] [--eval 10000]
"""
import argparse, copy, gzip, json, os, struct, subprocess, sys, tempfile
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tutorial_mobilenet_v2 import MobileNetV2  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')


def read_idx(path):
    with (gzip.open if path.endswith('.gz') else open)(path, 'rb') as f:
        data = f.read()
    nd = struct.unpack('>I', data[:4])[0] & 0xFF
    dims = struct.unpack('>' + 'I' * nd, data[4:4 + 4 * nd])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def find(d, stem):
    for n in (stem + '.gz', stem):
        if os.path.exists(os.path.join(d, n)):
            return os.path.join(d, n)
    raise FileNotFoundError(stem)


def preprocess(images):
    x = torch.from_numpy(images.copy()).to(torch.float32).div(255)
    x = x.sub(torch.tensor([0.2860])).div(torch.tensor([0.3530]))
    return x.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--weights', required=True)
    p.add_argument('--data', default=os.path.join(ROOT, 'assets', 'fashion-mnist'))
    p.add_argument('--calib-batches', type=int, default=10)
    p.add_argument('--batch-size', type=int, default=30)
    p.add_argument('--eval', type=int, default=10000)
    a = p.parse_args()
    torch.backends.quantized.engine = 'onednn'
    torch.set_num_threads(1)
    xtr = preprocess(read_idx(find(a.data, 'train-images-idx3-ubyte'))[:a.calib_batches * a.batch_size])
    xte = preprocess(read_idx(find(a.data, 't10k-images-idx3-ubyte'))[:a.eval])
    yte = read_idx(find(a.data, 't10k-labels-idx1-ubyte'))[:a.eval].astype(np.int64)
    base = MobileNetV2(num_classes=10)
    base.load_state_dict(torch.load(a.weights))
    base.eval()
    tmp = tempfile.mkdtemp()
    report = {}
    for name, qc in [('default', torch.quantization.default_qconfig), ('fbgemm', torch.quantization.get_default_qconfig('fbgemm'))]:
        m = copy.deepcopy(base)
        m.fuse_model()
        m.qconfig = qc
        torch.quantization.prepare(m, inplace=True)
        with torch.no_grad():
            for i in range(0, len(xtr), a.batch_size):
                m(xtr[i:i + a.batch_size])
        torch.quantization.convert(m, inplace=True)
        tq = {}
        for n, mod in m.named_modules():
            if hasattr(mod, 'scale') and hasattr(mod, 'zero_point') and n:
                s = mod.scale.item() if torch.is_tensor(mod.scale) else mod.scale
                z = mod.zero_point.item() if torch.is_tensor(mod.zero_point) else mod.zero_point
                tq[n] = (float(s), int(z))
        logits_q = []
        with torch.no_grad():
            for i in range(0, len(xte), 500):
                x = m.quant(xte[i:i + 500])
                f = m.features(x)
                # torch 1.13's quantized mean raises 'required rank 4 tensor to use channels_last format'
                # when the spatial size is 1x1 (Fashion-MNIST at 28x28); use its own fallback path,
                # dequantize -> mean -> quantize with the input's qparams (exact here: a mean of one value).
                x = torch.quantize_per_tensor(f.dequantize().mean([2, 3]), f.q_scale(), f.q_zero_point(), torch.quint8)
                logits_q.append(m.classifier(x).int_repr().numpy().astype(np.int32))
        logits_q = np.concatenate(logits_q)
        torch_top1 = float((logits_q.argmax(1) == yte).mean() * 100)
        out = os.path.join(tmp, name + '.safetensors')
        node = ['node', os.path.join(ROOT, 'bin', 'ptq.js')]
        subprocess.run(node + ['quantize', '--arch', 'mobilenet_v2', '--num-classes', '10', '--weights', a.weights,
                               '--dataset', 'fashion-mnist:' + a.data, '--calib-batches', str(a.calib_batches),
                               '--batch-size', str(a.batch_size), '--qconfig', name, '--out', out, '--json'], check=True, capture_output=True)
        ours = json.loads(subprocess.run(node + ['inspect', out, '--json'], check=True, capture_output=True).stdout)
        lf = os.path.join(tmp, name + '.bin')
        ev = json.loads(subprocess.run(node + ['eval', out, '--dataset', 'fashion-mnist:' + a.data, '--limit', str(a.eval),
                                               '--save-logits', lf, '--json'], check=True, capture_output=True).stdout)
        zp_mismatch, worst, diffs = [], 0.0, []
        ours_by = {mm['name']: mm for mm in ours['modules']}
        for n, (s, z) in tq.items():
            if n not in ours_by:
                zp_mismatch.append(n + ' (missing)')
                continue
            if ours_by[n]['zero_point'] != z:
                zp_mismatch.append(f"{n}: {ours_by[n]['zero_point']} vs {z}")
            worst = max(worst, abs(ours_by[n]['scale'] - s) / s)
            diffs.append((abs(ours_by[n]['scale'] - s) / s, n, ours_by[n]['scale'], s))
        fc = ours_by['classifier.1']
        our_logits = np.fromfile(lf, dtype='<f4').reshape(-1, 10)
        our_q = np.rint(our_logits / np.float32(fc['scale'])).astype(np.int32) + fc['zero_point']
        within1 = float((np.abs(our_q - logits_q).max(1) <= 1).mean() * 100)
        identical = float((np.abs(our_q - logits_q).max(1) == 0).mean() * 100)
        diffs.sort(reverse=True)
        report[name] = {'largest_scale_diffs': [f'{n}: {o:.9g} vs {t:.9g}' for _, n, o, t in diffs[:5]], 'modules': len(tq), 'zero_point_mismatches': zp_mismatch, 'worst_scale_rel_diff': worst,
                        'torch_top1': torch_top1, 'ptq_top1': ev['top1'], 'images_all_logits_within_1_step_pct': within1,
                        'images_identical_logits_pct': identical, 'count': len(yte)}
        print(name, json.dumps(report[name]), flush=True)


if __name__ == '__main__':
    main()
