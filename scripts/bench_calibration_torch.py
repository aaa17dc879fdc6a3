#!/usr/bin/python3
"""PyTorch 1.13 side of scripts/bench-calibration.js: same model, qconfig, image count and batch."""
import copy, json, os, sys, time
import torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tutorial_mobilenet_v2 import MobileNetV2  # noqa: E402

images = int(sys.argv[sys.argv.index('--images') + 1]) if '--images' in sys.argv else 300
batch = int(sys.argv[sys.argv.index('--batch') + 1]) if '--batch' in sys.argv else 30
threads = int(sys.argv[sys.argv.index('--threads') + 1]) if '--threads' in sys.argv else 1
torch.set_num_threads(threads)
torch.manual_seed(0)
m = MobileNetV2(num_classes=1000).eval()
x = torch.randn(batch, 3, 224, 224)
t0 = time.time()
m.fuse_model()
m.qconfig = torch.quantization.get_default_qconfig('fbgemm')
torch.quantization.prepare(m, inplace=True)
t1 = time.time()
with torch.no_grad():
    for _ in range(0, images, batch):
        m(x)
t2 = time.time()
torch.backends.quantized.engine = 'onednn'
torch.quantization.convert(m, inplace=True)
t3 = time.time()
print(json.dumps({'engine': 'torch-1.13', 'threads': threads, 'images': images, 'batch': batch, 'prepare_s': t1 - t0,
                  'calibrate_s': t2 - t1, 'convert_s': t3 - t2, 'total_s': t3 - t0}))
