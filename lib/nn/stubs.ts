// QuantStub / DeQuantStub: identity in the float model; they mark where convert() quantizes the
// input and dequantizes the output. After prepare(), QuantStub observes the model input.
import { Module } from './module';

/** Marks the float -> int8 boundary (becomes Quantize at convert). */
export class QuantStub extends Module {
  forward(x: unknown): unknown {
    return x;
  }
}

/** Marks the int8 -> float boundary (becomes DeQuantize at convert). */
export class DeQuantStub extends Module {
  forward(x: unknown): unknown {
    return x;
  }
}
