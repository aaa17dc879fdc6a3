// `ptq doctor`: what this install will run with (ISA, binary, threads, versions).
import * as os from 'os';
import { loadNative } from '../kernels/native';
import { packageVersion } from '../version';

/** The facts `ptq doctor` reports. */
export interface DoctorReport {
  isa: string;
  supported: string[];
  binary: string;
  version: string;
  binaryVersion: string;
  node: string;
  napi: string;
  platform: string;
  cpu: string;
  cores: number;
  ptqIsaEnv: string | null;
}

/** Collects the doctor report; throws the loader's diagnosis when the addon cannot load. */
export function doctor(): DoctorReport {
  const addon = loadNative();
  return {
    isa: addon.isa,
    supported: [...addon.supported],
    binary: addon.binaryPath,
    version: packageVersion(),
    binaryVersion: addon.binding.version,
    node: process.version,
    napi: process.versions.napi ?? 'unknown',
    platform: `${process.platform}-${process.arch}`,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism ? os.availableParallelism() : os.cpus().length,
    ptqIsaEnv: process.env.PTQ_ISA ?? null,
  };
}

/** Formats the report for humans. */
export function formatDoctor(r: DoctorReport): string {
  return [
    `ptq-node ${r.version} (binary ${r.binaryVersion})`,
    `isa:       ${r.isa}${r.ptqIsaEnv ? ` (forced by PTQ_ISA=${r.ptqIsaEnv})` : ' (best this CPU supports)'}`,
    `supported: ${r.supported.join(', ')}`,
    `binary:    ${r.binary}`,
    `node:      ${r.node} (N-API ${r.napi}), ${r.platform}`,
    `cpu:       ${r.cpu}, ${r.cores} cores`,
  ].join('\n');
}
