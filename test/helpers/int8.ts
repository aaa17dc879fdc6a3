// The uint8 logits of a converted model: the input of its final DeQuantize, caught by a hook.
import { Module } from '../../lib/nn/module';
import { QTensor } from '../../lib/qtensor';
import { Tensor } from '../../lib/tensor';

/** The uint8 logits (input of the final DeQuantize, slot 'dequant') of a converted model on x. */
export function int8Logits(q: Module, x: Tensor): QTensor {
  let logits: QTensor | undefined;
  const remove = q.getSubmodule('dequant').registerForwardHook((_m, inputs) => {
    logits = inputs[0] as QTensor;
  });
  try {
    q.call(x);
  } finally {
    remove();
  }
  return logits!;
}
