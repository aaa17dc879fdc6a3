// Module fusion (torch/ao/quantization/fuse_modules.py, eval mode): Conv+BN folding with PyTorch's
// exact float32 operation order (numerics.md A.6), Conv(+BN)+ReLU -> ConvReLU2d, Linear+ReLU ->
// LinearReLU. The fused module takes the first slot; the others become Identity.
import { BatchNorm2d, Conv2d, Identity, Linear, ReLU } from '../nn/layers';
import { ConvReLU2d, LinearReLU } from '../nn/intrinsic';
import { deepCopy, Module } from '../nn/module';
import { Tensor } from '../tensor';

const fround = Math.fround;

/** fuse_conv_bn_weights: returns [fused weight, fused bias] computed in float32 like torch. */
export function fuseConvBnWeights(
  convW: Tensor, convB: Tensor | null, rm: Float32Array, rv: Float32Array, eps: number, bnW: Float32Array, bnB: Float32Array,
): [Tensor, Tensor] {
  const cout = convW.shape[0];
  const per = convW.numel / cout;
  const w = new Float32Array(convW.numel);
  const b = new Float32Array(cout);
  const epsF = fround(eps);
  for (let c = 0; c < cout; c++) {
    // bn_var_rsqrt = torch.rsqrt(bn_rv + bn_eps): 1 / sqrt, each rounded to float32 (ATen's rsqrt).
    const rsqrt = fround(1 / fround(Math.sqrt(fround(rv[c] + epsF))));
    const scale = fround(bnW[c] * rsqrt);
    for (let i = c * per; i < (c + 1) * per; i++) w[i] = fround(convW.data[i] * scale);
    const cb = convB ? convB.data[c] : 0;
    // (conv_b - bn_rm) * bn_var_rsqrt * bn_w + bn_b, left to right.
    b[c] = fround(fround(fround(fround(cb - rm[c]) * rsqrt) * bnW[c]) + bnB[c]);
  }
  return [new Tensor(w, convW.shape), new Tensor(b, [cout])];
}

let structureOnly = false;

/**
 * Runs fn (a fuse) for its module structure only: Conv+BN becomes the conv itself, without the
 * folded copy. For skeletons whose fused weights are replaced right away (loading a quantized
 * model file), where computing them would only cost time and memory.
 */
export function fuseStructureOnly<T>(fn: () => T): T {
  const before = structureOnly;
  structureOnly = true;
  try {
    return fn();
  } finally {
    structureOnly = before;
  }
}

/** fuse_conv_bn_eval: a copy of conv with the batch norm folded in. */
export function fuseConvBnEval(conv: Conv2d, bn: BatchNorm2d): Conv2d {
  if (conv.training || bn.training) throw new Error('Fusion only for eval!');
  if (structureOnly) return conv;
  const fused = deepCopy(conv);
  const [w, b] = fuseConvBnWeights(
    conv.weight, conv.bias, bn._buffers.get('running_mean')!.data, bn._buffers.get('running_var')!.data, bn.eps,
    bn._parameters.get('weight')!.data, bn._parameters.get('bias')!.data,
  );
  fused.weight = w;
  fused.bias = b;
  return fused;
}

/** fuse_known_modules for one list: the fused module, or a clear error for unknown patterns. */
function fuseKnown(mods: Module[]): Module {
  const types = mods.map((m) => m.typeName()).join(', ');
  const [a, b, c] = mods;
  if (mods.length === 2 && a instanceof Conv2d && b instanceof BatchNorm2d) return fuseConvBnEval(a, b);
  if (mods.length === 3 && a instanceof Conv2d && b instanceof BatchNorm2d && c instanceof ReLU)
    return new ConvReLU2d(fuseConvBnEval(a, b), c);
  if (mods.length === 2 && a instanceof Conv2d && b instanceof ReLU) return new ConvReLU2d(a, b);
  if (mods.length === 2 && a instanceof Linear && b instanceof ReLU) return new LinearReLU(a, b);
  throw new Error(`Cannot fuse modules: (${types}); supported: (Conv2d, BatchNorm2d), (Conv2d, BatchNorm2d, ReLU), ` +
    '(Conv2d, ReLU), (Linear, ReLU)');
}

/**
 * fuse_modules(model, modules_to_fuse): fuses each list of dotted names (one list, or a list of
 * lists). inplace=false (PyTorch's default) fuses a deep copy and returns it.
 */
export function fuseModules<T extends Module>(model: T, modulesToFuse: string[] | string[][], inplace = false): T {
  const target = inplace ? model : deepCopy(model);
  const lists = (modulesToFuse.length > 0 && Array.isArray(modulesToFuse[0]) ? modulesToFuse : [modulesToFuse]) as string[][];
  for (const names of lists) {
    const mods = names.map((n) => target.getSubmodule(n));
    const fused = fuseKnown(mods);
    fused.train(mods[0].training);
    // Forward hooks of the last module move to the fused one (PyTorch does the same).
    for (const h of mods[mods.length - 1]._forwardHooks) fused.registerForwardHook(h);
    target.setSubmodule(names[0], fused);
    for (const n of names.slice(1)) {
      const id = new Identity();
      id.training = fused.training;
      target.setSubmodule(n, id);
    }
  }
  return target;
}
