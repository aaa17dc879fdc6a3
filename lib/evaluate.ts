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
