// Shared CLI option parsing.
import * as fs from 'fs';
import type { Command } from 'commander';
import { Dataset, FASHION_MNIST_PREPROCESS, GreyPreprocess, ImageFolder, openDataset } from '../data/datasets';
import { ImagePreprocess, IMAGENET_PREPROCESS, PREPROCESS_PRESETS, validatePreprocess } from '../io/images';
import { setFloatKernels } from '../kernels/float-select';
import { referenceFloatKernels } from '../kernels/reference/float';
import { setDefaultBackend } from '../kernels/default';
import type { Classifier } from '../evaluate';
import { compileModel, planCompatible } from '../inference';
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
  if (backend !== 'native' || !quantized || floatIslands(model).length || !planCompatible(model)) return model;
  const compiled = compileModel(model, { inputShape: sampleShape, maxBatch: batchSize });
  return { call: (x: unknown) => compiled.runSync(x as Tensor) };
}

/** The image preprocessing options shared by quantize, eval and serve. */
export interface PreprocessArgs {
  /** Fashion-MNIST (IDX) datasets: resize to size x size. */
  size?: string;
  preprocess?: string;
  resize?: string;
  crop?: string;
  mean?: string;
  std?: string;
  grayscale?: boolean;
  channels?: string;
}

/** Adds the preprocessing options (image folders and Fashion-MNIST) to a command. */
export function addPreprocessOptions(c: Command): Command {
  return c
    .option('--preprocess <preset>', `image folders: preprocessing preset (${Object.keys(PREPROCESS_PRESETS).join(', ')}); the options below override it`)
    .option('--resize <n>', "image folders: resize the shorter side to n (bilinear, antialiased, as torchvision on PIL); 'none' to skip")
    .option('--crop <size>', "image folders: center crop, n or HxW; 'none' to skip")
    .option('--size <n>', 'fashion-mnist: resize images to n x n (bilinear, as F.interpolate(align_corners=False)); default: 28, or the ONNX input size')
    .option('--mean <list>', 'normalization mean, one value or one per channel (fashion-mnist default 0.286)')
    .option('--std <list>', 'normalization std, one value or one per channel (fashion-mnist default 0.353)')
    .option('--grayscale', 'image folders: convert images to grey first (PIL L) and replicate to --channels')
    .option('--channels <n>', 'model input channels (image folders: 1 or 3; fashion-mnist: grey replicated to n, default 3 or the ONNX input channels)');
}

/** The preprocessing from the options: the preset (default `fallback`) with overrides applied. */
export function preprocessFromArgs(a: PreprocessArgs, fallback: ImagePreprocess = IMAGENET_PREPROCESS): ImagePreprocess {
  let base = fallback;
  if (a.preprocess !== undefined) {
    base = PREPROCESS_PRESETS[a.preprocess];
    if (!base) throw new Error(`--preprocess must be one of ${Object.keys(PREPROCESS_PRESETS).join(', ')}, got '${a.preprocess}'`);
  }
  const p: ImagePreprocess = { ...base, mean: [...base.mean], std: [...base.std], crop: base.crop ? [...base.crop] : null };
  if (a.resize !== undefined) p.resize = a.resize === 'none' ? null : positiveInt('--resize', a.resize);
  if (a.crop !== undefined) {
    if (a.crop === 'none') p.crop = null;
    else {
      const m = /^(\d+)(?:x(\d+))?$/.exec(a.crop);
      if (!m) throw new Error(`--crop must be n or HxW, got '${a.crop}'`);
      p.crop = [positiveInt('--crop', m[1]), positiveInt('--crop', m[2] ?? m[1])];
    }
  }
  if (a.mean !== undefined) p.mean = floatList('--mean', a.mean);
  if (a.std !== undefined) p.std = floatList('--std', a.std);
  if (a.grayscale) p.grayscale = true;
  if (a.channels !== undefined) {
    const c = Number(a.channels);
    if (c !== 1 && c !== 3) throw new Error(`--channels must be 1 or 3, got '${a.channels}'`);
    p.channels = c;
  }
  try {
    return validatePreprocess(p);
  } catch (e) {
    throw new Error(`bad preprocessing options: ${(e as Error).message}`);
  }
}

/** True when an option that changes the Fashion-MNIST preprocessing was given. */
export function hasGreyOptions(a: PreprocessArgs): boolean {
  return a.size !== undefined || a.mean !== undefined || a.std !== undefined || a.channels !== undefined;
}

/** A number or a comma-separated list of numbers (--mean, --std). */
function floatList(name: string, v: string): number[] {
  const a = v.split(',').map((x) => Number(x.trim()));
  if (a.length === 0 || a.some((x) => !Number.isFinite(x))) throw new Error(`${name} must be a number or a comma-separated list of numbers, got '${v}'`);
  return a;
}

/**
 * The Fashion-MNIST preprocessing from --size/--mean/--std/--channels over defaults: the shipped
 * model's normalization, `stored` (what a model file recorded at quantize time) and the static
 * input shape of an ONNX graph ([N, C, H, W]: channels C, size H when H == W).
 */
export function greyPreprocessFromArgs(a: PreprocessArgs, o: { stored?: GreyPreprocess; inputShape?: (number | null)[] } = {}): GreyPreprocess {
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

/** Parses --fallback. */
export function fallbackOf(v: string | undefined): 'error' | 'float' {
  if (v === undefined || v === 'error') return 'error';
  if (v === 'float') return 'float';
  throw new Error(`--fallback must be 'error' or 'float', got '${v}'`);
}

/**
 * Opens --dataset with the preprocessing options (an image folder: `preprocessFromArgs` over
 * `image`, e.g. what a model file recorded; Fashion-MNIST: `grey` when given) and decodes the first
 * `count` images of an image folder.
 */
export async function openDatasetFromArgs(
  spec: string, split: 'train' | 'test', a: PreprocessArgs, count?: number, grey?: GreyPreprocess, image?: ImagePreprocess,
): Promise<Dataset> {
  const folder = spec.startsWith('imagefolder:');
  const ds = openDataset(spec, split, folder ? { preprocess: preprocessFromArgs(a, image) } : { grey });
  if (ds instanceof ImageFolder) await ds.load(0, count ?? ds.length);
  return ds;
}

/** A labels file: one class name per line (blank lines at the end ignored). */
export function readLabels(file: string): string[] {
  const lines = fs.readFileSync(file, 'utf8').split(/\r?\n/);
  while (lines.length && lines[lines.length - 1].trim() === '') lines.pop();
  if (lines.length === 0) throw new Error(`${file}: no labels`);
  return lines.map((l) => l.trim());
}
