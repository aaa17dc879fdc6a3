// `ptq export-onnx`: a quantized model file as ONNX QOperator int8, or a float zoo model
// (--arch/--weights, BN folded into the convs) as plain float ONNX, for ONNX Runtime.
import { Command } from 'commander';
import { exportOnnx } from '../io/onnx-export';
import { loadQuantizedModel } from '../io/model-file';
import { writeFileAtomic } from '../io/safetensors';
import { ARCHITECTURES, ArchitectureSpec } from '../models';
import { Module } from '../nn/module';
import { loadFloatModel } from '../workflow';
import { positiveInt } from './options';

interface ExportArgs {
  float?: boolean;
  arch?: string;
  numClasses: string;
  weights?: string;
  json?: boolean;
}

/** What was exported (the --json output). */
export interface ExportResult {
  out: string;
  dtype: 'int8' | 'float32';
  architecture: ArchitectureSpec;
  bytes: number;
}

/** Exports a quantized model file (int8) or float weights (--arch/--weights/--float) to an ONNX file. */
export function exportOnnxFile(model: string | undefined, out: string, a: ExportArgs): ExportResult {
  let m: Module, spec: ArchitectureSpec;
  if (model) {
    if (a.arch || a.weights) throw new Error('give either a quantized model file or --arch/--weights, not both');
    if (a.float) throw new Error('--float exports a float model: give --arch and --weights instead of a quantized model file');
    const l = loadQuantizedModel(model);
    m = l.model;
    spec = l.info.architecture as ArchitectureSpec; // or { arch: 'graph' }: an imported ONNX model
  } else {
    if (!a.arch || !a.weights) throw new Error('give a quantized model file, or --arch and --weights (with --float) for a float model');
    if (!(ARCHITECTURES as readonly string[]).includes(a.arch)) throw new Error(`unknown --arch '${a.arch}'; expected one of ${ARCHITECTURES.join(', ')}`);
    spec = { arch: a.arch as ArchitectureSpec['arch'], numClasses: positiveInt('--num-classes', a.numClasses) };
    const f = loadFloatModel(spec, a.weights);
    f.fuseModel(); // Conv+BN(+ReLU) folded as for quantization: Conv with bias (+ Relu) in ONNX
    m = f;
  }
  const bytes = exportOnnx(m, spec, { float: !model });
  writeFileAtomic(out, bytes); // temp file + rename: a crash never leaves a half .onnx
  return { out, dtype: model ? 'int8' : 'float32', architecture: spec, bytes: bytes.length };
}

/** Registers `ptq export-onnx` on the program. */
export function registerExportOnnx(p: Command): void {
  p.command('export-onnx <paths...>')
    .usage('M.safetensors OUT.onnx | --float --arch NAME --num-classes N --weights W.pth OUT.onnx')
    .description('export a quantized model file to ONNX (QOperator int8), or a float model (--float --arch/--weights) to float ONNX, for ONNX Runtime')
    .option('--float', 'export the float model given by --arch/--weights (batch norm folded into the convs)')
    .option('--arch <name>', `float model architecture (${ARCHITECTURES.join(', ')})`)
    .option('--num-classes <n>', 'number of classes of the float model', '1000')
    .option('--weights <file>', 'float weights (.pth or .safetensors)')
    .option('--json', 'print {"out","dtype","architecture","bytes"} as JSON')
    .action((paths: string[], a: ExportArgs) => {
      if (paths.length > 2) throw new Error(`expected [model] OUT.onnx, got ${paths.length} paths`);
      const [model, out] = paths.length === 2 ? paths : [undefined, paths[0]];
      const r = exportOnnxFile(model, out, a);
      if (a.json) console.log(JSON.stringify(r));
      else console.log(`wrote ${r.out}: ${r.architecture.arch} ${r.dtype === 'int8' ? 'int8 (ONNX QOperator, opset 13 + com.microsoft)' : 'float32 (ONNX opset 13)'}, ${(r.bytes / 1e6).toFixed(2)} MB`);
    });
}
