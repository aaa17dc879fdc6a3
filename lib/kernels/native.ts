// Loads the native addon (node-gyp-build order) and wraps it behind the Backend interface.
// The ISA level is chosen once, here, at load: the best the CPU has, or a lower one forced with
// PTQ_ISA=scalar|avx2|avxvnni|avx512vnni (so every kernel can be tested on one machine).
import * as fs from 'fs';
import * as path from 'path';
import type { Binding, IsaName, QConv2dPacked, QGemmPacked } from '../../binding';
import { checkInt, PtqError } from '../errors';
import {
  Backend, PackedQConv2d, PackedQGemm, QAddParams, QConv2dSpec, validateQAddCall, validateQConv2dCall, validateQConv2dSpec,
  validateQGemmCall, validateQGemmSpec, validateQuantizeCall,
} from './backend';
import type { Conv2dGeometry } from './float';
import { qconvEpilogue } from './reference';
import { QGemmSpec, qgemmEpilogue } from './requant';

/** ISA levels, ascending. */
export const ISA_LEVELS: readonly IsaName[] = ['scalar', 'avx2', 'avxvnni', 'avx512vnni'];

/** The loaded addon and what was chosen at load. */
export interface NativeAddon {
  readonly binding: Binding;
  /** Absolute path of the loaded .node file. */
  readonly binaryPath: string;
  /** The ISA level kernels use unless told otherwise. */
  readonly isa: IsaName;
  /** Levels this CPU supports, ascending. */
  readonly supported: readonly IsaName[];
}

/** The package root (lib/kernels and dist/kernels are both two levels below it). */
export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..');

let loaded: NativeAddon | undefined;
let loadError: Error | undefined;

/** Finds the addon file the way node-gyp-build does, and says what was tried when none is found. */
function resolveBinary(): string {
  const tried: string[] = [];
  const env = process.env.PTQ_NODE_PREBUILD;
  if (env) {
    if (fs.existsSync(env)) return path.resolve(env);
    tried.push(`PTQ_NODE_PREBUILD=${env} (missing)`);
  }
  for (const dir of ['build/Release', 'build/Debug']) {
    const d = path.join(PACKAGE_ROOT, dir);
    const f = path.join(d, 'ptq_node.node');
    if (fs.existsSync(f)) return f;
    tried.push(`${f} (missing)`);
  }
  const pdir = path.join(PACKAGE_ROOT, 'prebuilds', `${process.platform}-${process.arch}`);
  const candidates = fs.existsSync(pdir) ? fs.readdirSync(pdir).filter((f) => f.endsWith('.node')) : [];
  const napi = candidates.find((f) => f.includes('napi')) ?? candidates[0];
  if (napi) return path.join(pdir, napi);
  tried.push(`${pdir}/*.node (${fs.existsSync(pdir) ? 'no .node file' : 'missing'})`);
  throw new PtqError(
    `ptq-node: no native binary for ${process.platform}-${process.arch} (node ${process.version}).\n` +
      `Tried:\n  ${tried.join('\n  ')}\n` +
      'Fix: build it from source (needs cmake >= 3.15 and a C++17 compiler): `npm rebuild ptq-node` in a project that ' +
      'installed it, `npm run build:native` in a checkout; or use linux-x64 with glibc, for which the package ships a prebuilt binary. ' +
      "The pure-TS reference backend still works: pass { backend: 'reference' }.",
    'ERR_NATIVE_NOT_FOUND',
  );
}

/** Picks the ISA level: PTQ_ISA if set (never above what the CPU has), else the best supported. */
export function chooseIsa(supported: readonly IsaName[], requested = process.env.PTQ_ISA): IsaName {
  if (requested === undefined || requested === '') return supported[supported.length - 1];
  if (!(ISA_LEVELS as readonly string[]).includes(requested))
    throw new PtqError(`PTQ_ISA='${requested}' is not an ISA level; expected one of ${ISA_LEVELS.join(', ')}`, 'ERR_ISA');
  if (!supported.includes(requested as IsaName))
    throw new PtqError(
      `PTQ_ISA=${requested} asks for an ISA this CPU does not have (it supports ${supported.join(', ')}); ` +
        'PTQ_ISA can only force a lower level',
      'ERR_ISA',
    );
  return requested as IsaName;
}

/**
 * Checks PTQ_WORKER_NICE (read by the addon when its thread pool starts: how many nice levels
 * below the process its workers run, default 5, Linux only): an integer 0-19 when set.
 */
export function checkWorkerNice(value = process.env.PTQ_WORKER_NICE): void {
  if (value === undefined || value === '') return;
  if (!/^\d+$/.test(value) || Number(value) > 19)
    throw new PtqError(`PTQ_WORKER_NICE='${value}' is not an integer from 0 to 19 (nice levels below the process for the pool's workers; 0 turns it off)`, 'ERR_WORKER_NICE');
}

/** Loads the addon once; throws a PtqError that says what was tried and how to fix it. */
export function loadNative(): NativeAddon {
  if (loaded) return loaded;
  if (loadError) throw loadError;
  try {
    const binaryPath = resolveBinary();
    let binding: Binding;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      binding = require(binaryPath) as Binding;
    } catch (e) {
      throw new PtqError(
        `ptq-node: found ${binaryPath} but could not load it: ${(e as Error).message}\n` +
          'Fix: rebuild it for this machine with `npm run rebuild:native` (cmake + C++17 compiler).',
        'ERR_NATIVE_LOAD',
      );
    }
    const supported = binding.supportedIsas();
    checkWorkerNice();
    loaded = { binding, binaryPath, isa: chooseIsa(supported), supported };
    return loaded;
  } catch (e) {
    loadError = e as Error;
    throw e;
  }
}

/** Changes the ISA level used for packing from now on (only to a level this CPU supports). */
export function setIsa(isa: IsaName): void {
  const addon = loadNative();
  loaded = { ...addon, isa: chooseIsa(addon.supported, isa) };
}

/**
 * Sets how many threads the eager (module-by-module) float ops use, like torch.set_num_threads;
 * 0 = all cores. Compiled models take their own `threads` option.
 */
export function setNumThreads(threads: number): void {
  if (!Number.isInteger(threads) || threads < 0 || threads > 65536)
    throw new RangeError(`Expected an integer in [0, 65536] for threads but received ${String(threads)}`);
  loadNative().binding.setNumThreads(threads);
}

/** The number of threads the eager float ops use (1 without the native addon). */
export function getNumThreads(): number {
  return nativeAvailable() ? loadNative().binding.getNumThreads() : 1;
}

/** True when the native addon can be loaded here. */
export function nativeAvailable(): boolean {
  try {
    loadNative();
    return true;
  } catch {
    return false;
  }
}

class NativePackedQGemm implements PackedQGemm {
  constructor(readonly k: number, readonly n: number, readonly isa: IsaName, readonly handle: QGemmPacked) {}
}

class NativePackedQConv2d implements PackedQConv2d {
  constructor(readonly geometry: Conv2dGeometry, readonly inputZeroPoint: number, readonly isa: IsaName, readonly handle: QConv2dPacked) {}
}

function pickIsa(addon: NativeAddon, isa: IsaName | undefined): IsaName {
  const chosen = isa ?? addon.isa;
  if (!addon.supported.includes(chosen))
    throw new RangeError(`Expected one of ${addon.supported.join(', ')} for options.isa but received '${chosen}'`);
  return chosen;
}

/** The native handle behind packed weights of the native backend (for plans). */
export function nativeHandleOf(p: PackedQConv2d | PackedQGemm): QConv2dPacked | QGemmPacked {
  if (p instanceof NativePackedQConv2d || p instanceof NativePackedQGemm) return p.handle;
  throw new TypeError('packed weights come from another backend');
}

/** The native backend; kernels run at the ISA chosen at load unless a call asks for a lower one. */
export const nativeBackend: Backend = {
  name: 'native',
  get isa(): IsaName {
    return loadNative().isa;
  },
  packQGemm(spec: QGemmSpec, options?: { isa?: IsaName }): PackedQGemm {
    const addon = loadNative();
    validateQGemmSpec(spec);
    const isa = pickIsa(addon, options?.isa);
    const e = qgemmEpilogue(spec);
    const handle = addon.binding.qgemmPack(isa, spec.k, spec.n, spec.weight, e.accInit, e.bias, e.multiplier,
      e.outZeroPoint, e.outMin, e.outMax);
    return new NativePackedQGemm(spec.k, spec.n, isa, handle);
  },
  qgemm(p: PackedQGemm, m: number, a: Uint8Array, c: Uint8Array, lda?: number, ldc?: number): void {
    if (!(p instanceof NativePackedQGemm)) throw new TypeError('packed weights come from another backend');
    const [la, lc] = validateQGemmCall(p, m, a, c, lda, ldc);
    loadNative().binding.qgemm(p.handle, m, a, la, c, lc);
  },
  packQConv2d(spec: QConv2dSpec, options?: { isa?: IsaName }): PackedQConv2d {
    const addon = loadNative();
    validateQConv2dSpec(spec);
    const isa = pickIsa(addon, options?.isa);
    const g = spec.geometry;
    const e = qconvEpilogue(spec);
    const geo = Int32Array.from([g.inChannels, g.outChannels, g.kernelH, g.kernelW, g.strideH, g.strideW, g.padH, g.padW,
      g.dilationH, g.dilationW, g.groups]);
    const handle = addon.binding.qconv2dPack(isa, geo, spec.weight, e.accInit, e.bias, e.multiplier,
      spec.inputZeroPoint, e.outZeroPoint, e.outMin, e.outMax);
    return new NativePackedQConv2d({ ...g }, spec.inputZeroPoint, isa, handle);
  },
  qconv2d(p: PackedQConv2d, x: Uint8Array, n: number, h: number, w: number, y: Uint8Array): void {
    if (!(p instanceof NativePackedQConv2d)) throw new TypeError('packed weights come from another backend');
    validateQConv2dCall(p, x, n, h, w, y);
    loadNative().binding.qconv2d(p.handle, x, n, h, w, y);
  },
  quantize(x: Float32Array, y: Uint8Array, scale: number, zeroPoint: number): void {
    if (!(x instanceof Float32Array)) throw new TypeError('Expected a Float32Array for x');
    if (!(y instanceof Uint8Array)) throw new TypeError('Expected a Uint8Array for y');
    validateQuantizeCall(x, y, scale, zeroPoint);
    loadNative().binding.quantize(x, y, scale, zeroPoint, loadNative().isa);
  },
  dequantize(x: Uint8Array, y: Float32Array, scale: number, zeroPoint: number): void {
    if (!(x instanceof Uint8Array)) throw new TypeError('Expected a Uint8Array for x');
    if (!(y instanceof Float32Array)) throw new TypeError('Expected a Float32Array for y');
    validateQuantizeCall(x, y, scale, zeroPoint);
    loadNative().binding.dequantize(x, y, scale, zeroPoint, loadNative().isa);
  },
  qadd(a: Uint8Array, b: Uint8Array, y: Uint8Array, p: QAddParams): void {
    validateQAddCall(a, b, y, p);
    loadNative().binding.qadd(a, b, y, p.aScale, p.aZeroPoint, p.bScale, p.bZeroPoint, p.outScale, p.outZeroPoint, p.relu, loadNative().isa);
  },
  qmeanHW(x: Uint8Array, n: number, hw: number, c: number, y: Uint8Array, scale: number, zeroPoint: number): void {
    checkInt('hw', hw, 1);
    if (x.length !== n * hw * c || y.length !== n * c) throw new RangeError(`Expected x of n*hw*c = ${n * hw * c} and y of n*c = ${n * c} elements`);
    loadNative().binding.qmeanHW(x, n, hw, c, y, scale, zeroPoint);
  },
  qadaptiveAvgPool(x: Uint8Array, n: number, hw: number, c: number, y: Uint8Array, inScale: number, inZeroPoint: number, outScale: number, outZeroPoint: number): void {
    checkInt('hw', hw, 1);
    if (x.length !== n * hw * c || y.length !== n * c) throw new RangeError(`Expected x of n*hw*c = ${n * hw * c} and y of n*c = ${n * c} elements`);
    loadNative().binding.qadaptiveAvgPool(x, n, hw, c, y, inScale, inZeroPoint, outScale, outZeroPoint);
  },
  qmaxpool2d(x: Uint8Array, n: number, h: number, w: number, c: number, k: number, stride: number, pad: number, y: Uint8Array): void {
    loadNative().binding.qmaxpool2d(x, n, h, w, c, k, stride, pad, y);
  },
};
