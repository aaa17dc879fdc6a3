// Deterministic weights shared with scripts/make_onnx_import_fixtures.py (det_values): the committed
// ONNX fixtures of MobileNetV2 / ResNet-18 carry empty initializers, refilled here, so the fixtures
// stay small. Exact: integer hashing, then float64 arithmetic rounded once to float32, as numpy does.
import { decodeOnnxModel, OnnxModelProto } from '../../lib/io/onnx-export';
import { Tensor } from '../../lib/tensor';

function keyHash(key: string): number {
  let h = 2166136261;
  for (const ch of Buffer.from(key, 'utf8')) h = Math.imul(h ^ ch, 16777619) >>> 0;
  return h >>> 0;
}

/** det_values(key, shape) of the fixture script. */
export function detValues(key: string, shape: readonly number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const h = keyHash(key);
  const out = new Float32Array(n);
  const last = key.slice(key.lastIndexOf('.') + 1);
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  const bound = Math.sqrt(3.0 / fanIn);
  const mode = last === 'running_var' ? 0 : last === 'running_mean' ? 1 : last === 'num_batches_tracked' ? 2 : last === 'bias' ? 3 : shape.length === 1 ? 4 : 5;
  if (mode === 2) return out;
  const imul = Math.imul;
  const M1 = -1640531535; // 2654435761 as int32
  const M2 = -2048144777; // 2246822519 as int32
  for (let i = 0; i < n; i++) {
    let v = (imul(i, M1) + h) >>> 0;
    v = imul(v ^ (v >>> 15), M2) >>> 0;
    v = (v ^ (v >>> 13)) >>> 0;
    const u = v / 4294967296;
    out[i] = mode === 0 ? 0.5 + u : mode === 1 ? (u - 0.5) * 0.4 : mode === 3 ? (u - 0.5) * 0.2 : mode === 4 ? 0.5 + u : (u - 0.5) * 2.0 * bound;
  }
  return out;
}

/** A state_dict for `keys` (name -> shape) with deterministic values. */
export function detStateDict(entries: Iterable<[string, readonly number[]]>): Map<string, Tensor> {
  const sd = new Map<string, Tensor>();
  for (const [k, shape] of entries) sd.set(k, new Tensor(detValues(k, shape), shape));
  return sd;
}

/** The ONNX model with every empty initializer refilled by detValues(name, dims). */
export function refillOnnx(bytes: Uint8Array): OnnxModelProto {
  const m = decodeOnnxModel(bytes);
  for (const t of m.graph.initializer) {
    if (t.data_type !== 1 || (t.raw_data && t.raw_data.length)) continue;
    const dims = t.dims.map(Number);
    const v = detValues(t.name, dims);
    t.raw_data = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  }
  return m;
}
