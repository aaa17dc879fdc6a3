// An observer attached to a module as its `activation_post_process` child, as in PyTorch eager
// mode. Calling it records the tensor's statistics and returns the tensor unchanged.
import { Module } from '../nn/module';
import { Tensor } from '../tensor';
import { ObserverBase, PerChannelMinMaxObserver } from './observer';

/** Module wrapper of an observer (prints as the observer itself). */
export class ObserverModule extends Module {
  constructor(readonly observer: ObserverBase) {
    super();
  }
  forward(x: unknown): unknown {
    if (!(x instanceof Tensor)) throw new TypeError('observers take Tensors');
    // Per-tensor statistics do not depend on memory order; per-channel ones need logical order.
    const t = this.observer instanceof PerChannelMinMaxObserver ? x.contiguous() : x;
    this.observer.forward(t.data, t.shape);
    return x;
  }
  typeName(): string {
    return this.observer.constructor.name;
  }
  toString(): string {
    return this.observer.toString();
  }
}
