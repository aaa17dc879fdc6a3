// Eager-mode convert (torch/ao/quantization/quantize.py::convert, 1.13): swaps observed float
// modules for quantized ones, quantizing weights once with the qconfig's weight observer.
import { BatchNorm2d, Conv2d, Dropout, Linear, ReLU6 } from '../nn/layers';
import { FloatFunctional } from '../nn/functional';
import { ConvReLU2d, ConvReLU62d, FusedModule, LinearReLU } from '../nn/intrinsic';
import { deepCopy, Module } from '../nn/module';
import { DeQuantize, QFunctional, QuantizedConv2d, QuantizedDropout, QuantizedLinear, Quantize, QWeight } from '../nn/quantized';
import { DeQuantStub, QuantStub } from '../nn/stubs';
import { Tensor } from '../tensor';
import { roundHalfEven } from './qparams';
import { ObserverModule } from './observer-module';
import { observerHooks } from './quantize';

const fround = Math.fround;

/** quantize_val for qint8 weights: clamp(zp + nearbyint(w * (1.0f/scale)), -128, 127). */
export function quantizeWeight(w: Tensor, qp: { scale: Float32Array; zeroPoint: Int32Array }, perChannel: boolean): QWeight {
  const out = new Int8Array(w.numel);
  const per = perChannel ? w.numel / w.shape[0] : w.numel;
  for (let i = 0; i < w.numel; i++) {
    const c = perChannel ? Math.floor(i / per) : 0;
    const inv = fround(1 / qp.scale[c]);
    const q = qp.zeroPoint[c] + roundHalfEven(fround(w.data[i] * inv));
    out[i] = q < -128 ? -128 : q > 127 ? 127 : q;
  }
  return {
    data: out, shape: [...w.shape], qscheme: perChannel ? 'per_channel_affine' : 'per_tensor_affine',
    scale: Float32Array.from(qp.scale), zeroPoint: Int32Array.from(qp.zeroPoint),
  };
}

function outputQParams(m: Module, what: string): { scale: number; zeroPoint: number } {
  const o = m._modules.get('activation_post_process');
  if (!(o instanceof ObserverModule)) throw new Error(`convert: ${what} has no activation observer; run prepare() and calibrate first`);
  const qp = o.observer.calculateQParams();
  return { scale: qp.scale[0], zeroPoint: qp.zeroPoint[0] };
}

function weightQParams(float: Conv2d | Linear, owner: Module): QWeight {
  const qconfig = owner.qconfig ?? float.qconfig;
  if (!qconfig) throw new Error('convert: module has no qconfig');
  const obs = qconfig.weight();
  obs.forward(float.weight.data, float.weight.shape);
  if (obs.dtype !== 'qint8') throw new Error(`convert: weight observer dtype must be qint8, got ${obs.dtype}`);
  const perChannel = obs.qscheme === 'per_channel_symmetric' || obs.qscheme === 'per_channel_affine';
  if (perChannel && (obs as unknown as { chAxis: number }).chAxis !== 0) throw new Error('convert: per-channel weights must use ch_axis 0');
  const qp = obs.calculateQParams();
  if (qp.zeroPoint.some((z) => z !== 0)) throw new Error('convert: weights must be symmetric (zero point 0); use a *_symmetric weight observer');
  return quantizeWeight(float.weight, qp, perChannel);
}

/** swap_module: the quantized replacement of one observed float module, or the module itself. */
function swapModule(m: Module, name: string): Module {
  if (!m.qconfig) return m;
  if (m instanceof QuantStub) {
    const q = outputQParams(m, name);
    return new Quantize(q.scale, q.zeroPoint);
  }
  if (m instanceof DeQuantStub) return new DeQuantize();
  if (m instanceof ConvReLU62d) {
    const q = outputQParams(m, name);
    return new QuantizedConv2d(m.conv.geometry(), weightQParams(m.conv, m), m.conv.bias ? m.conv.bias.data.slice() : null, q.scale, q.zeroPoint, true, 6);
  }
  if (m instanceof ConvReLU2d || m instanceof Conv2d) {
    const conv = m instanceof ConvReLU2d ? m.conv : m;
    const q = outputQParams(m, name);
    return new QuantizedConv2d(conv.geometry(), weightQParams(conv, m), conv.bias ? conv.bias.data.slice() : null, q.scale, q.zeroPoint, m instanceof ConvReLU2d);
  }
  if (m instanceof LinearReLU || m instanceof Linear) {
    const lin = m instanceof LinearReLU ? m.linear : m;
    const q = outputQParams(m, name);
    return new QuantizedLinear(lin.inFeatures, lin.outFeatures, weightQParams(lin, m), lin.bias ? lin.bias.data.slice() : null, q.scale, q.zeroPoint, m instanceof LinearReLU);
  }
  if (m instanceof FloatFunctional) {
    const q = outputQParams(m, name);
    return new QFunctional(q.scale, q.zeroPoint);
  }
  if (m instanceof Dropout) return new QuantizedDropout(m.p);
  if (m instanceof BatchNorm2d) throw new Error(`convert: ${name} is a BatchNorm2d that was not fused; fuse it into the preceding conv first`);
  if (m instanceof ReLU6) throw new Error(`convert: ${name} is a ReLU6; replace it by ReLU (as the tutorial does) before quantizing`);
  return m;
}

function convertChildren(module: Module, prefix: string): void {
  for (const [n, child] of [...module.namedChildren()]) {
    const q = prefix ? `${prefix}.${n}` : n;
    if (!(child instanceof FusedModule)) convertChildren(child, q);
    const swapped = swapModule(child, q);
    if (swapped !== child) {
      // Like torch's swap_module: the user's forward hooks move to the quantized module.
      for (const h of child._forwardHooks) if (!observerHooks.has(h)) swapped.registerForwardHook(h);
      module._modules.set(n, swapped);
    }
  }
}

/**
 * convert(model): the quantized model. Observed modules become quantized modules with int8
 * weights and fixed output qparams; qconfigs and observers are removed. inplace=false (PyTorch's
 * default) converts a deep copy.
 */
export function convert<T extends Module>(model: T, inplace = false): T {
  const m = inplace ? model : deepCopy(model);
  convertChildren(m, '');
  for (const x of m.modules()) {
    delete x.qconfig;
    if (x._modules.get('activation_post_process') instanceof ObserverModule) x._modules.delete('activation_post_process');
    const keep = x._forwardHooks.filter((h) => !observerHooks.has(h));
    x._forwardHooks.length = 0;
    x._forwardHooks.push(...keep);
  }
  return m;
}
