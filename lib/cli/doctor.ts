// `ptq doctor`: what this install will run with (ISA, binary, threads, versions).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
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
  /** Intra-op pool threads (what a run uses with threads 0) and the libuv pool size (run() and image decoding). */
  threads: { pool: number; uv: number };
  /** Versions of the runtime and of the dependencies that matter at run time ('missing: ...' when one does not load). */
  versions: Record<string, string>;
}

/** The version of an installed package (its package.json, found from its entry point), or why not. */
export function dependencyVersion(name: string): string {
  try {
    let d = path.dirname(require.resolve(name));
    for (;;) {
      const f = path.join(d, 'package.json');
      if (fs.existsSync(f)) {
        const j = JSON.parse(fs.readFileSync(f, 'utf8'));
        if (j.name === name) return j.version;
      }
      const up = path.dirname(d);
      if (up === d) return 'unknown';
      d = up;
    }
  } catch (e) {
    return `missing: ${(e as Error).message.split('\n')[0]}`;
  }
}

function sharpVersions(): Record<string, string> {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const v = (require('sharp') as { versions: Record<string, string> }).versions;
    return { sharp: v.sharp ?? dependencyVersion('sharp'), libvips: v.vips ?? 'unknown' };
  } catch (e) {
    return { sharp: `missing: ${(e as Error).message.split('\n')[0]} (image input unavailable; npm install sharp)` };
  }
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
    threads: {
      pool: addon.binding.threadPoolSize ? addon.binding.threadPoolSize() : 0,
      uv: Number(process.env.UV_THREADPOOL_SIZE) || 4,
    },
    versions: {
      node: process.versions.node, napi: process.versions.napi ?? 'unknown', v8: process.versions.v8, uv: process.versions.uv ?? 'unknown',
      ...sharpVersions(), fastify: dependencyVersion('fastify'), commander: dependencyVersion('commander'),
    },
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
    `threads:   ${r.threads.pool} intra-op (pool), ${r.threads.uv} libuv (UV_THREADPOOL_SIZE)`,
    `versions:  ${Object.entries(r.versions).map(([k, v]) => `${k} ${v}`).join(', ')}`,
  ].join('\n');
}
