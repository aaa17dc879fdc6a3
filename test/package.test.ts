// The package's entry points as a consumer sees them: `import` (ESM) and `require` (CommonJS) of
// 'ptq-node' resolve through the "exports" map to one copy of the library, with types for both.
import { spawnSync } from 'child_process';
import * as path from 'path';

const root = path.join(__dirname, '..');
const esm = path.join(__dirname, 'fixtures', 'esm');
const run = (args: string[]) => spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8' });

test('ESM import: named and default exports, the same objects as require()', () => {
  const r = run([path.join(esm, 'import.mjs')]);
  expect(r.stderr).toBe('');
  const j = JSON.parse(r.stdout);
  expect(j.kinds).toEqual(['function', 'function', 'function', 'function', 'object']);
  expect(j.sameAsRequire).toBe(true);
  expect(j.sum).toBe(6);
  expect(j.exports).toBe(Object.keys(require('../dist/index.js')).filter((k) => k !== '__esModule').length);
});

test('CommonJS require, and ptq-node/package.json', () => {
  const r = run([path.join(esm, 'require.cjs')]);
  expect(r.stderr).toBe('');
  expect(JSON.parse(r.stdout)).toEqual({ kinds: ['function', 'function', 'function'], version: require('../package.json').version });
});

test('types resolve for ESM (.mts) and CommonJS (.cts) consumers under node16 resolution', () => {
  const r = run([require.resolve('typescript/bin/tsc'), '--ignoreConfig', '--noEmit', '--strict', '--skipLibCheck', '--module', 'node16',
    '--moduleResolution', 'node16', '--types', 'node', path.join(esm, 'types.mts'), path.join(esm, 'types.cts')]);
  expect(r.stdout + r.stderr).toBe('');
  expect(r.status).toBe(0);
});

test('package.json: exports map, files whitelist, sharp and fastify as dependencies', () => {
  const pkg = require('../package.json');
  expect(pkg.exports['.'].import.default).toBe('./dist/index.mjs');
  expect(pkg.exports['.'].require.default).toBe('./dist/index.js');
  expect(Object.keys(pkg.exports['.'].import)[0]).toBe('types');
  expect(pkg.files).toEqual(expect.arrayContaining(['dist/', 'prebuilds/', 'bin/']));
  expect(Object.keys(pkg.dependencies)).toEqual(expect.arrayContaining(['sharp', 'fastify']));
});
