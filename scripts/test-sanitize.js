#!/usr/bin/env node
// `npm run test:sanitize`: builds the addon with AddressSanitizer + UndefinedBehaviorSanitizer
// into build-asan/ and runs the native test suites (kernel parity on every ISA level, plans,
// float kernels, the native boundary) against it. Any finding aborts the process, so the run
// fails; zero findings is the pass condition. Needs g++ (libasan, libubsan) and cmake.
// Node itself is not instrumented: the sanitizer runtimes are preloaded, and leak checking is
// off (node keeps allocations alive at exit by design).
'use strict';
const { execFileSync, spawnSync } = require('child_process');
const path = require('path');
const fs = require('fs');

const root = path.resolve(__dirname, '..');
const SUITES = ['qgemm.parity', 'qops.parity', 'native-boundary', 'plan', 'float-kernels', 'stats', 'concurrency',
  'fuzz-model-file'].map((s) => `test/${s}.test.ts`);

function runtime(name) {
  const p = execFileSync('g++', [`-print-file-name=${name}`], { encoding: 'utf8' }).trim();
  if (!path.isAbsolute(p) || !fs.existsSync(p)) throw new Error(`${name} not found (g++ -print-file-name gave '${p}'): install g++`);
  return p;
}

const cmakeJs = path.join(root, 'node_modules', 'cmake-js', 'bin', 'cmake-js');
console.error('building the sanitizer addon in build-asan/ ...');
const build = spawnSync(process.execPath, [cmakeJs, 'compile', '--out', 'build-asan', '--CDPTQ_SANITIZE=ON'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
if (build.status !== 0) process.exit(build.status || 1);
const binary = path.join(root, 'build-asan', 'Release', 'ptq_node.node');
const ldd = execFileSync('ldd', [binary], { encoding: 'utf8' });
if (!/libasan/.test(ldd) || !/libubsan/.test(ldd)) throw new Error(`${binary} is not linked against the sanitizer runtimes:\n${ldd}`);

const env = {
  ...process.env,
  LD_PRELOAD: [runtime('libasan.so'), runtime('libubsan.so')].join(':'),
  ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1:detect_stack_use_after_return=0',
  UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
  PTQ_NODE_PREBUILD: binary,
  PTQ_SANITIZE: '1', // suites skip RSS-based checks (ASan's quarantine keeps freed memory resident)
};
const jest = path.join(root, 'node_modules', 'jest', 'bin', 'jest.js');
const r = spawnSync(process.execPath, [jest, '--runInBand', ...SUITES], { cwd: root, env, stdio: 'inherit' });
process.exit(r.status === null ? 1 : r.status);
