// `ptq quantize`: float weights (zoo architecture) or a float ONNX model + calibration data ->
// converted int8 model file.
import * as path from 'path';
import { Command } from 'commander';
import { GreyPreprocess, openDataset } from '../data/datasets';
import { importOnnx } from '../io/onnx-import';
import { GraphArchitecture, saveQuantizedModel } from '../io/model-file';
import { ARCHITECTURES, ArchitectureSpec, FusableModel } from '../models';
import { GraphModule } from '../nn/graph';
import { Quantize } from '../nn/quantized';
import { packageVersion } from '../version';
import { loadFloatModel, QCONFIG_NAMES, qconfigByName, quantizeModel } from '../workflow';
import { addPreprocessOptions, fallbackOf, positiveInt, PreprocessArgs, preprocessFromArgs, selectBackend } from './options';
import { progressBar } from './progress';

interface QuantizeArgs extends PreprocessArgs {
  arch?: string;
  onnx?: string;
  relu6: string;
  fallback: string;
  numClasses: string;
  weights?: string;
  dataset: string;
  calibBatches: string;
  batchSize: string;
  qconfig: string;
  out: string;
  backend: string;
  json?: boolean;
}

/** The float model to quantize (zoo architecture with weights, or an ONNX graph) and how to describe it. */
function floatModelFromArgs(a: QuantizeArgs): { model: FusableModel; spec: ArchitectureSpec | GraphArchitecture; preprocess?: GreyPreprocess } {
  if (a.onnx) {
    if (a.arch || a.weights) throw new Error('give either --onnx or --arch/--weights, not both');
    if (a.relu6 !== 'relu' && a.relu6 !== 'clamp') throw new Error(`--relu6 must be 'relu' or 'clamp', got '${a.relu6}'`);
    const model: GraphModule = importOnnx(a.onnx, { relu6: a.relu6, fallback: fallbackOf(a.fallback) });
    if ([...model.modules()].some((m) => m instanceof Quantize))
      throw new Error(`${a.onnx} is already an int8 model; evaluate it with \`ptq eval --onnx ${a.onnx}\``);
    return { model, spec: { arch: 'graph', source: path.basename(a.onnx) }, preprocess: preprocessFromArgs(a, { inputShape: model.spec.inputShape }) };
  }
  if (!a.arch || !a.weights) throw new Error('give --arch and --weights (a zoo architecture), or --onnx FILE');
  if (!(ARCHITECTURES as readonly string[]).includes(a.arch)) throw new Error(`unknown --arch '${a.arch}'; expected one of ${ARCHITECTURES.join(', ')}`);
  const spec: ArchitectureSpec = { arch: a.arch as ArchitectureSpec['arch'], numClasses: positiveInt('--num-classes', a.numClasses) };
  const custom = a.size !== undefined || a.mean !== undefined || a.std !== undefined || a.channels !== undefined;
  return { model: loadFloatModel(spec, a.weights), spec, preprocess: custom ? preprocessFromArgs(a) : undefined };
}

/** Registers `ptq quantize` on the program. */
export function registerQuantize(p: Command): void {
  const c = p.command('quantize')
    .description('calibrate a float model (zoo architecture + weights, or an ONNX file) on training images and write the converted int8 model (.safetensors)')
    .option('--arch <name>', `architecture (${ARCHITECTURES.join(', ')}); or --onnx`)
    .option('--onnx <file>', 'a float ONNX model (opsets 11-17) instead of --arch/--weights')
    .option('--fallback <mode>', "ONNX ops ptq-node cannot quantize: 'error', or 'float' to keep them in float between DeQuantize and Quantize", 'error')
    .option('--relu6 <mode>', "ONNX ReLU6 (Clip 0..6): 'clamp' keeps it (quantized as a clamp), 'relu' replaces it by ReLU as the PyTorch tutorial does", 'clamp')
    .option('--num-classes <n>', 'number of classes', '1000')
    .option('--weights <file>', 'float weights: PyTorch .pth state_dict or .safetensors (with --arch)')
    .requiredOption('--dataset <spec>', "calibration data, e.g. 'fashion-mnist:DIR' (train split, file order)")
    .option('--calib-batches <n>', 'calibration batches', '10')
    .option('--batch-size <n>', 'calibration batch size', '30')
    .option('--qconfig <name>', `quantization config (${QCONFIG_NAMES.join(', ')})`, 'default')
    .requiredOption('--out <file>', 'output model file (.safetensors)')
    .option('--backend <name>', 'kernels: native or reference', 'native')
    .option('--json', 'print a JSON summary');
  addPreprocessOptions(c).action((a: QuantizeArgs) => {
    selectBackend(a.backend);
    const qconfig = qconfigByName(a.qconfig);
    const calibBatches = positiveInt('--calib-batches', a.calibBatches), batchSize = positiveInt('--batch-size', a.batchSize);
    const { model, spec, preprocess } = floatModelFromArgs(a);
    const ds = openDataset(a.dataset, 'train', preprocess);
    const total = Math.min(calibBatches * batchSize, ds.length);
    const bar = progressBar('calibrating', total, a.json);
    const t0 = Date.now();
    const q = quantizeModel(model, { qconfig, calibration: ds, calibBatches, batchSize, onProgress: (d) => bar.update(d) });
    bar.stop();
    const provenance: Record<string, unknown> = { tool: `ptq-node ${packageVersion()}`, dataset: a.dataset, calibImages: total, qconfigName: a.qconfig };
    if (a.onnx) provenance.onnx = a.onnx;
    else provenance.weights = a.weights;
    if (preprocess) provenance.preprocess = preprocess;
    saveQuantizedModel(a.out, q, { architecture: spec, qconfig: String(qconfig), provenance });
    const summary = { out: a.out, qconfig: a.qconfig, calibImages: total, seconds: (Date.now() - t0) / 1000 };
    console.log(a.json ? JSON.stringify(summary) : `wrote ${a.out} (qconfig ${a.qconfig}, calibrated on ${total} images in ${summary.seconds.toFixed(1)} s)`);
  });
}
