#!/usr/bin/env node
// Peak RSS of a loaded int8 model, run in its own process by `npm run bench`: loads the model
// file, compiles it (maxBatch 1), runs it once and prints one JSON line with the RSS increase
// over the bare process, the file size and the plan's activation arena. Not a test.
// Usage: node --expose-gc scripts/bench-rss.js MODEL.safetensors C,H,W (without the flag the
// baseline includes uncollected start-up garbage)
'use strict';
const fs = require('fs');

const file = process.argv[2];
const shape = (process.argv[3] || '').split(',').map(Number);
if (!file || shape.length !== 3 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
  console.error('usage: node scripts/bench-rss.js MODEL.safetensors C,H,W');
  process.exit(2);
}
const api = require('../dist');
api.loadNative();
if (global.gc) global.gc();
const base = process.memoryUsage().rss;
const { model } = api.loadQuantizedModel(file);
const c = api.compileModel(model, { inputShape: shape, maxBatch: 1, threads: 1 });
c.runSync(new api.Tensor(new Float32Array(shape.reduce((a, b) => a * b, 1)), [1, ...shape]));
// VmHWM: this process image's own high-water mark (getrusage's maxRSS can carry the spawning
// parent's from before exec, which made a 1.6 GB benchmark report +400 MB here).
const hwm = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
const peak = hwm ? Number(hwm[1]) * 1024 : process.resourceUsage().maxRSS * 1024;
const fileBytes = fs.statSync(file).size, arena = c.info().arenaBytes;
console.log(JSON.stringify({ base_rss_mb: base / 2 ** 20, peak_rss_mb: peak / 2 ** 20, added_mb: (peak - base) / 2 ** 20,
  file_mb: fileBytes / 2 ** 20, arena_mb: arena / 2 ** 20, budget_mb: (4 * fileBytes + arena) / 2 ** 20 }));
