// Many runs in flight: thousands of run() calls from many async callers over several compiled
// models at once give exactly runSync's results; dispose() while runs are in flight is safe
// (runs finish or reject with a clear error); memory stays flat over a bounded soak loop.
// test:sanitize runs this suite against the ASan + UBSan build.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CompiledModel, compileModel } from '../lib/inference';
import { PtqError } from '../lib/errors';
import { encodeQuantizedModel, loadQuantizedModel } from '../lib/io/model-file';
import { Module } from '../lib/nn/module';
import { convert } from '../lib/quantization/convert';
import { prepare } from '../lib/quantization/quantize';
import { Tensor } from '../lib/tensor';
import { qconfigByName } from '../lib/workflow';
import { rows, smallExpected, smallInput, smallModel, quantizedSmall } from './helpers/fixtures';
import { rng, randInt } from './helpers/random';

const x = smallInput(); // [8, 3, 28, 28]
// Under test:sanitize freed memory sits in ASan's quarantine, so RSS says nothing about leaks there.
const sanitized = !!process.env.PTQ_SANITIZE;
const rssTest = sanitized ? test.skip : test;
const PER = 3 * 28 * 28;

const models = { default: quantizedSmall('default'), fbgemm: quantizedSmall('fbgemm') };

/** A batch of k samples starting at sample s of the fixture input (wrapping around). */
function batch(s: number, k: number): Float32Array {
  const out = new Float32Array(k * PER);
  for (let i = 0; i < k; i++) out.set(x.data.subarray(((s + i) % 8) * PER, ((s + i) % 8 + 1) * PER), i * PER);
  return out;
}

describe('thousands of run() calls in flight', () => {
  const compiled: Array<{ name: string; c: CompiledModel; want: Float32Array[] }> = [];
  beforeAll(() => {
    // Three plans: two models, and one of them again with another maxBatch and thread count.
    for (const [name, m, maxBatch, threads] of [['default', models.default, 4, 0], ['fbgemm', models.fbgemm, 3, 1], ['fbgemm/8', models.fbgemm, 8, 2]] as const) {
      const c = compileModel(m, { inputShape: [3, 28, 28], maxBatch, threads });
      const y = c.runSync(x); // per-sample reference outputs from runSync
      const outPer = y.numel / 8;
      compiled.push({ name, c, want: Array.from({ length: 8 }, (_, i) => y.data.slice(i * outPer, (i + 1) * outPer)) });
    }
  });
  afterAll(() => compiled.forEach(({ c }) => c.dispose()));

  test('3000 runs from 40 callers over 3 plans, mixed batch sizes: identical to runSync', async () => {
    const r = rng(42);
    let done = 0, mismatches = 0;
    const caller = async (id: number, count: number): Promise<void> => {
      const inFlight: Promise<void>[] = [];
      for (let j = 0; j < count; j++) {
        const m = compiled[randInt(r, 0, compiled.length - 1)];
        const s = randInt(r, 0, 7), k = randInt(r, 1, 10); // k > maxBatch splits into chunks
        inFlight.push(m.c.run(batch(s, k)).then((y) => {
          const outPer = y.numel / k;
          for (let i = 0; i < k; i++) {
            const got = y.data.subarray(i * outPer, (i + 1) * outPer), want = m.want[(s + i) % 8];
            if (got.length !== want.length || got.some((v, t) => !Object.is(v, want[t]))) mismatches++;
          }
          done++;
        }));
        if (j % 7 === id % 7) await Promise.resolve(); // interleave the callers
      }
      await Promise.all(inFlight);
    };
    await Promise.all(Array.from({ length: 40 }, (_, id) => caller(id, 75)));
    expect(done).toBe(3000);
    expect(mismatches).toBe(0);
  }, 120000);

  test('runSync interleaved with runs in flight on the same plan gives the same values', async () => {
    const { c, want } = compiled[0];
    const pending = Array.from({ length: 200 }, (_, i) => c.run(batch(i % 8, 2)));
    for (let i = 0; i < 20; i++) expect(Array.from(c.runSync(batch(i % 8, 1)).data)).toEqual(Array.from(want[i % 8]));
    const outs = await Promise.all(pending);
    outs.forEach((y, i) => expect(Array.from(y.data.subarray(0, want[0].length))).toEqual(Array.from(want[i % 8])));
  }, 60000);
});

describe('dispose()', () => {
  test('while 500 runs are in flight: each resolves correctly or rejects with a clear error; other plans are unaffected', async () => {
    const victim = compileModel(models.default, { inputShape: [3, 28, 28], maxBatch: 2 });
    const other = compileModel(models.fbgemm, { inputShape: [3, 28, 28], maxBatch: 4 });
    const want = victim.runSync(batch(0, 1)).data;
    const wantOther = other.runSync(batch(0, 1)).data;
    const runs = Array.from({ length: 500 }, (_, i) => victim.run(batch(0, 1 + (i % 5))));
    const others = Array.from({ length: 200 }, () => other.run(batch(0, 1)));
    await runs[3];
    victim.dispose();
    victim.dispose(); // idempotent
    const settled = await Promise.allSettled(runs);
    let ok = 0, rejected = 0;
    for (const s of settled) {
      if (s.status === 'fulfilled') {
        ok++;
        expect(Array.from(s.value.data.subarray(0, want.length))).toEqual(Array.from(want));
      } else {
        rejected++;
        expect(s.reason).toBeInstanceOf(PtqError);
        expect((s.reason as PtqError).code).toBe('disposed');
      }
    }
    expect(ok).toBeGreaterThanOrEqual(4);
    expect(ok + rejected).toBe(500);
    for (const y of await Promise.all(others)) expect(Array.from(y.data)).toEqual(Array.from(wantOther));
    expect(victim.isDisposed).toBe(true);
    expect(() => victim.runSync(batch(0, 1))).toThrow(/disposed/);
    await expect(victim.run(batch(0, 1))).rejects.toThrow(/disposed/);
    expect(() => victim.info()).toThrow(/disposed/);
    expect(() => victim.profile(batch(0, 1))).toThrow(/disposed/);
    other.dispose();
  }, 60000);

  rssTest('dispose frees the arena at once (RSS drops by about the arena size, no GC needed)', () => {
    const c = compileModel(models.default, { inputShape: [3, 28, 28], maxBatch: 1024 });
    const arena = c.info().arenaBytes;
    expect(arena).toBeGreaterThan(16 << 20);
    const x = new Tensor(new Float32Array(1024 * 3 * 28 * 28).fill(0.5), [1024, 3, 28, 28]);
    const r0 = process.memoryUsage().rss;
    c.runSync(x);  // a full batch writes the whole arena (it is not zeroed at creation)
    const before = process.memoryUsage().rss;
    // What the run added to RSS, at most the arena: the bar for what dispose must give back. (On
    // a loaded shared machine the kernel does not always keep fresh pages resident.)
    const grew = Math.min(before - r0, arena);
    c.dispose();
    expect(before - process.memoryUsage().rss).toBeGreaterThan(grew * 0.5);
    if (grew < arena * 0.5) console.log(`dispose test: the run added only ${(grew / 2 ** 20).toFixed(1)} MiB of RSS for a ${(arena / 2 ** 20).toFixed(1)} MiB arena`);
  });
});

describe('worker threads', () => {
  test('terminating a worker thread with 64 runs queued neither crashes nor hangs the process', () => {
    // In a child process: the worker's promises settle (or not) while its JS can no longer run.
    // Settling then threw out of a C callback, and the process aborted.
    const script = `
      const { Worker, isMainThread, parentPort } = require('worker_threads');
      if (isMainThread) {
        (async () => {
          for (let i = 0; i < 8; i++) {
            const w = new Worker(__filename);
            await new Promise((r) => w.once('message', r));
            await new Promise((r) => setTimeout(r, i % 4));
            await w.terminate();
          }
          console.log('terminated 8 workers');
        })();
      } else {
        const api = require(${JSON.stringify(path.join(__dirname, '..', 'dist'))});
        const m = api.mobilenetV2({ numClasses: 10 });
        m.eval(); m.fuseModel(); m.qconfig = api.getDefaultQConfig('fbgemm'); api.prepare(m, true);
        const x = new api.Tensor(new Float32Array(3 * 64 * 64).map((_, i) => Math.sin(i)), [1, 3, 64, 64]);
        m.call(x); api.convert(m, true);
        const c = api.compileModel(m, { inputShape: [3, 64, 64], maxBatch: 1 });
        for (let i = 0; i < 64; i++) c.run(x).catch(() => {});
        parentPort.postMessage('queued');
      }`;
    const file = path.join(os.tmpdir(), `ptq-worker-terminate-${process.pid}.js`);
    fs.writeFileSync(file, script);
    try {
      const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 120000 });
      expect({ status: r.status, signal: r.signal, stdout: r.stdout.trim(), stderr: r.stderr.replace(/^.*calculate_qparams.*\n/gm, '') })
        .toEqual({ status: 0, signal: null, stdout: 'terminated 8 workers', stderr: '' });
    } finally {
      fs.rmSync(file, { force: true });
    }
  }, 150000);
});

describe('soak (bounded): RSS stays flat after warm-up', () => {
  rssTest('load / compile / run / runSync / dispose, 300 iterations after 60 of warm-up', async () => {
    const bytes = encodeQuantizedModel(models.fbgemm, { architecture: { arch: 'mobilenet_v2', numClasses: 10, widthMult: smallExpected().width_mult, invertedResidualSetting: smallExpected().setting }, qconfig: 'fbgemm' });
    const input = batch(0, 4);
    let checksum = 0;
    const iteration = async (): Promise<void> => {
      const { model } = loadQuantizedModel(bytes);
      // maxBatch 64 makes each plan's arena a few MB: a plan leaked per iteration would show.
      const c = compileModel(model, { inputShape: [3, 28, 28], maxBatch: 64 });
      const ys = await Promise.all([c.run(input), c.run(input), c.run(batch(1, 2))]);
      checksum += ys[0].data[0] + c.runSync(input).data[0];
      c.dispose();
    };
    for (let i = 0; i < 60; i++) await iteration();
    const rss0 = process.memoryUsage().rss;
    for (let i = 0; i < 300; i++) await iteration();
    const rss1 = process.memoryUsage().rss;
    const growth = (rss1 - rss0) / 2 ** 20;
    // Printed for the record. A leaked arena alone (maxBatch 64) would add ~300 x its size; the
    // bound below is generous because the GC decides when JS garbage is returned.
    console.log(`soak: ${300} iterations, rss after warm-up ${(rss0 / 2 ** 20).toFixed(1)} MiB, at end ${(rss1 / 2 ** 20).toFixed(1)} MiB, growth ${growth.toFixed(1)} MiB`);
    expect(Number.isFinite(checksum)).toBe(true);
    expect(growth).toBeLessThan(96);
  }, 180000);
});

void Tensor;
