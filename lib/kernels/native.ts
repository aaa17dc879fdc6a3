// Loads the native addon (node-gyp-build order) and wraps it behind the Backend interface.
// The ISA level is chosen once, here, at load: the best the CPU has, or a lower one forced with
// PTQ_ISA=scalar|avx2|avxvnni|avx512vnni (so every kernel can be tested on one machine).
import * as fs from 'fs';
import * as path from 'path';
import type { Binding, IsaName, QGemmPacked } from '../../binding';
import { PtqError } from '../errors';
import { Backend, PackedQGemm, validateQGemmCall, validateQGemmSpec } from './backend';
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
      'Fix: build it from source with `npm run build:native` (needs cmake >= 3.15 and a C++17 compiler), ' +
      'or install the published package on linux-x64 (glibc), which ships a prebuilt binary. ' +
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
    loaded = { binding, binaryPath, isa: chooseIsa(supported), supported };
    return loaded;
  } catch (e) {
    loadError = e as Error;
    throw e;
  }
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

/** The native backend; kernels run at the ISA chosen at load unless a call asks for a lower one. */
export const nativeBackend: Backend = {
  name: 'native',
  packQGemm(spec: QGemmSpec, options?: { isa?: IsaName }): PackedQGemm {
    const addon = loadNative();
    validateQGemmSpec(spec);
    const isa = options?.isa ?? addon.isa;
    if (!addon.supported.includes(isa))
      throw new RangeError(`Expected one of ${addon.supported.join(', ')} for options.isa but received '${isa}'`);
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
};
