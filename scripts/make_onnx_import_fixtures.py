#!/usr/bin/python3
"""Float ONNX fixtures for the ONNX importer (dev only; npm test never runs Python).

Writes test/fixtures/onnx-import/:
  mnv2.onnx          the tutorial MobileNetV2 (width 0.5, three stages, 10 classes) exported by
                     torch.onnx (opset 13, eval, do_constant_folding=False: BatchNormalization kept)
  resnet18.onnx      torchvision's quantizable ResNet-18 (10 classes), exported the same way
  mnv2_folded.onnx   a tiny tutorial MobileNetV2 exported with constant folding (BN folded into Conv),
                     weights embedded
  mixed.onnx         a small net with ReLU6 (Clip 0..6), MaxPool, a dilated grouped conv, AveragePool,
                     Concat, Mul, Reshape, MatMul, weights embedded; mixed_opset11/17.onnx: the same
                     net exported at opsets 11 and 17
  unsupported.onnx   a small net with a float-only op (Sigmoid)
  expected.json      metadata (shapes, settings) and onnxruntime-free references: torch float outputs

To keep the fixtures small, the weights of mnv2.onnx and resnet18.onnx are not stored: every
initializer named like a state_dict key is deterministic, w = det(key, i) (below, mirrored in
test/helpers/det-weights.ts), and the committed .onnx files carry empty initializer data which the
tests refill. The formula is exact in float64 and then rounded to float32, in Python as in JS.
"""
import json, math, os, sys
import numpy as np
import onnx
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tutorial_mobilenet_v2 import MobileNetV2  # noqa: E402
from torchvision.models.quantization import resnet18  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'onnx-import')
os.makedirs(OUT, exist_ok=True)
SETTING = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 2, 2]]
TINY_SETTING = [[1, 8, 1, 1], [6, 8, 2, 1]]


def key_hash(key):
    h = 2166136261
    for ch in key.encode():
        h = ((h ^ ch) * 16777619) & 0xFFFFFFFF
    return h


def det_values(key, shape):
    """Deterministic float32 values for one state_dict entry (mirrored in TS)."""
    n = int(np.prod(shape)) if len(shape) else 1
    h = key_hash(key)
    i = np.arange(n, dtype=np.uint64)
    v = ((i * np.uint64(2654435761) + np.uint64(h)) & np.uint64(0xFFFFFFFF))
    v = ((v ^ (v >> np.uint64(15))) * np.uint64(2246822519)) & np.uint64(0xFFFFFFFF)
    v = v ^ (v >> np.uint64(13))
    u = v.astype(np.float64) / 4294967296.0  # [0, 1)
    last = key.rsplit('.', 1)[-1]
    if last == 'running_var':
        x = 0.5 + u
    elif last == 'running_mean':
        x = (u - 0.5) * 0.4
    elif last == 'num_batches_tracked':
        x = np.zeros(n)
    elif last == 'bias':
        x = (u - 0.5) * 0.2
    elif len(shape) == 1:  # BN weight (gamma)
        x = 0.5 + u
    else:
        fan_in = int(np.prod(shape[1:]))
        x = (u - 0.5) * 2.0 * math.sqrt(3.0 / fan_in)
    return x.astype(np.float32).reshape(shape)


def fill(model):
    sd = model.state_dict()
    for k, t in sd.items():
        if t.dtype == torch.int64:
            continue
        t.copy_(torch.from_numpy(det_values(k, list(t.shape))))
    return model


def export(model, x, name, fold, strip, opset=13):
    path = os.path.join(OUT, name)
    # torch.onnx folds BatchNormalization into Conv in eval mode even without constant folding
    # (_jit_pass_onnx_eval_peephole); for the unfolded exports that pass is skipped.
    peephole = torch._C._jit_pass_onnx_eval_peephole
    if not fold:
        torch._C._jit_pass_onnx_eval_peephole = lambda graph, params: params
    try:
        torch.onnx.export(model, x, path, opset_version=opset, do_constant_folding=fold, input_names=['input'],
                          output_names=['logits'], dynamic_axes={'input': {0: 'N'}, 'logits': {0: 'N'}})
    finally:
        torch._C._jit_pass_onnx_eval_peephole = peephole
    m = onnx.load(path)
    if strip:
        sd_keys = set(model.state_dict().keys())
        for init in m.graph.initializer:
            if init.name in sd_keys:
                init.ClearField('raw_data')
                init.ClearField('float_data')
                init.doc_string = 'ptq-node fixture: deterministic values, see scripts/make_onnx_import_fixtures.py'
    onnx.save(m, path)
    print('wrote', path, os.path.getsize(path), 'bytes', 'ops:', sorted({n.op_type for n in m.graph.node}))


def input_of(shape, seed):
    """The LCG input of test/onnx-import.test.ts (lcgInput): the same float32 values in both."""
    n = int(np.prod(shape))
    out = np.empty(n, dtype=np.float32)
    s = seed & 0xFFFFFFFF
    for i in range(n):
        s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
        out[i] = (s / 4294967296.0 - 0.5) * 4
    return torch.from_numpy(out.reshape(shape))


exp = {}
with torch.no_grad():
    mnv2 = fill(MobileNetV2(num_classes=10, width_mult=0.5, inverted_residual_setting=SETTING)).eval()
    x = input_of((8, 3, 28, 28), 7)
    export(mnv2, x[:1], 'mnv2.onnx', False, True)
    exp['mnv2'] = {'num_classes': 10, 'width_mult': 0.5, 'setting': SETTING, 'input': [8, 3, 28, 28], 'seed': 7,
                   'logits': mnv2(x).reshape(-1).tolist()}

    rn = fill(resnet18(weights=None, quantize=False, num_classes=10)).eval()
    xr = input_of((4, 3, 32, 32), 8)
    export(rn, xr[:1], 'resnet18.onnx', False, True)
    exp['resnet18'] = {'num_classes': 10, 'input': [4, 3, 32, 32], 'seed': 8, 'logits': rn(xr).reshape(-1).tolist()}

    tiny = fill(MobileNetV2(num_classes=4, width_mult=0.25, inverted_residual_setting=TINY_SETTING)).eval()
    xt = input_of((2, 3, 16, 16), 9)
    export(tiny, xt[:1], 'mnv2_folded.onnx', True, False)
    exp['mnv2_folded'] = {'num_classes': 4, 'width_mult': 0.25, 'setting': TINY_SETTING, 'input': [2, 3, 16, 16], 'seed': 9,
                          'logits': tiny(xt).reshape(-1).tolist()}

    class Mixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
            self.bn1 = nn.BatchNorm2d(8)
            self.act1 = nn.ReLU6()
            self.pool = nn.MaxPool2d(2, 2)
            self.conv2 = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=2)
            self.conv3 = nn.Conv2d(8, 8, 1)
            self.avg = nn.AvgPool2d(2, 2)
            self.fc = nn.Linear(16 * 2 * 2, 5, bias=False)

        def forward(self, x):
            x = self.act1(self.bn1(self.conv1(x)))
            x = self.pool(x)
            a = torch.relu(self.conv2(x))
            b = self.conv3(x)
            y = torch.cat([a, b * a], 1)
            y = self.avg(y)
            y = y.reshape(-1, 16 * 2 * 2)
            y = torch.matmul(y, self.fc.weight.t())
            return y

    mixed = fill(Mixed()).eval()
    xm = input_of((2, 3, 8, 8), 10)
    export(mixed, xm[:1], 'mixed.onnx', True, False)
    exp['mixed'] = {'input': [2, 3, 8, 8], 'seed': 10, 'logits': mixed(xm).reshape(-1).tolist()}
    # The same net at the ends of the supported opset range (Clip / Pad / ReduceMean forms differ).
    for opset in (11, 17):
        export(mixed, xm[:1], f'mixed_opset{opset}.onnx', True, False, opset)

    class Unsupported(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return torch.sigmoid(self.conv(x)).mean([2, 3])

    uns = fill(Unsupported()).eval()
    export(uns, input_of((1, 3, 8, 8), 11), 'unsupported.onnx', True, False)

with open(os.path.join(OUT, 'expected.json'), 'w') as f:
    json.dump(exp, f)
print('wrote expected.json')

# Quantized cat (dim 1, channels_last: qcat_nhwc), mul / mul_relu and avg_pool2d of torch 1.13 on
# random quint8 inputs (what QFunctional.cat / mul and AvgPool2d compute for imported Concat / Mul /
# AveragePool nodes).
torch.backends.quantized.engine = 'onednn'
g = torch.Generator().manual_seed(3)
nhwc = lambda t: t.int_repr().permute(0, 2, 3, 1).reshape(-1).tolist()
qops = {'cat': [], 'mul': []}
for (cs, h, w, outs, outz) in [((70, 16, 130), 3, 2, 0.05, 30), ((64, 8), 2, 2, 0.11, 128), ((5, 200), 1, 3, 0.013, 0)]:
    xs = []
    for k, c in enumerate(cs):
        s = [0.031, 0.07, 0.0123][k % 3]; z = [10, 128, 250][k % 3]
        xs.append(torch._make_per_tensor_quantized_tensor(torch.randint(0, 256, (2, c, h, w), generator=g, dtype=torch.uint8), s, z).contiguous(memory_format=torch.channels_last))
    y = torch.ops.quantized.cat(xs, dim=1, scale=outs, zero_point=outz)
    qops['cat'].append({'inputs': [{'c': x.shape[1], 'scale': x.q_scale(), 'zp': x.q_zero_point(), 'data': nhwc(x)} for x in xs], 'h': h, 'w': w,
                        'scale': outs, 'zp': outz, 'out': nhwc(y)})
for (c, h, w, sa, za, sb, zb, so, zo) in [(70, 3, 2, 0.031, 10, 0.07, 128, 0.5, 30), (16, 5, 5, 0.0123, 250, 0.02, 3, 0.01, 128), (130, 2, 2, 0.2, 0, 0.3, 0, 1.7, 0)]:
    a = torch._make_per_tensor_quantized_tensor(torch.randint(0, 256, (2, c, h, w), generator=g, dtype=torch.uint8), sa, za).contiguous(memory_format=torch.channels_last)
    b = torch._make_per_tensor_quantized_tensor(torch.randint(0, 256, (2, c, h, w), generator=g, dtype=torch.uint8), sb, zb).contiguous(memory_format=torch.channels_last)
    qops['mul'].append({'c': c, 'h': h, 'w': w, 'a': nhwc(a), 'b': nhwc(b), 'sa': sa, 'za': za, 'sb': sb, 'zb': zb, 'scale': so, 'zp': zo,
                        'out': nhwc(torch.ops.quantized.mul(a, b, so, zo)), 'relu': nhwc(torch.ops.quantized.mul_relu(a, b, so, zo))})
qops['avg_pool2d'] = []
for (c, h, w, k, st, p, cip, sc, z) in [(70, 6, 6, 2, 2, 0, True, 0.031, 10), (16, 7, 7, 3, 2, 1, True, 0.07, 128), (130, 5, 5, 3, 1, 1, False, 0.0123, 250), (8, 8, 8, 3, 3, 1, True, 0.2, 3)]:
    x = torch._make_per_tensor_quantized_tensor(torch.randint(0, 256, (2, c, h, w), generator=g, dtype=torch.uint8), sc, z).contiguous(memory_format=torch.channels_last)
    y = torch.nn.functional.avg_pool2d(x, k, st, p, count_include_pad=cip)
    qops['avg_pool2d'].append({'c': c, 'h': h, 'w': w, 'k': k, 's': st, 'p': p, 'count_include_pad': cip, 'scale': sc, 'zp': z, 'x': nhwc(x), 'y': nhwc(y), 'out_shape': list(y.shape)})
with open(os.path.join(OUT, 'qops.json'), 'w') as f:
    json.dump(qops, f, separators=(',', ':'))
print('wrote qops.json')
