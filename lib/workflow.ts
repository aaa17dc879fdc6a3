// The tutorial's PTQ flow as one call: load float weights, eval, fuse, qconfig, prepare,
// calibrate, convert. Each step is also available on its own (lib/quantization).
import { Batch, Dataset, dataLoader } from './data/datasets';
import { loadWeights } from './io/weights';
import { ArchitectureSpec, createModel, FusableModel } from './models';
import { Module } from './nn/module';
import { convert } from './quantization/convert';
import { defaultQConfig, getDefaultQConfig, QConfig } from './quantization/qconfig';
import { prepare } from './quantization/quantize';
import { entropyQConfig, fullRangeQConfig, mseQConfig, percentileQConfig } from './quantization/qconfig-extra';
import { Tensor } from './tensor';

/** Names accepted for --qconfig: PyTorch's, then ptq-node's full-range calibration qconfigs. */
export const QCONFIG_NAMES = ['default', 'fbgemm', 'x86', 'qnnpack', 'onednn', 'fullrange', 'percentile', 'entropy', 'mse'] as const;

/**
 * The QConfig of a name: 'default' = torch's default_qconfig, PyTorch's backends = get_default_qconfig(name);
 * 'fullrange' (histogram), 'percentile' (99.99), 'entropy' (KL), 'mse': quint8 0..255 activations and
 * per-channel symmetric weights (lib/quantization/qconfig-extra.ts).
 */
export function qconfigByName(name: string): QConfig {
  if (name === 'default') return defaultQConfig;
  if (name === 'fullrange') return fullRangeQConfig;
  if (name === 'percentile') return percentileQConfig();
  if (name === 'entropy') return entropyQConfig();
  if (name === 'mse') return mseQConfig();
  if ((QCONFIG_NAMES as readonly string[]).includes(name)) return getDefaultQConfig(name as 'fbgemm');
  throw new RangeError(`unknown qconfig '${name}'; expected one of ${QCONFIG_NAMES.join(', ')}`);
}

/** A zoo model with float weights from a .pth/.safetensors file, in eval mode. */
export function loadFloatModel(spec: ArchitectureSpec, weightsFile: string): FusableModel {
  const model = createModel(spec);
  model.loadStateDict(loadWeights(weightsFile));
  return model.eval();
}

/** Runs the model on `batches` batches of the dataset in file order (calibration or evaluation). */
export function runBatches(model: Module, ds: Dataset, batchSize: number, maxBatches: number | undefined,
  onBatch?: (b: Batch, out: Tensor, done: number) => void): number {
  let done = 0;
  for (const b of dataLoader(ds, batchSize, { maxBatches })) {
    const out = model.call(b.images) as Tensor;
    done += b.labels.length;
    onBatch?.(b, out, done);
  }
  return done;
}

/** Options of quantizeModel. */
export interface QuantizeOptions {
  qconfig: QConfig;
  calibration: Dataset;
  calibBatches: number;
  batchSize: number;
  onProgress?: (done: number, total: number) => void;
}

/** fuse -> qconfig -> prepare -> calibrate -> convert, on a float model in eval mode (modified in place). */
export function quantizeModel(model: FusableModel, o: QuantizeOptions): Module {
  model.eval();
  model.fuseModel();
  model.qconfig = o.qconfig;
  prepare(model, true);
  const total = Math.min(o.calibBatches * o.batchSize, o.calibration.length);
  runBatches(model, o.calibration, o.batchSize, o.calibBatches, (_b, _o, done) => o.onProgress?.(done, total));
  return convert(model, true);
}
