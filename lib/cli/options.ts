// Shared CLI option parsing.
import { setFloatKernels } from '../kernels/float-select';
import { referenceFloatKernels } from '../kernels/reference/float';
import { setDefaultBackend } from '../kernels/default';
import type { Classifier } from '../evaluate';
import { compileModel } from '../inference';
import { Module } from '../nn/module';
import { floatIslands } from '../nn/float-island';
import { Quantize } from '../nn/quantized';
import { Tensor } from '../tensor';

/** Parses a positive integer option or throws naming it. */
export function positiveInt(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got '${v}'`);
  return n;
}

/** Applies --backend: 'native' (default) or 'reference' for float and int8 kernels. */
export function selectBackend(name: string): void {
  if (name !== 'native' && name !== 'reference') throw new Error(`--backend must be 'native' or 'reference', got '${name}'`);
  setDefaultBackend(name);
  if (name === 'reference') setFloatKernels(referenceFloatKernels);
}

/**
 * What evaluation calls: a converted model compiled into a native plan when the native backend is
 * selected (outputs identical to the module forward, see test/plan.test.ts), else the model itself.
 */
export function runnerFor(model: Module, sampleShape: number[], backend: string, batchSize: number): Classifier {
  const quantized = [...model.modules()].some((m) => m instanceof Quantize);
  // mixed-precision models (float islands) run module by module: plans hold int8 layers only
  if (backend !== 'native' || !quantized || floatIslands(model).length) return model;
  const compiled = compileModel(model, { inputShape: sampleShape, maxBatch: batchSize });
  return { call: (x: unknown) => compiled.runSync(x as Tensor) };
}
