// Gathers the report's data: the model file's float origin (rebuilt from the float weights and the
// recorded methods), per-layer SQNR, activation histograms with the int8 ranges, per-channel weight
// ranges before / after equalization, and the accuracy of several configurations.
import { openDataset, Dataset } from '../data/datasets';
import { evaluate } from '../evaluate';
import { compileModel } from '../inference';
import { loadQuantizedModel } from '../io/model-file';
import { ArchitectureSpec, createModel, FusableModel } from '../models';
import { floatIslands } from '../nn/float-island';
import { deepCopy, Module } from '../nn/module';
import { QuantizedConv2d, QuantizedLinear, Quantize } from '../nn/quantized';
import { Tensor } from '../tensor';
import { loadWeights } from '../io/weights';
import { candidateLabel, parseConfigLabel } from '../quantization/best';
import { StreamingHistogram } from '../quantization/calibration-observers';
import { equalize, outputChannelRanges, weightLayer } from '../quantization/equalize';
import { applyFloatMethods, calibrationBatches, equalizationPairs, PtqMethods, ptqQuantize } from '../quantization/pipeline';
import { sensitivityAnalysis } from '../quantization/sensitivity';
import { qconfigByName } from '../workflow';
import { ReportAccuracy, ReportData, ReportHistogram, ReportWeightRange } from './html';

/** Options of buildReport. */
export interface ReportOptions {
  modelFile: string;
  dataset: string;
  /** Float weights (default: the file's provenance). */
  weights?: string;
  /** Extra configurations to quantize and evaluate, e.g. ['default', 'fbgemm', 'mse+cle+abc']. */
  configs?: string[];
  /** Test images evaluated (default: all). */
  limit?: number;
  batchSize?: number;
  /** Calibration images for SQNR and histograms (default 64). */
  analysisImages?: number;
  histogramBins?: number;
  onProgress?: (msg: string) => void;
}

export { parseConfigLabel } from '../quantization/best';

const round = (v: number) => Number(v.toPrecision(5));

function runner(model: Module, sample: number[], bs: number): { call(x: unknown): unknown } {
  if (floatIslands(model).length || ![...model.modules()].some((m) => m instanceof Quantize)) return model;
  const c = compileModel(model, { inputShape: sample, maxBatch: bs });
  return { call: (x: unknown) => c.runSync(x as Tensor) };
}

/** Computes everything the report shows. */
export function buildReport(o: ReportOptions): ReportData {
  const log = o.onProgress ?? (() => undefined);
  const { model: qmodel, info } = loadQuantizedModel(o.modelFile);
  const prov = (info.provenance ?? {}) as Record<string, unknown>;
  const weights = o.weights ?? (typeof prov.weights === 'string' ? prov.weights : undefined);
  if (!weights) throw new Error('the model file does not record its float weights; pass --weights W.pth');
  if (info.architecture.arch === 'graph') throw new Error('ptq report needs a zoo architecture (mobilenet_v2, resnet18, resnet50); models imported from ONNX are not supported yet');
  const spec: ArchitectureSpec = info.architecture;
  const qconfigName = typeof prov.qconfigName === 'string' ? prov.qconfigName : 'default';
  const methods = (prov.methods ?? {}) as PtqMethods;
  const calibImages = typeof prov.calibImages === 'number' ? prov.calibImages : 300;
  const bs = o.batchSize ?? (typeof prov.batchSize === 'number' ? prov.batchSize : 30);
  const train: Dataset = openDataset(o.dataset, 'train');
  const test: Dataset = openDataset(o.dataset, 'test');
  const qconfig = qconfigByName(qconfigName);
  const createFloat = (): FusableModel => {
    const m = createModel(spec);
    m.loadStateDict(loadWeights(weights));
    return m.eval();
  };
  const calibBatches = Math.ceil(calibImages / bs);
  const base = { qconfig, calibration: train, calibBatches, batchSize: bs };

  log('rebuilding the float model');
  const floatModel = createFloat();
  const fm = applyFloatMethods(floatModel, { ...base, ...methods });
  const nAnalysis = Math.min(o.analysisImages ?? 64, calibImages);
  const batches = calibrationBatches(train, bs, nAnalysis).map((b) => b.images as Tensor);

  log('per-layer SQNR');
  const sens = sensitivityAnalysis(floatModel, qmodel, batches);
  const order = new Map([...qmodel.namedModules()].map(([n], i) => [n, i]));
  const layers = sens.slice().sort((a, b) => order.get(a.name)! - order.get(b.name)!)
    .map((s) => ({ name: s.name, type: s.type, localSqnr: round(s.localSqnr), accumulatedSqnr: round(s.accumulatedSqnr) }));

  log('activation histograms');
  const act = qconfig.activation();
  const histNames = [...qmodel.namedModules()].filter(([, m]) => m instanceof Quantize || m instanceof QuantizedConv2d || m instanceof QuantizedLinear) as unknown as Array<[string, { scale: number; zeroPoint: number }]>;
  const hists = new Map<string, StreamingHistogram>();
  const offs: Array<() => void> = [];
  for (const [n] of histNames) {
    // a float island's Quantize observes its float module's output; the float model has the module there
    const fname = n.endsWith('.quant') && floatIslands(qmodel).includes(n.slice(0, -6)) ? n.slice(0, -6) : n;
    let fmod: Module;
    try { fmod = floatModel.getSubmodule(fname); } catch { continue; }
    const h = new StreamingHistogram(o.histogramBins ?? 64);
    hists.set(n, h);
    offs.push(fmod.registerForwardHook((_m, inputs, out) => h.add(((out ?? inputs[0]) as Tensor).contiguous().data)));
  }
  for (const b of batches) floatModel.call(b);
  offs.forEach((f) => f());
  const histograms: ReportHistogram[] = [];
  for (const [n, q] of histNames) {
    const h = hists.get(n);
    if (!h || h.empty) continue;
    histograms.push({
      name: n, lo: round(h.lo), hi: round(h.hi), counts: Array.from(h.counts),
      clipLo: round(q.scale * (act.quantMin - q.zeroPoint)), clipHi: round(q.scale * (act.quantMax - q.zeroPoint)),
    });
  }

  log('weight ranges');
  let weightRanges: ReportWeightRange[] = [];
  let equalized = false;
  if (fm.equalization) {
    equalized = true;
    weightRanges = fm.pairs!.map(([a]) => ({ name: a, before: Array.from(fm.equalization!.rangesBefore.get(a)!, round), after: Array.from(fm.equalization!.rangesAfter.get(a)!, round) }));
  } else {
    try {
      const m = createFloat();
      m.fuseModel();
      const pairs = equalizationPairs(m);
      const before = pairs.map(([a]) => outputChannelRanges(weightLayer(m.getSubmodule(a))));
      const c = deepCopy(m);
      equalize(c, pairs);
      weightRanges = pairs.map(([a], i) => ({ name: a, before: Array.from(before[i], round), after: Array.from(outputChannelRanges(weightLayer(c.getSubmodule(a))), round) }));
    } catch {
      weightRanges = [];
    }
  }

  log('accuracy');
  const limit = Math.min(o.limit ?? test.length, test.length);
  const sample = (test.batch(0, 1).images as Tensor).shape.slice(1);
  const evalOne = (config: string, m: Module, note?: string): ReportAccuracy => {
    const r = evaluate(runner(m, sample, 100), test, { batchSize: 100, limit });
    log(`  ${config}: ${r.top1.toFixed(2)}%`);
    return { config, top1: r.top1, top5: r.top5, count: r.count, note };
  };
  const accuracy: ReportAccuracy[] = [evalOne('float', createFloat(), 'float32 reference')];
  const label = typeof prov.label === 'string' ? prov.label : candidateLabel(qconfigName, methods);
  accuracy.push(evalOne(`${label} (this model)`, qmodel, 'the model file'));
  for (const c of o.configs ?? []) {
    const { qconfig: qn, methods: ms } = parseConfigLabel(c);
    const q = ptqQuantize(createFloat(), { ...base, qconfig: qconfigByName(qn), ...ms }).model;
    accuracy.push(evalOne(c, q));
  }
  return {
    title: `ptq-node quantization report: ${spec.arch}`, model: o.modelFile, label, qconfig: qconfigName, dataset: o.dataset,
    calibImages, evalImages: limit, equalized, layers, histograms, weightRanges, accuracy, generated: new Date().toISOString(),
  };
}
