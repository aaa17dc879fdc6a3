// `ptq demo`: the PyTorch static quantization tutorial, told on the shipped Fashion-MNIST
// MobileNetV2: baseline size and accuracy, default (per-tensor MinMax) PTQ with the printed
// model after observer insertion and after conversion, then the fbgemm (histogram, per-channel)
// qconfig, and fp32 vs int8 speed.
import * as fs from 'fs';
import * as path from 'path';
import { Command } from 'commander';
import { FashionMnist } from '../data/datasets';
import { evaluate, EvalResult } from '../evaluate';
import { encodeQuantizedModel } from '../io/model-file';
import { ArchitectureSpec, FusableModel } from '../models';
import { Module } from '../nn/module';
import { convert } from '../quantization/convert';
import { prepare } from '../quantization/quantize';
import { dataLoader } from '../data/datasets';
import { loadFloatModel, qconfigByName } from '../workflow';
import { positiveInt, runnerFor, selectBackend } from './options';
import { progressBar } from './progress';

/** The shipped default model and data. */
export const ASSETS = path.join(__dirname, '..', '..', 'assets');
export const DEFAULT_WEIGHTS = path.join(ASSETS, 'mobilenet_v2_fashion_mnist.pth');
export const DEFAULT_DATA = path.join(ASSETS, 'fashion-mnist');
const SPEC: ArchitectureSpec = { arch: 'mobilenet_v2', numClasses: 10 };

interface DemoArgs {
  weights: string;
  data: string;
  limit?: string;
  calibBatches: string;
  batchSize: string;
  evalBatchSize: string;
  backend: string;
  json?: boolean;
}

function evalWithBar(label: string, model: Module, ds: FashionMnist, bs: number, limit: number | undefined, quiet: boolean, backend: string): EvalResult {
  const total = Math.min(ds.length, limit ?? ds.length);
  const bar = progressBar(label, total, quiet);
  const r = evaluate(runnerFor(model, ds.sampleShape, backend, bs), ds, { batchSize: bs, limit, onProgress: (d) => bar.update(d) });
  bar.stop();
  return r;
}

function calibrate(model: Module, ds: FashionMnist, batches: number, bs: number, quiet: boolean): void {
  const total = Math.min(batches * bs, ds.length);
  const bar = progressBar('calibrating', total, quiet);
  let done = 0;
  for (const b of dataLoader(ds, bs, { maxBatches: batches })) {
    model.call(b.images);
    bar.update((done += b.labels.length));
  }
  bar.stop();
}

/** Runs the demo; returns the measured numbers (also printed). */
export function runDemo(a: DemoArgs, log: (s: string) => void = console.log): Record<string, unknown> {
  selectBackend(a.backend);
  const quiet = !!a.json;
  const say = quiet ? () => {} : log;
  const limit = a.limit !== undefined ? positiveInt('--limit', a.limit) : undefined;
  const calibBatches = positiveInt('--calib-batches', a.calibBatches), bs = positiveInt('--batch-size', a.batchSize);
  const evalBs = positiveInt('--eval-batch-size', a.evalBatchSize);
  const t0 = Date.now();
  const train = new FashionMnist(a.data, 'train');
  const test = new FashionMnist(a.data, 'test');
  const evalCount = Math.min(test.length, limit ?? test.length);

  say(`ptq demo: the PyTorch static quantization tutorial on the shipped MobileNetV2 (Fashion-MNIST, 10 classes)`);
  say(`weights ${path.relative(process.cwd(), a.weights) || a.weights}, data ${path.relative(process.cwd(), a.data) || a.data}\n`);
  const floatModel = loadFloatModel(SPEC, a.weights);
  const floatMB = fs.statSync(a.weights).size / 1e6;
  say('Size of baseline model');
  say(`Size (MB): ${floatMB.toFixed(6)}`);
  const fp = evalWithBar('float eval', floatModel, test, evalBs, limit, quiet, a.backend);
  say(`Evaluation accuracy on ${fp.count} images, ${fp.top1.toFixed(2)}  (fp32)\n`);

  const runConfig = (name: 'default' | 'fbgemm', verbose: boolean) => {
    const model = loadFloatModel(SPEC, a.weights) as FusableModel;
    model.fuseModel();
    model.qconfig = qconfigByName(name);
    if (verbose) say(String(model.qconfig));
    prepare(model, true);
    if (verbose) {
      say('Post Training Quantization Prepare: Inserting Observers');
      say(`\n Inverted Residual Block:After observer insertion \n\n ${model.getSubmodule('features.1.conv').toString()}`);
    } else say(String(model.qconfig));
    calibrate(model, train, calibBatches, bs, quiet);
    if (verbose) say('Post Training Quantization: Calibration done');
    const q = convert(model, true);
    if (verbose) {
      say('Post Training Quantization: Convert done');
      say(`\n Inverted Residual Block: After fusion and quantization, note fused modules: \n\n ${q.getSubmodule('features.1.conv').toString()}`);
    }
    const bytes = encodeQuantizedModel(q, { architecture: SPEC, qconfig: String(model.qconfig) }).length;
    if (verbose) say(`Size of model after quantization\nSize (MB): ${(bytes / 1e6).toFixed(6)}`);
    const r = evalWithBar(`${name} int8 eval`, q, test, evalBs, limit, quiet, a.backend);
    say(`Evaluation accuracy on ${r.count} images, ${r.top1.toFixed(2)}  (int8, ${name} qconfig; ${r.tiedMax} images with a tied maximum logit)\n`);
    return { r, bytes };
  };
  const def = runConfig('default', true);
  const fb = runConfig('fbgemm', false);
  const ips = (r: EvalResult) => r.count / r.seconds;
  say(`Summary on ${evalCount} test images (calibration: ${Math.min(calibBatches * bs, train.length)} training images, batch ${evalBs}, ${a.backend} kernels):`);
  say(`  ${'model'.padEnd(34)} ${'top-1'.padStart(7)} ${'size MB'.padStart(8)} ${'images/s'.padStart(9)}`);
  say(`  ${'float (fp32)'.padEnd(34)} ${fp.top1.toFixed(2).padStart(7)} ${floatMB.toFixed(2).padStart(8)} ${ips(fp).toFixed(0).padStart(9)}`);
  say(`  ${'int8 default (per-tensor MinMax)'.padEnd(34)} ${def.r.top1.toFixed(2).padStart(7)} ${(def.bytes / 1e6).toFixed(2).padStart(8)} ${ips(def.r).toFixed(0).padStart(9)}`);
  say(`  ${'int8 fbgemm (histogram, per-chan)'.padEnd(34)} ${fb.r.top1.toFixed(2).padStart(7)} ${(fb.bytes / 1e6).toFixed(2).padStart(8)} ${ips(fb.r).toFixed(0).padStart(9)}`);
  say(`  int8 vs fp32 speed: ${(ips(fb.r) / ips(fp)).toFixed(2)}x; done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return {
    count: evalCount, float_top1: fp.top1, default_top1: def.r.top1, fbgemm_top1: fb.r.top1,
    float_mb: floatMB, int8_mb: fb.bytes / 1e6, float_img_per_s: ips(fp), int8_img_per_s: ips(fb.r), seconds: (Date.now() - t0) / 1000,
  };
}

/** Registers `ptq demo` on the program. */
export function registerDemo(p: Command): void {
  p.command('demo')
    .description("the static quantization tutorial on the shipped model and data (the README's main job)")
    .option('--weights <file>', 'float weights', DEFAULT_WEIGHTS)
    .option('--data <dir>', 'Fashion-MNIST directory', DEFAULT_DATA)
    .option('--limit <n>', 'evaluate on the first n test images only')
    .option('--calib-batches <n>', 'calibration batches', '10')
    .option('--batch-size <n>', 'calibration batch size', '30')
    .option('--eval-batch-size <n>', 'evaluation batch size', '50')
    .option('--backend <name>', 'kernels: native or reference', 'native')
    .option('--json', 'print the numbers as JSON only')
    .action((a: DemoArgs) => {
      const r = runDemo(a);
      if (a.json) console.log(JSON.stringify(r));
    });
}
