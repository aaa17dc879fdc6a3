#!/usr/bin/env python3
"""Image fixtures for test/images.test.ts and test/serve.test.ts (dev only; run with Debian's python3:
python3-pil 9.4, python3-torchvision 0.14, numpy).

Writes test/fixtures/images/: small synthetic images (PNG RGB / RGBA / grey, JPEG, WebP), three
Fashion-MNIST test images as files, and expected.json with what torchvision's transforms on PIL give
(the uint8 pixels after Grayscale/Resize/CenterCrop, and the float32 tensor after ToTensor/Normalize).
"""
import base64, gzip, json, os, struct
import numpy as np
from PIL import Image
import torch
from torchvision import transforms as T

root = os.path.join(os.path.dirname(__file__), '..')
out = os.path.join(root, 'test', 'fixtures', 'images')
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(7)

def pattern(h, w, c):
    y, x = np.mgrid[0:h, 0:w]
    base = [128 + 100 * np.sin(x / 3.0 + k) * np.cos(y / 5.0 - k) for k in range(c)]
    a = np.stack(base, -1) + rng.normal(0, 20, (h, w, c))
    return np.clip(a, 0, 255).astype(np.uint8)

Image.fromarray(pattern(31, 45, 3), 'RGB').save(os.path.join(out, 'rgb.png'))
Image.fromarray(pattern(30, 20, 4), 'RGBA').save(os.path.join(out, 'rgba.png'))
Image.fromarray(pattern(50, 33, 1)[:, :, 0], 'L').save(os.path.join(out, 'grey.png'))
Image.fromarray(pattern(31, 45, 3), 'RGB').save(os.path.join(out, 'photo.jpg'), quality=90)
Image.fromarray(pattern(31, 45, 3), 'RGB').save(os.path.join(out, 'photo.webp'), quality=90)

# Fashion-MNIST test images 0..2 (the shipped IDX file) as a PNG, a JPEG (upscaled 2x, RGB) and a lossless WebP.
with gzip.open(os.path.join(root, 'assets', 'fashion-mnist', 't10k-images-idx3-ubyte.gz')) as f:
    _, n, h, w = struct.unpack('>IIII', f.read(16))
    imgs = np.frombuffer(f.read(3 * h * w), np.uint8).reshape(3, h, w)
with gzip.open(os.path.join(root, 'assets', 'fashion-mnist', 't10k-labels-idx1-ubyte.gz')) as f:
    f.read(8)
    labels = list(f.read(3))
Image.fromarray(imgs[0], 'L').save(os.path.join(out, 'fmnist-0.png'))
Image.fromarray(imgs[1], 'L').convert('RGB').resize((56, 56), Image.BILINEAR).save(os.path.join(out, 'fmnist-1.jpg'), quality=95)
Image.fromarray(imgs[2], 'L').save(os.path.join(out, 'fmnist-2.webp'), lossless=True)

IMAGENET = dict(grayscale=False, resize=16, crop=[12, 12], mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225], channels=3)
GREY_PAD = dict(grayscale=True, resize=9, crop=[12, 10], mean=[0.5], std=[0.25], channels=1)
GREY3 = dict(grayscale=True, resize=28, crop=[28, 28], mean=[0.286], std=[0.353], channels=3)
UPSCALE = dict(grayscale=False, resize=40, crop=[17, 19], mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5], channels=3)

def pixel_transform(p):
    t = []
    if p['grayscale']:
        t.append(T.Grayscale(num_output_channels=p['channels']))
    t += [T.Resize(p['resize'], interpolation=T.InterpolationMode.BILINEAR), T.CenterCrop(p['crop'])]
    return T.Compose(t)

cases = []
for name in ['rgb.png', 'rgba.png', 'grey.png', 'photo.jpg', 'photo.webp', 'fmnist-0.png', 'fmnist-1.jpg', 'fmnist-2.webp']:
    for pname, p in [('imagenet', IMAGENET), ('grey_pad', GREY_PAD), ('grey3', GREY3), ('upscale', UPSCALE)]:
        if name.startswith('fmnist') != (pname == 'grey3'):
            continue
        img = Image.open(os.path.join(out, name))
        img = img.convert('L') if p['grayscale'] else img.convert('RGB')
        # pixels: the uint8 image before grey replication; tensor: with Grayscale(num_output_channels=channels)
        px = pixel_transform(dict(p, channels=1) if p['grayscale'] else p)(img)
        x = T.Normalize(p['mean'], p['std'])(T.ToTensor()(pixel_transform(p)(img)))
        arr = np.asarray(px, dtype=np.uint8)
        cases.append(dict(file=name, preprocess=pname, size=[px.size[1], px.size[0]],
                          pixels=base64.b64encode(arr.tobytes()).decode(), shape=list(x.shape),
                          tensor=base64.b64encode(x.numpy().astype('<f4').tobytes()).decode()))

json.dump(dict(generator='scripts/make_image_fixtures.py', torchvision=__import__('torchvision').__version__,
               pillow=Image.__version__ if hasattr(Image, '__version__') else __import__('PIL').__version__,
               presets=dict(imagenet=IMAGENET, grey_pad=GREY_PAD, grey3=GREY3, upscale=UPSCALE),
               fmnist_labels=labels, cases=cases), open(os.path.join(out, 'expected.json'), 'w'), separators=(',', ':'))
print('wrote', out, len(cases), 'cases')
