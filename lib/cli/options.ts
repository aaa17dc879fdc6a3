// Shared CLI option parsing.
import { setFloatKernels } from '../kernels/float-select';
import { referenceFloatKernels } from '../kernels/reference/float';
import { setDefaultBackend } from '../kernels/default';
import type { Classifier } from '../evaluate';
import { compileModel, planCompatible } from '../inference';
import { Module } from '../nn/module';
import { Quantize } from '../nn/quantized';

import { Tensor } from '../tensor';
import { Command } from 'commander';
import { FASHION_MNIST_PREPROCESS, GreyPreprocess } from '../data/datasets';

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
  if (backend !== 'native' || !quantized || !planCompatible(model)) return model;
  const compiled = compileModel(model, { inputShape: sampleShape, maxBatch: batchSize });
  return { call: (x: unknown) => compiled.runSync(x as Tensor) };
}

/** The preprocessing options of quantize / eval (image datasets). */
export interface PreprocessArgs {
  size?: string;
  mean?: string;
  std?: string;
  channels?: string;
}

function floatList(name: string, v: string): number[] {
  const a = v.split(',').map((x) => Number(x.trim()));
  if (a.length === 0 || a.some((x) => !Number.isFinite(x))) throw new Error(`${name} must be a number or a comma-separated list of numbers, got '${v}'`);
  return a;
}

/**
 * The dataset preprocessing from --size/--mean/--std/--channels over defaults: the shipped
 * model's Fashion-MNIST normalization, `stored` (what a model file recorded at quantize time) and
 * the static input shape of an ONNX graph ([N, C, H, W]: channels C, size H when H == W).
 */
export function preprocessFromArgs(a: PreprocessArgs, o: { stored?: GreyPreprocess; inputShape?: (number | null)[] } = {}): GreyPreprocess {
  const p: GreyPreprocess = { ...FASHION_MNIST_PREPROCESS, ...(o.stored ?? {}) };
  const s = o.inputShape;
  if (!o.stored && s && s.length === 4) {
    if (s[1]) p.channels = s[1];
    if (s[2] && s[2] === s[3]) p.size = s[2];
  }
  if (a.channels !== undefined) p.channels = positiveInt('--channels', a.channels);
  if (a.size !== undefined) p.size = positiveInt('--size', a.size);
  if (a.mean !== undefined) p.mean = floatList('--mean', a.mean);
  if (a.std !== undefined) p.std = floatList('--std', a.std);
  if (s && s.length === 4) {
    if (s[1] && s[1] !== p.channels) throw new Error(`the ONNX model takes ${s[1]} input channels, --channels is ${p.channels}`);
    if (s[2] && p.size && s[2] !== p.size) throw new Error(`the ONNX model takes ${s[2]}x${s[3]} inputs, --size is ${p.size}`);
  }
  return p;
}

/** Adds --size/--mean/--std/--channels to a command. */
export function addPreprocessOptions(c: Command): Command {
  return c
    .option('--size <n>', 'resize images to n x n (bilinear, as F.interpolate(align_corners=False)); default: the dataset size, or the ONNX input size')
    .option('--mean <list>', 'normalization mean, one value or one per channel (default 0.286, Fashion-MNIST)')
    .option('--std <list>', 'normalization std, one value or one per channel (default 0.353)')
    .option('--channels <n>', 'channels the grey images are replicated to (default 3, or the ONNX input channels)');
}

/** Parses --fallback. */
export function fallbackOf(v: string | undefined): 'error' | 'float' {
  if (v === undefined || v === 'error') return 'error';
  if (v === 'float') return 'float';
  throw new Error(`--fallback must be 'error' or 'float', got '${v}'`);
}
