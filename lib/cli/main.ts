// The `ptq` command line. Each subcommand lives in its own module; this file only wires them.
import { Command } from 'commander';
import { packageVersion } from '../version';
import { doctor, formatDoctor } from './doctor';
import { registerDemo } from './demo';
import { registerEval } from './eval';
import { registerExportOnnx } from './export-onnx';
import { registerInspect } from './inspect';
import { registerQuantize } from './quantize';
import { registerServe } from './serve';
import { registerReport } from './report';

/** Builds the CLI program (exported for tests). */
export function program(): Command {
  const p = new Command('ptq')
    .description('Post-training static int8 quantization and int8 inference for Node.js')
    .version(packageVersion())
    .showHelpAfterError();
  p.command('doctor')
    .description('print the ISA chosen, the native binary loaded, thread count and versions')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }) => {
      const r = doctor();
      console.log(o.json ? JSON.stringify(r, null, 2) : formatDoctor(r));
    });
  registerQuantize(p);
  registerInspect(p);
  registerEval(p);
  registerDemo(p);
  registerExportOnnx(p);
  registerServe(p);
  registerReport(p);
  return p;
}

/** Runs the CLI with process.argv-style arguments. */
export async function main(argv: string[]): Promise<void> {
  await program().parseAsync(argv);
}
