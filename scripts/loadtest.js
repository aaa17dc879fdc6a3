#!/usr/bin/env node
// `npm run loadtest`: throughput and p50/p99 latency of `ptq serve` on loopback, with autocannon,
// at concurrency 1, 8 and 64, with dynamic batching (max batch 16, max wait 2 ms) and without
// (max batch 1). The server runs in its own process (`ptq serve`); the model is MobileNetV2-1.0
// (224x224, 1000 classes) with random weights, quantized here (default qconfig), or --model FILE.
// Input: a 320x240 JPEG (decode + Resize(256) + CenterCrop(224) + Normalize on the server), or
// --input tensor (a raw float32 [1,3,224,224] body). Bounded: --duration seconds per point (5).
// Usage: npm run build && node scripts/loadtest.js [--duration 5] [--input jpeg|tensor] [--model M]
//        [--preprocess-threads N] [--json]
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const autocannon = require('autocannon');
const sharp = require('sharp');
const api = require('../dist');

const arg = (name, dflt) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : dflt; };
const duration = Number(arg('--duration', '5'));
const input = arg('--input', 'jpeg');
const json = process.argv.includes('--json');
const pthreads = arg('--preprocess-threads');
const log = (...a) => { if (!json) console.error(...a); };
const root = path.join(__dirname, '..');

function randomModelFile(dir) {
  let s = 1;
  const rnd = () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648; };
  const normal = () => Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd());
  const model = api.mobilenetV2({ numClasses: 1000 });
  for (const [k, t] of model.stateDict()) {
    const fan = t.shape.length === 4 ? t.shape[0] * t.shape[2] * t.shape[3] : t.shape[t.shape.length - 1] || 1;
    for (let i = 0; i < t.numel; i++)
      t.data[i] = k.endsWith('running_var') ? 0.5 + rnd() : k.endsWith('running_mean') || k.endsWith('.bias') ? 0.05 * normal()
        : k.endsWith('num_batches_tracked') ? 0 : t.shape.length === 1 ? 0.8 + 0.4 * rnd() : normal() * Math.sqrt(2 / fan);
  }
  model.eval();
  model.fuseModel();
  model.qconfig = api.defaultQConfig;
  api.prepare(model, true);
  const x = new Float32Array(4 * 3 * 224 * 224).map(() => (rnd() - 0.5) * 4);
  model.call(new api.Tensor(x, [4, 3, 224, 224]));
  const q = api.convert(model, true);
  const file = path.join(dir, 'mobilenet_v2_224_random.safetensors');
  api.saveQuantizedModel(file, q, { architecture: { arch: 'mobilenet_v2', numClasses: 1000 }, qconfig: 'default', preprocess: api.IMAGENET_PREPROCESS });
  return file;
}

function startServer(model, maxBatch) {
  const p = spawn(process.execPath, [path.join(root, 'bin', 'ptq.js'), 'serve', model, '--port', '0', '--max-batch', String(maxBatch),
    '--max-wait-ms', '2', '--max-queue', '256', '--preprocess', 'imagenet', ...(pthreads !== undefined ? ['--preprocess-threads', pthreads] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ p, url: m[1] });
    });
    p.on('exit', (c) => reject(new Error(`ptq serve exited with ${c}: ${out}`)));
  });
}

async function metrics(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  return api.parsePrometheus(text);
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-loadtest-'));
  try {
    const model = arg('--model') ?? randomModelFile(dir);
    let body, headers;
    if (input === 'tensor') {
      const x = new Float32Array(3 * 224 * 224).map((_, i) => Math.sin(i) * 2);
      body = Buffer.from(x.buffer);
      headers = { 'content-type': 'application/octet-stream', 'x-shape': '1,3,224,224' };
    } else {
      const w = 320, h = 240, raw = Buffer.alloc(w * h * 3);
      for (let i = 0; i < raw.length; i++) raw[i] = (Math.sin(i / 97) * 60 + 128 + ((i * 7919) % 41)) & 255;
      body = await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 85 }).toBuffer();
      headers = { 'content-type': 'image/jpeg' };
    }
    log(`model ${model}, input ${input} (${body.length} bytes), ${duration} s per point, ${os.cpus().length} cores shared by client and server`);
    const rows = [];
    for (const [label, maxBatch] of [['batching (max 16, wait 2 ms)', 16], ['no batching (max 1)', 1]]) {
      const { p, url } = await startServer(model, maxBatch);
      try {
        // warm-up
        await autocannon({ url: `${url}/v1/predict`, method: 'POST', headers, body, connections: 4, duration: 1 });
        for (const c of [1, 8, 64]) {
          const m0 = await metrics(url);
          const r = await autocannon({ url: `${url}/v1/predict`, method: 'POST', headers, body, connections: c, duration, timeout: 30 });
          const m1 = await metrics(url);
          const batches = m1.get('ptq_batch_size_count') - m0.get('ptq_batch_size_count');
          const samples = m1.get('ptq_batch_size_sum') - m0.get('ptq_batch_size_sum');
          const row = {
            mode: label, concurrency: c, req_per_s: +(r.requests.average).toFixed(1), p50_ms: r.latency.p50, p99_ms: r.latency.p99,
            mean_batch: +(samples / Math.max(1, batches)).toFixed(2), ok: r['2xx'], non2xx: r.non2xx, errors: r.errors + r.timeouts,
          };
          rows.push(row);
          log(`${label.padEnd(30)} c=${String(c).padStart(2)}: ${String(row.req_per_s).padStart(7)} req/s  p50 ${String(row.p50_ms).padStart(5)} ms  p99 ${String(row.p99_ms).padStart(5)} ms  mean batch ${row.mean_batch}  (${row.ok} ok, ${row.non2xx} non-2xx, ${row.errors} errors)`);
        }
      } finally {
        await new Promise((res) => { p.on('exit', res); p.kill('SIGTERM'); });
      }
    }
    if (json) console.log(JSON.stringify(rows, null, 2));
    else {
      console.log('| mode | concurrency | req/s | p50 ms | p99 ms | mean batch | non-2xx |');
      console.log('|---|---|---|---|---|---|---|');
      for (const r of rows) console.log(`| ${r.mode} | ${r.concurrency} | ${r.req_per_s} | ${r.p50_ms} | ${r.p99_ms} | ${r.mean_batch} | ${r.non2xx + r.errors} |`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
