// QOperator -> QDQ rewriting of ptq-node's int8 export, for tests: every quantized op becomes
// DequantizeLinear on its inputs (weights: DequantizeLinear of the int8 constant, per-channel on axis
// 0; bias: DequantizeLinear of the int32 constant with scale x_scale * w_scale), the float op, and
// QuantizeLinear of its output: the layout ONNX Runtime's quantize_static writes (QuantFormat.QDQ).
import { decodeOnnxModel, encodeOnnxModel, OnnxNodeProto, OnnxTensorProto } from '../../lib/io/onnx-export';

export function toQdq(qoperator: Uint8Array): Uint8Array {
  const m = decodeOnnxModel(qoperator);
  const g = m.graph;
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const f32 = (name: string) => new Float32Array(Uint8Array.from(inits.get(name)!.raw_data).buffer);
  const nodes: OnnxNodeProto[] = [];
  const dqOf = new Map<string, string>();
  let k = 0;
  const dq = (v: string, s: string, z: string, axis?: number): string => {
    const key = `${v}|${s}|${z}`;
    if (dqOf.has(key)) return dqOf.get(key)!;
    const out = `${v}__dq${k++}`;
    nodes.push({ name: out, op_type: 'DequantizeLinear', input: [v, s, z], output: [out], attribute: axis !== undefined ? [{ name: 'axis', type: 2, i: axis }] : [] });
    dqOf.set(key, out);
    return out;
  };
  const q = (v: string, s: string, z: string, out: string) => {
    nodes.push({ name: `${out}__q`, op_type: 'QuantizeLinear', input: [v, s, z], output: [out], attribute: [] });
  };
  const addInit = (t: OnnxTensorProto) => {
    g.initializer.push(t);
    inits.set(t.name, t);
  };
  const biasDq = (b: string, xs: string, ws: string): string => {
    const sx = f32(xs)[0], sw = f32(ws);
    const scale = Float32Array.from(sw, (v) => Math.fround(sx * v));
    const n = inits.get(b)!.dims.map(Number)[0];
    const sName = `${b}__scale`, zName = `${b}__zp`;
    const perChannel = sw.length > 1;
    addInit({ name: sName, dims: perChannel ? [n] : [], data_type: 1, raw_data: new Uint8Array(scale.buffer) });
    addInit({ name: zName, dims: perChannel ? [n] : [], data_type: 6, raw_data: new Uint8Array(new Int32Array(perChannel ? n : 1).buffer) });
    return dq(b, sName, zName, perChannel ? 0 : undefined);
  };
  const perAxis = (s: string) => (inits.get(s)!.dims.length ? 0 : undefined);
  for (const n of g.node) {
    const i = n.input;
    switch (n.op_type) {
      case 'QLinearConv': {
        const ins = [dq(i[0], i[1], i[2]), dq(i[3], i[4], i[5], perAxis(i[4]))];
        if (i[8]) ins.push(biasDq(i[8], i[1], i[4]));
        nodes.push({ name: n.name, op_type: 'Conv', input: ins, output: [`${n.output[0]}__f`], attribute: n.attribute });
        q(`${n.output[0]}__f`, i[6], i[7], n.output[0]);
        break;
      }
      case 'QGemm': {
        const ins = [dq(i[0], i[1], i[2]), dq(i[3], i[4], i[5], perAxis(i[4]))];
        if (i[6]) ins.push(biasDq(i[6], i[1], i[4]));
        nodes.push({ name: n.name, op_type: 'Gemm', domain: '', input: ins, output: [`${n.output[0]}__f`], attribute: n.attribute.filter((a) => a.name === 'transB') });
        q(`${n.output[0]}__f`, i[7], i[8], n.output[0]);
        break;
      }
      case 'QLinearAdd':
        nodes.push({ name: n.name, op_type: 'Add', domain: '', input: [dq(i[0], i[1], i[2]), dq(i[3], i[4], i[5])], output: [`${n.output[0]}__f`], attribute: [] });
        q(`${n.output[0]}__f`, i[6], i[7], n.output[0]);
        break;
      case 'QLinearConcat': {
        const ins: string[] = [];
        for (let j = 2; j < i.length; j += 3) ins.push(dq(i[j], i[j + 1], i[j + 2]));
        nodes.push({ name: n.name, op_type: 'Concat', domain: '', input: ins, output: [`${n.output[0]}__f`], attribute: n.attribute });
        q(`${n.output[0]}__f`, i[0], i[1], n.output[0]);
        break;
      }
      case 'QLinearGlobalAveragePool':
        nodes.push({ name: n.name, op_type: 'GlobalAveragePool', domain: '', input: [dq(i[0], i[1], i[2])], output: [`${n.output[0]}__f`], attribute: [] });
        q(`${n.output[0]}__f`, i[3], i[4], n.output[0]);
        break;
      default:
        nodes.push(n);
    }
  }
  g.node = nodes;
  m.opset_import = [{ domain: '', version: 13 }];
  return encodeOnnxModel(m);
}
