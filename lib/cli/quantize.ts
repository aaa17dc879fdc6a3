// `ptq quantize`: float weights + calibration data -> converted int8 model file.
import * as fs from 'fs';
import { Command } from 'commander';
import { ImageFolder } from '../data/datasets';
import { saveQuantizedModel } from '../io/model-file';
import { ARCHITECTURES, ArchitectureSpec } from '../models';
import { packageVersion } from '../version';
import { loadFloatModel, QCONFIG_NAMES, qconfigByName, quantizeModel } from '../workflow';
import { addPreprocessOptions, openDatasetFromArgs, positiveInt, PreprocessArgs, selectBackend } from './options';
import { progressBar } from './progress';

interface QuantizeArgs extends PreprocessArgs {
  labels?: string;
  arch: string;
  numClasses: string;
  weights: string;
  dataset: string;
  calibBatches: string;
  batchSize: string;
  qconfig: string;
  out: string;
  backend: string;
  json?: boolean;
}

/** Registers `ptq quantize` on the program. */
export function registerQuantize(p: Command): void {
  const c = p.command('quantize')
    .description('calibrate a float model on training images and write the converted int8 model (.safetensors)')
    .requiredOption('--arch <name>', `architecture (${ARCHITECTURES.join(', ')})`)
    .option('--num-classes <n>', 'number of classes', '1000')
    .requiredOption('--weights <file>', 'float weights: PyTorch .pth state_dict or .safetensors')
    .requiredOption('--dataset <spec>', "calibration data: 'fashion-mnist:DIR' or 'imagefolder:DIR' (train split, file order)")
    .option('--calib-batches <n>', 'calibration batches', '10')
    .option('--batch-size <n>', 'calibration batch size', '30')
    .option('--qconfig <name>', `quantization config (${QCONFIG_NAMES.join(', ')})`, 'default')
    .requiredOption('--out <file>', 'output model file (.safetensors)')
    .option('--backend <name>', 'kernels: native or reference', 'native')
    .option('--labels <file>', 'class names, one per line, stored in the model file (an image folder stores its class names)')
    .option('--json', 'print a JSON summary');
  addPreprocessOptions(c)
    .action(async (a: QuantizeArgs) => {
      selectBackend(a.backend);
      const spec: ArchitectureSpec = { arch: a.arch as ArchitectureSpec['arch'], numClasses: positiveInt('--num-classes', a.numClasses) };
      if (!(ARCHITECTURES as readonly string[]).includes(a.arch)) throw new Error(`unknown --arch '${a.arch}'; expected one of ${ARCHITECTURES.join(', ')}`);
      const qconfig = qconfigByName(a.qconfig);
      const calibBatches = positiveInt('--calib-batches', a.calibBatches), batchSize = positiveInt('--batch-size', a.batchSize);
      const model = loadFloatModel(spec, a.weights);
      const ds = await openDatasetFromArgs(a.dataset, 'train', a, calibBatches * batchSize);
      const total = Math.min(calibBatches * batchSize, ds.length);
      const labels = a.labels ? readLabels(a.labels) : ds instanceof ImageFolder ? ds.classes : undefined;
      const bar = progressBar('calibrating', total, a.json);
      const t0 = Date.now();
      const q = quantizeModel(model, { qconfig, calibration: ds, calibBatches, batchSize, onProgress: (d) => bar.update(d) });
      bar.stop();
      saveQuantizedModel(a.out, q, {
        architecture: spec, qconfig: String(qconfig),
        provenance: { tool: `ptq-node ${packageVersion()}`, weights: a.weights, dataset: a.dataset, calibImages: total, qconfigName: a.qconfig },
        ...(labels ? { labels } : {}),
        ...(ds instanceof ImageFolder ? { preprocess: ds.preprocess } : {}),
      });
      const summary = { out: a.out, qconfig: a.qconfig, calibImages: total, seconds: (Date.now() - t0) / 1000 };
      console.log(a.json ? JSON.stringify(summary) : `wrote ${a.out} (qconfig ${a.qconfig}, calibrated on ${total} images in ${summary.seconds.toFixed(1)} s)`);
    });
}

/** A labels file: one class name per line (blank lines at the end ignored). */
export function readLabels(file: string): string[] {
  const lines = fs.readFileSync(file, 'utf8').split(/\r?\n/);
  while (lines.length && lines[lines.length - 1].trim() === '') lines.pop();
  if (lines.length === 0) throw new Error(`${file}: no labels`);
  return lines.map((l) => l.trim());
}
