#!/usr/bin/python3
"""Golden fixtures for the quantization flow, from Debian's torch 1.13 (dev only; npm test never runs Python).

Writes test/fixtures/mnv2-small/:
  weights.pth     state_dict of a small tutorial MobileNetV2 (random weights, randomized BN statistics)
  input.bin       float32 calibration/eval input [8, 3, 28, 28] (little-endian)
  expected.json   for qconfigs 'default' and 'fbgemm': the printed model after prepare and after convert
                  (features[1].conv), every observed module's qparams, weight qparams, fused float
                  weights of two layers, and the converted model's int8 outputs on the input (onednn engine)
  preprocess.json torchvision-style preprocessing (ToTensor + Normalize) of a few Fashion-MNIST pixels
"""
import copy, json, os, struct, sys
import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tutorial_mobilenet_v2 import MobileNetV2  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'mnv2-small')
SETTING = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 2, 2]]
WIDTH = 0.5


def f32list(t):
    return [float(v) for v in t.detach().reshape(-1).to(torch.float32).tolist()]


def make_model():
    torch.manual_seed(1234)
    m = MobileNetV2(num_classes=10, width_mult=WIDTH, inverted_residual_setting=SETTING)
    g = torch.Generator().manual_seed(99)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            n = mod.num_features
            mod.weight.data = 0.5 + torch.rand(n, generator=g)
            mod.bias.data = 0.3 * torch.randn(n, generator=g)
            mod.running_mean.data = 0.2 * torch.randn(n, generator=g)
            mod.running_var.data = 0.3 + torch.rand(n, generator=g)
        if isinstance(mod, nn.Linear):
            mod.weight.data = 0.05 * torch.randn(mod.weight.shape, generator=g)
            mod.bias.data = 0.1 * torch.randn(mod.bias.shape, generator=g)
    return m.eval()


def observed(model):
    out = []
    for name, mod in model.named_modules():
        app = getattr(mod, 'activation_post_process', None)
        if app is not None and isinstance(app, torch.ao.quantization.ObserverBase):
            s, z = app.calculate_qparams()
            out.append({'name': name, 'scale': float(s.reshape(-1)[0]), 'zero_point': int(z.reshape(-1)[0])})
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.backends.quantized.engine = 'onednn'
    model = make_model()
    torch.save(model.state_dict(), os.path.join(OUT, 'weights.pth'))
    g = torch.Generator().manual_seed(7)
    x = torch.randn(8, 3, 28, 28, generator=g) * 1.3 + 0.2
    with open(os.path.join(OUT, 'input.bin'), 'wb') as f:
        f.write(x.numpy().astype('<f4').tobytes())
    expected = {'setting': SETTING, 'width_mult': WIDTH, 'num_classes': 10, 'float_logits': f32list(model(x))}
    for name, qconfig in [('default', torch.quantization.default_qconfig),
                          ('fbgemm', torch.quantization.get_default_qconfig('fbgemm'))]:
        m = copy.deepcopy(model)
        m.fuse_model()
        fused = {k: f32list(v) for k, v in m.state_dict().items()
                 if k in ('features.0.0.weight', 'features.0.0.bias', 'features.1.conv.1.weight', 'features.1.conv.1.bias')}
        m.qconfig = qconfig
        torch.quantization.prepare(m, inplace=True)
        prepared_repr = repr(m.features[1].conv)
        for i in range(0, 8, 4):  # two calibration batches: multi-batch statistics
            m(x[i:i + 4])
        obs = observed(m)
        weights = {}
        for n, mod in m.named_modules():
            if hasattr(mod, 'weight') and isinstance(getattr(mod, 'weight'), torch.Tensor) and n:
                wo = qconfig.weight()
                wo(mod.weight)
                s, z = wo.calculate_qparams()
                parent = n[:-2] if n.endswith('.0') and isinstance(m.get_submodule(n[:-2]), torch.nn.intrinsic._FusedModule) else n
                weights[parent] = {'scale': [float(v) for v in s.reshape(-1).tolist()], 'zero_point': [int(v) for v in z.reshape(-1).tolist()]}
        torch.quantization.convert(m, inplace=True)
        converted_repr = repr(m.features[1].conv)
        qweights = {}
        for n, mod in m.named_modules():
            if hasattr(mod, 'weight') and callable(getattr(mod, 'weight')) and hasattr(mod, 'scale'):
                w = mod.weight()
                qweights[n] = [int(v) for v in w.int_repr().reshape(-1).tolist()]
        with torch.no_grad():
            # the int8 logits: the DeQuantStub output is scale*(q - zp); recover q
            fc = m.classifier[1]
            xq = m.quant(x)
            feat = m.features(xq)
            pooled = feat.mean([2, 3])
            lq = fc(pooled)
            logits_q = [int(v) for v in lq.int_repr().reshape(-1).tolist()]
            logits = f32list(m(x))
        expected[name] = {
            'qconfig_repr': repr(qconfig), 'prepared_repr': prepared_repr, 'converted_repr': converted_repr,
            'observed': obs, 'weights': weights, 'fused': fused, 'qweights': qweights,
            'logits_q': logits_q, 'logits': logits, 'logits_scale': float(fc.scale), 'logits_zero_point': int(fc.zero_point),
        }
    with open(os.path.join(OUT, 'expected.json'), 'w') as f:
        json.dump(expected, f)
    # Preprocessing check: torchvision ToTensor + Normalize on every pixel value 0..255.
    v = torch.arange(256, dtype=torch.uint8).to(torch.float32).div(255)
    mean = torch.as_tensor([0.2860], dtype=torch.float32)
    std = torch.as_tensor([0.3530], dtype=torch.float32)
    pre = v.sub(mean).div(std)
    pre2 = (v - 0.2860) / 0.3530
    with open(os.path.join(OUT, 'preprocess.json'), 'w') as f:
        json.dump({'normalize_tensor': f32list(pre), 'python_scalars': f32list(pre2)}, f)
    print('wrote', OUT)


if __name__ == '__main__':
    main()
