#!/usr/bin/python3
"""Copies the shipped Fashion-MNIST subset into assets/fashion-mnist/ (dev only).

Source: Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist/, the original
Zalando Research IDX files, MIT license). Shipped: the full 10,000-image test split and the first
N (default 5,000) training images in file order (calibration and held-out calibration splits).
"""
import argparse, gzip, os, struct

p = argparse.ArgumentParser()
p.add_argument('--src', default='/usr/share/datasets/fashion-mnist')
p.add_argument('--out', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'assets', 'fashion-mnist'))
p.add_argument('--train', type=int, default=5000)
a = p.parse_args()
os.makedirs(a.out, exist_ok=True)


def subset(name, count):
    with gzip.open(os.path.join(a.src, name), 'rb') as f:
        data = f.read()
    magic, = struct.unpack('>I', data[:4])
    nd = magic & 0xFF
    dims = list(struct.unpack('>' + 'I' * nd, data[4:4 + 4 * nd]))
    per = 1
    for d in dims[1:]:
        per *= d
    n = dims[0] if count is None else min(count, dims[0])
    dims[0] = n
    body = data[4 + 4 * nd:4 + 4 * nd + n * per]
    out = struct.pack('>I', magic) + struct.pack('>' + 'I' * nd, *dims) + body
    with gzip.GzipFile(os.path.join(a.out, name), 'wb', mtime=0) as f:
        f.write(out)
    print(name, dims)


subset('t10k-images-idx3-ubyte.gz', None)
subset('t10k-labels-idx1-ubyte.gz', None)
subset('train-images-idx3-ubyte.gz', a.train)
subset('train-labels-idx1-ubyte.gz', a.train)
