// Compiling a converted model into a native plan: the model runs once under a tracing backend
// (the native backend plus a recorder), every kernel call becomes a plan op, and every
// intermediate buffer becomes an arena slot (reused once its last reader has run).
import type { PlanOp } from '../../binding';
import { Backend, PackedQConv2d, PackedQGemm, QAddParams } from './backend';
import { nativeBackend, nativeHandleOf } from './native';

type Buffer = Uint8Array | Float32Array;

interface Recorded {
  op: PlanOp;
  reads: Buffer[];
  writes: Buffer;
}

/** What tracing produced: ops over slots, per-sample slot sizes, the input and output sizes. */
export interface TracedPlan {
  ops: PlanOp[];
  slotBytes: number[];
  inFloats: number;
  outFloats: number;
}

/**
 * A backend that records each kernel call as a plan op (batch 1) without running it: only buffer
 * identities and shapes matter, so the traced activations are never written (their pages are
 * never touched) and compiling costs no activation memory. Packing goes to the native backend.
 */
export class TracingBackend implements Backend {
  readonly name = 'native' as const;
  readonly recorded: Recorded[] = [];
  private readonly inner = nativeBackend;
  get isa() {
    return this.inner.isa;
  }
  /** Packs are the native backend's: modules reuse theirs when compiled, and hold no tracer. */
  get packer(): Backend {
    return this.inner;
  }
  packQGemm(...a: Parameters<Backend['packQGemm']>) {
    return this.inner.packQGemm(...a);
  }
  packQConv2d(...a: Parameters<Backend['packQConv2d']>) {
    return this.inner.packQConv2d(...a);
  }
  qgemm(p: PackedQGemm, m: number, a: Uint8Array, c: Uint8Array, lda?: number, ldc?: number): void {
    if ((lda !== undefined && lda !== p.k) || (ldc !== undefined && ldc !== p.n)) throw new Error('plans need dense GEMM operands');
    this.recorded.push({ op: { kind: 'gemm', in0: 0, out: 0, handle: nativeHandleOf(p), rows: m }, reads: [a], writes: c });
  }
  qconv2d(p: PackedQConv2d, x: Uint8Array, n: number, h: number, w: number, y: Uint8Array): void {
    this.recorded.push({ op: { kind: 'conv', in0: 0, out: 0, handle: nativeHandleOf(p), h, w }, reads: [x], writes: y });
  }
  quantize(x: Float32Array, y: Uint8Array, scale: number, zeroPoint: number): void {
    this.recorded.push({ op: { kind: 'quantize', in0: -1, out: 0, count: y.length, scale, zeroPoint, nchwC: 0, nchwHW: 0 }, reads: [x], writes: y });
  }
  dequantize(x: Uint8Array, y: Float32Array, scale: number, zeroPoint: number): void {
    this.recorded.push({ op: { kind: 'dequantize', in0: 0, out: -2, count: x.length, scale, zeroPoint }, reads: [x], writes: y });
  }
  qadd(a: Uint8Array, b: Uint8Array, y: Uint8Array, p: QAddParams): void {
    this.recorded.push({ op: { kind: 'add', in0: 0, in1: 0, out: 0, count: y.length, ...p }, reads: [a, b], writes: y });
  }
  qmeanHW(x: Uint8Array, n: number, hw: number, c: number, y: Uint8Array, scale: number, zeroPoint: number): void {
    this.recorded.push({ op: { kind: 'mean', in0: 0, out: 0, hw, c, scale, zeroPoint }, reads: [x], writes: y });
  }
  qadaptiveAvgPool(x: Uint8Array, n: number, hw: number, c: number, y: Uint8Array, inScale: number, inZeroPoint: number, outScale: number, outZeroPoint: number): void {
    this.recorded.push({ op: { kind: 'aap', in0: 0, out: 0, hw, c, scale: inScale, zeroPoint: inZeroPoint, outScale, outZeroPoint }, reads: [x], writes: y });
  }
  qmaxpool2d(x: Uint8Array, n: number, h: number, w: number, c: number, k: number, stride: number, pad: number, y: Uint8Array): void {
    this.recorded.push({ op: { kind: 'maxpool', in0: 0, out: 0, h, w, c, k, stride, pad }, reads: [x], writes: y });
  }

  /**
   * Turns the recording into slots: `input` is the traced model input (NCHW [C, H, W] given by
   * `inputShape`), `output` the traced model output. Throws when a kernel read a buffer that no
   * traced op produced (work done in JS between kernels cannot run inside a plan).
   */
  finish(input: Float32Array, output: Float32Array, inputShape: readonly number[]): TracedPlan {
    const rec = this.recorded;
    if (rec.length === 0 || rec[0].op.kind !== 'quantize') throw new Error('plan tracing: the model must start with Quantize (QuantStub)');
    const last = rec[rec.length - 1];
    if (last.op.kind !== 'dequantize' || last.writes !== output) throw new Error('plan tracing: the model must end with DeQuantize (DeQuantStub)');
    const q = rec[0];
    if (q.reads[0] !== input) {
      // Quantize made a channels_last copy of the NCHW input: fuse that layout change.
      if (inputShape.length !== 3) throw new Error('plan tracing: Quantize did not read the model input');
      q.op.nchwC = inputShape[0];
      q.op.nchwHW = inputShape[1] * inputShape[2];
    }
    const lastUse = new Map<Buffer, number>();
    const readers = new Map<Buffer, number>();
    rec.forEach((r, i) => r.reads.forEach((b) => {
      lastUse.set(b, i);
      readers.set(b, (readers.get(b) ?? 0) + 1);
    }));
    // A conv whose output only feeds the next op, an add (a residual), runs that add tile by tile
    // while its output is still in cache: the pair becomes one op and the add's pass over memory
    // goes away. The add writes over the conv's output; that slot is taken before anything is
    // freed, so it is never the conv's input.
    const fused = new Set<number>();  // i: rec[i] (conv) absorbs rec[i + 1] (add)
    rec.forEach((r, i) => {
      const next = rec[i + 1];
      if (r.op.kind === 'conv' && next?.op.kind === 'add' && next.reads.includes(r.writes) && next.reads[0] !== next.reads[1] &&
        readers.get(r.writes) === 1) fused.add(i);
    });
    const slotOf = new Map<Buffer, number>();
    const slotBytes: number[] = [];
    const free: number[] = [];
    const assign = (bytes: number): number => {
      // Reuse the smallest free slot that fits; slots keep their largest size.
      let best = -1;
      for (let j = 0; j < free.length; j++) if (slotBytes[free[j]] >= bytes && (best < 0 || slotBytes[free[j]] < slotBytes[free[best]])) best = j;
      return best >= 0 ? free.splice(best, 1)[0] : slotBytes.push(bytes) - 1;
    };
    const slotRead = (b: Buffer, i: number, kind: string): number => {
      const s = slotOf.get(b);
      if (s === undefined) throw new Error(`plan tracing: op ${i} (${kind}) reads a buffer no traced kernel wrote (JS work between kernels?)`);
      return s;
    };
    const ops: PlanOp[] = [];
    rec.forEach((r, i) => {
      const op = r.op;
      if (fused.has(i - 1)) return;  // absorbed by the conv before it
      if (fused.has(i)) {
        const add = rec[i + 1];
        const other = add.reads[0] === r.writes ? add.reads[1] : add.reads[0];
        op.in0 = slotRead(r.reads[0], i, 'conv+add');
        op.in1 = slotRead(other, i, 'conv+add');
        // The add runs in place on the conv's output tiles: no second activation to write back.
        const convOut = assign(Math.max(r.writes.byteLength, add.writes.byteLength));
        slotOf.set(r.writes, convOut);
        op.out = convOut;
        const addOut = convOut;
        slotOf.set(add.writes, addOut);
        const { kind: _k, in0: _a, in1: _b, out: _o, count: _c, ...params } = add.op;
        Object.assign(op, params, { addOut, convIsA: add.reads[0] === r.writes });
        // The conv output's slot lives on as the add output.
        for (const b of new Set([...r.reads, ...add.reads])) {
          if (b !== r.writes && (lastUse.get(b) ?? -1) <= i + 1 && slotOf.has(b)) free.push(slotOf.get(b)!);
        }
        ops.push(op);
        return;
      }
      if (op.kind !== 'quantize') {
        const ins = r.reads.map((b) => slotRead(b, i, op.kind));
        op.in0 = ins[0];
        if (ins.length > 1) op.in1 = ins[1];
      }
      if (op.kind !== 'dequantize') {
        const s = assign(r.writes.byteLength);
        slotOf.set(r.writes, s);
        op.out = s;
      }
      for (const b of new Set(r.reads)) if (lastUse.get(b) === i && slotOf.has(b)) free.push(slotOf.get(b)!);
      ops.push(op);
    });
    return { ops, slotBytes, inFloats: input.length, outFloats: output.length };
  }
}
