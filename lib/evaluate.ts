// Evaluation helpers from the tutorial: AverageMeter, top-k accuracy, evaluate().

/** Computes and stores the average and current value (the tutorial's AverageMeter). */
export class AverageMeter {
  val = 0;
  avg = 0;
  sum = 0;
  count = 0;
  constructor(readonly name: string) {}
  /** Adds a value observed n times. */
  update(val: number, n = 1): void {
    this.val = val;
    this.sum += val * n;
    this.count += n;
    this.avg = this.sum / this.count;
  }
  toString(): string {
    return `${this.name} ${this.val.toFixed(2)} (${this.avg.toFixed(2)})`;
  }
}

/**
 * Indices of the k largest logits of one row, ties broken toward the lowest class index
 * (int8 logits often tie; this makes top-1 deterministic).
 */
export function topk(logits: Float32Array, offset: number, numClasses: number, k: number): number[] {
  const idx: number[] = [];
  for (let c = 0; c < numClasses; c++) idx.push(c);
  idx.sort((a, b) => logits[offset + b] - logits[offset + a] || a - b);
  return idx.slice(0, k);
}

/** Per-batch accuracy counts: correct top-1 / top-5 and rows whose maximum is tied. */
export interface AccuracyCounts {
  top1: number;
  top5: number;
  tiedMax: number;
  count: number;
}

/** Counts correct top-1 and top-5 predictions of logits [B, C] against labels. */
export function accuracyCounts(logits: Float32Array, labels: Int32Array, numClasses: number): AccuracyCounts {
  const r: AccuracyCounts = { top1: 0, top5: 0, tiedMax: 0, count: labels.length };
  for (let i = 0; i < labels.length; i++) {
    const o = i * numClasses;
    const t = topk(logits, o, numClasses, Math.min(5, numClasses));
    if (t[0] === labels[i]) r.top1++;
    if (t.includes(labels[i])) r.top5++;
    let max = -Infinity, ties = 0;
    for (let c = 0; c < numClasses; c++) {
      const v = logits[o + c];
      if (v > max) { max = v; ties = 1; } else if (v === max) ties++;
    }
    if (ties > 1) r.tiedMax++;
  }
  return r;
}

/** Result of evaluate(): percentages and counts. */
export interface EvalResult {
  top1: number;
  top5: number;
  count: number;
  /** Images whose maximum logit was tied (top-1 then picks the lowest class index). */
  tiedMax: number;
  /** All logits [count, numClasses] when requested. */
  logits?: Float32Array;
  seconds: number;
}

/** A model callable on a batch of images, giving float logits (float or quantized models alike). */
export interface Classifier {
  call(x: unknown): unknown;
}

/** Runs a classifier over a dataset in order and measures top-1/top-5 (the tutorial's evaluate()). */
export function evaluate(
  model: Classifier,
  ds: { length: number; numClasses: number; batch(start: number, count: number): { images: unknown; labels: Int32Array } },
  o: { batchSize?: number; limit?: number; keepLogits?: boolean; onProgress?: (done: number, total: number) => void } = {},
): EvalResult {
  const bs = o.batchSize ?? 50;
  if (!Number.isInteger(bs) || bs < 1) throw new RangeError(`batch size must be a positive integer, got ${bs}`);
  const total = Math.min(ds.length, o.limit ?? ds.length);
  const logits = o.keepLogits ? new Float32Array(total * ds.numClasses) : undefined;
  const t0 = process.hrtime.bigint();
  let top1 = 0, top5 = 0, tied = 0;
  for (let s = 0; s < total; s += bs) {
    const b = ds.batch(s, Math.min(bs, total - s));
    const out = model.call(b.images) as { data: Float32Array; shape: readonly number[] };
    if (out.shape.length !== 2 || out.shape[1] !== ds.numClasses || out.shape[0] !== b.labels.length)
      throw new RangeError(`model output has shape [${out.shape.join(', ')}], expected [${b.labels.length}, ${ds.numClasses}]`);
    const c = accuracyCounts(out.data, b.labels, ds.numClasses);
    top1 += c.top1; top5 += c.top5; tied += c.tiedMax;
    logits?.set(out.data, s * ds.numClasses);
    o.onProgress?.(s + b.labels.length, total);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { top1: total ? (100 * top1) / total : 0, top5: total ? (100 * top5) / total : 0, count: total, tiedMax: tied, logits, seconds };
}
