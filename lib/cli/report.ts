// `ptq report M.safetensors --dataset ... --out report.html`: a self-contained HTML page with per-layer
// SQNR, activation histograms with the int8 ranges, weight ranges before / after equalization and the
// accuracy of several configurations.
import * as fs from 'fs';
import { Command } from 'commander';
import { buildReport } from '../report/collect';
import { renderReport } from '../report/html';
import { positiveInt, selectBackend } from './options';

interface ReportArgs {
  dataset: string;
  out: string;
  weights?: string;
  configs: string;
  limit?: string;
  batchSize?: string;
  analysisImages: string;
  backend: string;
  json?: boolean;
}

/** Registers `ptq report` on the program. */
export function registerReport(p: Command): void {
  p.command('report <model>')
    .description('write a self-contained HTML report: per-layer SQNR, activation histograms, weight ranges, accuracy of each configuration')
    .requiredOption('--dataset <spec>', "data, e.g. 'fashion-mnist:DIR' (train split: calibration / analysis, test split: accuracy)")
    .option('--out <file>', 'output HTML file', 'report.html')
    .option('--weights <file>', 'float weights (default: the path recorded in the model file)')
    .option('--configs <list>', "comma-separated configurations to compare, e.g. 'default,fbgemm,mse+cle+abc' ('' for none)", 'default,fbgemm,default+cle+abc,mse')
    .option('--limit <n>', 'test images evaluated (default: all)')
    .option('--batch-size <n>', 'calibration batch size (default: the one recorded, else 30)')
    .option('--analysis-images <n>', 'calibration images for SQNR and histograms', '64')
    .option('--backend <name>', 'kernels: native or reference', 'native')
    .option('--json', 'print a JSON summary')
    .action((model: string, a: ReportArgs) => {
      selectBackend(a.backend);
      const t0 = Date.now();
      const data = buildReport({
        modelFile: model, dataset: a.dataset, weights: a.weights,
        configs: a.configs.split(',').map((s) => s.trim()).filter(Boolean),
        limit: a.limit !== undefined ? positiveInt('--limit', a.limit) : undefined,
        batchSize: a.batchSize !== undefined ? positiveInt('--batch-size', a.batchSize) : undefined,
        analysisImages: positiveInt('--analysis-images', a.analysisImages),
        onProgress: (m) => { if (!a.json) console.error(m); },
      });
      fs.writeFileSync(a.out, renderReport(data));
      const summary = { out: a.out, layers: data.layers.length, histograms: data.histograms.length, weightRanges: data.weightRanges.length, accuracy: data.accuracy, seconds: (Date.now() - t0) / 1000 };
      console.log(a.json ? JSON.stringify(summary) : `wrote ${a.out} (${data.layers.length} layers, ${data.accuracy.length} configurations, ${summary.seconds.toFixed(1)} s)`);
    });
}
