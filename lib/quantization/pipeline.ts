// PTQ with the methods that beat PyTorch's flow: the tutorial's fuse -> qconfig -> prepare ->
// calibrate -> convert, with cross-layer equalization, bias absorption and bias correction applied
// to the fused float model before calibration, and optionally some layers left in float.
import { Batch, Dataset, dataLoader } from '../data/datasets';
import { FusableModel } from '../models';
import { MobileNetV2 } from '../models/mobilenet_v2';
import { ResNet } from '../models/resnet';
import { Module, deepCopy } from '../nn/module';
import { Tensor } from '../tensor';
import { analyticalBiasCorrection, empiricalBiasCorrection, quantizedBiasCorrection } from './bias-correction';
import { convert } from './convert';
import { absorbBiases, batchNormStd, equalize, EqualizeResult, LayerPair, mobilenetV2Pairs, resnetPairs } from './equalize';
import { QConfig } from './qconfig';
import { prepare } from './quantize';
import { keepInFloat } from './sensitivity';

/** Which methods to apply. */
export interface PtqMethods {
  /** Cross-layer equalization (after fusion). */
  equalize?: boolean;
  /** Bias absorption after equalization (needs BN statistics). */
  absorbBias?: boolean;
  /**
   * Bias correction: 'empirical' = torch's _correct_bias.py on the converted model (int8 layer vs float
   * layer on the same input, calibration images, after calibration); 'weights' = DFQ's empirical
   * correction of the weight quantization only (float model, before calibration); 'analytical' = DFQ's
   * data-free correction from BN statistics.
   */
  biasCorrection?: 'none' | 'empirical' | 'weights' | 'analytical';
  /** Calibration images used by empirical bias correction (default 128). */
  biasCorrectionImages?: number;
  /** Layers (fused names) left in float. */
  floatModules?: string[];
}

/** Options of ptqQuantize. */
export interface PtqOptions extends PtqMethods {
  qconfig: QConfig;
  calibration: Dataset;
  calibBatches: number;
  batchSize: number;
  /** First calibration image (default 0). */
  calibStart?: number;
  onProgress?: (done: number, total: number) => void;
}

/** What ptqQuantize returns. */
export interface PtqResult {
  /** The converted model. */
  model: Module;
  /** The fused float model after equalization / bias correction (before observers). */
  floatModel: Module;
  equalization?: EqualizeResult;
  pairs?: LayerPair[];
}

/** The equalization pairs of a fused zoo model (MobileNetV2, ResNet). */
export function equalizationPairs(model: Module): LayerPair[] {
  if (model instanceof MobileNetV2) return mobilenetV2Pairs(model);
  if (model instanceof ResNet) return resnetPairs(model);
  throw new Error(`cross-layer equalization knows the layer pairs of mobilenet_v2 and resnet only, not ${model.typeName()}`);
}

/** The calibration images as batches (file order from calibStart). */
export function calibrationBatches(ds: Dataset, batchSize: number, maxImages: number, start = 0): Batch[] {
  return [...dataLoader(ds, batchSize, { start, limit: maxImages })];
}

/** Applies the float-model methods to an unfused float model in eval mode: fuse, equalize, absorb, correct (in place). */
export function applyFloatMethods(model: FusableModel, o: PtqOptions): { equalization?: EqualizeResult; pairs?: LayerPair[] } {
  model.eval();
  const std = batchNormStd(model);
  model.fuseModel();
  const r: { equalization?: EqualizeResult; pairs?: LayerPair[] } = {};
  const needPairs = o.equalize || o.absorbBias || o.biasCorrection === 'analytical';
  if (needPairs) r.pairs = equalizationPairs(model);
  if (o.equalize) r.equalization = equalize(model, r.pairs!, { preActStd: std });
  if (o.absorbBias) absorbBiases(model, r.pairs!, std);
  const bc = o.biasCorrection ?? 'none';
  if (bc === 'weights') {
    const n = Math.min(o.biasCorrectionImages ?? 128, o.calibBatches * o.batchSize);
    const batches = calibrationBatches(o.calibration, o.batchSize, n, o.calibStart ?? 0).map((b) => b.images as Tensor);
    empiricalBiasCorrection(model, o.qconfig, batches);
  } else if (bc === 'analytical') {
    analyticalBiasCorrection(model, o.qconfig, r.pairs!, std);
  } else if (bc !== 'none' && bc !== 'empirical') {
    throw new RangeError(`bias correction must be none, empirical, weights or analytical, got '${String(bc)}'`);
  }
  return r;
}

/** fuse -> methods -> qconfig -> (float islands) -> prepare -> calibrate -> convert. The input model is modified. */
export function ptqQuantize(model: FusableModel, o: PtqOptions): PtqResult {
  const r = applyFloatMethods(model, o);
  const floatModel = deepCopy(model);
  if (o.floatModules?.length) keepInFloat(model, o.floatModules);
  model.qconfig = o.qconfig;
  prepare(model, true);
  const start = o.calibStart ?? 0;
  const total = Math.min(o.calibBatches * o.batchSize, o.calibration.length - start);
  let done = 0;
  for (const b of dataLoader(o.calibration, o.batchSize, { start, limit: total })) {
    model.call(b.images);
    done += b.labels.length;
    o.onProgress?.(done, total);
  }
  const q = convert(model, true);
  if (o.biasCorrection === 'empirical') {
    const n = Math.min(o.biasCorrectionImages ?? 128, total);
    const batches = calibrationBatches(o.calibration, o.batchSize, n, start).map((b) => b.images as Tensor);
    quantizedBiasCorrection(floatModel, q, batches);
  }
  return { model: q, floatModel, ...r };
}
