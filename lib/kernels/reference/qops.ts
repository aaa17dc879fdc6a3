// Reference quantized ops (PyTorch 1.13 x86 numerics, numerics.md A.7-A.9 and the appendix):
// quantize, dequantize, conv2d (any geometry, NHWC, zero-point padding), add/add_relu, mean over
// H and W, max pooling. The executable spec of the native kernels: every float32 step is fround.
import { Conv2dGeometry, convOutSize } from '../float';
import { QGemmEpilogue, requantize } from '../requant';
import { cvtRne } from './numerics';

const fround = Math.fround;
const imul = Math.imul;

/** quantize_per_tensor to quint8: clamp(zp + rne(x * (1.0f / scale)), 0, 255). */
export function quantizeRef(x: Float32Array, y: Uint8Array, scale: number, zeroPoint: number): void {
  const inv = fround(1 / fround(scale));
  for (let i = 0; i < x.length; i++) {
    const q = zeroPoint + cvtRne(fround(x[i] * inv));
    y[i] = q < 0 ? 0 : q > 255 ? 255 : q;
  }
}

/** dequantize: (q - zp) * scale in float32. */
export function dequantizeRef(x: Uint8Array, y: Float32Array, scale: number, zeroPoint: number): void {
  const s = fround(scale);
  for (let i = 0; i < x.length; i++) y[i] = fround((x[i] - zeroPoint) * s);
}

/**
 * Quantized conv2d over NHWC quint8 input: int32 accumulation of (x - zx) * w (padding reads as
 * zx, contributing 0), then the epilogue of lib/kernels/requant.ts. Weights [cout][cin/g][kh][kw].
 */
export function qconv2dRef(
  g: Conv2dGeometry, weight: Int8Array, e: QGemmEpilogue, inputZeroPoint: number,
  x: Uint8Array, n: number, h: number, w: number, y: Uint8Array,
): void {
  const oh = convOutSize(h, g.kernelH, g.strideH, g.padH, g.dilationH);
  const ow = convOutSize(w, g.kernelW, g.strideW, g.padW, g.dilationW);
  const cin = g.inChannels, cout = g.outChannels, cpg = cin / g.groups, opg = cout / g.groups;
  const khw = g.kernelH * g.kernelW;
  for (let b = 0; b < n; b++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++)
        for (let oc = 0; oc < cout; oc++) {
          const c0 = Math.floor(oc / opg) * cpg;
          // acc = acc_init + sum x*w with padded taps reading zx: identical to sum (x - zx) * w.
          let acc = e.accInit[oc];
          for (let ky = 0; ky < g.kernelH; ky++) {
            const iy = oy * g.strideH - g.padH + ky * g.dilationH;
            for (let kx = 0; kx < g.kernelW; kx++) {
              const ix = ox * g.strideW - g.padW + kx * g.dilationW;
              const inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
              const xo = ((b * h + iy) * w + ix) * cin + c0;
              const wo = oc * cpg * khw + ky * g.kernelW + kx;
              for (let ic = 0; ic < cpg; ic++) {
                const xv = inside ? x[xo + ic] : inputZeroPoint;
                acc = (acc + imul(xv, weight[wo + ic * khw])) | 0;
              }
            }
          }
          y[((b * oh + oy) * ow + ox) * cout + oc] = requantize(acc, oc, e);
        }
}

/** Output qparams and clamp of an elementwise quantized op. */
export interface QAddParams {
  aScale: number;
  aZeroPoint: number;
  bScale: number;
  bZeroPoint: number;
  outScale: number;
  outZeroPoint: number;
  relu: boolean;
}

/**
 * PyTorch's qadd_kernel runs its vector lambda on blocks of 64 elements and the scalar one on
 * the rest (cpu_kernel_vec, AVX-512 build): the vector dequantize is fma(q, s, f32(-zp * s)),
 * the scalar one f32((q - zp) * s). They differ in rare last-bit cases, so both are mirrored.
 */
export const QADD_VECTOR_BLOCK = 64;

/** quantized add / add_relu: dequantize both, add in float32, (relu), quantize (qadd_kernel). */
export function qaddRef(a: Uint8Array, b: Uint8Array, y: Uint8Array, p: QAddParams): void {
  const sa = fround(p.aScale), sb = fround(p.bScale), inv = fround(1 / fround(p.outScale));
  const pa = fround(-p.aZeroPoint * sa), pb = fround(-p.bZeroPoint * sb);
  const vecEnd = y.length - (y.length % QADD_VECTOR_BLOCK);
  for (let i = 0; i < y.length; i++) {
    // q * s + premul is exact in double here (|q*s| and |premul| within 2^8 of each other), so one
    // fround gives the fused multiply-add.
    const da = i < vecEnd ? fround(a[i] * sa + pa) : fround((a[i] - p.aZeroPoint) * sa);
    const db = i < vecEnd ? fround(b[i] * sb + pb) : fround((b[i] - p.bZeroPoint) * sb);
    let c = fround(da + db);
    if (p.relu && c < 0) c = 0;
    const q = p.outZeroPoint + cvtRne(fround(c * inv));
    y[i] = q < 0 ? 0 : q > 255 ? 255 : q;
  }
}

/**
 * mean over H and W of NHWC quint8 [n][hw][c] (channels_last x.mean([2, 3])): dequantize, sum in
 * float32 in spatial order, divide by hw, quantize with the input's qparams (PyTorch's
 * non-contiguous path: dequantize -> at::mean -> quantize_per_tensor).
 */
export function qmeanHWRef(x: Uint8Array, n: number, hw: number, c: number, y: Uint8Array, scale: number, zeroPoint: number): void {
  const s = fround(scale), inv = fround(1 / s), count = fround(hw);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++) {
      let acc = 0;
      for (let p = 0; p < hw; p++) acc = fround(acc + fround((x[(b * hw + p) * c + ch] - zeroPoint) * s));
      const m = fround(acc / count);
      const q = zeroPoint + cvtRne(fround(m * inv));
      y[b * c + ch] = q < 0 ? 0 : q > 255 ? 255 : q;
    }
}

/** Max pooling over NHWC quint8 (order-preserving, so done on the integers; padding never wins). */
export function qmaxpool2dRef(
  x: Uint8Array, n: number, h: number, w: number, c: number, k: number, stride: number, pad: number, y: Uint8Array,
): void {
  const oh = convOutSize(h, k, stride, pad, 1), ow = convOutSize(w, k, stride, pad, 1);
  for (let b = 0; b < n; b++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++)
        for (let ch = 0; ch < c; ch++) {
          let m = 0;
          for (let ky = 0; ky < k; ky++) {
            const iy = oy * stride - pad + ky;
            if (iy < 0 || iy >= h) continue;
            for (let kx = 0; kx < k; kx++) {
              const ix = ox * stride - pad + kx;
              if (ix < 0 || ix >= w) continue;
              const v = x[((b * h + iy) * w + ix) * c + ch];
              if (v > m) m = v;
            }
          }
          y[((b * oh + oy) * ow + ox) * c + ch] = m;
        }
}

/**
 * Quantized adaptive_avg_pool2d to 1x1 over NHWC [n][hw][c] (PyTorch's AVX2 path of
 * _qadaptive_avg_pool_kernel): acc = sum(q) - zp_in * hw (int32), then
 * zp_out + rne(f32(f32(acc) * multiplier)) with multiplier = f32(s_in / s_out / hw).
 */
export function qadaptiveAvgPoolRef(
  x: Uint8Array, n: number, hw: number, c: number, y: Uint8Array, inScale: number, inZeroPoint: number, outScale: number, outZeroPoint: number,
): void {
  const mult = fround(inScale / outScale / hw);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++) {
      let acc = -inZeroPoint * hw;
      for (let p = 0; p < hw; p++) acc += x[(b * hw + p) * c + ch];
      const q = outZeroPoint + cvtRne(fround(fround(acc) * mult));
      y[b * c + ch] = q < 0 ? 0 : q > 255 ? 255 : q;
    }
}
