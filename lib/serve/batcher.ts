// Dynamic batching: requests queue up; a batch starts when maxBatch samples are waiting, when the
// oldest has waited maxWaitMs, or (maxWaitMs = 0) at once. One batch runs at a time (a compiled plan
// runs one batch at a time, and its intra-op pool already uses the cores), so samples that arrive
// while a batch runs form the next one. The queue is bounded: beyond maxQueue, submit() rejects
// with an OverloadError (HTTP 503) instead of buffering without limit.
import { PtqError } from '../errors';

/** Options of DynamicBatcher. */
export interface BatcherOptions {
  /** Most samples per batch (>= 1; 1 disables batching). */
  maxBatch: number;
  /** How long the oldest queued sample may wait for others before its batch starts (ms, >= 0). */
  maxWaitMs: number;
  /** Most samples waiting (not yet in a running batch); more are rejected. */
  maxQueue: number;
}

/** The queue is full or the batcher is closing. */
export class OverloadError extends PtqError {
  constructor(message: string, readonly retryAfterSeconds = 1) {
    super(message, 'ERR_OVERLOADED');
    this.name = 'OverloadError';
  }
}

interface Pending {
  input: Float32Array;
  t: number;
  resolve: (r: BatchResult) => void;
  reject: (e: Error) => void;
}

/** One sample's output and the batch it ran in. */
export interface BatchResult {
  output: Float32Array;
  batchSize: number;
  /** Milliseconds from submit to the start of its batch, and the batch's run time. */
  queueMs: number;
  runMs: number;
}

/** Runs a batch [n, ...] of concatenated samples and returns [n, ...] outputs. */
export type BatchRunner = (input: Float32Array, n: number) => Promise<Float32Array>;

/** Collects concurrent single-sample requests into batches. */
export class DynamicBatcher {
  private readonly queue: Pending[] = [];
  private running = 0;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly runner: BatchRunner,
    readonly inPer: number,
    readonly outPer: number,
    readonly options: BatcherOptions,
    private readonly onBatch?: (size: number, runMs: number) => void,
  ) {
    const { maxBatch, maxWaitMs, maxQueue } = options;
    if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new RangeError(`maxBatch must be a positive integer, got ${maxBatch}`);
    if (!(maxWaitMs >= 0) || !Number.isFinite(maxWaitMs)) throw new RangeError(`maxWaitMs must be a number >= 0, got ${maxWaitMs}`);
    if (!Number.isInteger(maxQueue) || maxQueue < 1) throw new RangeError(`maxQueue must be a positive integer, got ${maxQueue}`);
  }

  /** Samples waiting for a batch. */
  get queueDepth(): number {
    return this.queue.length;
  }

  /** Batches running now (0 or 1). */
  get inFlight(): number {
    return this.running;
  }

  /** Queues one sample (inPer floats); resolves with its output when its batch has run. */
  submit(input: Float32Array): Promise<BatchResult> {
    if (input.length !== this.inPer) return Promise.reject(new RangeError(`a sample has ${this.inPer} floats, got ${input.length}`));
    if (this.closed) return Promise.reject(new OverloadError('the server is shutting down', 5));
    if (this.queue.length >= this.options.maxQueue)
      return Promise.reject(new OverloadError(`the queue is full (${this.options.maxQueue} requests waiting); retry later`));
    return new Promise<BatchResult>((resolve, reject) => {
      this.queue.push({ input, t: performance.now(), resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    if (this.running > 0 || this.queue.length === 0) return;
    const waited = performance.now() - this.queue[0].t;
    if (this.queue.length >= this.options.maxBatch || waited >= this.options.maxWaitMs || this.closed) {
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = null;
      }
      void this.runBatch();
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.pump();
      }, Math.max(0, this.options.maxWaitMs - waited));
    }
  }

  private async runBatch(): Promise<void> {
    const items = this.queue.splice(0, this.options.maxBatch);
    const n = items.length;
    this.running++;
    const input = new Float32Array(n * this.inPer);
    items.forEach((it, i) => input.set(it.input, i * this.inPer));
    const t0 = performance.now();
    try {
      const out = await this.runner(input, n);
      const runMs = performance.now() - t0;
      this.onBatch?.(n, runMs);
      items.forEach((it, i) =>
        it.resolve({ output: out.slice(i * this.outPer, (i + 1) * this.outPer), batchSize: n, queueMs: t0 - it.t, runMs }));
    } catch (e) {
      for (const it of items) it.reject(e as Error);
    } finally {
      this.running--;
      this.pump();
      if (this.running === 0 && this.queue.length === 0) {
        const w = this.idleWaiters;
        this.idleWaiters = [];
        w.forEach((f) => f());
      }
    }
  }

  /** Stops accepting samples (submit rejects with OverloadError); queued ones still run. */
  close(): void {
    this.closed = true;
    this.pump();
  }

  /** Resolves when nothing is queued or running. */
  drain(): Promise<void> {
    if (this.running === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }
}
