#!/usr/bin/python3
"""ResNet fixtures from torchvision 0.14 / torch 1.13 (dev only): state_dict keys and shapes of the
quantizable ResNet-18/50, the printed model after fuse+prepare and after convert, and quantized
adaptive_avg_pool2d / max_pool2d / add_relu outputs on random inputs (onednn engine).
Writes test/fixtures/resnet/expected.json."""
import json, os
import torch
from torchvision.models.quantization import resnet18, resnet50

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'resnet')
os.makedirs(OUT, exist_ok=True)
torch.backends.quantized.engine = 'onednn'
torch.manual_seed(0)
exp = {}
for name, ctor in [('resnet18', resnet18), ('resnet50', resnet50)]:
    m = ctor(weights=None, quantize=False, num_classes=10).eval()
    exp[name] = {'keys': [[k, list(v.shape)] for k, v in m.state_dict().items()]}
    m.fuse_model()
    m.qconfig = torch.quantization.default_qconfig
    torch.quantization.prepare(m, inplace=True)
    exp[name]['prepared_layer1_0'] = repr(m.layer1[0])
    m(torch.randn(2, 3, 64, 64))
    torch.quantization.convert(m, inplace=True)
    exp[name]['converted_layer1_0'] = repr(m.layer1[0])
    exp[name]['converted_top'] = {k: repr(getattr(m, k)) for k in ['quant', 'conv1', 'maxpool', 'avgpool', 'fc', 'dequant']}
g = torch.Generator().manual_seed(5)
ops = []
for (c, h, w, s, z) in [(64, 7, 7, 0.037, 3), (256, 2, 3, 0.11, 0), (40, 5, 5, 0.02, 128), (96, 7, 7, 0.5, 255)]:
    x = torch.randint(0, 256, (2, c, h, w), generator=g, dtype=torch.uint8)
    q = torch._make_per_tensor_quantized_tensor(x, s, z).contiguous(memory_format=torch.channels_last)
    aap = torch.nn.functional.adaptive_avg_pool2d(q, (1, 1))
    mp = torch.nn.functional.max_pool2d(q, 3, 2, 1)
    y = torch._make_per_tensor_quantized_tensor(torch.randint(0, 256, (2, c, h, w), generator=g, dtype=torch.uint8), s * 1.7, (z + 40) % 256).contiguous(memory_format=torch.channels_last)
    ar = torch.ops.quantized.add_relu(q, y, 0.09, 17)
    nhwc = lambda t: t.int_repr().permute(0, 2, 3, 1).reshape(-1).tolist()
    ops.append({'c': c, 'h': h, 'w': w, 'scale': s, 'zero_point': z, 'x': nhwc(q), 'y': nhwc(y), 'y_scale': float(y.q_scale()), 'y_zero_point': int(y.q_zero_point()),
                'aap': nhwc(aap), 'aap_scale': float(aap.q_scale()), 'aap_zero_point': int(aap.q_zero_point()),
                'maxpool': nhwc(mp), 'add_relu': nhwc(ar)})
exp['ops'] = ops
with open(os.path.join(OUT, 'expected.json'), 'w') as f:
    json.dump(exp, f)
print('wrote', OUT)
