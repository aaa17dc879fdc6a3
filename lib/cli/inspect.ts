// `ptq inspect`: the quantization parameters stored in a quantized model file.
import { Command } from 'commander';
import { readQuantizedModelFile } from '../io/model-file';

/** One module's qparams as `ptq inspect --json` prints them. */
export interface InspectedModule {
  name: string;
  type: string;
  scale: number;
  zero_point: number;
  weight?: { qscheme: string; scale: number[]; zero_point: number[] };
}

/** The qparams of every observed module in a quantized model file, in model order. */
export function inspectModelFile(file: string): { architecture: unknown; qconfig: string; modules: InspectedModule[] } {
  const f = readQuantizedModelFile(file);
  const modules: InspectedModule[] = [];
  for (const r of f.records) {
    if (r.scale === undefined || r.zero_point === undefined) continue;
    const m: InspectedModule = { name: r.name, type: r.type, scale: r.scale, zero_point: r.zero_point };
    const s = f.tensors.get(`${r.name}.weight_scale`), z = f.tensors.get(`${r.name}.weight_zero_point`);
    if (s && z) m.weight = { qscheme: r.qscheme ?? 'per_tensor_affine', scale: Array.from(s.data as Float32Array), zero_point: Array.from(z.data as Int32Array) };
    modules.push(m);
  }
  return { architecture: f.architecture, qconfig: f.qconfig, modules };
}

/** Registers `ptq inspect` on the program. */
export function registerInspect(p: Command): void {
  p.command('inspect <model>')
    .description('print the quantization parameters of a quantized model file')
    .option('--json', 'print JSON: {"modules":[{"name","type","scale","zero_point","weight"}]}')
    .action((file: string, o: { json?: boolean }) => {
      const r = inspectModelFile(file);
      if (o.json) {
        console.log(JSON.stringify(r));
        return;
      }
      console.log(`architecture: ${JSON.stringify(r.architecture)}\nqconfig: ${r.qconfig}\n`);
      console.log(`${'module'.padEnd(28)} ${'type'.padEnd(22)} ${'scale'.padStart(12)} ${'zp'.padStart(4)}  weight`);
      for (const m of r.modules) {
        const w = m.weight ? `${m.weight.qscheme} ${m.weight.scale.length === 1 ? `scale=${m.weight.scale[0].toPrecision(6)}` : `${m.weight.scale.length} channels`}` : '';
        console.log(`${m.name.padEnd(28)} ${m.type.padEnd(22)} ${m.scale.toPrecision(6).padStart(12)} ${String(m.zero_point).padStart(4)}  ${w}`);
      }
    });
}
