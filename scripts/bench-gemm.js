#!/usr/bin/env node
// Micro-benchmark of the u8s8 GEMM (+ requantization) per ISA on MobileNetV2-224's pointwise
// shapes, with the TS reference for comparison. Prints GOPS = 2*M*N*K / time. Not a test.
// Usage: npm run build && node scripts/bench-gemm.js [--quick] [--json]
'use strict';
const { loadNative, nativeBackend, referenceBackend } = require('../dist/kernels');
const { gemmSpec } = require('./bench-util');

const quick = process.argv.includes('--quick');
const json = process.argv.includes('--json');
// [M = H*W, K = Cin, N = Cout] of MobileNetV2 1.0 at 224x224 (plus the 1000-class classifier).
const SHAPES = [
  [12544, 32, 16], [12544, 16, 96], [3136, 96, 24], [3136, 24, 144], [3136, 144, 24], [784, 144, 32],
  [784, 32, 192], [784, 192, 32], [196, 192, 64], [196, 64, 384], [196, 384, 64], [196, 384, 96],
  [196, 96, 576], [196, 576, 96], [49, 576, 160], [49, 160, 960], [49, 960, 160], [49, 960, 320],
  [49, 320, 1280], [1, 1280, 1000],
];

function time(fn, minMs) {
  fn();
  let reps = 0;
  const t0 = process.hrtime.bigint();
  let el = 0;
  while (el < minMs) {
    fn();
    reps++;
    el = Number(process.hrtime.bigint() - t0) / 1e6;
  }
  return el / reps;
}

const addon = loadNative();
const engines = [...addon.supported.map((isa) => ({ name: isa, backend: nativeBackend, isa })), { name: 'ts-reference', backend: referenceBackend }];
const rows = [];
const totals = {};
for (const [m, k, n] of SHAPES) {
  const a = new Uint8Array(m * k).map((_, i) => (i * 97) & 255);
  const c = new Uint8Array(m * n);
  const line = [`${m}x${k}x${n}`.padEnd(16)];
  for (const e of engines) {
    if (e.name === 'ts-reference' && quick && m * n * k > 5e6) { line.push('       -'); continue; }
    const p = e.backend.packQGemm(gemmSpec(k, n, { outputZeroPoint: 5, outMin: 5, outMax: 255 }), e.isa ? { isa: e.isa } : undefined);
    const ms = time(() => e.backend.qgemm(p, m, a, c), e.name === 'ts-reference' ? 1 : (quick ? 30 : 200));
    const gops = (2 * m * n * k) / ms / 1e6;
    totals[e.name] = (totals[e.name] || 0) + ms;
    rows.push({ isa: e.name, m, k, n, ms, gops });
    line.push(gops.toFixed(1).padStart(8));
  }
  if (!json) console.log(line.join(' '));
  if (!json && rows.length === engines.length) console.log(''.padEnd(16), engines.map((e) => e.name.padStart(8)).join(' '), '(GOPS, 1 thread)');
}
if (json) console.log(JSON.stringify(rows));
else {
  const macs = SHAPES.reduce((s, [m, k, n]) => s + m * k * n, 0);
  console.log(`\nall ${SHAPES.length} shapes (${(macs / 1e6).toFixed(0)}M MACs):`);
  for (const e of engines) if (totals[e.name] && !(e.name === 'ts-reference' && quick))
    console.log(`  ${e.name.padEnd(12)} ${totals[e.name].toFixed(2)} ms  ${(2 * macs / totals[e.name] / 1e6).toFixed(1)} GOPS`);
}
