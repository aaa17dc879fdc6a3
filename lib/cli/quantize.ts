// `ptq quantize`: float weights (zoo architecture) or a float ONNX model + calibration data ->
// converted int8 model file.
import * as path from 'path';
import { Command } from 'commander';
import { FashionMnist, GreyPreprocess, ImageFolder } from '../data/datasets';
import { importOnnx } from '../io/onnx-import';
import { GraphArchitecture, saveQuantizedModel } from '../io/model-file';
import { ARCHITECTURES, ArchitectureSpec, FusableModel } from '../models';
import { GraphModule } from '../nn/graph';
import { Quantize } from '../nn/quantized';
import { packageVersion } from '../version';
import { loadFloatModel, QCONFIG_NAMES, qconfigByName } from '../workflow';
import { candidateLabel, parseConfigLabel, quantizeMixed, searchBest } from '../quantization/best';
import { PtqMethods, ptqQuantize } from '../quantization/pipeline';
import { fullRangeWarning } from '../quantization/qconfig-extra';
import { loadNative } from '../kernels/native';
import { addPreprocessOptions, fallbackOf, greyPreprocessFromArgs, hasGreyOptions, openDatasetFromArgs, positiveInt, PreprocessArgs, readLabels, selectBackend } from './options';
import { progressBar } from './progress';

interface QuantizeArgs extends PreprocessArgs {
  labels?: string;
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
  equalize?: boolean;
  absorbBias?: boolean;
  biasCorrection: string;
  floatModules?: string;
  heldOut: string;
  candidates?: string;
}

/**
 * The float model to quantize (zoo architecture with weights, or an ONNX graph): a factory (the
 * 'best' search and mixed precision quantize several fresh copies), how to describe it in the model
 * file, and the Fashion-MNIST preprocessing when the options or the ONNX input shape set one.
 */
function floatModelFromArgs(a: QuantizeArgs): { create: () => FusableModel; spec: ArchitectureSpec | GraphArchitecture; grey?: GreyPreprocess } {
  if (a.onnx) {
    const file = a.onnx;
    if (a.arch || a.weights) throw new Error('give either --onnx or --arch/--weights, not both');
    if (a.relu6 !== 'relu' && a.relu6 !== 'clamp') throw new Error(`--relu6 must be 'relu' or 'clamp', got '${a.relu6}'`);
    const relu6 = a.relu6, fallback = fallbackOf(a.fallback);
    const create = (): GraphModule => importOnnx(file, { relu6, fallback });
    const model = create();
    if ([...model.modules()].some((m) => m instanceof Quantize))
      throw new Error(`${file} is already an int8 model; evaluate it with \`ptq eval --onnx ${file}\``);
    return { create, spec: { arch: 'graph', source: path.basename(file) }, grey: greyPreprocessFromArgs(a, { inputShape: model.spec.inputShape }) };
  }
  if (!a.arch || !a.weights) throw new Error('give --arch and --weights (a zoo architecture), or --onnx FILE');
  if (!(ARCHITECTURES as readonly string[]).includes(a.arch)) throw new Error(`unknown --arch '${a.arch}'; expected one of ${ARCHITECTURES.join(', ')}`);
  const spec: ArchitectureSpec = { arch: a.arch as ArchitectureSpec['arch'], numClasses: positiveInt('--num-classes', a.numClasses) };
  const weights = a.weights;
  return { create: () => loadFloatModel(spec, weights), spec, grey: hasGreyOptions(a) ? greyPreprocessFromArgs(a) : undefined };
}

/** Registers `ptq quantize` on the program. */
export function registerQuantize(p: Command): void {
  const c = p.command('quantize')
    .description('calibrate a float model (zoo architecture + weights, or an ONNX file) on training images and write the converted int8 model (.safetensors)')
    .option('--arch <name>', `architecture (${ARCHITECTURES.join(', ')}); or --onnx`)
    .option('--onnx <file>', 'a float ONNX model (opsets 11-17) instead of --arch/--weights')
    .option('--fallback <mode>', "ONNX ops ptq-node cannot quantize: 'error', or 'float' to keep them in float between DeQuantize and Quantize", 'error')
    .option('--relu6 <mode>', "ONNX ReLU6 (Clip 0..6): 'clamp' keeps it (quantized as a clamp), 'relu' replaces it by ReLU as the PyTorch tutorial does", 'clamp')
    .option('--num-classes <n>', 'number of classes (with --arch)', '1000')
    .option('--weights <file>', 'float weights: PyTorch .pth state_dict or .safetensors (with --arch)')
    .requiredOption('--dataset <spec>', "calibration data: 'fashion-mnist:DIR' or 'imagefolder:DIR' (train split, file order)")
    .option('--calib-batches <n>', 'calibration batches', '10')
    .option('--batch-size <n>', 'calibration batch size', '30')
    .option('--qconfig <name>', `quantization config (${QCONFIG_NAMES.join(', ')}), or 'best': try them with and without equalization + bias correction and keep the best top-1 on held-out training images`, 'default')
    .option('--equalize', 'cross-layer equalization after fusion (mobilenet_v2)')
    .option('--absorb-bias', 'bias absorption after equalization (mobilenet_v2)')
    .option('--bias-correction <kind>', "none; empirical (torch's _correct_bias.py on the int8 model, calibration images); weights (DFQ: weight quantization only, float model); analytical (DFQ: batch-norm statistics)", 'none')
    .option('--float-modules <n|names>', 'mixed precision: leave the N most sensitive layers (local SQNR on calibration images), or the comma-separated layers, in float')
    .option('--candidates <labels>', "--qconfig best: comma-separated candidates (e.g. 'default,mse+cle+abc'; default: 6 qconfigs x {plain, +cle+abc, +cle+ebc})")
    .option('--held-out <n>', "--qconfig best: held-out training images after the calibration images", '2000')
    .requiredOption('--out <file>', 'output model file (.safetensors)')
    .option('--backend <name>', 'kernels: native or reference', 'native')
    .option('--labels <file>', 'class names, one per line, stored in the model file (default: the dataset\'s class names)')
    .option('--json', 'print a JSON summary');
  addPreprocessOptions(c)
    .action(async (a: QuantizeArgs) => {
      selectBackend(a.backend);
      const { create, spec, grey } = floatModelFromArgs(a);
      const best = a.qconfig === 'best';
      if (!best) qconfigByName(a.qconfig); // validates the name
      const bc = a.biasCorrection;
      if (!['none', 'empirical', 'weights', 'analytical'].includes(bc)) throw new Error(`--bias-correction must be none, empirical, weights or analytical, got '${bc}'`);
      const calibBatches = positiveInt('--calib-batches', a.calibBatches), batchSize = positiveInt('--batch-size', a.batchSize);
      const heldOut = positiveInt('--held-out', a.heldOut);
      // Image folders decode what is used up front: the calibration images (and the held-out ones for 'best').
      const ds = await openDatasetFromArgs(a.dataset, 'train', a, calibBatches * batchSize + (best ? heldOut : 0), grey);
      const total = Math.min(calibBatches * batchSize, ds.length);
      const labels = a.labels ? readLabels(a.labels) : ds instanceof ImageFolder || ds instanceof FashionMnist ? [...ds.classes] : undefined;
      const t0 = Date.now();
      let qconfigName = a.qconfig;
      let methods: PtqMethods = { equalize: !!a.equalize, absorbBias: !!a.absorbBias, biasCorrection: bc as PtqMethods['biasCorrection'] };
      const extra: Record<string, unknown> = {};
      if (best) {
        const r = searchBest({
          createModel: create, calibration: ds, calibBatches, batchSize, heldOutCount: heldOut,
          candidates: a.candidates?.split(',').map((x) => x.trim()).filter(Boolean).map((label) => ({ label, ...parseConfigLabel(label) })),
          onCandidate: (c, top1, i, n) => { if (!a.json) console.error(`[${i + 1}/${n}] ${c.label}: held-out top-1 ${top1.toFixed(2)}%`); },
        });
        qconfigName = r.best.qconfig;
        methods = { ...r.best.methods };
        extra.best = r.best.label;
        extra.heldOut = r.heldOut;
        extra.candidates = r.results.map((x) => ({ label: x.candidate.label, heldOutTop1: x.heldOutTop1 }));
      }
      const qconfig = qconfigByName(qconfigName);
      const warning = fullRangeWarning(qconfig, loadNative().isa);
      if (warning && !a.json) console.error(warning);
      let floatModules: string[] = [];
      const fm = a.floatModules;
      const o = { qconfig, calibration: ds, calibBatches, batchSize, ...methods };
      let q;
      if (fm !== undefined && /^\d+$/.test(fm)) {
        const r = quantizeMixed(create, o, Number(fm));
        q = r.model;
        floatModules = r.floatModules;
        extra.sensitivity = r.sensitivity.slice(0, Math.max(5, floatModules.length)).map((s) => ({ name: s.name, localSqnr: s.localSqnr }));
      } else {
        if (fm !== undefined) floatModules = fm.split(',').map((x) => x.trim()).filter(Boolean);
        const bar = progressBar('calibrating', total, a.json);
        q = ptqQuantize(create(), { ...o, floatModules, onProgress: (d) => bar.update(d) }).model;
        bar.stop();
      }
      const label = candidateLabel(qconfigName, { ...methods, floatModules });
      saveQuantizedModel(a.out, q, {
        architecture: spec, qconfig: String(qconfig),
        provenance: {
          tool: `ptq-node ${packageVersion()}`, ...(a.onnx ? { onnx: a.onnx } : { weights: a.weights }), dataset: a.dataset,
          calibImages: total, batchSize, qconfigName, methods: { ...methods, floatModules }, label,
          ...(best ? { best: extra.best, heldOut: extra.heldOut } : {}), ...(grey ? { preprocess: grey } : {}),
        },
        ...(labels ? { labels } : {}),
        ...(ds instanceof ImageFolder ? { preprocess: ds.preprocess } : {}),
      });
      const summary = { out: a.out, qconfig: qconfigName, label, calibImages: total, floatModules, seconds: (Date.now() - t0) / 1000, ...extra };
      console.log(a.json ? JSON.stringify(summary) : `wrote ${a.out} (${label}, calibrated on ${total} images in ${summary.seconds.toFixed(1)} s)`);
    });
}
