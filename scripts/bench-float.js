#!/usr/bin/env node
// Micro-benchmark of the native float32 conv2d per ISA level on MobileNetV2-224 layers (batch 1,
// NHWC), and of every conv of a batch-1 MobileNetV2-224 forward pass plus its classifier.
// Prints GFLOPS = 2*MACs / time (best of 5 rounds), single thread, warm caches. Not a test.
// The global average pool of the network is not included (it is not a conv).
// Usage: npm run build && node scripts/bench-float.js [--quick] [--json] [--no-net]
'use strict';
const { loadNative } = require('../dist/kernels/native');
const { nativeFloatKernels } = require('../dist/kernels/native-float');
const { convOutSize } = require('../dist/kernels/float');

const quick = process.argv.includes('--quick');
const json = process.argv.includes('--json');
const noNet = process.argv.includes('--no-net');

function geom(cin, cout, k, s, groups = 1) {
  const p = (k - 1) >> 1;
  return { inChannels: cin, outChannels: cout, kernelH: k, kernelW: k, strideH: s, strideW: s, padH: p, padW: p, dilationH: 1, dilationW: 1, groups };
}

// [name, h (= w), geometry]
const LAYERS = [
  ['stem 3->32 3x3 s2 @224', 224, geom(3, 32, 3, 2)],
  ['dw 3x3 s1 C=32 @112', 112, geom(32, 32, 3, 1, 32)],
  ['dw 3x3 s2 C=96 @112', 112, geom(96, 96, 3, 2, 96)],
  ['pw 24->144 @56', 56, geom(24, 144, 1, 1)],
  ['pw 144->24 @56', 56, geom(144, 24, 1, 1)],
  ['dw 3x3 s1 C=144 @56', 56, geom(144, 144, 3, 1, 144)],
  ['pw 160->960 @7', 7, geom(160, 960, 1, 1)],
  ['pw 960->160 @7', 7, geom(960, 160, 1, 1)],
  ['3x3 64->64 @56 (ResNet)', 56, geom(64, 64, 3, 1)],
  ['7x7 s2 3->64 @224 (ResNet stem)', 224, geom(3, 64, 7, 2)],
];

// Every conv of MobileNetV2 1.0 at 224x224: [h, geometry, relu].
function mobilenetV2() {
  const convs = [[224, geom(3, 32, 3, 2), true]];
  let h = 112, c = 32;
  for (const [t, out, n, s] of [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]) {
    for (let i = 0; i < n; i++) {
      const stride = i === 0 ? s : 1, hidden = c * t;
      if (t !== 1) convs.push([h, geom(c, hidden, 1, 1), true]);
      convs.push([h, geom(hidden, hidden, 3, stride, hidden), true]);
      h = convOutSize(h, 3, stride, 1, 1);
      convs.push([h, geom(hidden, out, 1, 1), false]);
      c = out;
    }
  }
  convs.push([h, geom(c, 1280, 1, 1), true]);
  return convs;
}

function macs(h, g) {
  const oh = convOutSize(h, g.kernelH, g.strideH, g.padH, g.dilationH);
  return oh * oh * g.outChannels * (g.inChannels / g.groups) * g.kernelH * g.kernelW;
}

function rand(len, seed) {
  const a = new Float32Array(len);
  let s = seed >>> 0;
  for (let i = 0; i < len; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 4294967296 - 0.5;
  }
  return a;
}

// Best of several rounds of about minMs/rounds each: robust to other work on a shared machine.
function time(fn, minMs, rounds = 5) {
  fn();
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    let reps = 0, el = 0;
    const t0 = process.hrtime.bigint();
    while (el < minMs / rounds) {
      fn();
      reps++;
      el = Number(process.hrtime.bigint() - t0) / 1e6;
    }
    best = Math.min(best, el / reps);
  }
  return best;
}

function setup(h, g, isa, relu = true) {
  const oh = convOutSize(h, g.kernelH, g.strideH, g.padH, g.dilationH);
  const w = rand(g.outChannels * (g.inChannels / g.groups) * g.kernelH * g.kernelW, 1);
  const p = nativeFloatKernels.packConv2d(w, rand(g.outChannels, 2), g, { isa });
  const x = rand(h * h * g.inChannels, 3), y = new Float32Array(oh * oh * g.outChannels);
  return () => nativeFloatKernels.conv2d(p, x, 1, h, h, y, relu);
}

const addon = loadNative();
// avxvnni runs the AVX2 float kernels: measure each distinct kernel level once.
const isas = addon.supported.filter((i) => i !== 'avxvnni');
const minMs = quick ? 30 : 200;
const rows = [];

if (!json) console.log(''.padEnd(34), isas.map((i) => i.padStart(11)).join(''), '  (GFLOPS, 1 thread)');
for (const [name, h, g] of LAYERS) {
  const line = [name.padEnd(34)];
  for (const isa of isas) {
    const ms = time(setup(h, g, isa), isa === 'scalar' ? minMs / 2 : minMs);
    const gflops = (2 * macs(h, g)) / ms / 1e6;
    rows.push({ layer: name, isa, ms, gflops });
    line.push(gflops.toFixed(1).padStart(11));
  }
  if (!json) console.log(line.join(''));
}

if (!noNet) {
  // The layers run back to back on two ping-pong activation buffers (as a forward pass would),
  // weights scaled by 1/sqrt(fan-in) so activations stay in range (no denormals, no inf).
  const net = mobilenetV2();
  const total = net.reduce((s, [h, g]) => s + macs(h, g), 0) + 1280 * 1000;
  const maxAct = Math.max(...net.map(([h, g]) => h * h * Math.max(g.inChannels, g.outChannels)));
  if (!json) console.log(`\nMobileNetV2-224 batch 1: ${net.length} convs + classifier, ${(total / 1e6).toFixed(0)}M MACs`);
  for (const isa of isas) {
    const bufs = [rand(maxAct, 7), new Float32Array(maxAct)];
    const runs = net.map(([h, g, relu], i) => {
      const fanIn = (g.inChannels / g.groups) * g.kernelH * g.kernelW, scale = Math.sqrt(6 / fanIn);
      const w = rand(g.outChannels * fanIn, 10 + i).map((v) => v * scale);
      const p = nativeFloatKernels.packConv2d(w, rand(g.outChannels, 100 + i).map((v) => v * 0.1), g, { isa });
      const oh = convOutSize(h, g.kernelH, g.strideH, g.padH, g.dilationH);
      const x = bufs[i % 2].subarray(0, h * h * g.inChannels), y = bufs[(i + 1) % 2].subarray(0, oh * oh * g.outChannels);
      return () => nativeFloatKernels.conv2d(p, x, 1, h, h, y, relu);
    });
    const lin = nativeFloatKernels.packLinear(rand(1280 * 1000, 4).map((v) => v * 0.07), rand(1000, 5), 1280, 1000, { isa });
    const feat = bufs[net.length % 2].subarray(0, 1280), logits = new Float32Array(1000);
    runs.push(() => nativeFloatKernels.linear(lin, 1, feat, logits, false));
    const ms = time(() => runs.forEach((f) => f()), quick || isa === 'scalar' ? minMs * 2 : 8 * minMs);
    rows.push({ layer: 'mobilenet_v2', isa, ms, gflops: (2 * total) / ms / 1e6 });
    if (!json) console.log(`  ${isa.padEnd(11)} ${ms.toFixed(2).padStart(8)} ms  ${((2 * total) / ms / 1e6).toFixed(1).padStart(6)} GFLOPS`);
  }
}
if (json) console.log(JSON.stringify(rows));
