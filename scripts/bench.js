#!/usr/bin/env node
// `npm run bench`: int8 and fp32 inference of MobileNetV2-1.0 (224x224x3, 1000 classes) and
// ResNet-50, ptq-node vs onnxruntime-node running the same models (exported by us to ONNX), in
// one run, one ORT session alive at a time. Images/s and median ms at batch 1 and 16, 1 and 2
// threads; event-loop lag under 64 concurrent run() calls; peak RSS. Not a test.
// Usage: npm run bench [-- --quick] [-- --json]
'use strict';
const { performance } = require('perf_hooks');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const api = require('../dist');
const { exportOnnx } = require('../dist/io/onnx-export');

const quick = process.argv.includes('--quick');
const json = process.argv.includes('--json');
const log = (...a) => { if (!json) console.error(...a); };

function randomize(model, seed) {
  let s = seed;
  const rnd = () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648; };
  const normal = () => Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd());
  for (const [k, t] of model.stateDict()) {
    const fan = t.shape.length === 4 ? t.shape[0] * t.shape[2] * t.shape[3] : t.shape[t.shape.length - 1] || 1;
    for (let i = 0; i < t.numel; i++)
      t.data[i] = k.endsWith('running_var') ? 0.5 + rnd() : k.endsWith('running_mean') || k.endsWith('.bias') ? 0.05 * normal()
        : k.endsWith('num_batches_tracked') ? 0 : t.shape.length === 1 ? 0.8 + 0.4 * rnd() : normal() * Math.sqrt(2 / fan);
  }
  return model.eval();
}

function images(n, seed) {
  let s = seed;
  const x = new Float32Array(n * 3 * 224 * 224);
  for (let i = 0; i < x.length; i++) { s = (s * 1103515245 + 12345) % 2147483648; x[i] = (s / 2147483648 - 0.5) * 4; }
  return new api.Tensor(x, [n, 3, 224, 224]);
}

// Every engine gets the same warm-up: calls until 300 ms have passed (at least one, at most 200),
// so JIT tiers, buffer pools and page faults settle before timing.
const WARMUP_MS = 300, WARMUP_MAX = 200;

function timeit(fn, reps) {
  const w0 = performance.now();
  for (let i = 0; i < WARMUP_MAX && (i === 0 || performance.now() - w0 < WARMUP_MS); i++) fn();
  const t = [];
  for (let i = 0; i < reps; i++) { const t0 = performance.now(); fn(); t.push(performance.now() - t0); }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)];
}

async function timeitAsync(fn, reps) {
  const w0 = performance.now();
  for (let i = 0; i < WARMUP_MAX && (i === 0 || performance.now() - w0 < WARMUP_MS); i++) await fn();
  const t = [];
  for (let i = 0; i < reps; i++) { const t0 = performance.now(); await fn(); t.push(performance.now() - t0); }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)];
}

async function main() {
  let ort;
  try { ort = require('onnxruntime-node'); } catch { log('onnxruntime-node not installed: ORT rows skipped'); }
  const rows = [];
  const add = (engine, model, batch, threads, ms) => {
    const r = { engine, model, batch, threads, median_ms: +ms.toFixed(3), img_per_s: +((batch * 1000) / ms).toFixed(1) };
    rows.push(r);
    log(`${engine.padEnd(9)} ${model.padEnd(12)} batch ${String(batch).padStart(2)} threads ${threads}: ${r.median_ms.toFixed(2).padStart(8)} ms ${r.img_per_s.toFixed(1).padStart(8)} img/s`);
  };
  const models = [['mobilenet_v2', () => api.mobilenetV2({ numClasses: 1000 })], ['resnet50', () => api.resnet50(1000)]];
  const x16 = images(16, 7), x1 = images(1, 3);
  for (const [name, make] of models) {
    const float = randomize(make(), 11);
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
  const rss = process.resourceUsage().maxRSS / 1024;
  log(`peak RSS ${rss.toFixed(0)} MB`);
  rows.push({ metric: 'peak_rss_mb', value: +rss.toFixed(1) });
  if (json) console.log(JSON.stringify(rows.filter((r) => r.engine && r.batch)));
  else {
    console.log('\nengine     model        batch threads  median_ms   img/s');
    for (const r of rows.filter((r) => r.batch)) console.log(`${r.engine.padEnd(10)} ${r.model.padEnd(12)} ${String(r.batch).padStart(5)} ${String(r.threads).padStart(7)} ${r.median_ms.toFixed(2).padStart(10)} ${r.img_per_s.toFixed(1).padStart(7)}`);
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
