// The requantization contract of quantized conv/linear (PyTorch 1.13 x86 = FBGEMM float-bias path,
// numerics.md A.8): computed once per layer here and consumed identically by both backends.
import { cvtRne } from './reference/numerics';

const fround = Math.fround;
const imul = Math.imul;

/** What a quantized conv/linear layer needs to define its integer GEMM and epilogue. */
export interface QGemmSpec {
  /** Reduction length (Cin/groups * KH * KW for conv). */
  k: number;
  /** Output columns (output channels). */
  n: number;
  /** int8 weights, row-major [n][k]. */
  weight: Int8Array;
  inputScale: number;
  inputZeroPoint: number;
  /** Weight scales: one (per-tensor) or n (per-channel); weight zero points are 0 (symmetric). */
  weightScale: Float32Array;
  /** Float bias [n] or null. PyTorch keeps it in float and adds it after the int32 GEMM. */
  bias: Float32Array | null;
  /**
   * ONNX's int32 bias [n] (QLinearConv / QGemm), added to the accumulator: the epilogue's bias term
   * is then the integer itself (exact while |acc| and |acc + bias| stay below 2^24, where float32
   * holds every integer, as ONNX Runtime's float(acc + bias)). Excludes `bias`.
   */
  onnxBias?: Int32Array;
  outputScale: number;
  outputZeroPoint: number;
  /** Quantized clamp of the output: [0, 255], or [zero_point, 255] for a fused ReLU. */
  outMin: number;
  outMax: number;
}

/** Per-column constants of the epilogue (see native/kernels.h for the formula). */
export interface QGemmEpilogue {
  /** -inputZeroPoint * colsum(weight[j]) (int32, wrapping). */
  accInit: Int32Array;
  /** bias[j] / (inputScale * weightScale[j]) in float32, FBGEMM's rounding per granularity. */
  bias: Float32Array;
  /** inputScale * weightScale[j] / outputScale in float32. */
  multiplier: Float32Array;
  outZeroPoint: number;
  outMin: number;
  outMax: number;
}

/** Derives the epilogue constants exactly as FBGEMM's ReQuantizeOutput (AVX2 path) does. */
export function qgemmEpilogue(spec: QGemmSpec): QGemmEpilogue {
  const { k, n, weight, weightScale } = spec;
  const perChannel = weightScale.length !== 1;
  const sx = fround(spec.inputScale);
  const sy = fround(spec.outputScale);
  const accInit = new Int32Array(n);
  const bias = new Float32Array(n);
  const multiplier = new Float32Array(n);
  const za = spec.inputZeroPoint;
  for (let j = 0; j < n; j++) {
    let colsum = 0;
    for (let kk = 0, o = j * k; kk < k; kk++) colsum += weight[o + kk];
    accInit[j] = imul(-za, colsum);
    const atws = fround(sx * fround(weightScale[perChannel ? j : 0]));
    multiplier[j] = fround(atws / sy);
    if (spec.onnxBias) {
      bias[j] = spec.onnxBias[j];
      continue;
    }
    const b = spec.bias ? spec.bias[j] : 0;
    // Per-channel: _mm256_div_ps(bias, act_times_w_scale). Per-tensor: bias * (float)(1.0 / atws),
    // the reciprocal taken in double (FBGEMM's act_times_w_rcp).
    bias[j] = perChannel ? fround(b / atws) : fround(b * fround(1 / atws));
  }
  return { accInit, bias, multiplier, outZeroPoint: spec.outputZeroPoint, outMin: spec.outMin, outMax: spec.outMax };
}

/** Requantizes one int32 accumulator of column j: the scalar definition every kernel must match. */
export function requantize(acc: number, j: number, e: QGemmEpilogue): number {
  const f = fround(fround(fround(acc) + e.bias[j]) * e.multiplier[j]);
  const r = cvtRne(f) + e.outZeroPoint;
  return r < e.outMin ? e.outMin : r > e.outMax ? e.outMax : r;
}
