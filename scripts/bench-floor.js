#!/usr/bin/env node
// How close an int8 zoo ResNet runs to the floor of its own kernels, on one thread, per image,
// next to onnxruntime-node on the same model (exported by us), in one process:
// - floor: every conv and linear as its GEMM alone (requantization epilogue included; hot caches,
//   no im2col; the faster per image of one sample and the whole batch as rows) plus every residual
//   add alone (hot), summed;
// - ptq-node: the compiled plan; ORT: its session (graph optimization 'all', one at a time).
// What lies between the floor and ORT / ratio is all that a run may spend on im2col, pooling,
// input quantization and cache misses if ptq-node is to be `ratio` times ORT. Not a test.
// Usage: npm run build && node scripts/bench-floor.js [--model resnet50|resnet18] [--batch 16] [--ratio 1.2] [--json]
'use strict';
const api = require('../dist');
const { exportOnnx } = require('../dist/io/onnx-export');
const { randomize, images, timeit, timeitAsync, layerShapes, gemmSpec } = require('./bench-util');

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : process.argv[i + 1];
}
const modelName = arg('model', 'resnet50');
const batch = Number(arg('batch', '16'));
const ratio = Number(arg('ratio', '1.2'));
const json = process.argv.includes('--json');
const makers = { resnet50: () => api.resnet50(1000), resnet18: () => api.resnet18(1000) };
const usage = (msg) => { console.error(`bench-floor: ${msg}`); process.exit(2); };
if (!makers[modelName]) usage(`--model must be one of ${Object.keys(makers).join(', ')}, got '${modelName}'`);
if (!Number.isInteger(batch) || batch < 1 || batch > 64) usage(`--batch must be an integer from 1 to 64, got '${arg('batch')}'`);
if (!(ratio > 0)) usage(`--ratio must be a positive number, got '${arg('ratio')}'`);

/** Fastest of n calls of fn, in ms. */
function best(fn, n) {
  let m = Infinity;
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    m = Math.min(m, Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return m;
}

/** Per image: the GEMMs alone and the adds alone, in ms. */
function floor(shapes, isa) {
  const be = api.nativeBackend;
  let gemm = 0, add = 0;
  for (const { m, k, n, groups } of shapes.gemms) {
    if (groups !== 1) throw new RangeError('the floor covers dense convs only (grouped or depthwise convs are not one GEMM)');
    const p = be.packQGemm(gemmSpec(k, n, { outputZeroPoint: 0, outMin: 0, outMax: 127 }), { isa });  // a ReLU conv's output
    let perImage = Infinity;
    for (const rows of batch > 1 ? [m, m * batch] : [m]) {
      const a = new Uint8Array(rows * k).map((_, i) => (i * 97) & 255), c = new Uint8Array(rows * n);
      perImage = Math.min(perImage, best(() => be.qgemm(p, rows, a, c), rows === m ? 15 : 5) / (rows / m));
    }
    gemm += perImage;
  }
  for (const n of shapes.adds) {
    const a = new Uint8Array(n).map((_, i) => (i * 31) & 255), b = new Uint8Array(n).map((_, i) => (i * 7) & 255), y = new Uint8Array(n);
    const p = { aScale: 0.05, aZeroPoint: 0, bScale: 0.04, bZeroPoint: 0, outScale: 0.07, outZeroPoint: 0, relu: true };
    add += best(() => be.qadd(a, b, y, p), 15);
  }
  return { gemm, add };
}

async function main() {
  let ort;
  try { ort = require('onnxruntime-node'); } catch { if (!json) console.error('onnxruntime-node not installed: no ORT row'); }
  const isa = api.loadNative().isa;
  const float = randomize(makers[modelName](), 11);
  const shapes = layerShapes(float);
  const q = api.deepCopy(float);
  q.fuseModel();
  q.qconfig = api.getDefaultQConfig('fbgemm');
  api.prepare(q, true);
  q.call(images(4, 5));
  api.convert(q, true);
  const x = images(batch, 3);
  const reps = batch === 1 ? 40 : 7;
  // The floor before and after the two engines (the better of the two, like every number here).
  const f0 = floor(shapes, isa);
  const plan = api.compileModel(q, { inputShape: [3, 224, 224], maxBatch: batch, threads: 1 });
  const ours = timeit(() => plan.runSync(x), reps) / batch;
  plan.dispose();
  let theirs = null;
  if (ort) {
    const sess = await ort.InferenceSession.create(Buffer.from(exportOnnx(q, { arch: modelName, numClasses: 1000 })), {
      executionProviders: ['cpu'], graphOptimizationLevel: 'all', intraOpNumThreads: 1, interOpNumThreads: 1,
    });
    const feeds = { input: new ort.Tensor('float32', x.data, [batch, 3, 224, 224]) };
    theirs = (await timeitAsync(() => sess.run(feeds), reps)) / batch;
    await sess.release();
  }
  const f1 = floor(shapes, isa);
  const gemm = Math.min(f0.gemm, f1.gemm), add = Math.min(f0.add, f1.add), total = gemm + add;
  const r = {
    model: modelName, batch, threads: 1, isa, gemm_ms: +gemm.toFixed(3), add_ms: +add.toFixed(3), floor_ms: +total.toFixed(3),
    ptq_ms: +ours.toFixed(3), ort_ms: theirs === null ? null : +theirs.toFixed(3), ratio,
    ort_over_ratio_ms: theirs === null ? null : +(theirs / ratio).toFixed(3),
  };
  if (json) {
    console.log(JSON.stringify(r));
    return;
  }
  const row = (label, ms, note = '') => console.log(`${label.padEnd(52)} ${ms.toFixed(2).padStart(7)} ms${note}`);
  console.log(`${modelName}, batch ${batch}, 1 thread, ${isa}, per image:`);
  row(`${shapes.gemms.length} convs and linears as GEMMs alone (hot, no im2col)`, gemm);
  row(`${shapes.adds.length} residual adds alone (hot)`, add);
  row('floor', total);
  row('ptq-node (compiled plan)', ours, `  floor + ${(ours - total).toFixed(2)} ms`);
  if (theirs !== null) {
    row('onnxruntime-node', theirs, `  ptq-node is ${(theirs / ours).toFixed(3)}x`);
    row(`onnxruntime-node / ${ratio}`, theirs / ratio, `  floor + ${(theirs / ratio - total).toFixed(2)} ms`);
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
