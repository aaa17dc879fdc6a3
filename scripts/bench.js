#!/usr/bin/env node
// `npm run bench`: int8 and fp32 inference of MobileNetV2-1.0 (224x224x3, 1000 classes) and
// ResNet-50, ptq-node vs onnxruntime-node running the same models (exported by us to ONNX), in
// one run, one ORT session alive at a time. Images/s and median ms at batch 1 and 16, 1 and 2
// threads; event-loop lag under 64 concurrent run() calls; peak RSS; each row's MAC rate and, for
// int8, its share of this core's int8 peak (the GEMM dot-product instruction alone). Not a test.
// Usage: npm run bench [-- --quick] [-- --json]
'use strict';
const { performance } = require('perf_hooks');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const api = require('../dist');
const { exportOnnx } = require('../dist/io/onnx-export');
const { randomize, images, timeit, timeitAsync, countMacs } = require('./bench-util');

const quick = process.argv.includes('--quick');
const json = process.argv.includes('--json');
const log = (...a) => { if (!json) console.error(...a); };

async function main() {
  let ort;
  try { ort = require('onnxruntime-node'); } catch { log('onnxruntime-node not installed: ORT rows skipped'); }
  const rows = [];
  // GMAC/s per row (not in the JSON rows), read against the int8 peak of one core: probed before
  // and after the runs (the clock moves with load on this kind of machine), the higher of the two.
  // Scalar has no SIMD dot product to probe.
  const native = api.loadNative();
  const probe = () => (native.isa === 'scalar' ? NaN : native.binding.qgemmPeak(native.isa, 300) / 1e9);
  const peaks = [probe()];
  log(`int8 peak of one core: ${peaks[0].toFixed(0)} GMAC/s (${native.isa} GEMM dot products alone, no loads or epilogue)`);
  const gmacs = new Map(), modelMacs = new Map();
  const add = (engine, model, batch, threads, ms) => {
    const r = { engine, model, batch, threads, median_ms: +ms.toFixed(3), img_per_s: +((batch * 1000) / ms).toFixed(1) };
    rows.push(r);
    gmacs.set(r, (modelMacs.get(model) * batch) / ms / 1e6);
    log(`${engine.padEnd(9)} ${model.padEnd(12)} batch ${String(batch).padStart(2)} threads ${threads}: ${r.median_ms.toFixed(2).padStart(8)} ms ${r.img_per_s.toFixed(1).padStart(8)} img/s`);
  };
  const models = [['mobilenet_v2', () => api.mobilenetV2({ numClasses: 1000 })], ['resnet50', () => api.resnet50(1000)]];
  const x16 = images(16, 7), x1 = images(1, 3);
  for (const [name, make] of models) {
    const float = randomize(make(), 11);
    modelMacs.set(name, countMacs(float));
    log(`${name}: ${(modelMacs.get(name) / 1e9).toFixed(3)} GMAC per image`);
    const fused = api.deepCopy(float);
    fused.fuseModel();
    const q = api.deepCopy(fused);
    q.qconfig = api.getDefaultQConfig('fbgemm');
    api.prepare(q, true);
    q.call(images(4, 5));
    api.convert(q, true);
    const batches = quick && name === 'resnet50' ? [1] : [1, 16];
    const reps = (b) => (quick ? (b === 1 ? 10 : 3) : b === 1 ? 50 : 10);
    for (const batch of batches) {
      const x = batch === 1 ? x1 : x16;
      for (const threads of [1, 2]) {
        const c = api.compileModel(q, { inputShape: [3, 224, 224], maxBatch: batch, threads });
        add('ptq-int8', name, batch, threads, timeit(() => c.runSync(x), reps(batch)));
      }
      // The fp32 path is module by module (calibration baseline); setNumThreads sets its threads.
      for (const threads of [1, 2]) {
        api.setNumThreads(threads);
        add('ptq-fp32', name, batch, threads, timeit(() => fused.call(x), Math.max(3, Math.round(reps(batch) / 5))));
      }
      api.setNumThreads(0);
      if (ort) {
        for (const [engine, bytes] of [['ort-int8', exportOnnx(q, { arch: name, numClasses: 1000 })], ['ort-fp32', exportOnnx(fused, { arch: name, numClasses: 1000 }, { float: true })]]) {
          for (const threads of [1, 2]) {
            const sess = await ort.InferenceSession.create(Buffer.from(bytes), { executionProviders: ['cpu'], graphOptimizationLevel: 'all', intraOpNumThreads: threads, interOpNumThreads: 1 });
            const feeds = { input: new ort.Tensor('float32', x.data, [batch, 3, 224, 224]) };
            add(engine, name, batch, threads, await timeitAsync(() => sess.run(feeds), reps(batch)));
            await sess.release();
          }
        }
      }
    }
    if (name === 'mobilenet_v2') {
      // Peak RSS of the saved int8 model loaded and run in a fresh process.
      const file = path.join(os.tmpdir(), `ptq-bench-${process.pid}.safetensors`);
      api.saveQuantizedModel(file, q, { architecture: { arch: name, numClasses: 1000 }, qconfig: 'fbgemm' });
      // --expose-gc: bench-rss collects garbage before it reads the baseline (it always meant to).
      const r = spawnSync(process.execPath, ['--expose-gc', path.join(__dirname, 'bench-rss.js'), file, '3,224,224'], { encoding: 'utf8' });
      fs.rmSync(file, { force: true });
      if (r.status === 0) {
        const m = JSON.parse(r.stdout);
        log(`loaded int8 ${name}: RSS +${m.added_mb.toFixed(1)} MB (file ${m.file_mb.toFixed(2)} MB, arena ${m.arena_mb.toFixed(2)} MB, ` +
          `budget 4x file + arena = ${m.budget_mb.toFixed(1)} MB)`);
        rows.push({ engine: 'ptq-int8', model: name, metric: 'loaded_rss_added_mb', value: +m.added_mb.toFixed(2), budget_mb: +m.budget_mb.toFixed(2) });
      } else log(`RSS measurement failed: ${r.stderr}`);
      // Event-loop lag while 64 run() calls are in flight.
      const c = api.compileModel(q, { inputShape: [3, 224, 224], maxBatch: 1 });
      // Steady state, as in a server: one burst first (its input/output copies come from fresh
      // memory and page-fault on the JS thread; later bursts reuse them).
      await Promise.all(Array.from({ length: 64 }, () => c.run(x1)));
      let last = performance.now(), lag = 0;
      const timer = setInterval(() => { const now = performance.now(); lag = Math.max(lag, now - last - 1); last = now; }, 1);
      await Promise.all(Array.from({ length: 64 }, () => c.run(x1)));
      clearInterval(timer);
      log(`event-loop lag under 64 concurrent run() calls: max ${lag.toFixed(2)} ms`);
      rows.push({ engine: 'ptq-int8', model: name, metric: 'event_loop_lag_ms', value: +lag.toFixed(3) });
    }
  }
  peaks.push(probe());
  const peak = Math.max(...peaks);
  log(`int8 peak of one core after the runs: ${peaks[1].toFixed(0)} GMAC/s`);
  const rss = process.resourceUsage().maxRSS / 1024;
  log(`peak RSS ${rss.toFixed(0)} MB`);
  rows.push({ metric: 'peak_rss_mb', value: +rss.toFixed(1) });
  if (json) console.log(JSON.stringify(rows.filter((r) => r.engine && r.batch)));
  else {
    console.log(`\nint8 peak of one core: ${peak.toFixed(0)} GMAC/s (probed before and after: ${peaks.map((p) => p.toFixed(0)).join(', ')}); "of peak": an int8 row's GMAC/s over peak x threads`);
    console.log('engine     model        batch threads  median_ms   img/s  GMAC/s  of peak');
    for (const r of rows.filter((r) => r.batch)) {
      const g = gmacs.get(r), share = r.engine.endsWith('int8') && peak > 0 ? `${((100 * g) / (peak * r.threads)).toFixed(0)}%` : '';
      console.log(`${r.engine.padEnd(10)} ${r.model.padEnd(12)} ${String(r.batch).padStart(5)} ${String(r.threads).padStart(7)} ${r.median_ms.toFixed(2).padStart(10)} ${r.img_per_s.toFixed(1).padStart(7)} ${g.toFixed(0).padStart(7)} ${share.padStart(8)}`);
    }
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
