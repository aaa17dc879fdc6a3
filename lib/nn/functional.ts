// FloatFunctional: tensor ops as a module, so prepare() can observe their outputs (the tutorial
// replaces `x + y` by `skip_add.add(x, y)`). activation_post_process is Identity until prepare().
import { getFloatKernels } from '../kernels/float-select';
import { outputBuffer, Tensor } from '../tensor';
import { Identity } from './layers';
import { Module } from './module';

function sameShape(op: string, a: Tensor, b: Tensor): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i]))
    throw new RangeError(`FloatFunctional.${op}: shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}] differ`);
}

/** The float model's add / add_relu / mul / cat, observed after prepare(). */
export class FloatFunctional extends Module {
  constructor() {
    super();
    this.addModule('activation_post_process', new Identity());
  }

  forward(): never {
    throw new Error('FloatFunctional is not meant to be called: use add, add_relu, mul or cat');
  }

  private post(r: Tensor): Tensor {
    return this._modules.get('activation_post_process')!.call(r) as Tensor;
  }

  private elementwise(op: 'add' | 'add_relu' | 'mul', a: Tensor, b: Tensor): Tensor {
    sameShape(op, a, b);
    const fmt = a.memoryFormat;
    const bb = fmt === 'channels_last' ? b.toChannelsLast() : b.contiguous();
    const y = outputBuffer(a.numel);
    getFloatKernels().binary(op, a.data, bb.data, y);
    return new Tensor(y, a.shape, fmt);
  }

  /** x + y, observed. */
  add(x: Tensor, y: Tensor): Tensor {
    return this.post(this.elementwise('add', x, y));
  }

  /** relu(x + y), observed. */
  add_relu(x: Tensor, y: Tensor): Tensor {
    return this.post(this.elementwise('add_relu', x, y));
  }

  /** x * y, observed. */
  mul(x: Tensor, y: Tensor): Tensor {
    return this.post(this.elementwise('mul', x, y));
  }

  /** torch.cat(xs, dim), observed (dim 1 = channels of 4-D tensors, or the last dim of 2-D). */
  cat(xs: Tensor[], dim = 0): Tensor {
    if (xs.length === 0) throw new RangeError('FloatFunctional.cat needs at least one tensor');
    const rank = xs[0].shape.length;
    const d = dim < 0 ? dim + rank : dim;
    const base = xs.map((t) => t.contiguous());
    for (const t of base)
      if (t.shape.length !== rank || t.shape.some((s, i) => i !== d && s !== base[0].shape[i]))
        throw new RangeError('FloatFunctional.cat: tensors must match except in the cat dimension');
    const outer = base[0].shape.slice(0, d).reduce((p, q) => p * q, 1);
    const inner = base[0].shape.slice(d + 1).reduce((p, q) => p * q, 1);
    const total = base.reduce((s, t) => s + t.shape[d], 0);
    const y = new Float32Array(outer * total * inner);
    let off = 0;
    for (const t of base) {
      const len = t.shape[d] * inner;
      for (let o = 0; o < outer; o++) y.set(t.data.subarray(o * len, (o + 1) * len), o * total * inner + off);
      off += len;
    }
    const shape = [...base[0].shape];
    shape[d] = total;
    const out = new Tensor(y, shape);
    return this.post(xs[0].memoryFormat === 'channels_last' ? out.toChannelsLast() : out);
  }
}
