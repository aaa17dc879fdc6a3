// Fused modules (torch.ao.nn.intrinsic): what fusion produces. They keep their parts as children
// (printed and named like PyTorch's) and run the fused kernel: conv/linear with ReLU in the epilogue.
import { Tensor } from '../tensor';
import { Conv2d, Linear, ReLU, ReLU6, Sequential } from './layers';
import { Module } from './module';

/** Base of fused modules (torch's _FusedModule): prepare() observes the fused output only. */
export abstract class FusedModule extends Sequential {}

/** Conv2d followed by ReLU, fused. */
export class ConvReLU2d extends FusedModule {
  constructor(conv: Conv2d, relu: ReLU) {
    super(conv, relu);
  }
  get conv(): Conv2d {
    return this.at(0) as Conv2d;
  }
  forward(x: unknown): Tensor {
    return this.conv.convForward(x, true);
  }
}

/** Linear followed by ReLU, fused. */
export class LinearReLU extends FusedModule {
  constructor(linear: Linear, relu: ReLU) {
    super(linear, relu);
  }
  get linear(): Linear {
    return this.at(0) as Linear;
  }
  forward(x: unknown): Tensor {
    return this.linear.linearForward(x, true);
  }
}

/** Conv2d followed by ReLU6 (min(max(x, 0), 6)), fused; quantized as a conv with a clamped output. */
export class ConvReLU62d extends FusedModule {
  constructor(conv: Conv2d, relu6: ReLU6) {
    super(conv, relu6);
  }
  get conv(): Conv2d {
    return this.at(0) as Conv2d;
  }
  forward(x: unknown): Tensor {
    const y = this.conv.convForward(x, true);
    const d = y.data;
    for (let i = 0; i < d.length; i++) if (d[i] > 6) d[i] = 6;
    return y;
  }
}

/** True for modules produced by fusion. */
export function isFused(m: Module): m is FusedModule {
  return m instanceof FusedModule;
}
