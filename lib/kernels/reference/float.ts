// Reference float32 conv2d / linear over NHWC activations: plain loops in the summation order of
// the native kernels (native/kernels.h), which is oneDNN's in PyTorch 1.13: multiply-add chains
// in chunks of 256 along the reduction, starting from the bias for 1x1 convs, linears and
// depthwise convs; im2col convs sum in (ky, kx, ic) order and add the bias last. Each step is
// fround(x * w + acc) in double, a fused multiply-add except in rare double-rounding cases, so
// the native kernels agree to float32 rounding (bit for bit in all but those cases).
import { Conv2dGeometry, convOutSize, FloatKernels, PackedConv2dF32, PackedLinearF32, Pool2dGeometry } from '../float';

const fround = Math.fround;
const KC = 256;

/** sum_k x[k] * w[k] in 256-long chunks; the first chain starts from `init`. */
function chunkedDot(n: number, xAt: (k: number) => number, wAt: (k: number) => number, init: number): number {
  let total = 0;
  for (let k0 = 0; k0 < n; k0 += KC) {
    let acc = k0 === 0 ? init : 0;
    for (let k = k0; k < Math.min(n, k0 + KC); k++) acc = fround(xAt(k) * wAt(k) + acc);
    total = k0 === 0 ? acc : fround(total + acc);
  }
  return total;
}

class RefConv implements PackedConv2dF32 {
  constructor(readonly geometry: Conv2dGeometry, readonly weight: Float32Array, readonly bias: Float32Array | null) {}
}
class RefLinear implements PackedLinearF32 {
  constructor(readonly inFeatures: number, readonly outFeatures: number, readonly weight: Float32Array, readonly bias: Float32Array | null) {}
}

/** The pure-TS float kernels. */
export const referenceFloatKernels: FloatKernels = {
  name: 'reference',
  packConv2d(weight, bias, g) {
    return new RefConv({ ...g }, weight.slice(), bias ? bias.slice() : null);
  },
  conv2d(p, x, n, h, w, y, relu) {
    const r = p as RefConv;
    const g = r.geometry;
    const oh = convOutSize(h, g.kernelH, g.strideH, g.padH, g.dilationH);
    const ow = convOutSize(w, g.kernelW, g.strideW, g.padW, g.dilationW);
    const cin = g.inChannels, cout = g.outChannels, cpg = cin / g.groups, opg = cout / g.groups;
    const wt = r.weight, b = r.bias;
    for (let b0 = 0; b0 < n; b0++)
      for (let oy = 0; oy < oh; oy++)
        for (let ox = 0; ox < ow; ox++)
          for (let oc = 0; oc < cout; oc++) {
            const grp = Math.floor(oc / opg);
            const c0 = grp * cpg;
            const kh = g.kernelH, kw = g.kernelW;
            const depthwise = g.groups === cin && cin === cout;
            const pointwise = kh === 1 && kw === 1 && g.strideH === 1 && g.strideW === 1 && g.padH === 0 && g.padW === 0;
            // Taps in (ky, kx, ic) order; padding reads 0.
            const xAt = (t: number) => {
              const ic = t % cpg, kx = Math.floor(t / cpg) % kw, ky = Math.floor(t / (cpg * kw));
              const iy = oy * g.strideH - g.padH + ky * g.dilationH, ix = ox * g.strideW - g.padW + kx * g.dilationW;
              return iy < 0 || iy >= h || ix < 0 || ix >= w ? 0 : x[((b0 * h + iy) * w + ix) * cin + c0 + ic];
            };
            const wAt = (t: number) => {
              const ic = t % cpg, kx = Math.floor(t / cpg) % kw, ky = Math.floor(t / (cpg * kw));
              return wt[((oc * cpg + ic) * kh + ky) * kw + kx];
            };
            const biasFirst = depthwise || pointwise;
            let acc = chunkedDot(cpg * kh * kw, xAt, wAt, biasFirst && b ? b[oc] : 0);
            if (b && !biasFirst) acc = fround(acc + b[oc]);
            y[((b0 * oh + oy) * ow + ox) * cout + oc] = relu && acc < 0 ? 0 : acc;
          }
  },
  packLinear(weight, bias, inFeatures, outFeatures) {
    return new RefLinear(inFeatures, outFeatures, weight.slice(), bias ? bias.slice() : null);
  },
  linear(p, m, x, y, relu) {
    const r = p as RefLinear;
    const k = r.inFeatures, nOut = r.outFeatures;
    for (let i = 0; i < m; i++)
      for (let j = 0; j < nOut; j++) {
        const acc = chunkedDot(k, (kk) => x[i * k + kk], (kk) => r.weight[j * k + kk], r.bias ? r.bias[j] : 0);
        y[i * nOut + j] = relu && acc < 0 ? 0 : acc;
      }
  },
  binary(op, a, b, y) {
    const n = y.length;
    // One monomorphic loop per op. Float32 inputs: the double sum or product rounds to float32
    // exactly as a float32 op.
    if (op === 'add') for (let i = 0; i < n; i++) y[i] = a[i] + b[i];
    else if (op === 'mul') for (let i = 0; i < n; i++) y[i] = a[i] * b[i];
    else
      for (let i = 0; i < n; i++) {
        const s = fround(a[i] + b[i]);
        y[i] = s > 0 ? s : 0;
      }
  },
  channelAffine(x, pixels, c, alpha, beta, y) {
    for (let p = 0, i = 0; p < pixels; p++) for (let ch = 0; ch < c; ch++, i++) y[i] = fround(x[i] * alpha[ch]) + beta[ch];
  },
  relu(x, y, max) {
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      y[i] = v > 0 ? (v > max ? max : v) : 0;
    }
  },
  meanHW(x, n, hw, c, y) {
    for (let b = 0; b < n; b++) {
      const acc = new Float64Array(c);
      for (let p = 0; p < hw; p++) {
        const o = (b * hw + p) * c;
        for (let ch = 0; ch < c; ch++) acc[ch] += x[o + ch];
      }
      for (let ch = 0; ch < c; ch++) y[b * c + ch] = fround(acc[ch] / hw);
    }
  },
  toChannelsLast(x, n, c, hw, y) {
    for (let b = 0; b < n; b++)
      for (let ch = 0; ch < c; ch++) {
        const so = (b * c + ch) * hw;
        for (let p = 0; p < hw; p++) y[(b * hw + p) * c + ch] = x[so + p];
      }
  },
  maxPool2d(x, n, h, w, c, g: Pool2dGeometry, y) {
    const { kernelSize: k, stride, padding, dilation } = g;
    const oh = convOutSize(h, k, stride, padding, dilation), ow = convOutSize(w, k, stride, padding, dilation);
    y.fill(-Infinity);
    for (let b = 0; b < n; b++)
      for (let oy = 0; oy < oh; oy++)
        for (let ox = 0; ox < ow; ox++) {
          const yo = ((b * oh + oy) * ow + ox) * c;
          for (let ky = 0; ky < k; ky++) {
            const iy = oy * stride - padding + ky * dilation;
            if (iy < 0 || iy >= h) continue;
            for (let kx = 0; kx < k; kx++) {
              const ix = ox * stride - padding + kx * dilation;
              if (ix < 0 || ix >= w) continue;
              const xo = ((b * h + iy) * w + ix) * c;
              for (let ch = 0; ch < c; ch++) if (x[xo + ch] > y[yo + ch]) y[yo + ch] = x[xo + ch];
            }
          }
        }
  },
};
