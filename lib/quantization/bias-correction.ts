// Bias correction (Nagel et al. 2019, section 4.2; PyTorch's torch/ao/quantization/_correct_bias.py).
// Quantizing a layer's weights W -> W_q shifts the mean of its output by E[(W_q - W) x]; subtracting
// that shift from the bias removes the biased part of the error.
//
// - Empirical: layer by layer in model order, as _correct_bias.py: the mean pre-activation of each
//   layer in a copy of the model with quantized weights (and the corrections so far) is compared to
//   the float model's on calibration batches, and the difference per output channel leaves the bias.
// - Analytical (data-free): E[x] of a layer's input from the batch-norm statistics of the layer before
//   (pre-activation N(beta, gamma^2), after ReLU E = gamma phi(beta/gamma) + beta Phi(beta/gamma)).
import { Conv2d, Linear } from '../nn/layers';
import { ConvReLU2d, FusedModule, LinearReLU } from '../nn/intrinsic';
import { deepCopy, Module } from '../nn/module';
import { Tensor } from '../tensor';
import { QTensor } from '../qtensor';
import { QuantizedConv2d, QuantizedLinear } from '../nn/quantized';
import { quantizeWeight } from './convert';
import { LayerPair, weightLayer } from './equalize';
import { QConfig } from './qconfig';

/** The weights as convert() will quantize them under the qconfig, dequantized to float32. */
export function fakeQuantWeight(l: Conv2d | Linear, qconfig: QConfig): Tensor {
  const obs = qconfig.weight();
  obs.forward(l.weight.data, l.weight.shape);
  const perChannel = obs.qscheme === 'per_channel_symmetric' || obs.qscheme === 'per_channel_affine';
  const qp = obs.calculateQParams();
  const q = quantizeWeight(l.weight, qp, perChannel);
  const per = perChannel ? l.weight.numel / l.weight.shape[0] : l.weight.numel;
  const out = new Float32Array(q.data.length);
  for (let i = 0; i < out.length; i++) {
    const c = perChannel ? Math.floor(i / per) : 0;
    out[i] = Math.fround((q.data[i] - q.zeroPoint[c]) * q.scale[c]);
  }
  return new Tensor(out, l.weight.shape);
}

/** Per-channel mean of a [N, C, ...] tensor (any memory format), in float64. */
export function channelMeans(t: Tensor): Float64Array {
  const c = t.shape[1], d = t.data, s = new Float64Array(c);
  if (t.shape.length === 2 || t.memoryFormat === 'channels_last') {
    for (let i = 0; i < d.length; i++) s[i % c] += d[i];
  } else {
    const hw = t.numel / (t.shape[0] * c);
    for (let i = 0; i < d.length; i++) s[Math.floor(i / hw) % c] += d[i];
  }
  const n = t.numel / c;
  for (let i = 0; i < c; i++) s[i] /= n;
  return s;
}

/** The conv / linear layers of a fused model in forward order (fused modules by their own name). */
export function weightLayerNames(model: Module): string[] {
  const out: string[] = [];
  const fused: string[] = [];
  for (const [name, m] of model.namedModules()) {
    if (fused.some((f) => name.startsWith(f + '.'))) continue;
    if (m instanceof FusedModule) fused.push(name);
    if (m instanceof ConvReLU2d || m instanceof LinearReLU || m instanceof Conv2d || m instanceof Linear) out.push(name);
  }
  return out;
}

function preActivation(l: Conv2d | Linear, x: unknown): Tensor {
  return l instanceof Conv2d ? l.convForward(x, false) : l.linearForward(x, false);
}

function subtractBias(l: Conv2d | Linear, corr: ArrayLike<number>): void {
  const b = l.bias ? l.bias.data.slice() : new Float32Array(l.weight.shape[0]);
  for (let i = 0; i < b.length; i++) b[i] = Math.fround(b[i] - corr[i]);
  l.bias = new Tensor(b, [b.length]);
}

/** Options of the bias corrections. */
export interface BiasCorrectionOptions {
  /** Only these layers (default: every conv / linear). */
  layers?: string[];
}

/**
 * Empirical bias correction of a fused float model (in place) for the weight quantization of
 * `qconfig`, on calibration batches. Returns the correction subtracted from each layer's bias.
 */
export function empiricalBiasCorrection(model: Module, qconfig: QConfig, batches: Tensor[], o: BiasCorrectionOptions = {}): Map<string, Float64Array> {
  const names = o.layers ?? weightLayerNames(model);
  // float reference: every layer's mean pre-activation, in one pass per batch
  const floatMeans = new Map<string, Float64Array>();
  const hooks: Array<() => void> = [];
  for (const n of names) {
    const l = weightLayer(model.getSubmodule(n));
    hooks.push(model.getSubmodule(n).registerForwardHook((_m, inputs) => {
      const mu = channelMeans(preActivation(l, inputs[0]));
      const acc = floatMeans.get(n);
      if (acc) for (let i = 0; i < mu.length; i++) acc[i] += mu[i] / batches.length;
      else floatMeans.set(n, mu.map((v) => v / batches.length));
    }));
  }
  for (const b of batches) model.call(b);
  hooks.forEach((h) => h());
  // the weight-quantized copy, corrected layer by layer
  const q = deepCopy(model);
  for (const n of weightLayerNames(q)) {
    const l = weightLayer(q.getSubmodule(n));
    l.weight = fakeQuantWeight(l, qconfig);
  }
  const out = new Map<string, Float64Array>();
  for (const n of names) {
    const qm = q.getSubmodule(n), l = weightLayer(qm);
    const mean = new Float64Array(l.weight.shape[0]);
    const off = qm.registerForwardHook((_m, inputs) => {
      const mu = channelMeans(preActivation(l, inputs[0]));
      for (let i = 0; i < mu.length; i++) mean[i] += mu[i] / batches.length;
    });
    // only the layers up to this one matter; running the whole model keeps the code simple
    for (const b of batches) q.call(b);
    off();
    const ref = floatMeans.get(n)!;
    const corr = mean.map((v, i) => v - ref[i]);
    subtractBias(l, corr);
    subtractBias(weightLayer(model.getSubmodule(n)), corr);
    out.set(n, corr);
  }
  return out;
}

/** Standard normal pdf and cdf (erf by Abramowitz-Stegun 7.1.26, |error| < 1.5e-7). */
function phi(x: number): number {
  return Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
}
function erf(x: number): number {
  const s = Math.sign(x), a = Math.abs(x), t = 1 / (1 + 0.3275911 * a);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-a * a);
  return s * y;
}
function Phi(x: number): number {
  return 0.5 * (1 + erf(x / Math.SQRT2));
}

/** E[relu(y)] for y ~ N(mu, sigma^2). */
export function expectedRelu(mu: number, sigma: number): number {
  if (!(sigma > 0)) return Math.max(0, mu);
  const z = mu / sigma;
  return sigma * phi(z) + mu * Phi(z);
}

/**
 * Analytical (data-free) bias correction: for each pair a -> b, E[x] of b's input comes from a's
 * pre-activation statistics (mean = a's fused bias, std = BN |gamma|, as rescaled by equalization),
 * and b's bias loses (W_q - W) E[x] (zero padding ignored, as in the paper). In place; returns the
 * corrections.
 */
export function analyticalBiasCorrection(model: Module, qconfig: QConfig, pairs: LayerPair[], preActStd: Map<string, Float64Array>): Map<string, Float64Array> {
  const out = new Map<string, Float64Array>();
  for (const [a, b] of pairs) {
    const ma = model.getSubmodule(a), std = preActStd.get(a), la = weightLayer(ma);
    if (!std || !la.bias || out.has(b)) continue;
    const relu = ma instanceof ConvReLU2d || ma instanceof LinearReLU;
    const ex = Float64Array.from(la.bias.data, (mu, c) => (relu ? expectedRelu(mu, std[c]) : mu));
    const lb = weightLayer(model.getSubmodule(b));
    const wq = fakeQuantWeight(lb, qconfig).data, w = lb.weight.data;
    const s = lb.weight.shape, cout = s[0], inPer = s[1], spatial = s.length === 4 ? s[2] * s[3] : 1;
    const groups = lb instanceof Conv2d ? lb.groups : 1, outPerGroup = cout / groups;
    const corr = new Float64Array(cout);
    for (let o = 0; o < cout; o++) {
      const g = Math.floor(o / outPerGroup);
      let acc = 0;
      for (let ci = 0; ci < inPer; ci++) {
        const base = (o * inPer + ci) * spatial;
        let dw = 0;
        for (let k = 0; k < spatial; k++) dw += wq[base + k] - w[base + k];
        acc += dw * ex[g * inPer + ci];
      }
      corr[o] = acc;
    }
    subtractBias(lb, corr);
    out.set(b, corr);
  }
  return out;
}

/** Options of quantizedBiasCorrection. */
export interface QuantizedBiasCorrectionOptions {
  /** Also correct layers with a fused ReLU (torch's bias_correction targets nnq.Conv2d / nnq.Linear only). */
  includeRelu?: boolean;
}

/**
 * torch's bias_correction (_correct_bias.py) on a converted model, in place: for each quantized
 * conv / linear in model order, the mean over the calibration batches and every dim but the channel
 * of (int8 output, dequantized) - (float layer on the same dequantized input) leaves the bias, then
 * the next layer is measured with the corrections so far. The float layers come from the fused float
 * model the int8 one was converted from (same names). Returns the corrections.
 */
export function quantizedBiasCorrection(floatModel: Module, quantized: Module, batches: Tensor[], o: QuantizedBiasCorrectionOptions = {}): Map<string, Float64Array> {
  const names = [...quantized.namedModules()]
    .filter(([, m]) => (m instanceof QuantizedConv2d || m instanceof QuantizedLinear) && (o.includeRelu || !m.relu))
    .map(([n]) => n);
  const out = new Map<string, Float64Array>();
  for (const n of names) {
    const q = quantized.getSubmodule(n) as QuantizedConv2d | QuantizedLinear;
    if (!q.bias) continue;
    const fm = floatModel.getSubmodule(n), l = weightLayer(fm);
    const relu = fm instanceof ConvReLU2d || fm instanceof LinearReLU;
    const err = new Float64Array(q.bias.length);
    const off = q.registerForwardHook((_m, inputs, y) => {
      const x = (inputs[0] as QTensor).dequantize();
      const ref = channelMeans(l instanceof Conv2d ? l.convForward(x, relu) : l.linearForward(x, relu));
      const got = channelMeans((y as QTensor).dequantize());
      for (let i = 0; i < err.length; i++) err[i] += (got[i] - ref[i]) / batches.length;
    });
    for (const b of batches) quantized.call(b);
    off();
    const bias = Float32Array.from(q.bias, (v, i) => v - err[i]);
    const fixed = q instanceof QuantizedConv2d
      ? new QuantizedConv2d(q.geometry, q.weight, bias, q.scale, q.zeroPoint, q.relu)
      : new QuantizedLinear(q.inFeatures, q.outFeatures, q.weight, bias, q.scale, q.zeroPoint, q.relu);
    for (const h of q._forwardHooks) fixed.registerForwardHook(h);
    quantized.setSubmodule(n, fixed);
    out.set(n, err);
  }
  return out;
}
