// `ptq eval`: accuracy of a quantized model file, or of a float model (--arch/--weights).
import { Command } from 'commander';
import { evaluate } from '../evaluate';
import { loadQuantizedModel } from '../io/model-file';
import { writeFileAtomic } from '../io/safetensors';
import { ARCHITECTURES, ArchitectureSpec } from '../models';
import { Module } from '../nn/module';
import { loadFloatModel } from '../workflow';
import { addPreprocessOptions, fallbackOf, greyPreprocessFromArgs, hasGreyOptions, openDatasetFromArgs, positiveInt, PreprocessArgs, runnerFor, selectBackend } from './options';
import { GreyPreprocess } from '../data/datasets';
import type { ImagePreprocess } from '../io/images';
import { importOnnx } from '../io/onnx-import';
import { GraphModule } from '../nn/graph';
import { progressBar } from './progress';

interface EvalArgs extends PreprocessArgs {
  onnx?: string;
  relu6: string;
  fallback: string;
  dataset: string;
  split: string;
  limit?: string;
  batchSize: string;
  saveLogits?: string;
  json?: boolean;
  arch?: string;
  numClasses: string;
  weights?: string;
  backend: string;
}

/** The model to evaluate: a quantized model file, or a zoo architecture with float weights. */
export function modelFromArgs(file: string | undefined, a: { arch?: string; numClasses: string; weights?: string }): Module {
  return evalModelFromArgs(file, { relu6: 'clamp', ...a }).model;
}

/** The model to evaluate and the preprocessing its file recorded (or the ONNX input shape). */
function evalModelFromArgs(file: string | undefined, a: { arch?: string; numClasses: string; weights?: string; onnx?: string; relu6: string; fallback?: string }):
  { model: Module; stored?: GreyPreprocess; image?: ImagePreprocess; inputShape?: (number | null)[] } {
  if (a.onnx) {
    if (file || a.arch || a.weights) throw new Error('give one of: a quantized model file, --onnx FILE, or --arch/--weights');
    if (a.relu6 !== 'relu' && a.relu6 !== 'clamp') throw new Error(`--relu6 must be 'relu' or 'clamp', got '${a.relu6}'`);
    const model: GraphModule = importOnnx(a.onnx, { relu6: a.relu6, fallback: fallbackOf(a.fallback) });
    return { model, inputShape: model.spec.inputShape };
  }
  if (file) {
    if (a.arch || a.weights) throw new Error('give either a quantized model file or --arch/--weights, not both');
    const l = loadQuantizedModel(file);
    const stored = (l.info.provenance as { preprocess?: GreyPreprocess } | undefined)?.preprocess;
    return { model: l.model, stored, image: l.info.preprocess, inputShape: l.info.graph?.inputShape };
  }
  if (!a.arch || !a.weights) throw new Error('give a quantized model file, or --arch and --weights for a float model');
  if (!(ARCHITECTURES as readonly string[]).includes(a.arch)) throw new Error(`unknown --arch '${a.arch}'; expected one of ${ARCHITECTURES.join(', ')}`);
  const spec: ArchitectureSpec = { arch: a.arch as ArchitectureSpec['arch'], numClasses: positiveInt('--num-classes', a.numClasses) };
  return { model: loadFloatModel(spec, a.weights) };
}

/** Registers `ptq eval` on the program. */
export function registerEval(p: Command): void {
  const c = p.command('eval [model]')
    .description('top-1/top-5 accuracy of a quantized model file, of an ONNX model (--onnx FILE, float or int8), or of a float zoo model (--arch/--weights)')
    .requiredOption('--dataset <spec>', "evaluation data: 'fashion-mnist:DIR' or 'imagefolder:DIR'")
    .option('--split <name>', 'train or test', 'test')
    .option('--limit <n>', 'evaluate the first n images only')
    .option('--batch-size <n>', 'batch size', '50')
    .option('--save-logits <file>', 'write raw float32 little-endian logits [N, num_classes]')
    .option('--arch <name>', `float model architecture (${ARCHITECTURES.join(', ')})`)
    .option('--num-classes <n>', 'number of classes of the float model', '1000')
    .option('--weights <file>', 'float weights (.pth or .safetensors)')
    .option('--onnx <file>', 'an ONNX model: float (evaluated in float), or int8 (QOperator or QDQ, run on our int8 kernels)')
    .option('--fallback <mode>', "ONNX ops ptq-node cannot quantize: 'error', or 'float' to keep them in float between DeQuantize and Quantize", 'error')
    .option('--relu6 <mode>', "ONNX ReLU6: 'clamp' (keep) or 'relu' (replace by ReLU)", 'clamp')
    .option('--backend <name>', 'kernels: native or reference', 'native')
    .option('--json', 'print {"top1","top5","count"} as JSON');
  addPreprocessOptions(c).action(async (file: string | undefined, a: EvalArgs) => {
    selectBackend(a.backend);
    if (a.split !== 'test' && a.split !== 'train') throw new Error(`--split must be 'test' or 'train', got '${a.split}'`);
    const { model, stored, image, inputShape } = evalModelFromArgs(file, a);
    const grey = stored || inputShape || hasGreyOptions(a) ? greyPreprocessFromArgs(a, { stored, inputShape }) : undefined;
    const limit = a.limit !== undefined ? positiveInt('--limit', a.limit) : undefined;
    // An image folder uses the preprocessing the model file recorded, unless options override it.
    const ds = await openDatasetFromArgs(a.dataset, a.split, a, limit, grey, image);
    const total = Math.min(ds.length, limit ?? ds.length);
    const bar = progressBar('evaluating', total, a.json);
    const bs = positiveInt('--batch-size', a.batchSize);
    const r = evaluate(runnerFor(model, ds.sampleShape, a.backend, bs), ds, { batchSize: bs, limit, keepLogits: !!a.saveLogits, onProgress: (d) => bar.update(d) });
    bar.stop();
    if (a.saveLogits && r.logits) writeFileAtomic(a.saveLogits, new Uint8Array(r.logits.buffer, r.logits.byteOffset, r.logits.byteLength));
    if (a.json) console.log(JSON.stringify({ top1: r.top1, top5: r.top5, count: r.count, tied_max: r.tiedMax }));
    else
      console.log(`Acc@1 ${r.top1.toFixed(2)}  Acc@5 ${r.top5.toFixed(2)} on ${r.count} images ` +
        `(${r.tiedMax} with a tied maximum logit, resolved to the lowest class index; ${(r.count / r.seconds).toFixed(0)} images/s)`);
  });
}
