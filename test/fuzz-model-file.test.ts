// Our model file: a SHA-256 checksum over tensors and metadata makes any damaged byte a
// FormatError; saves are atomic (a process killed mid-save leaves the previous file, never a half
// one); and metadata that is well-formed JSON but hostile (re-checksummed, as an attacker can) is
// a FormatError or a model that loads, never another exception.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { encodeQuantizedModel, loadQuantizedModel, modelChecksum, MODEL_FORMAT, MODEL_FORMAT_V1, readQuantizedModelFile } from '../lib/io/model-file';
import { encodeSafetensors, readSafetensors } from '../lib/io/safetensors';
import { FormatError } from '../lib/io/types';
import { Module } from '../lib/nn/module';
import { convert } from '../lib/quantization/convert';
import { prepare } from '../lib/quantization/quantize';
import { qconfigByName } from '../lib/workflow';
import { rows, smallExpected, smallInput, smallModel } from './helpers/fixtures';
import { rng, randInt } from './helpers/random';
import { bitFlips, fuzz, Mutant, truncations } from './helpers/mutate';

const e = smallExpected();
const arch = { arch: 'mobilenet_v2' as const, numClasses: 10, widthMult: e.width_mult, invertedResidualSetting: e.setting };
const q = (() => {
  const m = smallModel();
  m.fuseModel();
  m.qconfig = qconfigByName('fbgemm');
  prepare(m, true);
  const x = smallInput();
  for (let i = 0; i < 8; i += 4) m.call(rows(x, i, 4));
  return convert(m);
})();
const bytes = encodeQuantizedModel(q, { architecture: arch, qconfig: 'fbgemm', labels: ['a', 'b'] });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ptq-fuzz-model-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Re-encodes with edited metadata and a recomputed (valid) checksum: what an attacker can produce. */
function reencode(edit: (meta: Record<string, string>) => void, src = bytes): Uint8Array {
  const { tensors, metadata } = readSafetensors(src);
  const meta = { ...metadata };
  edit(meta);
  delete meta.checksum;
  meta.checksum = modelChecksum(tensors, meta);
  return encodeSafetensors(tensors, meta);
}

test('files carry format 2 and a checksum that verifies', () => {
  const { metadata } = readSafetensors(bytes);
  expect(metadata.format).toBe(MODEL_FORMAT);
  expect(metadata.checksum).toMatch(/^sha256:[0-9a-f]{64}$/);
  expect(loadQuantizedModel(bytes).model).toBeInstanceOf(Module);
});

test('flipping one bit anywhere in the file (a byte in every 23, plus random ones) is a FormatError', () => {
  // Every 23rd byte (header and data alike; ~1 ms per case) plus 300 random positions.
  const r = rng(3);
  const positions = Array.from({ length: Math.ceil(bytes.length / 23) }, (_, i) => i * 23);
  for (let i = 0; i < 300; i++) positions.push(randInt(r, 0, bytes.length - 1));
  const s = fuzz(bitFlips(bytes, 0, 1, positions), (b) => readQuantizedModelFile(b), { budgetMs: 500 });
  expect(s.cases).toBe(positions.length);
  expect(s.formatErrors).toBe(s.cases);
});

test('every truncation is a FormatError', () => {
  const s = fuzz(truncations(bytes, [8], 300, 2), (b) => readQuantizedModelFile(b));
  expect(s.formatErrors).toBe(s.cases);
});

test('a wrong or missing checksum in a version-2 file is refused; version-1 files load with a warning', () => {
  const { tensors, metadata } = readSafetensors(bytes);
  const noSum = { ...metadata };
  delete noSum.checksum;
  expect(() => readQuantizedModelFile(encodeSafetensors(tensors, noSum))).toThrow(/checksum is missing/);
  expect(() => readQuantizedModelFile(encodeSafetensors(tensors, { ...metadata, checksum: 'sha256:' + '0'.repeat(64) }))).toThrow(/checksum mismatch/);
  // A tensor byte changed and the header left alone: mismatch.
  const t = new Map(tensors);
  const [name, first] = [...t].find(([, v]) => v.data.byteLength > 0)!;
  const data = (first.data as Int8Array).slice();
  data[0] ^= 1;
  t.set(name, { ...first, data });
  expect(() => readQuantizedModelFile(encodeSafetensors(t, metadata))).toThrow(/checksum mismatch/);
  // Legacy: format 1 without a checksum loads, with a PTQ_MODEL_NO_CHECKSUM warning.
  const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
  try {
    const v1 = encodeSafetensors(tensors, { ...noSum, format: MODEL_FORMAT_V1 });
    expect(loadQuantizedModel(v1).model.toString()).toBe(q.toString());
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/no checksum/), expect.objectContaining({ code: 'PTQ_MODEL_NO_CHECKSUM' }));
    // ...but a format-1 file that does carry a checksum must match it.
    expect(() => readQuantizedModelFile(encodeSafetensors(tensors, { ...metadata, format: MODEL_FORMAT_V1 }))).toThrow(/checksum mismatch/);
  } finally {
    warn.mockRestore();
  }
});

test('a process killed mid-save never leaves a half file at the target', async () => {
  // Two large, valid model files (a 24 MiB provenance string makes each write take a while).
  const big = (tag: string) => encodeQuantizedModel(q, { architecture: arch, qconfig: tag, provenance: { pad: tag.repeat(24 << 20) } });
  const a = path.join(dir, 'a.bin'), b = path.join(dir, 'b.bin'), target = path.join(dir, 'model.safetensors');
  fs.writeFileSync(a, big('a'));
  fs.writeFileSync(b, big('b'));
  // The child saves a and b alternately to the target, forever, until it is killed.
  const script = `
    const fs = require('fs');
    const { writeFileAtomic } = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'io', 'safetensors.js'))});
    const files = [fs.readFileSync(${JSON.stringify(a)}), fs.readFileSync(${JSON.stringify(b)})];
    process.stdout.write('ready\\n');
    for (let i = 0; ; i++) writeFileAtomic(${JSON.stringify(target)}, files[i % 2]);
  `;
  const r = rng(5);
  for (let round = 0; round < 4; round++) {
    const p = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((res) => p.stdout.once('data', () => res()));
    await new Promise((res) => setTimeout(res, randInt(r, 30, 400)));
    p.kill('SIGKILL');
    await new Promise((res) => p.once('exit', res));
    if (!fs.existsSync(target)) continue; // killed before the first rename: no file, not a half one
    const f = readQuantizedModelFile(target); // verifies the checksum
    expect(['a', 'b']).toContain(f.qconfig);
  }
  expect(fs.existsSync(target)).toBe(true);
  // Left-over temp files (the crash interrupted them) never have the target's name.
  for (const name of fs.readdirSync(dir)) expect(name === 'model.safetensors' || name.includes('.tmp-') || name.endsWith('.bin')).toBe(true);
}, 60000);

test('hostile metadata (well-formed, re-checksummed) is a FormatError or a model that loads', () => {
  const { metadata } = readSafetensors(bytes);
  const records = JSON.parse(metadata.modules) as Record<string, unknown>[];
  const hostile: unknown[] = [null, -1, 0, 1.5, 1e308, 'x', '', [], {}, true, 2 ** 53, [1, 2], '__proto__', 'constructor'];
  const fields = ['name', 'type', 'scale', 'zero_point', 'geometry', 'in_features', 'out_features', 'qscheme', 'bias', 'p'];
  const r = rng(9);
  const mutants: Mutant[] = [];
  for (let i = 0; i < 140; i++) {
    const k = randInt(r, 0, records.length - 1);
    const field = fields[randInt(r, 0, fields.length - 1)];
    const v = hostile[randInt(r, 0, hostile.length - 1)];
    mutants.push({
      what: `modules[${k}].${field} = ${JSON.stringify(v)}`,
      bytes: reencode((m) => { const rs = JSON.parse(m.modules); rs[k][field] = v; m.modules = JSON.stringify(rs); }),
    });
  }
  const whole: Array<[string, string]> = [
    ['modules', 'null'], ['modules', '{}'], ['modules', '[null]'], ['modules', '[1]'], ['modules', 'not json'],
    ['modules', JSON.stringify([...records, records[0]])], ['modules', JSON.stringify([{ name: '', type: 'Quantize', scale: 1, zero_point: 0 }])],
    ['architecture', 'null'], ['architecture', '[]'], ['architecture', '{"arch":"resnet9000"}'], ['architecture', '{"arch":"mobilenet_v2","numClasses":-1}'],
    ['architecture', '{"arch":"mobilenet_v2","numClasses":1e9}'], ['architecture', '{"arch":"__proto__"}'],
    ['labels', '"x"'], ['labels', '[1]'], ['preprocess', '1'], ['preprocess', 'null'], ['provenance', 'nope'], ['qconfig', ''],
  ];
  for (const [key, value] of whole) mutants.push({ what: `${key} = ${value}`, bytes: reencode((m) => { m[key] = value; }) });
  mutants.push({ what: 'format tag changed', bytes: reencode((m) => { m.format = 'ptq-node.quantized-model/9'; }) });
  const s = fuzz(mutants, (b) => loadQuantizedModel(b), {
    validate: (v) => { if (!(v.model instanceof Module)) throw new Error('not a module'); },
    budgetMs: 5000, allocLimit: (b) => 64 * b.length + (64 << 20),
  });
  expect(s.formatErrors).toBeGreaterThan(s.cases * 0.5);
}, 120000);

test('the FormatError names the file', () => {
  const f = path.join(dir, 'broken.safetensors');
  const b = Uint8Array.from(bytes);
  b[b.length - 1] ^= 0x10;
  fs.writeFileSync(f, b);
  let err: unknown;
  try { loadQuantizedModel(f); } catch (x) { err = x; }
  expect(err).toBeInstanceOf(FormatError);
  expect((err as FormatError).file).toBe(f);
  expect((err as Error).message).toMatch(/checksum mismatch/);
});
