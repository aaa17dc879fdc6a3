#!/usr/bin/env node
// Soak / leak check (not a test): loops of loadQuantizedModel, compileModel, runSync, run (many in
// flight), dispose() and GC-only release, for a bounded time (default 60 s, --seconds N). Prints
// RSS, heap and iteration counts after a warm-up (the first 20% of the time) and at the end; exits
// 1 if RSS grew by more than --max-growth-mb (default 64) after warm-up. Needs `npm run build`.
//   node scripts/soak.js [--seconds 60] [--max-growth-mb 64]
'use strict';
const path = require('path');
const api = require(path.join(__dirname, '..', 'dist', 'index.js'));
const { encodeQuantizedModel, loadQuantizedModel, compileModel, mobilenetV2, prepare, convert, getDefaultQConfig, Tensor } = api;

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const seconds = arg('seconds', 60);
const maxGrowthMb = arg('max-growth-mb', 64);

// A small MobileNetV2 (28x28 input, width 0.35), calibrated on random data: fast enough that the
// loop does thousands of iterations.
function makeModel() {
  const m = mobilenetV2({ numClasses: 10, widthMult: 0.35 });
  m.eval();
  m.fuseModel();
  m.qconfig = getDefaultQConfig('fbgemm');
  prepare(m, true);
  let s = 1;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  m.call(new Tensor(Float32Array.from({ length: 4 * 3 * 28 * 28 }, rnd), [4, 3, 28, 28]));
  return convert(m);
}

async function main() {
  const q = makeModel();
  const bytes = encodeQuantizedModel(q, { architecture: { arch: 'mobilenet_v2', numClasses: 10, widthMult: 0.35 }, qconfig: 'fbgemm' });
  const input = new Float32Array(8 * 3 * 28 * 28).map((_, i) => Math.sin(i));
  const counts = { iterations: 0, loads: 0, compiles: 0, runSync: 0, run: 0, disposed: 0, gcOnly: 0 };
  const shared = compileModel(q, { inputShape: [3, 28, 28], maxBatch: 8 });
  const want = shared.runSync(input).data;
  let wrong = 0;
  const iteration = async (i) => {
    const { model } = loadQuantizedModel(bytes);
    counts.loads++;
    const c = compileModel(model, { inputShape: [3, 28, 28], maxBatch: 32 });
    counts.compiles++;
    const y = c.runSync(input);
    counts.runSync++;
    if (y.data[3] !== want[3]) wrong++;
    const ys = await Promise.all(Array.from({ length: 16 }, (_, k) => (k % 2 ? shared : c).run(input.subarray(0, (1 + (k % 8)) * 3 * 28 * 28))));
    counts.run += 16;
    for (const r of ys) if (r.data[0] !== want[0]) wrong++;
    if (i % 4 === 3) counts.gcOnly++; // left to the garbage collector (finalizer frees the plan)
    else { c.dispose(); counts.disposed++; }
    counts.iterations++;
  };
  const mb = (b) => (b / 2 ** 20).toFixed(1);
  const snap = () => { const m = process.memoryUsage(); return { rss: m.rss, heap: m.heapUsed, external: m.external }; };
  const t0 = Date.now();
  const warmEnd = t0 + seconds * 200;
  const end = t0 + seconds * 1000;
  let warm;
  let nextReport = t0 + seconds * 100;
  for (let i = 0; Date.now() < end; i++) {
    await iteration(i);
    if (Date.now() >= nextReport) { // a line every 10% of the run, to see whether RSS plateaus
      nextReport += seconds * 100;
      const m = snap();
      console.log(`  ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s ${String(counts.iterations).padStart(6)} iterations: rss ${mb(m.rss)} MiB, heap ${mb(m.heap)} MiB, external ${mb(m.external)} MiB`);
    }
    if (!warm && Date.now() >= warmEnd) {
      warm = { ...snap(), iterations: counts.iterations };
      console.log(`after warm-up (${((Date.now() - t0) / 1000).toFixed(1)} s, ${counts.iterations} iterations): rss ${mb(warm.rss)} MiB, heap ${mb(warm.heap)} MiB, external ${mb(warm.external)} MiB`);
    }
  }
  const last = snap();
  console.log(`at end (${((Date.now() - t0) / 1000).toFixed(1)} s, ${counts.iterations} iterations): rss ${mb(last.rss)} MiB, heap ${mb(last.heap)} MiB, external ${mb(last.external)} MiB`);
  console.log(JSON.stringify(counts));
  const growth = (last.rss - warm.rss) / 2 ** 20;
  console.log(`rss growth after warm-up: ${growth.toFixed(1)} MiB over ${counts.iterations - warm.iterations} iterations (limit ${maxGrowthMb} MiB); wrong results: ${wrong}`);
  shared.dispose();
  process.exit(growth > maxGrowthMb || wrong ? 1 : 0);
}
main().catch((e) => { console.error(e); process.exit(1); });
