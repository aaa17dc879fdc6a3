// Cross-layer equalization (Nagel et al. 2019, "Data-Free Quantization", section 4.1; PyTorch's
// torch/ao/quantization/_equalize.py) and bias absorption (section 4.1.1), on a fused float model.
//
// For consecutive layers y = W2 relu(W1 x + b1) + b2, relu(x / s) = relu(x) / s for s > 0, so dividing
// output channel i of layer 1 (weights and bias) by s_i and multiplying input channel i of layer 2 by
// s_i leaves the function unchanged. With r1_i, r2_i the ranges (max - min, as _equalize.py's
// channel_range) of those channels, s_i = sqrt(r1_i / r2_i) = sqrt(r1_i * r2_i) / r2_i makes both
// ranges sqrt(r1_i * r2_i). Depthwise convs (groups == channels) pair channel i with filter i.
// A chain a -> b -> c takes part in two pairs, so the pairs are swept until the scales converge.
import { Conv2d, Linear } from '../nn/layers';
import { ConvReLU2d, LinearReLU } from '../nn/intrinsic';
import { Module } from '../nn/module';
import { Tensor } from '../tensor';
import { InvertedResidual, MobileNetV2 } from '../models/mobilenet_v2';
import { BasicBlock, Bottleneck } from '../models/resnet';

/** A weight layer of a fused model: the conv / linear and whether a ReLU follows it in the fused module. */
export function weightLayer(m: Module): Conv2d | Linear {
  if (m instanceof ConvReLU2d) return m.conv;
  if (m instanceof LinearReLU) return m.linear;
  if (m instanceof Conv2d || m instanceof Linear) return m;
  throw new TypeError(`not a conv / linear layer: ${m.typeName()}`);
}

/** Output and input channel counts of a layer, and whether it is depthwise. */
function dims(l: Conv2d | Linear): { out: number; inPerGroup: number; groups: number; spatial: number } {
  const s = l.weight.shape;
  const groups = l instanceof Conv2d ? l.groups : 1;
  return { out: s[0], inPerGroup: s[1], groups, spatial: s.length === 4 ? s[2] * s[3] : 1 };
}

/** Per-output-channel range (max - min) of a layer's weights. */
export function outputChannelRanges(l: Conv2d | Linear): Float64Array {
  const w = l.weight.data, d = dims(l), per = d.inPerGroup * d.spatial;
  const r = new Float64Array(d.out);
  for (let o = 0; o < d.out; o++) {
    let mn = Infinity, mx = -Infinity;
    for (let i = o * per; i < (o + 1) * per; i++) { if (w[i] < mn) mn = w[i]; if (w[i] > mx) mx = w[i]; }
    r[o] = mx - mn;
  }
  return r;
}

/** Per-input-channel range (max - min) of a layer's weights (depthwise: channel i is filter i). */
export function inputChannelRanges(l: Conv2d | Linear): Float64Array {
  const w = l.weight.data, d = dims(l);
  const cin = d.inPerGroup * d.groups, outPerGroup = d.out / d.groups;
  const mn = new Float64Array(cin).fill(Infinity), mx = new Float64Array(cin).fill(-Infinity);
  for (let o = 0; o < d.out; o++) {
    const g = Math.floor(o / outPerGroup);
    for (let ci = 0; ci < d.inPerGroup; ci++) {
      const c = g * d.inPerGroup + ci, base = (o * d.inPerGroup + ci) * d.spatial;
      for (let k = 0; k < d.spatial; k++) { const v = w[base + k]; if (v < mn[c]) mn[c] = v; if (v > mx[c]) mx[c] = v; }
    }
  }
  return mx.map((v, i) => v - mn[i]);
}

/** Multiplies output channel o of a layer (weights and bias) by f[o]. New tensors (packed caches see the change). */
export function scaleOutputChannels(l: Conv2d | Linear, f: ArrayLike<number>): void {
  const d = dims(l), per = d.inPerGroup * d.spatial;
  const w = l.weight.data.slice();
  for (let o = 0; o < d.out; o++) for (let i = o * per; i < (o + 1) * per; i++) w[i] = w[i] * f[o];
  l.weight = new Tensor(w, l.weight.shape);
  if (l.bias) l.bias = new Tensor(l.bias.data.map((b, o) => b * f[o]), l.bias.shape);
}

/** Multiplies input channel c of a layer's weights by f[c]. */
export function scaleInputChannels(l: Conv2d | Linear, f: ArrayLike<number>): void {
  const d = dims(l), outPerGroup = d.out / d.groups;
  const w = l.weight.data.slice();
  for (let o = 0; o < d.out; o++) {
    const g = Math.floor(o / outPerGroup);
    for (let ci = 0; ci < d.inPerGroup; ci++) {
      const s = f[g * d.inPerGroup + ci], base = (o * d.inPerGroup + ci) * d.spatial;
      for (let k = 0; k < d.spatial; k++) w[base + k] = w[base + k] * s;
    }
  }
  l.weight = new Tensor(w, l.weight.shape);
}

/** A pair of consecutive layers (qualified names in the fused model) with only ReLU or nothing between. */
export type LayerPair = [string, string];

/**
 * The equalizable pairs of a fused tutorial MobileNetV2: the stem and the first depthwise conv,
 * expand -> depthwise -> project inside each block, and project -> next expand (or the last 1x1
 * conv) where neither block has a residual connection (the skip add would see the rescaling).
 */
export function mobilenetV2Pairs(model: MobileNetV2): LayerPair[] {
  const pairs: LayerPair[] = [];
  const features = model.getSubmodule('features');
  const names = [...features.namedChildren()].map(([n]) => n);
  // the layers of each feature, in order: stem / last conv are one ConvReLU, blocks their conv list
  const chains: Array<{ layers: string[]; residual: boolean }> = [];
  for (const n of names) {
    const f = features.getSubmodule(n);
    if (f instanceof InvertedResidual) {
      // after fusion: ConvBNReLU -> Sequential(ConvReLU2d, Identity, Identity); the projection is a Conv2d
      const layers: string[] = [];
      for (const [k, m] of f.conv.namedChildren()) {
        if (m instanceof ConvReLU2d || m instanceof Conv2d) layers.push(`features.${n}.conv.${k}`);
        else if (m._modules.get('0') instanceof ConvReLU2d) layers.push(`features.${n}.conv.${k}.0`);
      }
      chains.push({ layers, residual: f.useResConnect });
    } else {
      chains.push({ layers: [`features.${n}.0`], residual: false });
    }
  }
  for (let i = 0; i < chains.length; i++) {
    const c = chains[i];
    for (let j = 0; j + 1 < c.layers.length; j++) pairs.push([c.layers[j], c.layers[j + 1]]);
    const next = chains[i + 1];
    if (!next) continue;
    const last = model.getSubmodule(c.layers[c.layers.length - 1]);
    // after a ReLU layer (the stem) the next layer can always be paired; after a linear projection only
    // when no skip add reads the projection (this block) or the next block's input (next block)
    if (last instanceof ConvReLU2d || (!c.residual && !next.residual)) pairs.push([c.layers[c.layers.length - 1], next.layers[0]]);
  }
  return pairs;
}

/**
 * The equalizable pairs of a fused torchvision ResNet: inside each block, conv1 -> (ReLU) -> conv2 and,
 * in bottlenecks, conv2 -> (ReLU) -> conv3. The block outputs feed skip adds, so no pairs cross blocks.
 */
export function resnetPairs(model: Module): LayerPair[] {
  const pairs: LayerPair[] = [];
  for (const [n, m] of model.namedModules()) {
    if (m instanceof BasicBlock) pairs.push([`${n}.conv1`, `${n}.conv2`]);
    if (m instanceof Bottleneck) pairs.push([`${n}.conv1`, `${n}.conv2`], [`${n}.conv2`, `${n}.conv3`]);
  }
  return pairs;
}

/** Options of equalize(). */
export interface EqualizeOptions {
  /** Stop when every scale of a sweep is within threshold of 1 (default 1e-4, as _equalize.py). */
  threshold?: number;
  maxIterations?: number;
  /** Per-channel standard deviations of the pre-activations (BN gamma), rescaled with the channels. */
  preActStd?: Map<string, Float64Array>;
}

/** Result of equalize(). */
export interface EqualizeResult {
  iterations: number;
  pairs: LayerPair[];
  /** Output-channel weight ranges of each first layer before and after (for reports). */
  rangesBefore: Map<string, Float64Array>;
  rangesAfter: Map<string, Float64Array>;
}

/** One cross-layer equalization step of a pair; returns the largest |s - 1|. */
export function equalizePair(l1: Conv2d | Linear, l2: Conv2d | Linear, std?: Float64Array): number {
  const r1 = outputChannelRanges(l1), r2 = inputChannelRanges(l2);
  if (r1.length !== r2.length) throw new RangeError(`cannot equalize: ${r1.length} output channels vs ${r2.length} input channels`);
  const s = new Float64Array(r1.length), inv = new Float64Array(r1.length);
  let change = 0;
  for (let i = 0; i < s.length; i++) {
    s[i] = r1[i] > 0 && r2[i] > 0 ? Math.sqrt(r1[i] / r2[i]) : 1;
    inv[i] = 1 / s[i];
    change = Math.max(change, Math.abs(s[i] - 1));
  }
  scaleOutputChannels(l1, inv);
  scaleInputChannels(l2, s);
  if (std) for (let i = 0; i < s.length; i++) std[i] *= inv[i];
  return change;
}

/** Cross-layer equalization of the given pairs, swept until convergence (in place). */
export function equalize(model: Module, pairs: LayerPair[], o: EqualizeOptions = {}): EqualizeResult {
  const threshold = o.threshold ?? 1e-4, maxIt = o.maxIterations ?? 100;
  const rangesBefore = new Map<string, Float64Array>(), rangesAfter = new Map<string, Float64Array>();
  for (const [a] of pairs) rangesBefore.set(a, outputChannelRanges(weightLayer(model.getSubmodule(a))));
  let it = 0;
  for (; it < maxIt; it++) {
    let change = 0;
    for (const [a, b] of pairs)
      change = Math.max(change, equalizePair(weightLayer(model.getSubmodule(a)), weightLayer(model.getSubmodule(b)), o.preActStd?.get(a)));
    if (change < threshold) { it++; break; }
  }
  for (const [a] of pairs) rangesAfter.set(a, outputChannelRanges(weightLayer(model.getSubmodule(a))));
  return { iterations: it, pairs, rangesBefore, rangesAfter };
}

/**
 * The per-channel standard deviation of each conv's pre-activation as batch norm predicts it (|gamma|),
 * keyed by the conv's name after fusion. Call on the unfused model (the BN layers are still there).
 */
export function batchNormStd(model: Module): Map<string, Float64Array> {
  const out = new Map<string, Float64Array>();
  for (const [name, m] of model.namedModules()) {
    const kids = [...m.namedChildren()];
    for (let i = 0; i + 1 < kids.length; i++) {
      const [k, c] = kids[i], [, bn] = kids[i + 1];
      if (c instanceof Conv2d && bn.typeName() === 'BatchNorm2d') {
        const g = bn._parameters.get('weight')!.data;
        out.set(name ? `${name}.${k}` : k, Float64Array.from(g, Math.abs));
      }
    }
  }
  return out;
}

/**
 * Bias absorption (DFQ 4.1.1): for a pair a -> relu -> b where b has no padding, the part
 * c = max(0, beta - 3 sigma) of a's pre-activation that ReLU always lets through moves into b's bias
 * (b += W_b c, a -= c). Exact whenever a's pre-activation stays above beta - 3 sigma. Returns the
 * number of channels changed.
 */
export function absorbBiases(model: Module, pairs: LayerPair[], preActStd: Map<string, Float64Array>, nSigma = 3): number {
  let changed = 0;
  for (const [a, b] of pairs) {
    const ma = model.getSubmodule(a), std = preActStd.get(a);
    if (!(ma instanceof ConvReLU2d) || !std) continue;
    const la = ma.conv, lb = weightLayer(model.getSubmodule(b));
    if (!la.bias || (lb instanceof Conv2d && (lb.padding[0] !== 0 || lb.padding[1] !== 0))) continue;
    const c = new Float64Array(std.length);
    for (let i = 0; i < c.length; i++) { c[i] = Math.max(0, la.bias.data[i] - nSigma * std[i]); if (c[i] > 0) changed++; }
    const d = dims(lb), outPerGroup = d.out / d.groups;
    const bb = lb.bias ? lb.bias.data.slice() : new Float32Array(d.out);
    const w = lb.weight.data;
    for (let o = 0; o < d.out; o++) {
      const g = Math.floor(o / outPerGroup);
      let acc = 0;
      for (let ci = 0; ci < d.inPerGroup; ci++) {
        const base = (o * d.inPerGroup + ci) * d.spatial;
        let ws = 0;
        for (let k = 0; k < d.spatial; k++) ws += w[base + k];
        acc += ws * c[g * d.inPerGroup + ci];
      }
      bb[o] += acc;
    }
    lb.bias = new Tensor(bb, [d.out]);
    la.bias = new Tensor(la.bias.data.map((v, i) => v - c[i]), la.bias.shape);
  }
  return changed;
}
