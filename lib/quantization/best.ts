// `--qconfig best`: tries qconfigs and methods on the calibration images and keeps the one with the
// best top-1 on a held-out split of the *training* images (never the test set). Also the
// mixed-precision helper: quantize, rank the layers by sensitivity, leave the worst N in float.
import { Dataset } from '../data/datasets';
import { evaluate } from '../evaluate';
import { compileModel } from '../inference';
import { FusableModel } from '../models';
import { floatIslands } from '../nn/float-island';
import { Module } from '../nn/module';
import { Tensor } from '../tensor';
import { qconfigByName } from '../workflow';
import { calibrationBatches, PtqMethods, ptqQuantize, PtqResult } from './pipeline';
import { LayerSensitivity, sensitivityAnalysis } from './sensitivity';

/** One configuration tried by the search. */
export interface Candidate {
  /** e.g. 'mse+cle+abc'. */
  label: string;
  qconfig: string;
  methods: PtqMethods;
}

/** The label of a qconfig name plus methods, as the CLI and the benchmark print it. */
export function candidateLabel(qconfig: string, m: PtqMethods): string {
  const parts = [qconfig];
  if (m.equalize) parts.push('cle');
  if (m.absorbBias) parts.push('absorb');
  if (m.biasCorrection === 'empirical') parts.push('ebc');
  if (m.biasCorrection === 'weights') parts.push('wbc');
  if (m.biasCorrection === 'analytical') parts.push('abc');
  if (m.floatModules?.length) parts.push(`float${m.floatModules.length}`);
  return parts.join('+');
}

/** 'mse+cle+abc' -> qconfig name and methods. */
export function parseConfigLabel(label: string): { qconfig: string; methods: PtqMethods } {
  const [qconfig, ...parts] = label.split('+');
  qconfigByName(qconfig);
  const methods: PtqMethods = {};
  for (const p of parts) {
    if (p === 'cle') methods.equalize = true;
    else if (p === 'absorb') methods.absorbBias = true;
    else if (p === 'ebc') methods.biasCorrection = 'empirical';
    else if (p === 'abc') methods.biasCorrection = 'analytical';
    else if (p === 'wbc') methods.biasCorrection = 'weights';
    else throw new RangeError(`unknown method '${p}' in '${label}'; expected cle, absorb, ebc, wbc or abc`);
  }
  return { qconfig, methods };
}

/** The default search space: every qconfig as is, and with equalization + analytical or empirical bias correction. */
export function defaultCandidates(): Candidate[] {
  const out: Candidate[] = [];
  const variants: PtqMethods[] = [{}, { equalize: true, biasCorrection: 'analytical' }, { equalize: true, biasCorrection: 'empirical' }];
  for (const q of ['default', 'fbgemm', 'fullrange', 'percentile', 'entropy', 'mse']) {
    for (const methods of variants) out.push({ label: candidateLabel(q, methods), qconfig: q, methods });
  }
  return out;
}

/** Top-1 of a converted model on images [start, start + count) of a dataset (compiled when possible). */
export function heldOutTop1(model: Module, ds: Dataset, start: number, count: number, batchSize = 100): number {
  const view = {
    length: Math.min(count, ds.length - start), numClasses: ds.numClasses,
    batch: (s: number, c: number) => ds.batch(start + s, c),
  };
  const first = ds.batch(start, 1).images as Tensor;
  const runner = floatIslands(model).length ? model : (() => {
    const c = compileModel(model, { inputShape: first.shape.slice(1), maxBatch: batchSize });
    return { call: (x: unknown) => c.runSync(x as Tensor) };
  })();
  return evaluate(runner, view, { batchSize }).top1;
}

/** Options of searchBest. */
export interface BestOptions {
  /** A fresh float model (unfused, eval mode) for each candidate. */
  createModel: () => FusableModel;
  calibration: Dataset;
  calibBatches: number;
  batchSize: number;
  /** Held-out images: [heldOutStart, heldOutStart + heldOutCount) of the calibration dataset. */
  heldOutStart?: number;
  heldOutCount?: number;
  candidates?: Candidate[];
  onCandidate?: (c: Candidate, top1: number, i: number, n: number) => void;
}

/** The search result: every candidate's held-out top-1 and the best converted model. */
export interface BestResult {
  best: Candidate;
  bestTop1: number;
  results: Array<{ candidate: Candidate; heldOutTop1: number }>;
  quantized: PtqResult;
  heldOut: { start: number; count: number };
}

/** Tries each candidate; keeps the best held-out top-1 (ties: the earlier, simpler candidate). */
export function searchBest(o: BestOptions): BestResult {
  const calibImages = o.calibBatches * o.batchSize;
  const start = o.heldOutStart ?? calibImages;
  const count = Math.min(o.heldOutCount ?? 2000, o.calibration.length - start);
  if (count < 1) throw new RangeError(`no held-out images: the calibration set has ${o.calibration.length} images and calibration uses ${calibImages}`);
  if (start < calibImages) throw new RangeError('the held-out split must not overlap the calibration images');
  const candidates = o.candidates ?? defaultCandidates();
  const results: BestResult['results'] = [];
  let best: { i: number; top1: number; q: PtqResult } | null = null;
  candidates.forEach((c, i) => {
    const q = ptqQuantize(o.createModel(), { qconfig: qconfigByName(c.qconfig), calibration: o.calibration, calibBatches: o.calibBatches, batchSize: o.batchSize, ...c.methods });
    const top1 = heldOutTop1(q.model, o.calibration, start, count);
    results.push({ candidate: c, heldOutTop1: top1 });
    o.onCandidate?.(c, top1, i, candidates.length);
    if (!best || top1 > best.top1) best = { i, top1, q };
  });
  const b = best as unknown as { i: number; top1: number; q: PtqResult };
  return { best: candidates[b.i], bestTop1: b.top1, results, quantized: b.q, heldOut: { start, count } };
}

/**
 * Mixed precision: quantizes with the given methods, ranks the int8 layers by local SQNR on the
 * calibration images, then quantizes again with the worst `n` layers left in float.
 */
export function quantizeMixed(createModel: () => FusableModel, o: Parameters<typeof ptqQuantize>[1], n: number, sensitivityImages = 64):
  PtqResult & { sensitivity: LayerSensitivity[]; floatModules: string[] } {
  const first = ptqQuantize(createModel(), { ...o, floatModules: [] });
  const batches = calibrationBatches(o.calibration, o.batchSize, Math.min(sensitivityImages, o.calibBatches * o.batchSize), o.calibStart ?? 0).map((b) => b.images as Tensor);
  const sensitivity = sensitivityAnalysis(first.floatModel, first.model, batches);
  const floatModules = sensitivity.slice(0, n).map((s) => s.name);
  const second = n > 0 ? ptqQuantize(createModel(), { ...o, floatModules }) : first;
  return { ...second, sensitivity, floatModules };
}
