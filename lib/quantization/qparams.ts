// Quantization-parameter math of PyTorch 1.13 (torch/ao/quantization/utils.py and
// UniformQuantizationObserverBase._calculate_qparams in observer.py), reproduced bit-exactly.
// torch does this with float32 tensors, so every intermediate here goes through Math.fround; a
// float64 product of two float32 values rounded once to float32 equals the float32 product (double
// rounding is innocuous for + - * / because 53 >= 2*24 + 2).

/** Quantized dtypes supported by the observers. */
export type QDtype = 'quint8' | 'qint8' | 'qint32';

/** Quantization schemes (torch.qscheme names). */
export type QScheme =
  | 'per_tensor_affine'
  | 'per_tensor_symmetric'
  | 'per_channel_affine'
  | 'per_channel_symmetric'
  | 'per_channel_affine_float_qparams';

/** Scale and zero point per tensor (length 1) or per channel. */
export interface QParams {
  scale: Float32Array;
  /** Integer zero points; for per_channel_affine_float_qparams this is `floatZeroPoint` truncated toward 0. */
  zeroPoint: Int32Array;
  /** Only for per_channel_affine_float_qparams, where torch returns float zero points. */
  floatZeroPoint?: Float32Array;
}

/** Options of `calculateQParams` (the observer fields `_calculate_qparams` reads). */
export interface QParamsOptions {
  dtype: QDtype;
  qscheme: QScheme;
  quantMin: number;
  quantMax: number;
  hasCustomizedQrange: boolean;
  /** Lower bound of the scale; stored by torch as a float32 buffer (default float32 eps, 2**-23). */
  eps: number;
}

/** torch.finfo(torch.float32).eps. */
export const FLOAT32_EPS = 1.1920928955078125e-7;

/** Rounds to the nearest integer, ties to even (torch.round / std::nearbyint), unlike Math.round. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x); // ties toward +inf
  // r - x is exact here (|r - x| <= 0.5 and both are close), so a tie is detected reliably.
  if (r - x === 0.5 && r % 2 !== 0) return r - 1;
  return r;
}

/** Python floor division of integers (`a // b`). */
function floorDiv(a: number, b: number): number {
  return Math.floor(a / b);
}

/** (quant_min, quant_max) actually used by an observer, as torch 1.13 calculate_qmin_qmax. */
export function calculateQminQmax(
  quantMin: number | null | undefined,
  quantMax: number | null | undefined,
  hasCustomizedQrange: boolean,
  dtype: QDtype,
  reduceRange: boolean,
): [number, number] {
  if (hasCustomizedQrange) {
    if (quantMin == null || quantMax == null) {
      throw new Error('calculateQminQmax: a customized qrange needs both quantMin and quantMax');
    }
    const qrangeLen = quantMax - quantMin + 1;
    if (dtype === 'qint8' && !(qrangeLen > 0 && qrangeLen <= 256)) {
      throw new Error('quantization range should be positive and not exceed the maximum bit range (=256).');
    }
    if (dtype === 'qint32' && !(qrangeLen > 0 && qrangeLen <= 2 ** 31)) {
      throw new Error('quantization range should be positive and not exceed the maximum bit range (=4294967296).');
    }
    // torch still halves a custom range under reduce_range (floor division, so -127 -> -64).
    if (reduceRange) return [floorDiv(quantMin, 2), floorDiv(quantMax, 2)];
    return [quantMin, quantMax];
  }
  if (dtype === 'qint8') return reduceRange ? [-64, 63] : [-128, 127];
  if (dtype === 'quint8') return reduceRange ? [0, 127] : [0, 255];
  if (dtype === 'qint32') return [-(2 ** 31), 2 ** 31 - 1]; // reduce_range is ignored for qint32
  return [0, 15]; // quint4x2 fallback, kept for parity with torch
}

let warnedUnobserved = false;

/** Emits torch's "must run observer" warning once per process, as Python's default warning filter does. */
export function warnUnobservedOnce(): void {
  if (warnedUnobserved) return;
  warnedUnobserved = true;
  console.warn('must run observer before calling calculate_qparams. Returning default values.');
}

/** True for per-tensor schemes (torch.ao.quantization.utils.is_per_tensor). */
export function isPerTensor(qscheme: QScheme): boolean {
  return qscheme === 'per_tensor_affine' || qscheme === 'per_tensor_symmetric';
}

/** True for per-channel schemes (torch.ao.quantization.utils.is_per_channel). */
export function isPerChannel(qscheme: QScheme): boolean {
  return !isPerTensor(qscheme);
}

/** Python-style repr of a float, used in error messages that mirror torch's. */
function num(v: number): string {
  return Number.isNaN(v) ? 'nan' : v === Infinity ? 'inf' : v === -Infinity ? '-inf' : String(v);
}

/**
 * Per-tensor (0-dim in torch) when `qscheme` is per-tensor, else per-channel; validates like
 * check_min_max_valid: returns false (after the one-time warning) for an unobserved observer and
 * throws, as torch's assert does, when min > max or either is NaN.
 */
function checkMinMaxValid(minVal: Float32Array, maxVal: Float32Array, perTensor: boolean): boolean {
  if (minVal.length === 0 || maxVal.length === 0) {
    warnUnobservedOnce();
    return false;
  }
  if (minVal.length !== maxVal.length) {
    throw new Error(`calculateQParams: min_val has ${minVal.length} elements but max_val has ${maxVal.length}`);
  }
  if (perTensor && minVal.length === 1) {
    if (minVal[0] === Infinity && maxVal[0] === -Infinity) {
      warnUnobservedOnce();
      return false;
    }
  }
  for (let i = 0; i < minVal.length; i++) {
    // `!(a <= b)` also rejects NaN, exactly like torch's `assert min_val <= max_val`.
    if (!(minVal[i] <= maxVal[i])) {
      throw new Error(`min ${num(minVal[i])} should be less than max ${num(maxVal[i])}`);
    }
  }
  return true;
}

/** Float32 elementwise max with torch.max's NaN propagation. */
function fmax(a: number, b: number): number {
  if (a !== a || b !== b) return NaN;
  return a > b ? a : b;
}

/** Float32 elementwise min with torch.min's NaN propagation. */
function fmin(a: number, b: number): number {
  if (a !== a || b !== b) return NaN;
  return a < b ? a : b;
}

/** Saturating float -> int32 cast for `.to(torch.int)` (C++ UB territory; torch on x86 yields INT_MIN). */
function toInt32(v: number): number {
  if (!(v >= -2147483648 && v <= 2147483647)) return -2147483648;
  return Math.trunc(v);
}

/** Scale/zero point from running min/max, exactly as torch 1.13 `_calculate_qparams` (float32 math). */
export function calculateQParams(minVal: Float32Array, maxVal: Float32Array, opts: QParamsOptions): QParams {
  const f = Math.fround;
  const { dtype, qscheme, quantMin, quantMax, hasCustomizedQrange } = opts;
  if (!checkMinMaxValid(minVal, maxVal, isPerTensor(qscheme))) {
    return { scale: Float32Array.of(1), zeroPoint: Int32Array.of(0) };
  }
  const n = minVal.length;
  const eps = f(opts.eps); // a float32 buffer in torch
  const scale = new Float32Array(n);
  const zeroPoint = new Int32Array(n);
  if (qscheme === 'per_tensor_symmetric' || qscheme === 'per_channel_symmetric') {
    // python float (qmax - qmin) / 2, then cast to float32 as a tensor-scalar operand
    const half = f((quantMax - quantMin) / 2);
    let zp = 0;
    if (dtype === 'quint8') zp = hasCustomizedQrange ? floorDiv(quantMin + quantMax, 2) : 128;
    for (let i = 0; i < n; i++) {
      const minNeg = fmin(minVal[i], 0);
      const maxPos = fmax(fmax(maxVal[i], 0), -minNeg);
      scale[i] = fmax(f(maxPos / half), eps);
      zeroPoint[i] = zp;
    }
    return { scale, zeroPoint };
  }
  const range = f(quantMax - quantMin);
  if (qscheme === 'per_channel_affine_float_qparams') {
    const floatZeroPoint = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let s = f(f(maxVal[i] - minVal[i]) / range);
      s = s > eps ? s : 1; // torch.where(scale > eps, scale, 1)
      scale[i] = s;
      const z = f(-minVal[i] / s); // (-1 * min_val) / scale; negation is exact
      floatZeroPoint[i] = z;
      zeroPoint[i] = toInt32(z);
    }
    return { scale, zeroPoint, floatZeroPoint };
  }
  for (let i = 0; i < n; i++) {
    const minNeg = fmin(minVal[i], 0);
    const maxPos = fmax(maxVal[i], 0);
    const s = fmax(f(f(maxPos - minNeg) / range), eps);
    scale[i] = s;
    // zero_point = quant_min - round(min_val_neg / scale).to(int), then clamp; int32 arithmetic, so
    // the wrap matters for NaN/inf ratios (INT_MIN from the cast): torch then clamps to quant_min.
    const zp = (quantMin - toInt32(roundHalfEven(f(minNeg / s)))) | 0;
    zeroPoint[i] = zp < quantMin ? quantMin : zp > quantMax ? quantMax : zp;
  }
  return { scale, zeroPoint };
}
