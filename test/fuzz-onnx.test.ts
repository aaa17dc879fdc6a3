// Fuzzing the ONNX importer (float and int8 graphs): byte-level mutants of real files, and
// proto-level mutants re-encoded as valid protobuf (hostile dims, attributes, initializers, node
// wiring, deep chains). Every mutant is a FormatError (OnnxImportError is one) or a graph that
// still runs, within the time and allocation budgets: never another exception, hang or
// allocation the file does not justify.
import * as fs from 'fs';
import * as path from 'path';
import { decodeOnnxModel, encodeOnnxModel, exportOnnx, OnnxModelProto } from '../lib/io/onnx-export';
import { importOnnx } from '../lib/io/onnx-import';
import { GraphModule } from '../lib/nn/graph';
import { convert } from '../lib/quantization/convert';
import { prepare } from '../lib/quantization/quantize';
import { qconfigByName } from '../lib/workflow';
import { rows, smallExpected, smallInput, smallModel } from './helpers/fixtures';
import { rng, randInt } from './helpers/random';
import { bitFlips, fuzz, Mutant, randomMutants, truncations } from './helpers/mutate';

const DIR = path.join(__dirname, 'fixtures', 'onnx-import');
const floatBytes = new Uint8Array(fs.readFileSync(path.join(DIR, 'mixed.onnx')));
const int8Bytes = (() => {
  const e = smallExpected();
  const m = smallModel();
  m.fuseModel();
  m.qconfig = qconfigByName('fbgemm');
  prepare(m, true);
  m.call(rows(smallInput(), 0, 4));
  return exportOnnx(convert(m), { arch: 'mobilenet_v2', numClasses: 10, widthMult: e.width_mult, invertedResidualSetting: e.setting });
})();

/** What a successful import must satisfy: a GraphModule whose static input shape is sane. */
function validate(g: GraphModule): void {
  if (!(g instanceof GraphModule)) throw new Error('importOnnx returned something else than a GraphModule');
  for (const d of g.spec.inputShape) if (d !== null && !(Number.isInteger(d) && d >= 0 && d <= 1 << 24)) throw new Error(`input dim ${d}`);
}

const parse = (b: Uint8Array) => importOnnx(b, { fallback: 'float' });
const allocLimit = (b: Uint8Array) => 8 * b.length + 4 * 1024 * 1024;

/** Re-encodes a decoded model after an edit (a valid protobuf an attacker can produce). */
function edited(src: Uint8Array, what: string, edit: (m: OnnxModelProto) => void): Mutant {
  const m = decodeOnnxModel(src);
  edit(m);
  return { what, bytes: encodeOnnxModel(m) };
}

test('the seed files import', () => {
  validate(parse(floatBytes));
  validate(parse(int8Bytes));
});

describe.each([['float', floatBytes], ['int8', int8Bytes]] as const)('%s ONNX', (_name, bytes) => {
  test('byte level: truncations, bit flips, random mutants', () => {
    const mutants: Mutant[] = [...truncations(bytes, [], 60, 11), ...bitFlips(bytes, 300, 12), ...randomMutants(bytes, 300, 13)];
    const s = fuzz(mutants, parse, { validate, allocLimit });
    expect(s.formatErrors).toBeGreaterThan(50);
    expect(s.cases).toBe(mutants.length);
  });

  test('proto level: hostile dims, attributes, initializers and wiring', () => {
    const base = decodeOnnxModel(bytes);
    const r = rng(21);
    const hostile = [-1, 0, 1, 3, 2 ** 31 - 1, 2 ** 31, 2 ** 40, 2 ** 53];
    const mutants: Mutant[] = [];
    base.graph.initializer.forEach((t, i) => {
      for (const v of hostile) {
        mutants.push(edited(bytes, `initializer ${i} dims[0] = ${v}`, (m) => { m.graph.initializer[i].dims[0] = v; }));
      }
      mutants.push(edited(bytes, `initializer ${i} without data`, (m) => { const x = m.graph.initializer[i] as unknown as Record<string, unknown>; delete x.raw_data; delete x.float_data; delete x.int32_data; }));
      mutants.push(edited(bytes, `initializer ${i} data_type 99`, (m) => { m.graph.initializer[i].data_type = 99; }));
    });
    base.graph.node.forEach((n, i) => {
      n.attribute.forEach((a, j) => {
        for (const v of hostile) mutants.push(edited(bytes, `node ${i} (${n.op_type}) attribute ${a.name} = ${v}`, (m) => {
          const at = m.graph.node[i].attribute[j] as unknown as Record<string, unknown>;
          if (Array.isArray(at.ints) && at.ints.length) (at.ints as number[])[randInt(r, 0, (at.ints as number[]).length - 1)] = v;
          else at.i = v;
        }));
      });
      mutants.push(edited(bytes, `node ${i} reads an unknown value`, (m) => { m.graph.node[i].input[0] = 'nowhere'; }));
      mutants.push(edited(bytes, `node ${i} writes the graph input`, (m) => { m.graph.node[i].output[0] = m.graph.input[0].name; }));
      mutants.push(edited(bytes, `node ${i} dropped`, (m) => { m.graph.node.splice(i, 1); }));
      mutants.push(edited(bytes, `node ${i} op type Foo`, (m) => { m.graph.node[i].op_type = 'Foo'; }));
    });
    for (const v of hostile) mutants.push(edited(bytes, `input dim 1 = ${v}`, (m) => { m.graph.input[0].type.tensor_type.shape.dim[1] = { dim_value: v }; }));
    mutants.push(edited(bytes, 'a cycle: the first node reads the last output', (m) => { m.graph.node[0].input[0] = m.graph.node[m.graph.node.length - 1].output[0]; }));
    mutants.push(edited(bytes, 'no nodes', (m) => { m.graph.node = []; }));
    mutants.push(edited(bytes, 'opset 999', (m) => { m.opset_import = [{ domain: '', version: 999 }]; }));
    // A long chain of Identity nodes (deep graphs must not recurse per node).
    mutants.push(edited(bytes, '20000 chained Identity nodes before the graph', (m) => {
      const x = m.graph.input[0].name;
      const chain = Array.from({ length: 20000 }, (_, k) => ({ input: [k ? `id${k - 1}` : x], output: [`id${k}`], name: `id${k}`, op_type: 'Identity', attribute: [] }));
      for (const n of m.graph.node) n.input = n.input.map((v) => (v === x ? 'id19999' : v));
      m.graph.node = [...chain, ...m.graph.node];
    }));
    const s = fuzz(mutants, parse, { validate, allocLimit, budgetMs: 5000 });
    expect(s.formatErrors).toBeGreaterThan(10);
    expect(s.cases).toBe(mutants.length);
  });
});
