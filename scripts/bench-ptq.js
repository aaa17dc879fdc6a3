#!/usr/bin/env node
// PTQ accuracy benchmark (not a test): the shipped Fashion-MNIST MobileNetV2, calibration on the first
// 300 training images (10 batches of 30, as the tutorial), accuracy on the full 10,000-image test set,
// for PyTorch's qconfigs, ptq-node's observers and methods, mixed precision, and `--qconfig best`
// (chosen by top-1 on training images 300..2299, never the test set).
//
//   npm run build && node scripts/bench-ptq.js [--limit N] [--json out.json] [--quick]
'use strict';
const path = require('path');
const fs = require('fs');
const p = require('../dist');
const { parseConfigLabel } = require('../dist/report/collect');
const { searchBest, quantizeMixed } = require('../dist/quantization/best');

const args = process.argv.slice(2);
const opt = (k, d) => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : d; };
const root = path.join(__dirname, '..');
const weights = path.join(root, 'assets', 'mobilenet_v2_fashion_mnist.pth');
const dataDir = path.join(root, 'assets', 'fashion-mnist');
const spec = { arch: 'mobilenet_v2', numClasses: 10 };
const train = new p.FashionMnist(dataDir, 'train');
const test = new p.FashionMnist(dataDir, 'test');
const limit = Number(opt('--limit', test.length));
const quick = args.includes('--quick');
const calibBatches = 10, batchSize = 30;
const create = () => p.loadFloatModel(spec, weights);
const rows = [];
const origWarn = console.warn;
console.warn = (m, ...r) => { if (!String(m).startsWith('must run observer')) origWarn(m, ...r); };

function evalModel(model) {
  const quantized = [...model.modules()].some((m) => m instanceof p.Quantize);
  const islands = p.floatIslands(model).length > 0;
  let runner = model, how = 'module forward';
  if (quantized && !islands) {
    const c = p.compileModel(model, { inputShape: [3, 28, 28], maxBatch: 100 });
    runner = { call: (x) => c.runSync(x) };
    how = 'compiled plan';
  }
  const r = p.evaluate(runner, test, { batchSize: 100, limit });
  return { top1: r.top1, top5: r.top5, count: r.count, imgPerSec: r.count / r.seconds, how };
}

function row(label, what, model, seconds, extra = {}) {
  const e = evalModel(model);
  const r = { label, what, ...e, quantizeSeconds: seconds, ...extra };
  rows.push(r);
  console.error(`${label.padEnd(34)} top-1 ${e.top1.toFixed(2)}%  (${e.imgPerSec.toFixed(0)} img/s, ${e.how}; quantized in ${seconds.toFixed(1)} s)`);
  return r;
}

function quantize(label, what) {
  const { qconfig, methods } = parseConfigLabel(label);
  const t = Date.now();
  const q = p.ptqQuantize(create(), { qconfig: p.qconfigByName(qconfig), calibration: train, calibBatches, batchSize, ...methods });
  return row(label, what, q.model, (Date.now() - t) / 1000);
}

const floatRow = row('float', 'float32 model (BN unfused)', create(), 0);
quantize('default', 'PyTorch default_qconfig: per-tensor MinMax, activations 0..127');
quantize('fbgemm', 'PyTorch fbgemm: histogram (reduce_range), per-channel weights');
quantize('fullrange', 'histogram 0..255 (= onednn), per-channel');
quantize('percentile', 'percentile 99.99, 0..255, per-channel');
quantize('entropy', 'entropy (KL, 2048 bins), 0..255, per-channel');
quantize('mse', 'MSE, 0..255, per-channel');
quantize('default+cle', 'per-tensor default + equalization');
quantize('default+abc', 'per-tensor default + analytical bias correction');
quantize('default+ebc', 'per-tensor default + empirical bias correction (_correct_bias.py)');
quantize('default+cle+abc', 'per-tensor default + equalization + analytical bias correction');
quantize('default+cle+ebc', 'per-tensor default + equalization + empirical bias correction (_correct_bias.py)');
quantize('default+cle+wbc', 'per-tensor default + equalization + DFQ weight-only empirical correction');
quantize('default+cle+absorb+abc', 'per-tensor default + equalization + bias absorption + analytical BC');
if (!quick) {
  quantize('fbgemm+cle+ebc', 'fbgemm + equalization + empirical BC');
  quantize('mse+cle+abc', 'MSE + equalization + analytical BC');
  quantize('mse+cle+ebc', 'MSE + equalization + empirical BC');
  quantize('percentile+cle+abc', 'percentile + equalization + analytical BC');
}

/** Best of 3 milliseconds per image over 2000 test images, batch 100 (module forward or compiled plan). */
function msPerImage(model, compiled) {
  let run = model;
  if (compiled) { const c = p.compileModel(model, { inputShape: [3, 28, 28], maxBatch: 100 }); run = { call: (x) => c.runSync(x) }; }
  const xs = [];
  for (let s = 0; s < 2000; s += 100) xs.push(test.batch(s, 100).images);
  let best = Infinity;
  for (let k = 0; k < 3; k++) {
    const t = process.hrtime.bigint();
    for (const x of xs) run.call(x);
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e6 / 2000);
  }
  return best;
}
const speed = [];
{
  const q = p.ptqQuantize(create(), { qconfig: p.qconfigByName('default'), calibration: train, calibBatches, batchSize }).model;
  speed.push({ label: 'default, compiled plan', ms: msPerImage(q, true) });
  speed.push({ label: 'default, module forward', ms: msPerImage(q, false) });
  speed.push({ label: 'float, module forward', ms: msPerImage(create(), false) });
}
for (const n of quick ? [2] : [1, 3, 10]) {
  const t = Date.now();
  const r = quantizeMixed(create, { qconfig: p.qconfigByName('default'), calibration: train, calibBatches, batchSize }, n);
  row(`default+float${n}`, `per-tensor default, the ${n} layers with the lowest local SQNR left float (${r.floatModules.join(', ')})`, r.model, (Date.now() - t) / 1000, { floatModules: r.floatModules });
  speed.push({ label: `default+float${n}, module forward`, ms: msPerImage(r.model, false) });
}
{
  const t = Date.now();
  const b = searchBest({ createModel: create, calibration: train, calibBatches, batchSize, heldOutCount: 2000,
    onCandidate: (c, top1, i, n) => console.error(`  best search [${i + 1}/${n}] ${c.label}: held-out ${top1.toFixed(2)}%`) });
  row('best', `--qconfig best -> ${b.best.label} (held-out training images ${b.heldOut.start}..${b.heldOut.start + b.heldOut.count - 1}: ${b.bestTop1.toFixed(2)}%)`, b.quantized.model, (Date.now() - t) / 1000, { chosen: b.best.label, candidates: b.results.map((x) => ({ label: x.candidate.label, heldOutTop1: x.heldOutTop1 })) });
}

console.log(`\nptq-node ${require('../package.json').version}, ISA ${p.loadNative().isa}, ${rows[1].count} test images, calibration on the first ${calibBatches * batchSize} training images\n`);
console.log('| configuration | what | top-1 % | vs float | int8 eval img/s |');
console.log('|---|---|---|---|---|');
for (const r of rows) {
  const d = r.top1 - floatRow.top1;
  console.log(`| ${r.label} | ${r.what} | ${r.top1.toFixed(2)} | ${r === floatRow ? '' : (d >= 0 ? '+' : '') + d.toFixed(2)} | ${r === floatRow ? '' : r.imgPerSec.toFixed(0) + (r.how === 'module forward' ? ' (module forward)' : '')} |`);
}
console.log('\n| int8 speed (batch 100, best of 3) | ms / image |');
console.log('|---|---|');
for (const s of speed) console.log(`| ${s.label} | ${s.ms.toFixed(3)} |`);
const best = rows.find((r) => r.label === 'best');
console.log(`\nbest: held-out top-1 per candidate: ${best.candidates.map((c) => `${c.label} ${c.heldOutTop1.toFixed(2)}`).join(', ')}`);
const jsonOut = opt('--json');
if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify({ rows, speed }, null, 2));
