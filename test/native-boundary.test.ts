// Loading, ISA choice and the native boundary: bad arguments are JS exceptions, never crashes.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { getBackend, loadNative, nativeBackend, QGemmSpec } from '../lib/kernels';
import { checkWorkerNice, chooseIsa } from '../lib/kernels/native';
import { compileModel } from '../lib/inference';
import { Tensor } from '../lib/tensor';
import { quantizedSmall } from './helpers/fixtures';

const root = path.join(__dirname, '..');
const ptq = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [path.join(root, 'bin', 'ptq.js'), ...args], { env: { ...process.env, ...env }, encoding: 'utf8' });

const spec = (): QGemmSpec => ({
  k: 4, n: 3, weight: new Int8Array(12).fill(1), inputScale: 0.1, inputZeroPoint: 3, weightScale: new Float32Array([0.02]),
  bias: null, outputScale: 0.05, outputZeroPoint: 7, outMin: 0, outMax: 255,
});

describe('ISA choice', () => {
  const all = ['scalar', 'avx2', 'avxvnni', 'avx512vnni'] as const;
  test('best supported level by default', () => {
    expect(chooseIsa(all, undefined)).toBe('avx512vnni');
    expect(chooseIsa(['scalar', 'avx2'], '')).toBe('avx2');
  });
  test('PTQ_ISA forces a lower level', () => expect(chooseIsa(all, 'scalar')).toBe('scalar'));
  test('PTQ_ISA above what the CPU has is a clear error', () => {
    expect(() => chooseIsa(['scalar', 'avx2'], 'avx512vnni')).toThrow(/PTQ_ISA=avx512vnni asks for an ISA this CPU does not have \(it supports scalar, avx2\)/);
  });
  test('unknown PTQ_ISA names the valid levels', () => {
    expect(() => chooseIsa(all, 'sse4')).toThrow(/expected one of scalar, avx2, avxvnni, avx512vnni/);
  });
});

describe('PTQ_WORKER_NICE', () => {
  test('unset, empty or 0-19 is accepted; anything else is a clear error', () => {
    for (const v of [undefined, '', '0', '5', '19']) expect(() => checkWorkerNice(v)).not.toThrow();
    for (const v of ['-1', '20', '2.5', 'abc', ' 3']) expect(() => checkWorkerNice(v)).toThrow(/PTQ_WORKER_NICE='.*' is not an integer from 0 to 19/);
  });
  test('the pool worker runs that many nice levels below the process (Linux)', () => {
    if (process.platform !== 'linux' || loadNative().binding.threadPoolSize() < 2) return;  // no worker to renice
    const script = "const b = require('./dist').loadNative().binding; b.threadPoolSize(); const fs = require('fs');" +
      "console.log(fs.readdirSync('/proc/self/task').map((t) => fs.readFileSync('/proc/self/task/' + t + '/stat', 'utf8').split(') ')[1].split(' ')[16]).join(','))";
    const nices = (env: string | undefined): number[] => {
      const r = spawnSync(process.execPath, ['-e', script], { cwd: path.join(__dirname, '..'), encoding: 'utf8', env: { ...process.env, PTQ_WORKER_NICE: env } });
      expect(r.status).toBe(0);
      return r.stdout.trim().split(',').map(Number);
    };
    const base = nices('0');
    expect(base.every((n) => n === base[0])).toBe(true);
    const niced = nices('3');
    expect(Math.max(...niced)).toBe(Math.min(base[0] + 3, 19));  // the pool worker(s)
    expect(Math.min(...niced)).toBe(base[0]);  // the JS thread and Node's own threads
  });
});

describe('PTQ_WORKER_NICE and queued runs', () => {
  test('the libuv thread that runs queued run()s is lowered like the workers while it runs them, then back (Linux)', async () => {
    if (process.platform !== 'linux' || loadNative().binding.threadPoolSize() < 2) return;
    const niceOf = (t: string): number => Number(fs.readFileSync(`/proc/self/task/${t}/stat`, 'utf8').split(') ')[1].split(' ')[16]);
    const lowered = (): number => {
      const n = fs.readdirSync('/proc/self/task').map(niceOf);
      const base = niceOf(String(process.pid));
      return n.filter((v) => v === Math.min(base + 5, 19)).length;
    };
    const c = compileModel(quantizedSmall('fbgemm'), { inputShape: [3, 224, 224], maxBatch: 1 });
    const x = new Tensor(new Float32Array(3 * 224 * 224).map((_, i) => Math.sin(i)), [1, 3, 224, 224]);
    await c.run(x);
    const idle = lowered();  // the pool's workers
    // Sampled until every run has finished (under a loaded test run, timers come late), and
    // again with more runs when a starved JS thread saw none of them running.
    let during = 0;
    for (let attempt = 0; attempt < 10 && during <= idle; attempt++) {
      let done = false;
      const all = Promise.all(Array.from({ length: 48 }, () => c.run(x))).then(() => (done = true));
      while (!done) {
        during = Math.max(during, lowered());
        await new Promise((r) => setImmediate(r));
      }
      await all;
    }
    // Lowered only where it may go back (CAP_SYS_NICE, or RLIMIT_NICE down to the current nice);
    // never left lowered.
    const status = fs.readFileSync('/proc/self/status', 'utf8'), limits = fs.readFileSync('/proc/self/limits', 'utf8');
    const capSysNice = (BigInt('0x' + (/CapEff:\s*([0-9a-f]+)/.exec(status)?.[1] ?? '0')) >> 23n) & 1n;
    const rlimNice = /Max nice priority\s+(\S+)/.exec(limits)?.[1];
    const base = niceOf(String(process.pid));
    if (capSysNice === 1n || rlimNice === 'unlimited' || 20 - Number(rlimNice) <= base) expect(during).toBeGreaterThan(idle);
    expect(lowered()).toBe(idle);
    c.dispose();
  });
});

describe('ptq doctor --json', () => {
  test('reports the chosen ISA, the supported levels, the loaded binary and the version', () => {
    const r = ptq(['doctor', '--json']);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    const addon = loadNative();
    expect(j.isa).toBe(addon.supported[addon.supported.length - 1]);
    expect(j.supported).toEqual(addon.supported);
    expect(fs.existsSync(j.binary)).toBe(true);
    expect(j.version).toBe(require('../package.json').version);
    expect(j.threads.pool).toBe(loadNative().binding.threadPoolSize());
    expect(j.threads.pool).toBeGreaterThanOrEqual(1);
    expect(j.threads.uv).toBeGreaterThanOrEqual(1);
    expect(j.versions).toMatchObject({ node: process.versions.node, napi: process.versions.napi, sharp: require('sharp').versions.sharp, libvips: require('sharp').versions.vips });
    expect(j.versions.fastify).toMatch(/^\d+\.\d+\.\d+/);
  });
  test('the text form has the ISA, binary, threads and versions', () => {
    const r = ptq(['doctor'], { UV_THREADPOOL_SIZE: '6' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/isa: +\w+/);
    expect(r.stdout).toMatch(/binary: +\/.+\.node/);
    expect(r.stdout).toMatch(/threads: +\d+ intra-op \(pool\), 6 libuv/);
    expect(r.stdout).toMatch(/versions: +node \d+.*sharp \S+, libvips \S+, fastify \S+/);
  });
  test.each(loadNative().supported.map((s) => [s]))('PTQ_ISA=%s is what doctor reports', (isa) => {
    const j = JSON.parse(ptq(['doctor', '--json'], { PTQ_ISA: isa }).stdout);
    expect(j.isa).toBe(isa);
  });
  test('a bad PTQ_ISA exits non-zero with the reason', () => {
    const r = ptq(['doctor', '--json'], { PTQ_ISA: 'avx9000' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/PTQ_ISA='avx9000' is not an ISA level/);
  });
});

describe('argument validation (TS wrapper)', () => {
  for (const name of ['native', 'reference'] as const) {
    const b = getBackend(name);
    test(`${name}: bad specs name the field`, () => {
      expect(() => b.packQGemm({ ...spec(), weight: new Uint8Array(12) as unknown as Int8Array })).toThrow(/spec.weight/);
      expect(() => b.packQGemm({ ...spec(), weight: new Int8Array(11) })).toThrow(RangeError);
      expect(() => b.packQGemm({ ...spec(), k: 0 })).toThrow(/spec.k/);
      expect(() => b.packQGemm({ ...spec(), inputScale: -1 })).toThrow(/spec.inputScale/);
      expect(() => b.packQGemm({ ...spec(), inputScale: NaN })).toThrow(/spec.inputScale/);
      expect(() => b.packQGemm({ ...spec(), outputZeroPoint: 256 })).toThrow(/spec.outputZeroPoint/);
      expect(() => b.packQGemm({ ...spec(), weightScale: new Float32Array(2) })).toThrow(/spec.weightScale/);
      expect(() => b.packQGemm({ ...spec(), outMin: 10, outMax: 5 })).toThrow(/spec.outMax/);
      expect(() => b.packQGemm({ ...spec(), bias: new Float32Array([1, NaN, 2]) })).toThrow(/spec.bias\[1\]/);
    });
    test(`${name}: bad buffers name the argument`, () => {
      const p = b.packQGemm(spec());
      expect(() => b.qgemm(p, 2, new Uint8Array(7), new Uint8Array(6))).toThrow(/for a but/);
      expect(() => b.qgemm(p, 2, new Uint8Array(8), new Uint8Array(5))).toThrow(/for c but/);
      expect(() => b.qgemm(p, 2, new Int8Array(8) as unknown as Uint8Array, new Uint8Array(6))).toThrow(TypeError);
      expect(() => b.qgemm(p, -1, new Uint8Array(8), new Uint8Array(6))).toThrow(/for m but/);
      expect(() => b.qgemm(p, 1, new Uint8Array(8), new Uint8Array(6), 3)).toThrow(/for lda but/);
    });
  }
  test('packed weights of one backend are refused by the other', () => {
    const p = nativeBackend.packQGemm(spec());
    expect(() => getBackend('reference').qgemm(p, 1, new Uint8Array(4), new Uint8Array(3))).toThrow(/another backend/);
  });
});

describe('raw binding re-checks what memory safety depends on', () => {
  const { binding } = loadNative();
  const e = () => [new Int32Array(3), new Float32Array(3), new Float32Array(3)] as const;
  test('wrong types, lengths, unsupported isa and huge dims throw instead of crashing', () => {
    expect(() => binding.qgemmPack('avx512vnni' as never, 4, 3, new Int8Array(11), ...e(), 0, 0, 255)).toThrow(/weight must have/);
    expect(() => binding.qgemmPack('nope' as never, 4, 3, new Int8Array(12), ...e(), 0, 0, 255)).toThrow(/unknown isa/);
    expect(() => binding.qgemmPack('scalar', 4, 3, new Int8Array(12), ...e(), 0, 9, 1)).toThrow(/outMin/);
    expect(() => binding.qgemmPack('scalar', 2 ** 40, 3, new Int8Array(12), ...e(), 0, 0, 255)).toThrow(RangeError);
    expect(() => binding.qgemmPack('scalar', -1, 3, new Int8Array(12), ...e(), 0, 0, 255)).toThrow(RangeError);
    expect(() => (binding.qgemmPack as unknown as (...a: unknown[]) => unknown)('scalar', 4)).toThrow(TypeError);
    const p = binding.qgemmPack('scalar', 4, 3, new Int8Array(12), ...e(), 0, 0, 255);
    expect(() => binding.qgemm(p, 1e6, new Uint8Array(8), 4, new Uint8Array(6), 3)).toThrow(/a is too short/);
    expect(() => binding.qgemm(p, 2, new Uint8Array(8), 4, new Uint8Array(5), 3)).toThrow(/c is too short/);
    expect(() => binding.qgemm({} as never, 2, new Uint8Array(8), 4, new Uint8Array(6), 3)).toThrow(/handle/);
    expect(() => binding.qgemm(p, 2, new Uint8Array(8), 2, new Uint8Array(6), 3)).toThrow(/lda/);
  });
  test('qgemmPeak: a MAC rate per SIMD level; scalar, bad levels and bad durations are refused', () => {
    const simd = binding.supportedIsas().filter((i) => i !== 'scalar');
    for (const isa of simd) {
      const r = binding.qgemmPeak(isa, 1);
      expect(Number.isFinite(r) && r > 0).toBe(true);
    }
    expect(() => binding.qgemmPeak('scalar', 1)).toThrow(/'scalar' has no SIMD dot product/);
    expect(() => binding.qgemmPeak('sse' as never, 1)).toThrow(/unknown isa/);
    for (const isa of simd)
      for (const ms of [0, -1, NaN, Infinity, 60001]) expect(() => binding.qgemmPeak(isa, ms)).toThrow(/ms must be in \(0, 60000\]/);
  });
  test('subarray views are read at their offset', () => {
    const p = nativeBackend.packQGemm(spec());
    const big = new Uint8Array(100).fill(9);
    const out1 = new Uint8Array(3), out2 = new Uint8Array(3);
    nativeBackend.qgemm(p, 1, big.subarray(13, 17), out1);
    nativeBackend.qgemm(p, 1, new Uint8Array(4).fill(9), out2);
    expect(out1).toEqual(out2);
  });
});

// ---------------------------------------------------------------------------------------------
// Every exported function of the raw binding, called with wrong types, lengths, dims, detached,
// shared, misaligned and overlapping buffers: a JS exception (or, where the input is legitimate,
// the same result as the plain call), never a crash. test:sanitize runs this under ASan + UBSan.

const detached = <T extends ArrayBufferView>(make: (n: number) => T, n = 8): T => {
  const v = make(n);
  structuredClone(v.buffer, { transfer: [v.buffer as ArrayBuffer] });
  expect(v.byteLength).toBe(0);
  return v;
};

describe('every binding function: hostile arguments', () => {
  const b = loadNative().binding as unknown as Record<string, (...a: unknown[]) => unknown>;
  const raw = loadNative().binding;
  const e3 = () => [new Int32Array(3), new Float32Array(3).fill(0.5), new Float32Array(3).fill(0.01)] as const;
  const gemm = () => raw.qgemmPack('scalar', 4, 3, new Int8Array(12).fill(1), ...e3(), 0, 0, 255);
  const geo = () => new Int32Array([2, 2, 1, 1, 1, 1, 0, 0, 1, 1, 1]);
  const conv = () => raw.qconv2dPack('scalar', geo(), new Int8Array(4).fill(1), new Int32Array(2), new Float32Array(2), new Float32Array(2).fill(0.1), 0, 0, 0, 255);
  const f32geo = { inChannels: 2, outChannels: 2, kernelH: 1, kernelW: 1, strideH: 1, strideW: 1, padH: 0, padW: 0, dilationH: 1, dilationW: 1, groups: 1 };
  const fconv = () => raw.f32ConvPack('scalar', f32geo, new Float32Array(4).fill(1), null);
  const flin = () => raw.f32LinearPack('scalar', 2, 3, new Float32Array(6).fill(1), null);
  const planOps = (handle?: unknown, kind = 'gemm') => [
    { kind: 'quantize', in0: -1, out: 0, count: 4, scale: 0.1, zeroPoint: 3, nchwC: 0, nchwHW: 0 },
    ...(handle ? [{ kind, in0: 0, out: 1, rows: 1, h: 1, w: 2, handle }] : []),
    { kind: 'dequantize', in0: handle ? 1 : 0, out: -2, count: handle ? 3 : 4, scale: 0.1, zeroPoint: 3 },
  ];
  const plan = () => raw.planCreate(planOps(gemm()) as never, [4, 3], 4, 4, 3, 'scalar');

  // A valid call of every function (arguments built fresh each time, so mutations never leak).
  const valid: Record<string, () => unknown[]> = {
    planCreate: () => [planOps(gemm()), [4, 3], 4, 4, 3, 'scalar'],
    planRunSync: () => [plan(), new Float32Array(8), 2, new Float32Array(6), 1],
    planRun: () => [plan(), new Float32Array(8), 2, new Float32Array(6), 1],
    planProfile: () => [plan(), new Float32Array(4), 1, new Float32Array(3), 1, 2],
    planInfo: () => [plan()],
    planDispose: () => [plan()],
    qconv2dPack: () => ['scalar', geo(), new Int8Array(4), new Int32Array(2), new Float32Array(2), new Float32Array(2).fill(0.1), 0, 0, 0, 255],
    qconv2d: () => [conv(), new Uint8Array(2 * 3 * 3 * 2), 2, 3, 3, new Uint8Array(2 * 3 * 3 * 2)],
    quantize: () => [new Float32Array(5), new Uint8Array(5), 0.1, 3],
    dequantize: () => [new Uint8Array(5), new Float32Array(5), 0.1, 3],
    qadd: () => [new Uint8Array(5), new Uint8Array(5), new Uint8Array(5), 0.1, 1, 0.2, 2, 0.3, 3, false],
    qmeanHW: () => [new Uint8Array(2 * 4 * 3), 2, 4, 3, new Uint8Array(6), 0.1, 3],
    minmaxF32: () => [new Float32Array([1, -2, 3]), 0, 3],
    histcCountsF32: () => [new Float32Array([0.1, 0.5, 0.9]), 0, 1, 1, new Int32Array(4)],
    qadaptiveAvgPool: () => [new Uint8Array(2 * 4 * 3), 2, 4, 3, new Uint8Array(6), 0.1, 3, 0.2, 4],
    qmaxpool2d: () => [new Uint8Array(1 * 4 * 4 * 2), 1, 4, 4, 2, 2, 2, 0, new Uint8Array(1 * 2 * 2 * 2)],
    threadPoolSize: () => [],
    supportedIsas: () => [],
    qgemmPack: () => ['scalar', 4, 3, new Int8Array(12), ...e3(), 0, 0, 255],
    qgemmInfo: () => [gemm()],
    qgemm: () => [gemm(), 2, new Uint8Array(8), 4, new Uint8Array(6), 3],
    qgemmPeak: () => [raw.supportedIsas().filter((i) => i !== 'scalar').pop() ?? 'avx2', 1],
    f32ConvPack: () => ['scalar', { ...f32geo }, new Float32Array(4), null],
    f32Conv: () => [fconv(), new Float32Array(2 * 3 * 3 * 2), 2, 3, 3, new Float32Array(2 * 3 * 3 * 2), false],
    f32LinearPack: () => ['scalar', 2, 3, new Float32Array(6), null],
    f32Linear: () => [flin(), 2, new Float32Array(4), new Float32Array(6), true],
    f32Info: () => [fconv()],
    f32Binary: () => [new Float32Array(5), new Float32Array(5), new Float32Array(5), 1],
    f32ChannelAffine: () => [new Float32Array(2 * 3), 2, 3, new Float32Array(3), new Float32Array(3), new Float32Array(2 * 3)],
    f32Relu: () => [new Float32Array(5), new Float32Array(5), 6],
    f32MeanHW: () => [new Float32Array(2 * 4 * 3), 2, 4, 3, new Float32Array(6)],
    f32ToChannelsLast: () => [new Float32Array(2 * 3 * 4), 2, 3, 4, new Float32Array(2 * 3 * 4)],
    f32MaxPool2d: () => [new Float32Array(1 * 5 * 5 * 2), 1, 5, 5, 2, 3, 2, 1, 1, new Float32Array(1 * 3 * 3 * 2)],
    setNumThreads: () => [0],
    getNumThreads: () => [],
  };

  test('the table covers every exported function (a new export needs a boundary case)', () => {
    const fns = Object.keys(b).filter((k) => typeof b[k] === 'function').sort();
    expect(fns).toEqual(Object.keys(valid).sort());
  });

  // Calls fn; returns 'ok', or the exception, which must be an Error (TypeError/RangeError/Error).
  const attempt = async (name: string, args: unknown[]): Promise<'ok' | Error> => {
    try {
      const r = b[name](...args);
      if (r instanceof Promise) await r;
      return 'ok';
    } catch (err) {
      expect(err).toBeInstanceOf(Error);
      return err as Error;
    }
  };

  test.each(Object.keys(valid))('%s: the valid call works, and no arguments / wrong types throw', async (name) => {
    expect(await attempt(name, valid[name]())).toBe('ok');
    if (valid[name]().length === 0) return;
    for (const args of [[], [undefined, undefined], Array(12).fill('x'), Array(12).fill({}), Array(12).fill(null)]) {
      expect(await attempt(name, args)).toBeInstanceOf(Error);
    }
  });

  // Each argument in turn replaced by each hostile value: an Error or a normal return (a few
  // replacements are legitimate: null bias, a truthy relu flag, an omitted optional isa).
  const hostile = (): Array<[string, unknown]> => [
    ['undefined', undefined], ['null', null], ['string', '3'], ['object', { length: 4 }], ['array', [1, 2, 3, 4]],
    ['-1', -1], ['NaN', NaN], ['Infinity', Infinity], ['2^40', 2 ** 40], ['2^64', 2 ** 64], ['1.5', 1.5], ['-0', -0],
    ['bigint', 5n], ['detached f32', detached((n) => new Float32Array(n))], ['detached u8', detached((n) => new Uint8Array(n))],
    ['detached i8', detached((n) => new Int8Array(n))], ['detached i32', detached((n) => new Int32Array(n))],
    ['empty u8', new Uint8Array(0)], ['f64', new Float64Array(8)], ['u8 clamped', new Uint8ClampedArray(8)],
    ['DataView', new DataView(new ArrayBuffer(8))], ['plan handle', plan()], ['gemm handle', gemm()], ['conv handle', conv()],
    ['f32 handle', fconv()], ['plain External-like', Object.create(null)],
  ];
  test.each(Object.keys(valid).filter((k) => valid[k]().length > 0))('%s: every argument replaced by hostile values', async (name) => {
    const n = valid[name]().length;
    let threw = 0, calls = 0;
    for (let i = 0; i < n; i++) {
      for (const [, v] of hostile()) {
        const args = valid[name]();
        args[i] = v;
        const r = await attempt(name, args);
        calls++;
        if (r !== 'ok') threw++;
      }
    }
    // Nearly every replacement must be refused (the few legitimate ones are listed above).
    expect(threw).toBeGreaterThan(calls * 0.7);
  });

  test('handles of one kind are never accepted as another (type-tagged Externals)', () => {
    const g = gemm(), c = conv(), p = plan();
    expect(() => raw.planRunSync(g as never, new Float32Array(4), 1, new Float32Array(3), 1)).toThrow(/planCreate/);
    expect(() => raw.planInfo(c as never)).toThrow(/planCreate/);
    expect(() => raw.qgemm(p as never, 1, new Uint8Array(4), 4, new Uint8Array(3), 3)).toThrow(/qgemmPack/);
    expect(() => raw.qgemm(c as never, 1, new Uint8Array(4), 4, new Uint8Array(3), 3)).toThrow(/qgemmPack/);
    expect(() => raw.qgemmInfo(p as never)).toThrow(/qgemmPack/);
    expect(() => raw.qconv2d(g as never, new Uint8Array(4), 1, 1, 1, new Uint8Array(4))).toThrow(/qconv2dPack/);
    expect(() => raw.f32Info(g as never)).toThrow(/f32ConvPack/);
    expect(() => raw.planCreate(planOps(c, 'gemm') as never, [4, 3], 4, 4, 3, 'scalar')).toThrow(/gemm handle/);
    expect(() => raw.planCreate(planOps(g, 'conv') as never, [4, 3], 4, 4, 3, 'scalar')).toThrow(/conv handle/);
  });

  test('huge dims whose size_t product wraps around to a small number are refused', () => {
    const c = raw.qconv2dPack('scalar', new Int32Array([1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1]), new Int8Array(1), new Int32Array(1), new Float32Array(1), new Float32Array(1), 0, 0, 0, 255);
    // 2^24 * 2^20 * 2^20 = 2^64: wraps to 0 in size_t, which matched empty buffers before the fix.
    expect(() => raw.qconv2d(c, new Uint8Array(0), 2 ** 24, 2 ** 20, 2 ** 20, new Uint8Array(0))).toThrow(RangeError);
    expect(() => raw.qmaxpool2d(new Uint8Array(0), 2 ** 24, 2 ** 20, 2 ** 20, 1, 1, 1, 0, new Uint8Array(0))).toThrow(RangeError);
    expect(() => raw.qmeanHW(new Uint8Array(0), 2 ** 24, 2 ** 30, 2 ** 24, new Uint8Array(0), 1, 0)).toThrow(RangeError);
    // An arena far beyond memory is a RangeError, not an abort on a failed allocation.
    const ops = [{ kind: 'quantize', in0: -1, out: 0, count: 4, scale: 0.1, zeroPoint: 3, nchwC: 0, nchwHW: 0 },
      { kind: 'dequantize', in0: 0, out: -2, count: 4, scale: 0.1, zeroPoint: 3 }];
    expect(() => raw.planCreate(ops as never, [9e11], 65536, 4, 4, 'scalar')).toThrow(/arena/);
    expect(() => raw.planCreate(ops as never, [4], 4, 4, 4, 'scalar')).not.toThrow();
    expect(() => raw.planCreate([{ ...ops[0], out: NaN }, ops[1]] as never, [4], 4, 4, 4, 'scalar')).toThrow(/slot/);
    expect(() => raw.planCreate([{ ...ops[0], out: 2 ** 32 }, ops[1]] as never, [4], 4, 4, 4, 'scalar')).toThrow(/slot/);
  });

  test('a conv with a fused add: the add output may not alias the conv input; in place over the conv output is equal', () => {
    // conv geo(): 2 -> 2 channels, 1x1, on a 1x2 image: 4 bytes per slot.
    const base = (addOut: number, in1: number) => [
      { kind: 'quantize', in0: -1, out: 0, count: 4, scale: 0.1, zeroPoint: 3, nchwC: 0, nchwHW: 0 },
      { kind: 'conv', in0: 0, out: 1, h: 1, w: 2, handle: conv(), in1, addOut, convIsA: true, aScale: 0.1, aZeroPoint: 0,
        bScale: 0.1, bZeroPoint: 3, outScale: 0.2, outZeroPoint: 0, relu: true },
      { kind: 'dequantize', in0: addOut, out: -2, count: 4, scale: 0.2, zeroPoint: 0 },
    ];
    const make = (addOut: number, in1: number) => raw.planCreate(base(addOut, in1) as never, [4, 4, 4], 1, 4, 4, 'scalar');
    expect(() => make(0, 0)).toThrow(/slot apart/);  // add output over the conv input
    expect(() => make(2, 1)).toThrow(/other operand/);  // the other operand is the conv output itself
    // y = relu(conv(x) + x), in its own slot and in place over the conv output, equal to the three
    // ops run one by one.
    const x = new Float32Array([0.1, 0.2, 0.3, 0.4]), out = new Float32Array(4), inPlace = new Float32Array(4);
    raw.planRunSync(make(2, 0), x, 1, out, 1);
    raw.planRunSync(make(1, 0), x, 1, inPlace, 1);
    const q = new Uint8Array(4), c = new Uint8Array(4), a = new Uint8Array(4), want = new Float32Array(4);
    raw.quantize(x, q, 0.1, 3, 'scalar');
    raw.qconv2d(conv(), q, 1, 1, 2, c);
    raw.qadd(c, q, a, 0.1, 0, 0.1, 3, 0.2, 0, true, 'scalar');
    raw.dequantize(a, want, 0.2, 0, 'scalar');
    expect(Array.from(out)).toEqual(Array.from(want));
    expect(Array.from(inPlace)).toEqual(Array.from(want));
  });

  test('misaligned (odd-offset) views and SharedArrayBuffer views give the plain result', () => {
    const x = new Float32Array([0.1, -0.3, 2.5, 7, 0]);
    const want = new Uint8Array(5);
    raw.quantize(x, want, 0.1, 3);
    const odd = new Uint8Array(13).subarray(3, 8);
    raw.quantize(x, odd, 0.1, 3);
    expect(Array.from(odd)).toEqual(Array.from(want));
    const sx = new Float32Array(new SharedArrayBuffer(20)); sx.set(x);
    const sy = new Uint8Array(new SharedArrayBuffer(5));
    raw.quantize(sx, sy, 0.1, 3);
    expect(Array.from(sy)).toEqual(Array.from(want));
    const g = gemm();
    const a = new Uint8Array(8).map((_, i) => i * 7), c1 = new Uint8Array(6), c2 = new Uint8Array(11).subarray(5);
    raw.qgemm(g, 2, a, 4, c1, 3);
    const aOdd = new Uint8Array(9).subarray(1); aOdd.set(a);
    raw.qgemm(g, 2, aOdd, 4, c2, 3);
    expect(Array.from(c2)).toEqual(Array.from(c1));
  });

  test('overlapping inputs and outputs are refused; exact in-place qadd is allowed', () => {
    const buf = new ArrayBuffer(64);
    expect(() => raw.quantize(new Float32Array(buf, 0, 4), new Uint8Array(buf, 8, 4), 0.1, 3)).toThrow(/overlap/);
    expect(() => raw.dequantize(new Uint8Array(buf, 0, 4), new Float32Array(buf, 0, 4), 0.1, 3)).toThrow(/overlap/);
    const u = new Uint8Array(buf);
    expect(() => raw.qgemm(gemm(), 2, u.subarray(0, 8), 4, u.subarray(4, 10), 3)).toThrow(/overlap/);
    expect(() => raw.qadd(u.subarray(0, 5), u.subarray(10, 15), u.subarray(1, 6), 0.1, 1, 0.2, 2, 0.3, 3, false)).toThrow(/overlap/);
    expect(() => raw.qmaxpool2d(u.subarray(0, 32), 1, 4, 4, 2, 2, 2, 0, u.subarray(24, 32))).toThrow(/overlap/);
    expect(() => raw.qconv2d(conv(), u.subarray(0, 36), 2, 3, 3, u.subarray(20, 56))).toThrow(/overlap/);
    const fb = new Float32Array(20);
    expect(() => raw.planRunSync(plan(), fb.subarray(0, 4), 1, fb.subarray(2, 5), 1)).toThrow(/overlap/);
    const a = new Uint8Array([1, 50, 100, 200, 255]), bb = new Uint8Array([3, 3, 90, 10, 0]);
    const y = new Uint8Array(5);
    raw.qadd(a, bb, y, 0.1, 1, 0.2, 2, 0.3, 3, false);
    const inPlace = a.slice();
    raw.qadd(inPlace, bb, inPlace, 0.1, 1, 0.2, 2, 0.3, 3, false);
    expect(Array.from(inPlace)).toEqual(Array.from(y));
  });

  test('planRun works on its own copies: detaching the caller\'s buffers mid-run never crashes', async () => {
    const p = plan();
    const x = new Float32Array([0.1, 0.2, 0.3, 0.4, 1, 2, 3, 4]);
    const want = new Float32Array(6);
    raw.planRunSync(p, x, 2, want, 1);
    // Input detached right after the call: the run used the copy taken at the call.
    const x2 = x.slice(), y2 = new Float32Array(6);
    const r2 = raw.planRun(p, x2, 2, y2, 1);
    structuredClone(x2.buffer, { transfer: [x2.buffer] });
    await r2;
    expect(Array.from(y2)).toEqual(Array.from(want));
    // Output detached mid-run: a clean rejection.
    const y3 = new Float32Array(6);
    const r3 = raw.planRun(p, x.slice(), 2, y3, 1);
    structuredClone(y3.buffer, { transfer: [y3.buffer] });
    await expect(r3).rejects.toThrow(/detached/);
    // Shared buffers are accepted (the worker copies them at the call).
    const sx = new Float32Array(new SharedArrayBuffer(32)); sx.set(x);
    const sy = new Float32Array(new SharedArrayBuffer(24));
    await raw.planRun(p, sx, 2, sy, 1);
    expect(Array.from(sy)).toEqual(Array.from(want));
  });

  test('planDispose: later calls throw, runs queued before it settle cleanly, and it is idempotent', async () => {
    const p = plan();
    const x = new Float32Array(8).fill(0.5);
    const runs = Array.from({ length: 50 }, () => raw.planRun(p, x, 2, new Float32Array(6), 1).then(() => 'ok', (e: Error) => e.message));
    raw.planDispose(p);
    raw.planDispose(p);
    const settled = await Promise.all(runs);
    for (const s of settled) expect(['ok', 'the plan has been disposed']).toContain(s);
    expect(() => raw.planRunSync(p, x, 2, new Float32Array(6), 1)).toThrow(/disposed/);
    expect(() => raw.planInfo(p)).toThrow(/disposed/);
    expect(() => raw.planProfile(p, x.subarray(0, 4), 1, new Float32Array(3), 1, 1)).toThrow(/disposed/);
    expect(() => raw.planRun(p, x, 2, new Float32Array(6), 1)).toThrow(/disposed/);
  });
});
