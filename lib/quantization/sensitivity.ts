// Sensitivity analysis: how much error each quantized layer adds, measured on calibration data, and
// mixed precision (the worst layers left in float between DeQuantize and Quantize).
//
// - local SQNR of a layer: its int8 input, dequantized, through the float layer (the reference) vs
//   the int8 layer's dequantized output. This is the error the layer itself adds (weights, bias
//   rounding, output qparams), so a broken layer ranks worst even though everything after it
//   inherits its error.
// - accumulated SQNR: the float model's output of the layer vs the int8 model's, on the same input
//   image (the error of everything up to and including the layer).
import { ConvReLU2d, LinearReLU } from '../nn/intrinsic';
import { FloatIsland } from '../nn/float-island';
import { Module } from '../nn/module';
import { QuantizedConv2d, QuantizedLinear } from '../nn/quantized';
import { QTensor } from '../qtensor';
import { Tensor } from '../tensor';
import { Conv2d, Linear } from '../nn/layers';
import { weightLayer } from './equalize';

/** One layer's sensitivity. */
export interface LayerSensitivity {
  name: string;
  type: string;
  /** 10 log10(sum ref^2 / sum (ref - int8)^2) of the layer alone, dB. */
  localSqnr: number;
  /** Same for the whole model up to this layer, dB. */
  accumulatedSqnr: number;
  /** Mean squared error of the layer alone. */
  localMse: number;
}

function sqnr(sig: number, noise: number): number {
  if (noise === 0) return Infinity;
  return 10 * Math.log10(sig / noise);
}

/** Logical-order float copy of a tensor or a dequantized QTensor. */
function floatOf(t: unknown): Tensor {
  if (t instanceof QTensor) return t.dequantize().contiguous();
  if (t instanceof Tensor) return t.contiguous();
  throw new TypeError('expected a Tensor or QTensor');
}

/**
 * Per-layer SQNR of a converted model against the fused float model it came from (same module
 * names), on the given batches. Sorted worst (lowest local SQNR) first.
 */
export function sensitivityAnalysis(floatModel: Module, quantized: Module, batches: Tensor[]): LayerSensitivity[] {
  const layers = [...quantized.namedModules()].filter(([, m]) => m instanceof QuantizedConv2d || m instanceof QuantizedLinear) as Array<[string, QuantizedConv2d | QuantizedLinear]>;
  const acc = new Map<string, { ls: number; ln: number; as: number; an: number; n: number }>();
  for (const [n] of layers) acc.set(n, { ls: 0, ln: 0, as: 0, an: 0, n: 0 });
  for (const x of batches) {
    const floatOut = new Map<string, Float32Array>();
    const offs: Array<() => void> = [];
    for (const [n] of layers) offs.push(floatModel.getSubmodule(n).registerForwardHook((_m, _i, out) => floatOut.set(n, floatOf(out).data.slice())));
    floatModel.call(x);
    offs.forEach((f) => f());
    offs.length = 0;
    for (const [n, q] of layers) {
      const fm = floatModel.getSubmodule(n), l = weightLayer(fm) as Conv2d | Linear;
      const relu = fm instanceof ConvReLU2d || fm instanceof LinearReLU;
      offs.push(q.registerForwardHook((_m, inputs, out) => {
        const xin = floatOf(inputs[0]);
        const ref = (l instanceof Conv2d ? l.convForward(xin, relu) : l.linearForward(xin, relu)).contiguous().data;
        const got = floatOf(out).data, full = floatOut.get(n)!;
        const a = acc.get(n)!;
        for (let i = 0; i < got.length; i++) {
          const d = ref[i] - got[i], e = full[i] - got[i];
          a.ls += ref[i] * ref[i]; a.ln += d * d; a.as += full[i] * full[i]; a.an += e * e;
        }
        a.n += got.length;
      }));
    }
    quantized.call(x);
    offs.forEach((f) => f());
  }
  const out = layers.map(([n, q]) => {
    const a = acc.get(n)!;
    return { name: n, type: q.typeName(), localSqnr: sqnr(a.ls, a.ln), accumulatedSqnr: sqnr(a.as, a.an), localMse: a.n ? a.ln / a.n : 0 };
  });
  return out.sort((p, q) => p.localSqnr - q.localSqnr);
}

/**
 * Leaves the named modules of a fused float model in float (in place, before prepare): each becomes
 * a FloatIsland (DeQuantStub, the module, QuantStub), so after convert the int8 model dequantizes
 * before it and quantizes its output with observed qparams.
 */
export function keepInFloat(model: Module, names: string[]): void {
  for (const n of names) {
    const m = model.getSubmodule(n);
    if (m instanceof FloatIsland) continue;
    if (!(m instanceof ConvReLU2d || m instanceof LinearReLU || m instanceof Conv2d || m instanceof Linear))
      throw new TypeError(`keepInFloat: ${n} is a ${m.typeName()}; only conv / linear layers (fused or not) can stay float`);
    model.setSubmodule(n, new FloatIsland(m));
  }
}
