// Loading, ISA choice and the native boundary: bad arguments are JS exceptions, never crashes.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { getBackend, loadNative, nativeBackend, QGemmSpec } from '../lib/kernels';
import { chooseIsa } from '../lib/kernels/native';

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
  test('subarray views are read at their offset', () => {
    const p = nativeBackend.packQGemm(spec());
    const big = new Uint8Array(100).fill(9);
    const out1 = new Uint8Array(3), out2 = new Uint8Array(3);
    nativeBackend.qgemm(p, 1, big.subarray(13, 17), out1);
    nativeBackend.qgemm(p, 1, new Uint8Array(4).fill(9), out2);
    expect(out1).toEqual(out2);
  });
});
