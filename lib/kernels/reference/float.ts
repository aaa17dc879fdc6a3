// Reference float32 conv2d / linear over NHWC activations: plain loops, float32 accumulation in
// PyTorch's natural order (bias last). The cross-check for the native float kernels.
import { Conv2dGeometry, convOutSize, FloatKernels, PackedConv2dF32, PackedLinearF32 } from '../float';

const fround = Math.fround;

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
            let acc = 0;
            for (let ky = 0; ky < g.kernelH; ky++) {
              const iy = oy * g.strideH - g.padH + ky * g.dilationH;
              if (iy < 0 || iy >= h) continue;
              for (let kx = 0; kx < g.kernelW; kx++) {
                const ix = ox * g.strideW - g.padW + kx * g.dilationW;
                if (ix < 0 || ix >= w) continue;
                const xo = ((b0 * h + iy) * w + ix) * cin + grp * cpg;
                const wo = ((oc * cpg) * g.kernelH + ky) * g.kernelW + kx;
                for (let ic = 0; ic < cpg; ic++) acc = fround(acc + fround(x[xo + ic] * wt[wo + ic * g.kernelH * g.kernelW]));
              }
            }
            if (b) acc = fround(acc + b[oc]);
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
        let acc = 0;
        for (let kk = 0; kk < k; kk++) acc = fround(acc + fround(x[i * k + kk] * r.weight[j * k + kk]));
        if (r.bias) acc = fround(acc + r.bias[j]);
        y[i * nOut + j] = relu && acc < 0 ? 0 : acc;
      }
  },
};
