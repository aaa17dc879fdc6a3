// PyTorch 1.13 quantization observers (torch/ao/quantization/observer.py), reproduced bit-exactly.
//
// Callers pass raw float32 data plus its logical shape in PyTorch order. Every float32 tensor step of
// the Python code is mirrored with Math.fround, python-float (float64) steps stay in doubles, and the
// aten kernels whose evaluation order shows in the result (histc, the cascade float32 sum, the
// double-accumulating cumsum, floor division) are replicated from their 1.13 CPU sources and checked
// against the real torch by test/fixtures/observers.json.

import { getStatsKernels } from '../kernels/stats';
import {
  calculateQminQmax,
  calculateQParams,
  FLOAT32_EPS,
  isPerChannel,
  isPerTensor,
  QDtype,
  QParams,
  QScheme,
  roundHalfEven,
  warnUnobservedOnce,
} from './qparams';

export type { QDtype, QParams, QScheme } from './qparams';

// ---------------------------------------------------------------------------------------------
// Python / torch printing helpers
// ---------------------------------------------------------------------------------------------

/** Python `repr(float)`: shortest round-trip digits, exponent form below 1e-4 and from 1e16. */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  // toExponential() without digits gives the shortest round-trip digit string, as Python's repr.
  const [mant, expStr] = Math.abs(x).toExponential().split('e');
  const digits = mant.replace('.', '');
  const e = Number(expStr);
  const decpt = e + 1;
  if (decpt > 16 || decpt <= -4) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const ae = Math.abs(e);
    return `${sign}${m}e${e < 0 ? '-' : '+'}${ae < 10 ? '0' : ''}${ae}`;
  }
  if (decpt <= 0) return `${sign}0.${'0'.repeat(-decpt)}${digits}`;
  if (decpt >= digits.length) return `${sign}${digits}${'0'.repeat(decpt - digits.length)}.0`;
  return `${sign}${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
}

/** Exact rational form num/den of a finite non-negative double (den a power of two). */
function exactRational(a: number): [bigint, bigint] {
  const dv = new DataView(new ArrayBuffer(8));
  dv.setFloat64(0, a);
  const hi = dv.getUint32(0);
  const lo = dv.getUint32(4);
  const bexp = (hi >>> 20) & 0x7ff;
  let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let e: number;
  if (bexp === 0) e = -1074;
  else {
    mant |= 1n << 52n;
    e = bexp - 1075;
  }
  return e >= 0 ? [mant << BigInt(e), 1n] : [mant, 1n << BigInt(-e)];
}

/** num/den rounded to an integer, ties to even (Python's float formatting rounds the exact value this way). */
function divRoundHalfEven(num: bigint, den: bigint): bigint {
  const q = num / den;
  const r2 = 2n * (num % den);
  if (r2 > den || (r2 === den && q % 2n === 1n)) return q + 1n;
  return q;
}

/** Python `'{:.Nf}'.format(x)` (exact, ties to even; JS toFixed rounds ties away from zero). */
export function pyFormatFixed(x: number, digits: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  const sign = x < 0 || Object.is(x, -0) ? '-' : '';
  const [num, den] = exactRational(Math.abs(x));
  const q = divRoundHalfEven(num * 10n ** BigInt(digits), den).toString().padStart(digits + 1, '0');
  if (digits === 0) return sign + q;
  return `${sign}${q.slice(0, q.length - digits)}.${q.slice(q.length - digits)}`;
}

/** Python `'{:.Ne}'.format(x)` (exact, ties to even, at least two exponent digits). */
export function pyFormatExp(x: number, digits: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  const sign = x < 0 || Object.is(x, -0) ? '-' : '';
  const a = Math.abs(x);
  let mant: string;
  let e = 0;
  if (a === 0) mant = '0'.repeat(digits + 1);
  else {
    const [num, den] = exactRational(a);
    e = Math.floor(Math.log10(a));
    // fix the estimate so that 10^e <= a < 10^(e+1), exactly
    const pow = (k: number): [bigint, bigint] => (k >= 0 ? [10n ** BigInt(k), 1n] : [1n, 10n ** BigInt(-k)]);
    for (;;) {
      const [pn, pd] = pow(e);
      if (num * pd < pn * den) e--;
      else {
        const [qn, qd] = pow(e + 1);
        if (num * qd >= qn * den) e++;
        else break;
      }
    }
    const shift = digits - e; // a * 10^shift rounded has digits+1 digits
    const [sn, sd] = shift >= 0 ? [num * 10n ** BigInt(shift), den] : [num, den * 10n ** BigInt(-shift)];
    let q = divRoundHalfEven(sn, sd);
    if (q === 10n ** BigInt(digits + 1)) {
      q /= 10n;
      e++;
    }
    mant = q.toString();
  }
  const m = digits > 0 ? `${mant[0]}.${mant.slice(1)}` : mant;
  const ae = Math.abs(e);
  return `${sign}${m}e${e < 0 ? '-' : '+'}${ae < 10 ? '0' : ''}${ae}`;
}

/** torch's repr of a 1-D float32 tensor with default print options, e.g. `tensor([-1.2085,  0.4297])`. */
export function torchTensorRepr(values: ArrayLike<number>): string {
  const PRECISION = 4;
  const THRESHOLD = 1000;
  const EDGE = 3;
  const LINEWIDTH = 80;
  const indent = 'tensor('.length;
  const n = values.length;
  if (n === 0) return 'tensor([])';
  const summarize = n > THRESHOLD && n > 2 * EDGE;
  const all = Array.from(values);
  const shown = summarize ? [...all.slice(0, EDGE), ...all.slice(n - EDGE)] : all;
  // _Formatter: decide int/sci/fixed mode and the common width from the (summarized) values
  let intMode = true;
  let sciMode = false;
  let maxWidth = 1;
  const nz = shown.filter((v) => Number.isFinite(v) && v !== 0);
  if (nz.length > 0) {
    let amin = Infinity;
    let amax = 0;
    for (const v of nz) {
      const a = Math.abs(v);
      if (a < amin) amin = a;
      if (a > amax) amax = a;
      if (v !== Math.ceil(v)) intMode = false;
    }
    if (intMode) {
      if (amax / amin > 1000 || amax > 1e8) {
        sciMode = true;
        for (const v of nz) maxWidth = Math.max(maxWidth, pyFormatExp(v, PRECISION).length);
      } else {
        for (const v of nz) maxWidth = Math.max(maxWidth, pyFormatFixed(v, 0).length + 1);
      }
    } else if (amax / amin > 1000 || amax > 1e8 || amin < 1e-4) {
      sciMode = true;
      for (const v of nz) maxWidth = Math.max(maxWidth, pyFormatExp(v, PRECISION).length);
    } else {
      for (const v of nz) maxWidth = Math.max(maxWidth, pyFormatFixed(v, PRECISION).length);
    }
  }
  const fmt = (v: number): string => {
    let s: string;
    if (sciMode) s = pyFormatExp(v, PRECISION);
    else if (intMode) s = pyFormatFixed(v, 0) + (Number.isFinite(v) ? '.' : '');
    else s = pyFormatFixed(v, PRECISION);
    return ' '.repeat(Math.max(0, maxWidth - s.length)) + s;
  };
  const data = summarize
    ? [...all.slice(0, EDGE).map(fmt), ' ...', ...all.slice(n - EDGE).map(fmt)]
    : all.map(fmt);
  const perLine = Math.max(1, Math.floor((LINEWIDTH - indent) / (maxWidth + 2)));
  const lines: string[] = [];
  for (let i = 0; i < data.length; i += perLine) lines.push(data.slice(i, i + perLine).join(', '));
  return `tensor([${lines.join(',\n' + ' '.repeat(indent + 1))}])`;
}

/** nn.Module.__repr__ for a leaf module: one line, or the extra_repr lines indented by two spaces. */
function moduleRepr(name: string, extra: string): string {
  const lines = extra.split('\n');
  if (extra === '') return `${name}()`;
  if (lines.length === 1) return `${name}(${extra})`;
  return `${name}(\n  ${lines.join('\n  ')}\n)`;
}

// ---------------------------------------------------------------------------------------------
// aten kernels whose float32 evaluation order matters
// ---------------------------------------------------------------------------------------------

/** utils::CeilLog2 as used by the cascade sum. */
function ceilLog2(x: number): number {
  if (x <= 2) return 1;
  return Math.floor(Math.log2(x - 1)) + 1;
}

const SUM_ACC = new Float32Array(4 * 4 * 8);
const SUM_LANE = new Float32Array(8);

/**
 * torch.sum of a contiguous float32 vector on the AVX2 CPU kernel (aten cascade_sum: 8-lane vectors,
 * 4-way ILP, multi-level chunked accumulation). Exact for the single-chunk case (< 32768 elements, or
 * one thread), which covers the histogram and norm sums; returns the float32 result as a number.
 */
export function torchSumF32(a: Float32Array): number {
  const f = Math.fround;
  const n = a.length;
  const V = 8;
  if (n < V) {
    // scalar row_sum: 4 partial sums over a (-1, 4) view, tail into partial 0
    const ps = [0, 0, 0, 0];
    const sizeIlp = Math.floor(n / 4);
    for (let i = 0; i < sizeIlp; i++) for (let k = 0; k < 4; k++) ps[k] = f(ps[k] + a[i * 4 + k]);
    for (let i = sizeIlp * 4; i < n; i++) ps[0] = f(ps[0] + a[i]);
    return f(f(f(ps[0] + ps[1]) + ps[2]) + ps[3]);
  }
  const vs = Math.floor(n / V);
  const sizeIlp = Math.floor(vs / 4);
  // multi_row_sum over rows of 4 vectors: acc[level][row][lane]
  const acc = SUM_ACC;
  acc.fill(0);
  const levelPower = Math.max(4, Math.floor(ceilLog2(sizeIlp) / 4));
  const levelStep = 1 << levelPower;
  const levelMask = levelStep - 1;
  const addRow = (i: number): void => {
    for (let k = 0; k < 4; k++) {
      const base = (i * 4 + k) * V;
      const o = k * V;
      for (let l = 0; l < V; l++) acc[o + l] = acc[o + l] + a[base + l];
    }
  };
  let i = 0;
  while (i + levelStep <= sizeIlp) {
    for (let j = 0; j < levelStep; j++, i++) addRow(i);
    for (let j = 1; j < 4; j++) {
      const dst = j * 32;
      const src = (j - 1) * 32;
      for (let t = 0; t < 32; t++) {
        acc[dst + t] = acc[dst + t] + acc[src + t];
        acc[src + t] = 0;
      }
      if ((i & (levelMask << (j * levelPower))) !== 0) break;
    }
  }
  for (; i < sizeIlp; i++) addRow(i);
  for (let j = 1; j < 4; j++) for (let t = 0; t < 32; t++) acc[t] = acc[t] + acc[j * 32 + t];
  // row_sum tail: leftover vectors go into partial 0, then partials 1..3 are folded in
  const p0 = SUM_LANE;
  for (let l = 0; l < V; l++) p0[l] = acc[l];
  for (let v = sizeIlp * 4; v < vs; v++) for (let l = 0; l < V; l++) p0[l] = p0[l] + a[v * V + l];
  for (let k = 1; k < 4; k++) for (let l = 0; l < V; l++) p0[l] = p0[l] + acc[k * V + l];
  // vectorized_inner_sum: scalar tail first, then the 8 lanes in order
  let fin = 0;
  for (let k = vs * V; k < n; k++) fin = f(fin + a[k]);
  for (let l = 0; l < V; l++) fin = f(fin + p0[l]);
  return fin;
}

/** torch.cumsum of float32 (CPU accumulates in double, stores float32). */
function cumsumF32(a: Float32Array): Float32Array {
  const out = new Float32Array(a.length);
  let acc = 0;
  for (let i = 0; i < a.length; i++) {
    acc += a[i];
    out[i] = acc;
  }
  return out;
}

/** The float32 rightmost edge torch.linspace(lo, hi, bins + 1) produces (its vector path at steps % 16 == 0). */
function linspaceRightEdge(lo: number, hi: number, bins: number): number {
  const f = Math.fround;
  const end = f(hi);
  if ((bins + 1) % 16 !== 0) return end; // the last element comes from the scalar path: exactly `end`
  const step = f(f(end - f(lo)) / bins);
  // vector lane 7 of arange(end - step*7, step); the base is contracted to an FMA by the compiler
  const base = f(end - step * 7);
  return f(base + f(7 * step));
}

// Scratch count tables of torchHistc (grown on demand, reused across calls).
let histA = new Int32Array(2048);
let histB = new Int32Array(2048);

/**
 * torch.histc(x, bins, min=lo, max=hi) into `out` (aten histogramdd LINEAR_INTERPOLATION, float32):
 * lo == hi falls back to the data's min/max (`xmin`, `xmax`), then to +-1; elements outside
 * [lo, hi] and NaNs are dropped; pos = trunc((x - lo) * bins / (hi - lo)) in float32, max -> last bin.
 */
export function torchHistc(
  out: Float32Array,
  x: Float32Array,
  lo: number,
  hi: number,
  xmin: number,
  xmax: number,
): void {
  const bins = out.length;
  let left = lo;
  let right = hi;
  if (left === right && x.length > 0) {
    left = xmin;
    right = xmax;
  }
  if (left === right) {
    left -= 1;
    right += 1;
  }
  if (!Number.isFinite(left) || !Number.isFinite(right)) {
    throw new Error(`torch.histc: range of [${pyFloatRepr(left)}, ${pyFloatRepr(right)}] is not finite`);
  }
  if (!(left < right)) throw new Error('torch.histc: max must be larger than min');
  const f = Math.fround;
  const L = f(left);
  const R = linspaceRightEdge(left, right, bins);
  const W = f(R - L);
  const last = bins - 1;
  // Integer counts in two interleaved tables (breaks the store->load chain when many values share
  // a bin, e.g. the zeros of a ReLU output); merged below.
  if (histA.length < bins) {
    histA = new Int32Array(bins);
    histB = new Int32Array(bins);
  }
  const ca = histA;
  const cb = histB;
  ca.fill(0, 0, bins);
  cb.fill(0, 0, bins);
  const n = x.length;
  let i = 0;
  const k = n > 1024 ? getStatsKernels() : null;
  if (k) {
    k.histcCounts(x, L, R, W, ca.subarray(0, bins));
    i = n;
  } else if ((bins & (bins - 1)) === 0 && Number.isFinite(f(W * bins))) {
    // Fast path, same result: for a power-of-two bin count f(d * bins) is exact, and trunc(f(q)) can
    // only differ from trunc(q) when q lies within a relative 2^-24 below the next integer, where the
    // float32 rounding is done explicitly. (Division of float32 values in double then rounding is
    // the float32 division: double rounding is innocuous for / .)
    const near = 1 - 2 ** -24;
    for (; i + 1 < n; i += 2) {
      const v = x[i];
      const w = x[i + 1];
      if (v >= L && v <= R) {
        const q = (f(v - L) * bins) / W;
        let p = q | 0;
        if (q - p >= near * (p + 1) - p) p = f(q) | 0;
        ca[p > last ? last : p]++;
      }
      if (w >= L && w <= R) {
        const q = (f(w - L) * bins) / W;
        let p = q | 0;
        if (q - p >= near * (p + 1) - p) p = f(q) | 0;
        cb[p > last ? last : p]++;
      }
    }
  } else {
    for (; i + 1 < n; i += 2) {
      const v = x[i];
      const w = x[i + 1];
      // float32: ((v - L) * bins) / (R - L), truncated (non-negative, so |0 truncates); NaN fails the test
      if (v >= L && v <= R) {
        const p = f(f(f(v - L) * bins) / W) | 0;
        ca[p > last ? last : p]++;
      }
      if (w >= L && w <= R) {
        const p = f(f(f(w - L) * bins) / W) | 0;
        cb[p > last ? last : p]++;
      }
    }
  }
  if (i < n) {
    const v = x[i];
    if (v >= L && v <= R) {
      const p = f(f(f(v - L) * bins) / W) | 0;
      ca[p > last ? last : p]++;
    }
  }
  // torch counts in float32 (+= 1 per element, one thread): a bin saturates at 2**24.
  for (let b = 0; b < bins; b++) {
    const c = ca[b] + cb[b];
    out[b] = c < 16777216 ? c : 16777216;
  }
}


/** std::fmod-based floor division of torch.div(a, b, rounding_mode='floor') for float32 operands. */
function divFloorF32(a: number, b: number): number {
  const f = Math.fround;
  if (b === 0) return f(a / b);
  const mod = a % b; // JS % is an exact fmod, so this is already a float32 value
  let div = f(f(a - mod) / b);
  if (mod !== 0 && b < 0 !== mod < 0) div = f(div - 1);
  if (div === 0) return a / b < 0 || Object.is(a / b, -0) ? -0 : 0;
  let fl = Math.floor(div);
  if (f(div - fl) > 0.5) fl = f(fl + 1);
  return fl;
}

// Results of scanMinMax, kept in module scope so the per-channel loop allocates nothing.
let scanMin = 0;
let scanMax = 0;
let scanNaN = false;

/**
 * min/max of x[start, end) folded into (mn, mx), results in scanMin/scanMax/scanNaN. Elements are
 * taken in pairs: a plain `if (v < mn) mn = v` loop runs ~3x slower on ReLU-like data (many values
 * tied with the running min at random positions), the pairwise form does not.
 */
function scanMinMax(x: Float32Array, start: number, end: number, mn: number, mx: number): void {
  const k = end - start > 1024 ? getStatsKernels() : null;
  if (k) {
    // The native loop scans in the same order with the same comparisons; folding its result into
    // (mn, mx) with strict comparisons equals one continuous scan.
    const [lo, hi, nanFlag] = k.minmax(x, start, end);
    scanMin = lo < mn ? lo : mn;
    scanMax = hi > mx ? hi : mx;
    scanNaN = nanFlag !== 0;
    return;
  }
  let nan = false;
  let i = start;
  for (; i + 1 < end; i += 2) {
    const v = x[i];
    const w = x[i + 1];
    const lo = v < w ? v : w;
    const hi = v < w ? w : v;
    if (!(lo <= hi)) nan = true; // only a NaN in the pair makes this false
    if (lo < mn) mn = lo;
    if (hi > mx) mx = hi;
  }
  if (i < end) {
    const v = x[i];
    if (v !== v) nan = true;
    if (v < mn) mn = v;
    if (v > mx) mx = v;
  }
  scanMin = mn;
  scanMax = mx;
  scanNaN = nan;
}

/** torch.aminmax over a whole float32 array (NaN anywhere gives NaN, as torch). */
function aminmax(x: Float32Array): [number, number] {
  scanMinMax(x, 0, x.length, Infinity, -Infinity);
  return scanNaN ? [NaN, NaN] : [scanMin, scanMax];
}

/** torch.min of two float32 scalars (NaN-propagating). */
function tmin(a: number, b: number): number {
  return a !== a || b !== b ? NaN : a < b ? a : b;
}

/** torch.max of two float32 scalars (NaN-propagating). */
function tmax(a: number, b: number): number {
  return a !== a || b !== b ? NaN : a > b ? a : b;
}

/** Python int(float): truncation, with Python's errors for NaN and infinities. */
function pyInt(v: number): number {
  if (Number.isNaN(v)) throw new Error('ValueError: cannot convert float NaN to integer');
  if (!Number.isFinite(v)) throw new Error('OverflowError: cannot convert float infinity to integer');
  return Math.trunc(v);
}

/** Validates that `shape` describes `x` and returns its element count. */
function checkShape(x: Float32Array, shape: readonly number[]): number {
  let numel = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`observer: invalid shape [${shape.join(', ')}]`);
    numel *= d;
  }
  if (numel !== x.length) {
    throw new Error(`observer: shape [${shape.join(', ')}] has ${numel} elements but the data has ${x.length}`);
  }
  return numel;
}

// ---------------------------------------------------------------------------------------------
// Observers
// ---------------------------------------------------------------------------------------------

/** Constructor options common to the uniform-quantization observers (torch keyword arguments). */
export interface ObserverOptions {
  dtype?: QDtype;
  qscheme?: QScheme;
  reduceRange?: boolean;
  quantMin?: number | null;
  quantMax?: number | null;
  eps?: number;
}

/** MovingAverageMinMaxObserver options. */
export interface MovingAverageMinMaxObserverOptions extends ObserverOptions {
  averagingConstant?: number;
}

/** PerChannelMinMaxObserver options. */
export interface PerChannelMinMaxObserverOptions extends ObserverOptions {
  chAxis?: number;
}

/** HistogramObserver options. */
export interface HistogramObserverOptions extends ObserverOptions {
  bins?: number;
  upsampleRate?: number;
}

/** A "class with args" (torch `_PartialWrapper` over functools.partial): call it for a fresh observer. */
export interface ObserverFactory<T extends ObserverBase = ObserverBase, A = ObserverOptions> {
  (overrides?: A): T;
  /** The merged keyword arguments (later `withArgs` calls override earlier ones). */
  readonly args: Readonly<A>;
  /** Another layer of arguments, printed as a nested functools.partial like torch. */
  withArgs(args: A): ObserverFactory<T, A>;
  /** `functools.partial(<class '...'>, k=v){}` exactly as torch prints it. */
  toString(): string;
}

/** Constructor type of a concrete observer class that can be wrapped by `withArgs`. */
export interface ObserverClass<T extends ObserverBase = ObserverBase, A = ObserverOptions> {
  new (opts?: A): T;
  readonly torchName: string;
}

const PY_KW: Record<string, string> = {
  dtype: 'dtype',
  qscheme: 'qscheme',
  reduceRange: 'reduce_range',
  quantMin: 'quant_min',
  quantMax: 'quant_max',
  eps: 'eps',
  averagingConstant: 'averaging_constant',
  chAxis: 'ch_axis',
  bins: 'bins',
  upsampleRate: 'upsample_rate',
};
const FLOAT_KW = new Set(['eps', 'averagingConstant']);

/** Python repr of one keyword value as torch would print it inside a partial. */
function pyValueRepr(key: string, v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (key === 'dtype' || key === 'qscheme') return `torch.${String(v)}`;
  if (typeof v === 'number') {
    if (FLOAT_KW.has(key) || !Number.isInteger(v)) return pyFloatRepr(v);
    return String(v);
  }
  if (typeof v === 'string') return `'${v}'`;
  return String(v);
}

function kwRepr(args: object): string {
  return Object.entries(args)
    .map(([k, v]) => `${PY_KW[k] ?? k}=${pyValueRepr(k, v)}`)
    .join(', ');
}

function makeFactory<T extends ObserverBase, A>(
  create: (args: A) => T,
  inner: string,
  layerArgs: A,
  mergedArgs: A,
): ObserverFactory<T, A> {
  const factory = ((overrides?: A) => create({ ...mergedArgs, ...(overrides ?? {}) } as A)) as ObserverFactory<T, A>;
  const kw = kwRepr(layerArgs as object);
  const repr = `functools.partial(${inner}${kw ? ', ' + kw : ''}){}`;
  Object.defineProperty(factory, 'args', { value: Object.freeze({ ...mergedArgs }), enumerable: true });
  Object.defineProperty(factory, 'withArgs', {
    value: (more: A) => makeFactory(create, repr, more, { ...mergedArgs, ...more } as A),
  });
  Object.defineProperty(factory, 'toString', { value: () => repr });
  return factory;
}

/** `cls.with_args(**args)`: a factory of observers pre-bound to `args` (functools.partial semantics). */
export function withArgs<T extends ObserverBase, A>(cls: ObserverClass<T, A>, args: A): ObserverFactory<T, A> {
  return makeFactory((a: A) => new cls(a), `<class '${cls.torchName}'>`, args, { ...args } as A);
}

/** Base of all observers (torch ObserverBase + UniformQuantizationObserverBase). */
export abstract class ObserverBase {
  /** Fully qualified Python class name, for reprs. */
  static readonly torchName: string = 'torch.ao.quantization.observer.ObserverBase';
  readonly dtype: QDtype;
  readonly qscheme: QScheme;
  readonly reduceRange: boolean;
  readonly quantMin: number;
  readonly quantMax: number;
  readonly hasCustomizedQrange: boolean;
  /** float32 eps buffer. */
  readonly eps: number;

  constructor(opts: ObserverOptions = {}) {
    this.dtype = opts.dtype ?? 'quint8';
    this.qscheme = opts.qscheme ?? 'per_tensor_affine';
    this.reduceRange = opts.reduceRange ?? false;
    this.eps = Math.fround(opts.eps ?? FLOAT32_EPS);
    if (!['quint8', 'qint8', 'qint32'].includes(this.dtype)) {
      throw new Error('Default Observer only works for qint8, quint8 and quint4x2 data type');
    }
    const qmin = opts.quantMin ?? null;
    const qmax = opts.quantMax ?? null;
    this.hasCustomizedQrange = qmin !== null && qmax !== null;
    if (this.hasCustomizedQrange) {
      // _validate_qmin_qmax
      if (!(qmin! <= 0 && 0 <= qmax!)) throw new Error('Used-specified quantization range must include 0.');
      if (!(qmin! < qmax!)) {
        throw new Error('qmin must be strictly less than qmax for user-specified quantization range.');
      }
    }
    [this.quantMin, this.quantMax] = calculateQminQmax(qmin, qmax, this.hasCustomizedQrange, this.dtype, this.reduceRange);
  }

  /** `cls.with_args(**args)` as a static on every concrete observer class. */
  static withArgs<C extends ObserverClass<ObserverBase, any>>(
    this: C,
    args: ConstructorParameters<C>[0],
  ): ObserverFactory<InstanceType<C>, NonNullable<ConstructorParameters<C>[0]>> {
    return withArgs(this as unknown as ObserverClass<InstanceType<C>, NonNullable<ConstructorParameters<C>[0]>>, args!);
  }

  /** Updates the statistics with a float32 tensor given as flat data plus its PyTorch shape. */
  abstract forward(x: Float32Array, shape: readonly number[]): void;

  /** Scale and zero point from the collected statistics. */
  abstract calculateQParams(): QParams;

  /** Python class name. */
  protected abstract get name(): string;

  /** torch `extra_repr()`. */
  protected abstract extraRepr(): string;

  /** `_calculate_qparams` bound to this observer's dtype/qscheme/range. */
  protected qparamsFrom(minVal: Float32Array, maxVal: Float32Array): QParams {
    return calculateQParams(minVal, maxVal, {
      dtype: this.dtype,
      qscheme: this.qscheme,
      quantMin: this.quantMin,
      quantMax: this.quantMax,
      hasCustomizedQrange: this.hasCustomizedQrange,
      eps: this.eps,
    });
  }

  /** The observer's repr as torch 1.13 prints it. */
  toString(): string {
    return moduleRepr(this.name, this.extraRepr());
  }
}

/** Running min/max observer (per tensor). */
export class MinMaxObserver extends ObserverBase {
  static override readonly torchName: string = 'torch.ao.quantization.observer.MinMaxObserver';
  /** Running minimum (float32 value; +inf before calibration). */
  minVal = Infinity;
  /** Running maximum (float32 value; -inf before calibration). */
  maxVal = -Infinity;

  constructor(opts: ObserverOptions = {}) {
    super(opts);
    if (!isPerTensor(this.qscheme)) {
      throw new Error(
        "MinMaxObserver's qscheme only support torch.per_tensor_symmetric and torch.per_tensor_affine.",
      );
    }
    if (this.qscheme === 'per_tensor_symmetric' && this.reduceRange && this.dtype === 'quint8') {
      throw new Error('Cannot reduce range for symmetric quantization for quint8');
    }
  }

  protected get name(): string {
    return 'MinMaxObserver';
  }

  /** Records the running min/max of x. */
  forward(x: Float32Array, shape: readonly number[]): void {
    if (checkShape(x, shape) === 0) return;
    const [mn, mx] = aminmax(x);
    this.minVal = tmin(mn, this.minVal);
    this.maxVal = tmax(mx, this.maxVal);
  }

  /** Scale/zero point from the running min/max. */
  calculateQParams(): QParams {
    return this.qparamsFrom(Float32Array.of(this.minVal), Float32Array.of(this.maxVal));
  }

  /** Forgets the observed range. */
  resetMinMaxVals(): void {
    this.minVal = Infinity;
    this.maxVal = -Infinity;
  }

  protected extraRepr(): string {
    return `min_val=${pyFloatRepr(this.minVal)}, max_val=${pyFloatRepr(this.maxVal)}`;
  }
}

/** Exponential moving average of per-batch min/max (float32 math: min + c * (cur - min)). */
export class MovingAverageMinMaxObserver extends MinMaxObserver {
  static override readonly torchName: string = 'torch.ao.quantization.observer.MovingAverageMinMaxObserver';
  readonly averagingConstant: number;

  constructor(opts: MovingAverageMinMaxObserverOptions = {}) {
    const { averagingConstant, ...rest } = opts;
    super(rest);
    this.averagingConstant = averagingConstant ?? 0.01;
  }

  protected override get name(): string {
    return 'MovingAverageMinMaxObserver';
  }

  /** Updates the moving averages (the first batch initializes them). */
  override forward(x: Float32Array, shape: readonly number[]): void {
    if (checkShape(x, shape) === 0) return;
    const f = Math.fround;
    const [mn, mx] = aminmax(x);
    if (this.minVal === Infinity && this.maxVal === -Infinity) {
      this.minVal = mn;
      this.maxVal = mx;
    } else {
      const c = f(this.averagingConstant); // python float scalar -> float32 operand
      this.minVal = f(this.minVal + f(c * f(mn - this.minVal)));
      this.maxVal = f(this.maxVal + f(c * f(mx - this.maxVal)));
    }
  }
}

/** Running per-channel min/max along `chAxis`. */
export class PerChannelMinMaxObserver extends ObserverBase {
  static override readonly torchName: string = 'torch.ao.quantization.observer.PerChannelMinMaxObserver';
  readonly chAxis: number;
  /** Per-channel running minimum (empty before calibration). */
  minVal = new Float32Array(0);
  /** Per-channel running maximum (empty before calibration). */
  maxVal = new Float32Array(0);

  constructor(opts: PerChannelMinMaxObserverOptions = {}) {
    const { chAxis, ...rest } = opts;
    super({ ...rest, qscheme: rest.qscheme ?? 'per_channel_affine' });
    this.chAxis = chAxis ?? 0;
    if (!isPerChannel(this.qscheme)) {
      throw new Error(
        "PerChannelMinMaxObserver's qscheme only support torch.per_channel_symmetric, " +
          'torch.per_channel_affine and torch.per_channel_affine_float_qparams.',
      );
    }
    if (this.qscheme === 'per_channel_symmetric' && this.reduceRange && this.dtype === 'quint8') {
      throw new Error('Cannot reduce range for symmetric quantization for quint8');
    }
  }

  protected get name(): string {
    return 'PerChannelMinMaxObserver';
  }

  /** Updates the running per-channel min/max; x is contiguous in `shape` order. */
  forward(x: Float32Array, shape: readonly number[]): void {
    if (checkShape(x, shape) === 0) return;
    const rank = shape.length;
    const axis = this.chAxis < 0 ? this.chAxis + rank : this.chAxis;
    if (!(axis >= 0 && axis < rank)) {
      throw new Error(`PerChannelMinMaxObserver: ch_axis ${this.chAxis} out of range for rank ${rank}`);
    }
    let outer = 1;
    let inner = 1;
    for (let d = 0; d < axis; d++) outer *= shape[d];
    for (let d = axis + 1; d < rank; d++) inner *= shape[d];
    const C = shape[axis];
    const mins = new Float32Array(C).fill(Infinity);
    const maxs = new Float32Array(C).fill(-Infinity);
    const nan = new Uint8Array(C);
    if (inner === 1) {
      // channels innermost (e.g. ch_axis = -1): one running min/max per element position
      for (let o = 0; o < outer; o++) {
        const base = o * C;
        for (let c = 0; c < C; c++) {
          const v = x[base + c];
          if (v < mins[c]) mins[c] = v;
          if (v > maxs[c]) maxs[c] = v;
          if (v !== v) nan[c] = 1;
        }
      }
    } else {
      for (let o = 0; o < outer; o++) {
        for (let c = 0; c < C; c++) {
          const base = (o * C + c) * inner;
          scanMinMax(x, base, base + inner, mins[c], maxs[c]);
          mins[c] = scanMin;
          maxs[c] = scanMax;
          if (scanNaN) nan[c] = 1;
        }
      }
    }
    for (let c = 0; c < C; c++) {
      if (nan[c]) {
        mins[c] = NaN;
        maxs[c] = NaN;
      }
    }
    if (this.minVal.length === 0 || this.maxVal.length === 0) {
      this.minVal = mins;
      this.maxVal = maxs;
      return;
    }
    if (this.minVal.length !== C) {
      throw new Error(`PerChannelMinMaxObserver: ${C} channels observed after ${this.minVal.length}`);
    }
    for (let c = 0; c < C; c++) {
      this.minVal[c] = tmin(mins[c], this.minVal[c]);
      this.maxVal[c] = tmax(maxs[c], this.maxVal[c]);
    }
  }

  /** Per-channel scales and zero points. */
  calculateQParams(): QParams {
    return this.qparamsFrom(this.minVal, this.maxVal);
  }

  /** Forgets the observed ranges. */
  resetMinMaxVals(): void {
    this.minVal = new Float32Array(0);
    this.maxVal = new Float32Array(0);
  }

  protected extraRepr(): string {
    return `min_val=${torchTensorRepr(this.minVal)}, max_val=${torchTensorRepr(this.maxVal)}`;
  }
}

/**
 * Running histogram with L2-error-minimizing range search (torch 1.13 HistogramObserver, including
 * its int()-truncated histc range quirk and the upsample/downsample histogram combination).
 */
export class HistogramObserver extends ObserverBase {
  static override readonly torchName: string = 'torch.ao.quantization.observer.HistogramObserver';
  readonly bins: number;
  readonly upsampleRate: number;
  /** 2 ** bits(dtype): 256 for 8-bit dtypes, even under reduce_range. */
  readonly dstNbins: number;
  /** float32 histogram over [minVal, maxVal] (as far as the 1.13 quirks allow). */
  histogram: Float32Array;
  /** float32 range of the histogram (+inf/-inf before calibration). */
  minVal = Infinity;
  maxVal = -Infinity;

  constructor(opts: HistogramObserverOptions = {}) {
    const { bins, upsampleRate, ...rest } = opts;
    super(rest);
    if (!isPerTensor(this.qscheme)) {
      throw new Error(
        "HistogramObserver's qscheme only support torch.per_tensor_symmetric and torch.per_tensor_affine.",
      );
    }
    this.bins = bins ?? 2048;
    this.upsampleRate = upsampleRate ?? 128;
    if (!(Number.isInteger(this.bins) && this.bins > 0)) throw new Error('HistogramObserver: bins must be > 0');
    this.histogram = new Float32Array(this.bins);
    this.dstNbins = this.dtype === 'qint32' ? 2 ** 32 : 256;
  }

  protected get name(): string {
    return 'HistogramObserver';
  }

  /** Adds a batch to the histogram (first batch, or min == max: rebuilds it from this batch). */
  forward(x: Float32Array, shape: readonly number[]): void {
    if (checkShape(x, shape) === 0) return;
    const f = Math.fround;
    const [xmin, xmax] = aminmax(x);
    // torch raises in int() (NaN: ValueError, inf: OverflowError); we throw before touching state.
    if (Number.isNaN(xmin)) throw new Error('HistogramObserver: input contains NaN (cannot convert float NaN to integer)');
    const minVal = this.minVal;
    const maxVal = this.maxVal;
    const uninitialized = minVal === Infinity && maxVal === -Infinity;
    if (uninitialized || minVal === maxVal) {
      pyInt(xmin);
      pyInt(xmax);
      const h = new Float32Array(this.bins);
      // 1.13 quirk: histc bounds are int(min), int(max) (truncated), data beyond them is dropped
      torchHistc(h, x, Math.trunc(xmin), Math.trunc(xmax), xmin, xmax);
      this.histogram = h;
      this.minVal = xmin;
      this.maxVal = xmax;
      return;
    }
    const bins = this.bins;
    const up = this.upsampleRate;
    let combinedMin = tmin(xmin, minVal);
    let combinedMax = tmax(xmax, maxVal);
    // _adjust_min_max (float32 tensor math; python ints become float32 operands)
    const histBinWidth = f(f(maxVal - minVal) / f(bins * up));
    const gridWidth = f(f(bins) * histBinWidth);
    const span = f(combinedMax - combinedMin);
    const downsampleRate = pyInt(Math.ceil(f(span / gridWidth)));
    const e = f(f(f(downsampleRate) * gridWidth) - span);
    combinedMax = f(combinedMax + e);
    const startIdx = pyInt(roundHalfEven(f(f(minVal - combinedMin) / histBinWidth)));
    const combined = new Float32Array(bins);
    torchHistc(combined, x, pyInt(combinedMin), pyInt(combinedMax), xmin, xmax);
    if (combinedMin === minVal && combinedMax === maxVal) {
      const h = this.histogram;
      for (let i = 0; i < bins; i++) combined[i] = combined[i] + h[i];
    } else {
      this.combineHistograms(combined, this.histogram, up, downsampleRate, startIdx, bins);
    }
    this.histogram = combined;
    this.minVal = combinedMin;
    this.maxVal = combinedMax;
  }

  /**
   * _combine_histograms without materializing the bins*downsample_rate grid: the double cumsum only
   * changes where upsampled values sit, so it is replayed value by value (sequential float64 adds, as
   * aten's cumsum) and sampled every `downsampleRate` positions.
   */
  private combineHistograms(
    orig: Float32Array,
    old: Float32Array,
    upsampleRate: number,
    downsampleRate: number,
    startIdx: number,
    nbins: number,
  ): void {
    const f = Math.fround;
    const upLen = nbins * upsampleRate;
    const outLen = nbins * downsampleRate;
    if (startIdx < 0 || startIdx + upLen > outLen) {
      // torch: "shape mismatch: value tensor ... cannot be broadcast to indexing result"
      throw new Error(
        `HistogramObserver: upsampled histogram [${startIdx}, ${startIdx + upLen}) does not fit in ${outLen} bins`,
      );
    }
    let acc = 0; // cumsum(..., dtype=double)
    let pos = startIdx; // grid position of the next upsampled value
    const end = startIdx + upLen;
    let prevF = 0; // shifted_integral_histogram is float32: the previous integral rounded
    for (let k = 0; k < nbins; k++) {
      const sample = k * downsampleRate + downsampleRate - 1;
      const stop = sample + 1 < end ? sample + 1 : end;
      while (pos < stop) {
        // a run of `upsampleRate` copies of one old bin; add one by one (double rounding per add)
        const j = ((pos - startIdx) / upsampleRate) | 0;
        const v = old[j];
        let runEnd = startIdx + (j + 1) * upsampleRate;
        if (runEnd > stop) runEnd = stop;
        if (v === 0) pos = runEnd;
        else for (; pos < runEnd; pos++) acc += v;
      }
      const interpolated = f((acc - prevF) / upsampleRate);
      orig[k] = f(orig[k] + interpolated);
      prevF = f(acc);
    }
  }

  /** `_compute_quantization_error` for a candidate [startBin, endBin] (float32 tensor math, float64 scalars). */
  private computeQuantizationError(startBin: number, endBin: number, density: Float32Array, norm: Float32Array): number {
    const f = Math.fround;
    const bins = this.bins;
    const binWidth = (this.maxVal - this.minVal) / bins; // python floats from .item()
    const dstBinWidth = (binWidth * (endBin - startBin + 1)) / this.dstNbins;
    if (dstBinWidth === 0.0) return 0.0;
    const bw = f(binWidth);
    const dbw = f(dstBinWidth);
    const half = f(dstBinWidth / 2);
    const negHalf = f(-dstBinWidth / 2);
    const maxDst = f(this.dstNbins - 1);
    // 0-dim float32 pieces: middle dst bins and the begin-partial constant
    const negHalfCube = f(f(negHalf * negHalf) * negHalf);
    const halfCube = f(f(half * half) * half);
    const midNorm = f(f(halfCube - negHalfCube) / 3);
    for (let i = 0; i < bins; i++) {
      const srcBegin = f(f(i - startBin) * bw);
      const srcEnd = f(srcBegin + bw);
      let dBegin = divFloorF32(srcBegin, dbw);
      dBegin = dBegin < 0 ? 0 : dBegin > maxDst ? maxDst : dBegin;
      let dEnd = divFloorF32(srcEnd, dbw);
      dEnd = dEnd < 0 ? 0 : dEnd > maxDst ? maxDst : dEnd;
      const d = density[i];
      // piece 1: from src begin to the end of its dst bin
      const db = f(srcBegin - f(f(dBegin + 0.5) * dbw));
      let acc = f(d * f(f(halfCube - f(f(db * db) * db)) / 3));
      // piece 2: full dst bins in between
      acc = f(acc + f(f(f(dEnd - dBegin) - 1) * f(d * midNorm)));
      // piece 3: from the start of the end dst bin to src end
      const de = f(srcEnd - f(f(dEnd * dbw) + half));
      acc = f(acc + f(d * f(f(f(f(de * de) * de) - negHalfCube) / 3)));
      norm[i] = acc;
    }
    return torchSumF32(norm);
  }

  /** `_non_linear_param_search`: the [min, max] (float32) minimizing the L2 quantization error. */
  nonLinearParamSearch(): [number, number] {
    const f = Math.fround;
    const bins = this.bins;
    const hist = this.histogram;
    const binWidth = f(f(this.maxVal - this.minVal) / bins);
    const total = torchSumF32(hist);
    const cSum = cumsumF32(hist);
    // density = histogram / bin_width with the python-float bin width cast to float32
    const bwPy = f((this.maxVal - this.minVal) / bins);
    const density = new Float32Array(bins);
    for (let i = 0; i < bins; i++) density[i] = f(hist[i] / bwPy);
    const norm = new Float32Array(bins);
    const stepsize = 1e-5;
    let alpha = 0.0;
    let beta = 1.0;
    let startBin = 0;
    let endBin = bins - 1;
    let normMin = Infinity;
    while (alpha < beta) {
      const nextAlpha = alpha + stepsize;
      const nextBeta = beta - stepsize;
      // float32 tensor element vs python float: the scalar is rounded to float32
      const lo = f(nextAlpha * total);
      const hi = f(nextBeta * total);
      let l = startBin;
      let r = endBin;
      while (l < endBin && cSum[l] < lo) l++;
      while (r > startBin && cSum[r] > hi) r--;
      let nextStart = startBin;
      let nextEnd = endBin;
      if (l - startBin > endBin - r) {
        nextStart = l;
        alpha = nextAlpha;
      } else {
        nextEnd = r;
        beta = nextBeta;
      }
      if (nextStart === startBin && nextEnd === endBin) continue;
      const err = this.computeQuantizationError(nextStart, nextEnd, density, norm);
      if (err > normMin) break;
      normMin = err;
      startBin = nextStart;
      endBin = nextEnd;
    }
    const newMin = f(this.minVal + f(binWidth * startBin));
    const newMax = f(this.minVal + f(binWidth * (endBin + 1)));
    return [newMin, newMax];
  }

  /** Scale/zero point of the searched range (default 1.0/0 with a warning before calibration). */
  calculateQParams(): QParams {
    if (this.minVal === Infinity && this.maxVal === -Infinity) {
      warnUnobservedOnce();
      return { scale: Float32Array.of(1), zeroPoint: Int32Array.of(0) };
    }
    const [newMin, newMax] = this.nonLinearParamSearch();
    return this.qparamsFrom(Float32Array.of(newMin), Float32Array.of(newMax));
  }

  protected extraRepr(): string {
    return `min_val=${pyFloatRepr(this.minVal)}, max_val=${pyFloatRepr(this.maxVal)}`;
  }
}
