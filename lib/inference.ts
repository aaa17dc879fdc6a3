// Fast inference: a converted model compiled into one native plan. runSync() runs on the calling
// thread; run() on a worker thread (the event loop stays free): one libuv thread per model with
// runs queued drains its queue in order. Both use the native intra-op
// thread pool, and batches of any size are split into plan-sized chunks.
import type { PlanHandle } from '../binding';
import { checkInt, invalidRange, invalidType, PtqError } from './errors';
import { withBackendOverride } from './kernels';
import { loadNative } from './kernels/native';
import { TracingBackend } from './kernels/plan';
import { Module } from './nn/module';
import { floatIslands } from './nn/float-island';
import { Tensor } from './tensor';
import { withU8Allocator } from './qtensor';
import { Quantize } from './nn/quantized';
import { GraphModule } from './nn/graph';
import { OnnxQGlobalAveragePool, OnnxQLinearAdd } from './nn/onnx-quantized';

/** Options of compileModel. */
export interface CompileOptions {
  /** Shape of one input sample in PyTorch order, e.g. [3, 224, 224]. */
  inputShape: number[];
  /** Largest batch one plan call runs (the activation arena is sized for it); default 16. */
  maxBatch?: number;
  /** Intra-op threads per run (default: all cores of the pool). */
  threads?: number;
}

/** A converted model compiled to a native plan. */
export class CompiledModel {
  readonly inputShape: readonly number[];
  readonly outputShape: readonly number[];
  readonly maxBatch: number;
  readonly threads: number;
  private readonly plan: PlanHandle;
  private disposed = false;
  private readonly inPer: number;
  private readonly outPer: number;

  /** Use compileModel(). */
  constructor(plan: PlanHandle, inputShape: number[], outputShape: number[], maxBatch: number, threads: number, private readonly kinds: string[] = []) {
    this.plan = plan;
    this.inputShape = inputShape;
    this.outputShape = outputShape;
    this.maxBatch = maxBatch;
    this.threads = threads;
    this.inPer = inputShape.reduce((a, b) => a * b, 1);
    this.outPer = outputShape.reduce((a, b) => a * b, 1);
  }

  private alive(): void {
    if (this.disposed) throw new PtqError('this CompiledModel has been disposed', 'disposed');
  }

  /** Whether dispose() has been called. */
  get isDisposed(): boolean {
    return this.disposed;
  }

  /**
   * Frees the plan's native memory (activation arena, packed weights) now instead of at garbage
   * collection. A run in progress finishes first; runs still queued reject with a PtqError (code
   * 'disposed'), and every later call throws it. Idempotent.
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    loadNative().binding.planDispose(this.plan);
  }

  private check(input: Float32Array | Tensor): { data: Float32Array; n: number } {
    this.alive();
    if (input instanceof Tensor) {
      const t = input.contiguous();
      if (t.shape.length !== this.inputShape.length + 1 || t.shape.slice(1).some((d, i) => d !== this.inputShape[i]))
        throw invalidRange('input', `a Tensor of shape [N, ${this.inputShape.join(', ')}]`, `[${t.shape.join(', ')}]`);
      return { data: t.data, n: t.shape[0] };
    }
    if (!(input instanceof Float32Array)) throw invalidType('input', 'a Float32Array or Tensor', input);
    if (input.length === 0 || input.length % this.inPer !== 0)
      throw invalidRange('input', `a non-empty multiple of ${this.inPer} floats ([N, ${this.inputShape.join(', ')}])`, input);
    return { data: input, n: input.length / this.inPer };
  }

  /** Runs the model on a batch [N, ...inputShape] on this thread; returns [N, ...outputShape]. */
  runSync(input: Float32Array | Tensor): Tensor {
    const { data, n } = this.check(input);
    const out = new Float32Array(n * this.outPer);
    const b = loadNative().binding;
    for (let s = 0; s < n; s += this.maxBatch) {
      const k = Math.min(this.maxBatch, n - s);
      b.planRunSync(this.plan, data.subarray(s * this.inPer, (s + k) * this.inPer), k, out.subarray(s * this.outPer, (s + k) * this.outPer), this.threads);
    }
    return new Tensor(out, [n, ...this.outputShape]);
  }

  /**
   * Runs the model on a worker thread; the input is copied, so the caller may reuse it at once.
   * Runs of one model wait in its queue and run one after the other, in the order they were called.
   */
  async run(input: Float32Array | Tensor): Promise<Tensor> {
    const { data, n } = this.check(input);
    // planRun copies its input before it returns, so one chunk needs no copy here; a run of several
    // chunks snapshots the input now (the caller may reuse its buffer once run() returns).
    const src = n > this.maxBatch ? data.slice() : data;
    const out = new Float32Array(n * this.outPer);
    const b = loadNative().binding;
    for (let s = 0; s < n; s += this.maxBatch) {
      const k = Math.min(this.maxBatch, n - s);
      this.alive(); // disposed between chunks
      try {
        await b.planRun(this.plan, src.subarray(s * this.inPer, (s + k) * this.inPer), k, out.subarray(s * this.outPer, (s + k) * this.outPer), this.threads);
      } catch (e) {
        if (this.disposed) throw new PtqError('this CompiledModel was disposed while the run was queued', 'disposed');
        throw e;
      }
    }
    return new Tensor(out, [n, ...this.outputShape]);
  }

  /** Mean milliseconds per plan op over `reps` runs on `input` (kind and time, in plan order). */
  profile(input: Float32Array | Tensor, reps = 10): Array<{ op: number; kind: string; ms: number }> {
    const { data, n } = this.check(input);
    if (n > this.maxBatch) throw invalidRange('input', `at most maxBatch = ${this.maxBatch} samples`, n);
    checkInt('reps', reps, 1, 1 << 20);
    const ns = loadNative().binding.planProfile(this.plan, data, n, new Float32Array(n * this.outPer), this.threads, reps);
    return Array.from(ns, (v, i) => ({ op: i, kind: this.kinds[i], ms: v / 1e6 }));
  }

  /** Plan facts: op count, arena bytes, batch, how many leading ops a batch runs sample by sample, pool size. */
  info(): { ops: number; arenaBytes: number; maxBatch: number; depthFirstOps: number; poolThreads: number } {
    this.alive();
    return loadNative().binding.planInfo(this.plan);
  }
}

/** False for models with ops that run in TypeScript only (int8 ONNX models imported with ONNX semantics). */
export function planCompatible(model: Module): boolean {
  for (const m of model.modules()) {
    if (m instanceof GraphModule && m.hasTypeScriptOps) return false;
    if (m instanceof Quantize && m.onnxDivide) return false;
    if (m instanceof OnnxQLinearAdd || m instanceof OnnxQGlobalAveragePool) return false;
  }
  return true;
}

/** Compiles a converted (quantized) model into a native plan by tracing one forward pass. */
export function compileModel(model: Module, o: CompileOptions): CompiledModel {
  if (!planCompatible(model))
    throw new Error('compileModel: the model has ops that run in TypeScript only (float parts, explicit asymmetric pads or quantized Concat / Mul / AveragePool of an imported graph, or an int8 ONNX model ' +
      'imported with ONNX semantics: QuantizeLinear by division, QLinearAdd, QLinearGlobalAveragePool); run it with model.call()');
  if (!Array.isArray(o.inputShape) || o.inputShape.length === 0) throw invalidType('inputShape', 'a non-empty array', o.inputShape);
  o.inputShape.forEach((d, i) => checkInt(`inputShape[${i}]`, d, 1, 1 << 20));
  const maxBatch = checkInt('maxBatch', o.maxBatch ?? 16, 1, 4096);
  const threads = checkInt('threads', o.threads ?? 0, 0, 1024);
  const islands = floatIslands(model);
  if (islands.length)
    throw new Error(`compileModel: the model keeps ${islands.join(', ')} in float (mixed precision); native plans run int8 layers only. ` +
      'Run it module by module (model.call) instead');
  const tracer = new TracingBackend();
  const x = new Tensor(new Float32Array(o.inputShape.reduce((a, b) => a * b, 1)), [1, ...o.inputShape]);
  // The traced kernels do not run: their outputs are views of one large buffer nobody writes, so
  // tracing costs address space, not memory (fresh zeroed outputs came to ~13 MB for MobileNetV2-224).
  // It grows by doubling from 1 MB: a 64 MB buffer up front counted as external memory, and V8
  // answered with early scavenges that grew its young generation (about +4 MB of RSS).
  let scratch = new ArrayBuffer(0);
  const view = (n: number): Uint8Array => {
    if (n > scratch.byteLength) scratch = new ArrayBuffer(Math.max(n, 2 * scratch.byteLength, 1 << 20));
    return new Uint8Array(scratch, 0, n);
  };
  const y = withU8Allocator(view, () => withBackendOverride(tracer, () => model.call(x))) as Tensor;
  if (!(y instanceof Tensor)) throw new Error('compileModel: the model must return a float Tensor (end with DeQuantStub)');
  const traced = tracer.finish(x.data, y.data, o.inputShape);
  const plan = loadNative().binding.planCreate(traced.ops, traced.slotBytes, maxBatch, traced.inFloats, traced.outFloats, loadNative().isa);
  return new CompiledModel(plan, [...o.inputShape], y.shape.slice(1), maxBatch, threads, traced.ops.map((op) => (op.addOut !== undefined ? 'conv+add' : op.kind)));
}
