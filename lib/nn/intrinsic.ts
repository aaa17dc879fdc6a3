// Fused modules (torch.ao.nn.intrinsic): what fusion produces. They keep their parts as children
// (printed and named like PyTorch's) and run the fused kernel: conv/linear with ReLU in the epilogue.
import { Tensor } from '../tensor';
import { Conv2d, Linear, ReLU, Sequential } from './layers';
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

/** True for modules produced by fusion. */
export function isFused(m: Module): m is FusedModule {
  return m instanceof FusedModule;
}
