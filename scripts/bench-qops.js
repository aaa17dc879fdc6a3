#!/usr/bin/env node
// Micro-benchmark of the quantized depthwise conv and element-wise kernels per ISA level (batch 1,
// NHWC, single thread, warm caches, best of 5 rounds). Not a test.
// - depthwise 3x3 (pad 1) at MobileNetV2-224's shapes: GOPS = 2 * MACs / time, through the same
//   executor as inference (qconv2d, row chunks of 4).
// - qadd at 56x56x24 (MobileNetV2's first residual add) in GB/s of a + b + y; quantize and
//   dequantize of the same tensor in GB/s of input + output.
// Usage: npm run build && node scripts/bench-qops.js [--quick] [--json]
'use strict';
const { loadNative, nativeBackend } = require('../dist/kernels');

const quick = process.argv.includes('--quick');
const json = process.argv.includes('--json');
const minMs = quick ? 30 : 150;

function time(fn) {
  fn();
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    let reps = 0;
    const t0 = process.hrtime.bigint();
    let el = 0;
    while (el < minMs / 5 || reps === 0) {
      fn();
      reps++;
      el = Number(process.hrtime.bigint() - t0) / 1e6;
    }
    best = Math.min(best, el / reps);
  }
  return best;
}

// [h (= w), channels, stride]
const DW = [[112, 32, 1], [112, 96, 2], [56, 144, 1], [56, 144, 2], [28, 192, 1], [14, 576, 1], [14, 576, 2], [7, 960, 1]];

function dwSpec(c, s) {
  const weight = new Int8Array(c * 9);
  for (let i = 0; i < weight.length; i++) weight[i] = ((i * 2654435761) >>> 24) - 128;
  return {
    geometry: { inChannels: c, outChannels: c, kernelH: 3, kernelW: 3, strideH: s, strideW: s, padH: 1, padW: 1, dilationH: 1, dilationW: 1, groups: c },
    weight, inputScale: 0.02, inputZeroPoint: 3, weightScale: new Float32Array(c).fill(0.004), bias: new Float32Array(c).fill(0.1),
    outputScale: 0.05, outputZeroPoint: 5, outMin: 5, outMax: 255,
  };
}

const addon = loadNative();
const isas = addon.supported;
const rows = [];
const head = (label) => console.log(label.padEnd(26), isas.map((i) => i.padStart(11)).join(' '), '  speedup vs scalar');

if (!json) head('depthwise 3x3 (GOPS)');
for (const [h, c, s] of DW) {
  const oh = Math.floor((h + 2 - 3) / s) + 1;
  const x = new Uint8Array(h * h * c).map((_, i) => (i * 97) & 255), y = new Uint8Array(oh * oh * c);
  const ops = 2 * oh * oh * c * 9;
  const line = [`${h}x${h}x${c} s${s}`.padEnd(26)];
  const res = {};
  for (const isa of isas) {
    const p = nativeBackend.packQConv2d(dwSpec(c, s), { isa });
    const ms = time(() => nativeBackend.qconv2d(p, x, 1, h, h, y));
    res[isa] = ops / ms / 1e6;
    rows.push({ op: 'dwconv3x3', h, c, stride: s, isa, ms, gops: res[isa] });
    line.push(res[isa].toFixed(1).padStart(11));
  }
  line.push('  ' + isas.filter((i) => i !== 'scalar').map((i) => `${i} ${(res[i] / res.scalar).toFixed(1)}x`).join(', '));
  if (!json) console.log(line.join(' '));
}

const n = 56 * 56 * 24;
const a = new Uint8Array(n).map((_, i) => (i * 97) & 255), b = new Uint8Array(n).map((_, i) => (i * 31 + 7) & 255);
const yq = new Uint8Array(n), f = new Float32Array(n).map((_, i) => ((i * 13) % 211) * 0.05 - 5), yf = new Float32Array(n);
const EW = [
  ['qadd 56x56x24', 3 * n, (isa) => addon.binding.qadd(a, b, yq, 0.05, 3, 0.07, 120, 0.09, 10, false, isa)],
  ['qadd+relu 56x56x24', 3 * n, (isa) => addon.binding.qadd(a, b, yq, 0.05, 3, 0.07, 120, 0.09, 10, true, isa)],
  ['quantize 56x56x24', 5 * n, (isa) => addon.binding.quantize(f, yq, 0.04, 128, isa)],
  ['dequantize 56x56x24', 5 * n, (isa) => addon.binding.dequantize(a, yf, 0.04, 128, isa)],
];
if (!json) head('\nelement-wise (GB/s)');
for (const [name, bytes, fn] of EW) {
  const line = [name.padEnd(26)];
  const res = {};
  for (const isa of isas) {
    const ms = time(() => fn(isa));
    res[isa] = bytes / ms / 1e6;
    rows.push({ op: name, isa, ms, gbps: res[isa] });
    line.push(res[isa].toFixed(2).padStart(11));
  }
  line.push('  ' + isas.filter((i) => i !== 'scalar').map((i) => `${i} ${(res[i] / res.scalar).toFixed(1)}x`).join(', '));
  if (!json) console.log(line.join(' '));
}
if (json) console.log(JSON.stringify(rows));
else console.log('\n(single thread, batch 1; avxvnni runs the avx2 kernels)');
