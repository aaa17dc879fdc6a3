#!/usr/bin/env node
// Calibration benchmark (issue 3): 300 images of 224x224 (10 batches of 30) through the tutorial's
// MobileNetV2 (1000 classes, fused) with the fbgemm qconfig's histogram observers, then convert.
// Compare with scripts/bench_calibration_torch.py (PyTorch 1.13 on the same machine). Not a test.
// Usage: npm run build && node scripts/bench-calibration.js [--images 300] [--batch 30]
'use strict';
const { mobilenetV2 } = require('../dist/models');
const { prepare } = require('../dist/quantization/quantize');
const { convert } = require('../dist/quantization/convert');
const { getDefaultQConfig } = require('../dist/quantization/qconfig');
const { Tensor } = require('../dist/tensor');

const arg = (n, d) => { const i = process.argv.indexOf(n); return i > 0 ? Number(process.argv[i + 1]) : d; };
const images = arg('--images', 300), batch = arg('--batch', 30);
let s = 1;
const rnd = () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648; };
const normal = () => Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd());
const m = mobilenetV2({ numClasses: 1000 });
for (const [k, t] of m.stateDict()) {
  const fan = t.shape.length === 4 ? t.shape[0] * t.shape[2] * t.shape[3] : t.shape[t.shape.length - 1] || 1;
  for (let i = 0; i < t.numel; i++)
    t.data[i] = k.endsWith('running_var') ? 0.5 + rnd() : k.endsWith('running_mean') || k.endsWith('.bias') ? 0.1 * normal()
      : k.endsWith('num_batches_tracked') ? 0 : t.shape.length === 1 ? 0.8 + 0.4 * rnd() : normal() * Math.sqrt(2 / fan);
}
m.eval();
const x = new Tensor(new Float32Array(batch * 3 * 224 * 224).map(() => normal()), [batch, 3, 224, 224]);
const t0 = process.hrtime.bigint();
m.fuseModel();
m.qconfig = getDefaultQConfig('fbgemm');
prepare(m, true);
const t1 = process.hrtime.bigint();
for (let done = 0; done < images; done += batch) m.call(x);
const t2 = process.hrtime.bigint();
convert(m, true);
const t3 = process.hrtime.bigint();
const sec = (a, b) => Number(b - a) / 1e9;
console.log(JSON.stringify({ engine: 'ptq-node', images, batch, prepare_s: sec(t0, t1), calibrate_s: sec(t1, t2), convert_s: sec(t2, t3), total_s: sec(t0, t3) }));
