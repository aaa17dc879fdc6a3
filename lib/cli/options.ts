// Shared CLI option parsing.
import type { Command } from 'commander';
import { Dataset, ImageFolder, openDataset } from '../data/datasets';
import { ImagePreprocess, IMAGENET_PREPROCESS, PREPROCESS_PRESETS, validatePreprocess } from '../io/images';
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

/** The image preprocessing options shared by quantize, eval and serve. */
export interface PreprocessArgs {
  preprocess?: string;
  resize?: string;
  crop?: string;
  mean?: string;
  std?: string;
  grayscale?: boolean;
  channels?: string;
}

/** Adds --preprocess/--resize/--crop/--mean/--std/--grayscale/--channels to a command. */
export function addPreprocessOptions(c: Command): Command {
  return c
    .option('--preprocess <preset>', `image preprocessing preset (${Object.keys(PREPROCESS_PRESETS).join(', ')}); the options below override it`)
    .option('--resize <n>', "resize the shorter side to n (bilinear, antialiased, as torchvision on PIL); 'none' to skip")
    .option('--crop <size>', "center crop: n or HxW; 'none' to skip")
    .option('--mean <list>', 'normalization mean, one value or one per channel (comma separated)')
    .option('--std <list>', 'normalization std, one value or one per channel')
    .option('--grayscale', 'convert images to grey first (PIL L) and replicate to --channels')
    .option('--channels <n>', 'model input channels: 1 or 3');
}

/** The preprocessing from the options: the preset (default `fallback`) with overrides applied. */
export function preprocessFromArgs(a: PreprocessArgs, fallback: ImagePreprocess = IMAGENET_PREPROCESS): ImagePreprocess {
  let base = fallback;
  if (a.preprocess !== undefined) {
    base = PREPROCESS_PRESETS[a.preprocess];
    if (!base) throw new Error(`--preprocess must be one of ${Object.keys(PREPROCESS_PRESETS).join(', ')}, got '${a.preprocess}'`);
  }
  const p: ImagePreprocess = { ...base, mean: [...base.mean], std: [...base.std], crop: base.crop ? [...base.crop] : null };
  const list = (name: string, v: string) => {
    const xs = v.split(',').map((x) => Number(x.trim()));
    if (xs.length === 0 || !xs.every(Number.isFinite)) throw new Error(`${name} must be comma-separated numbers, got '${v}'`);
    return xs;
  };
  if (a.resize !== undefined) p.resize = a.resize === 'none' ? null : positiveInt('--resize', a.resize);
  if (a.crop !== undefined) {
    if (a.crop === 'none') p.crop = null;
    else {
      const m = /^(\d+)(?:x(\d+))?$/.exec(a.crop);
      if (!m) throw new Error(`--crop must be n or HxW, got '${a.crop}'`);
      p.crop = [positiveInt('--crop', m[1]), positiveInt('--crop', m[2] ?? m[1])];
    }
  }
  if (a.mean !== undefined) p.mean = list('--mean', a.mean);
  if (a.std !== undefined) p.std = list('--std', a.std);
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

/** Opens --dataset with the preprocessing options and decodes the first `count` images of an image folder. */
export async function openDatasetFromArgs(spec: string, split: 'train' | 'test', a: PreprocessArgs, count?: number): Promise<Dataset> {
  const ds = openDataset(spec, split, { preprocess: spec.startsWith('imagefolder:') ? preprocessFromArgs(a) : undefined });
  if (ds instanceof ImageFolder) await ds.load(0, count ?? ds.length);
  return ds;
}
