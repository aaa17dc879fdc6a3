// Calibration observers beyond PyTorch 1.13's: percentile, entropy (KL divergence, TensorRT style)
// and MSE. All three keep a streaming histogram of the observed values and choose a clipping range
// from it; the qparams of that range then come from the same _calculate_qparams as torch's observers.
//
// The streaming histogram never interpolates: when a batch falls outside the current range, the
// range grows by whole multiples of the current bin width and k adjacent bins merge into one, so
// every old bin lies entirely inside one new bin. The result equals (up to float rounding at exact
// bin edges) the histogram of all data binned once with the final edges.
import { ObserverBase, ObserverOptions, pyFloatRepr } from './observer';
import { isPerTensor, QParams, warnUnobservedOnce } from './qparams';

/** Streaming histogram over [lo, lo + bins * width) (float64 edges), always containing 0. */
export class StreamingHistogram {
  counts: Float64Array;
  lo = 0;
  width = 0;
  /** Exact observed extremes. */
  min = Infinity;
  max = -Infinity;
  constructor(readonly bins: number) {
    if (!Number.isInteger(bins) || bins < 2 || bins % 2 !== 0) throw new RangeError(`bins must be an even integer >= 2, got ${bins}`);
    this.counts = new Float64Array(bins);
  }
  get empty(): boolean {
    return this.min > this.max;
  }
  get hi(): number {
    return this.lo + this.bins * this.width;
  }
  /** Bin index of x (clamped to the last bin for x == hi). */
  binOf(x: number): number {
    const i = Math.floor((x - this.lo) / this.width);
    return i < 0 ? 0 : i >= this.bins ? this.bins - 1 : i;
  }
  add(x: Float32Array): void {
    let mn = Infinity, mx = -Infinity;
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      if (v !== v) throw new Error('calibration observer: input contains NaN');
      if (v < mn) mn = v;
      if (v > mx) mx = v;
    }
    if (x.length === 0) return;
    if (!Number.isFinite(mn) || !Number.isFinite(mx)) throw new Error('calibration observer: input contains inf');
    if (this.empty) {
      const lo = Math.min(0, mn), hi = Math.max(0, mx);
      this.lo = lo;
      this.width = hi > lo ? (hi - lo) / this.bins : 1e-8;
    } else if (mn < this.lo || mx > this.hi) {
      this.grow(Math.min(mn, this.lo), Math.max(mx, this.hi));
    }
    this.min = Math.min(this.min, mn);
    this.max = Math.max(this.max, mx);
    const c = this.counts;
    for (let i = 0; i < x.length; i++) c[this.binOf(x[i])]++;
  }
  /** Grows to cover [lo, hi]: the new width is k * width, the new lo is lo - a * width (integers a, k). */
  private grow(lo: number, hi: number): void {
    const w = this.width, B = this.bins;
    const a = Math.ceil((this.lo - lo) / w); // old bins added on the left
    const b = Math.ceil((hi - this.hi) / w); // old bins added on the right
    const k = Math.ceil((a + B + b) / B);
    const out = new Float64Array(B);
    for (let i = 0; i < B; i++) if (this.counts[i]) out[Math.floor((i + a) / k)] += this.counts[i];
    this.counts = out;
    this.lo = this.lo - a * w;
    this.width = k * w;
  }
  /** Total count. */
  total(): number {
    let s = 0;
    for (let i = 0; i < this.bins; i++) s += this.counts[i];
    return s;
  }
}

/** Options of the histogram-based calibration observers. */
export interface CalibrationObserverOptions extends ObserverOptions {
  /** Histogram bins (default 2048). */
  bins?: number;
}

/** Base: a streaming histogram and a clipping-range search. */
export abstract class HistogramCalibrationObserver extends ObserverBase {
  readonly hist: StreamingHistogram;
  constructor(opts: CalibrationObserverOptions = {}) {
    const { bins, ...rest } = opts;
    super(rest);
    if (!isPerTensor(this.qscheme)) throw new Error(`${this.constructor.name} supports per-tensor qschemes only`);
    this.hist = new StreamingHistogram(bins ?? 2048);
  }
  forward(x: Float32Array, _shape: readonly number[]): void {
    this.hist.add(x);
  }
  get minVal(): number {
    return this.hist.min;
  }
  get maxVal(): number {
    return this.hist.max;
  }
  /** The chosen clipping range [lo, hi] (lo <= 0 <= hi). */
  abstract clipRange(): [number, number];
  calculateQParams(): QParams {
    if (this.hist.empty) {
      warnUnobservedOnce();
      return { scale: Float32Array.of(1), zeroPoint: Int32Array.of(0) };
    }
    const [lo, hi] = this.clipRange();
    return this.qparamsFrom(Float32Array.of(lo), Float32Array.of(hi));
  }
  protected extraRepr(): string {
    return `min_val=${pyFloatRepr(Math.fround(this.hist.min))}, max_val=${pyFloatRepr(Math.fround(this.hist.max))}`;
  }
}

/** Percentile observer options. */
export interface PercentileObserverOptions extends CalibrationObserverOptions {
  /** Upper percentile kept (default 99.99); the lower clip is at 100 - percentile when data is negative. */
  percentile?: number;
}

/**
 * Clips at a percentile of the observed values (streaming histogram, linear interpolation inside
 * the bin holding the percentile).
 */
export class PercentileObserver extends HistogramCalibrationObserver {
  static override readonly torchName: string = 'ptq_node.PercentileObserver';
  readonly percentile: number;
  constructor(opts: PercentileObserverOptions = {}) {
    const { percentile, ...rest } = opts;
    super(rest);
    this.percentile = percentile ?? 99.99;
    if (!(this.percentile > 50 && this.percentile <= 100)) throw new RangeError(`percentile must be in (50, 100], got ${this.percentile}`);
  }
  protected get name(): string {
    return 'PercentileObserver';
  }
  /** The value below which a fraction q of the observed values lie (histogram estimate). */
  quantile(q: number): number {
    const h = this.hist, total = h.total(), target = q * total;
    let acc = 0;
    for (let i = 0; i < h.bins; i++) {
      const c = h.counts[i];
      if (c > 0 && acc + c >= target) {
        const frac = (target - acc) / c;
        return h.lo + (i + frac) * h.width;
      }
      acc += c;
    }
    return h.hi;
  }
  clipRange(): [number, number] {
    const p = this.percentile / 100;
    const h = this.hist;
    const hi = Math.max(0, Math.min(h.max, this.quantile(p)));
    const lo = h.min < 0 ? Math.min(0, Math.max(h.min, this.quantile(1 - p))) : Math.min(0, h.min);
    return [lo, hi];
  }
}

/**
 * TensorRT's entropy calibration on the histogram of |x|: the threshold whose clipped-and-quantized
 * distribution Q has the smallest KL divergence from the clipped reference distribution P.
 */
export function klThresholdBin(hist: ArrayLike<number>, targetBins: number): number {
  const n = hist.length;
  let best = n, bestKl = Infinity;
  const p = new Float64Array(n), q = new Float64Array(n);
  for (let i = targetBins; i <= n; i++) {
    // reference P: the first i bins, the outliers folded into the last one
    let outliers = 0;
    for (let j = i; j < n; j++) outliers += hist[j];
    for (let j = 0; j < i; j++) p[j] = hist[j];
    p[i - 1] += outliers;
    // candidate Q: the first i bins merged into targetBins levels, expanded back over the nonzero bins
    const merge = i / targetBins;
    for (let t = 0; t < targetBins; t++) {
      const s = Math.floor(t * merge), e = t === targetBins - 1 ? i : Math.floor((t + 1) * merge);
      let sum = 0, nz = 0;
      for (let j = s; j < e; j++) { sum += hist[j]; if (hist[j] !== 0) nz++; }
      for (let j = s; j < e; j++) q[j] = hist[j] !== 0 ? sum / nz : 0;
    }
    let ps = 0, qs = 0;
    for (let j = 0; j < i; j++) { ps += p[j]; qs += q[j]; }
    if (ps === 0 || qs === 0) continue;
    let kl = 0;
    for (let j = 0; j < i; j++) {
      if (p[j] === 0) continue;
      const pj = p[j] / ps, qj = q[j] / qs;
      kl += qj === 0 ? Infinity : pj * Math.log(pj / qj);
    }
    if (kl < bestKl) { bestKl = kl; best = i; }
  }
  return best;
}

/** Entropy (KL divergence) observer: TensorRT's calibrator, 2048 bins of |x| by default. */
export class EntropyObserver extends HistogramCalibrationObserver {
  static override readonly torchName: string = 'ptq_node.EntropyObserver';
  /** Histogram of |x| over [0, max|x|] kept alongside (TensorRT bins absolute values). */
  readonly absHist: StreamingHistogram;
  constructor(opts: CalibrationObserverOptions = {}) {
    super(opts);
    this.absHist = new StreamingHistogram(opts.bins ?? 2048);
  }
  protected get name(): string {
    return 'EntropyObserver';
  }
  override forward(x: Float32Array, shape: readonly number[]): void {
    super.forward(x, shape);
    // exact zeros (ReLU's spike) are left out: zero is exactly representable in every range
    // (the zero point), and the spike would otherwise dominate P and push the threshold down
    let nz = 0;
    for (let i = 0; i < x.length; i++) if (x[i] !== 0) nz++;
    const a = new Float32Array(nz);
    for (let i = 0, j = 0; i < x.length; i++) if (x[i] !== 0) a[j++] = Math.abs(x[i]);
    this.absHist.add(a);
  }
  /** Quantization levels on one side of zero: the whole range for non-negative data, else half. */
  targetBins(): number {
    const levels = this.quantMax - this.quantMin + 1;
    return this.hist.min < 0 ? Math.floor(levels / 2) : levels;
  }
  /** The |x| threshold (upper edge of the chosen bin). */
  threshold(): number {
    const h = this.absHist;
    if (h.empty) return Math.max(Math.abs(this.hist.min), Math.abs(this.hist.max));
    const i = klThresholdBin(h.counts, Math.min(this.targetBins(), h.bins));
    return Math.min(h.lo + i * h.width, h.max);
  }
  clipRange(): [number, number] {
    const t = this.threshold();
    const h = this.hist;
    return [Math.min(0, Math.max(h.min, -t)), Math.max(0, Math.min(h.max, t))];
  }
}

/** MSE observer options. */
export interface MseObserverOptions extends CalibrationObserverOptions {
  /** Candidate ranges [a * lo, a * hi] for a = k / steps, k = steps/10 .. steps (default 200). */
  steps?: number;
}

/**
 * MSE observer: among the candidate ranges [a * min, a * max], the one whose quantize-dequantize of
 * the observed distribution (bin centres, weighted by count) has the smallest squared error.
 */
export class MseObserver extends HistogramCalibrationObserver {
  static override readonly torchName: string = 'ptq_node.MseObserver';
  readonly steps: number;
  constructor(opts: MseObserverOptions = {}) {
    const { steps, ...rest } = opts;
    super(rest);
    this.steps = steps ?? 200;
    if (!Number.isInteger(this.steps) || this.steps < 10) throw new RangeError(`steps must be an integer >= 10, got ${this.steps}`);
  }
  protected get name(): string {
    return 'MseObserver';
  }
  /** Expected squared error of quantizing the histogram with the qparams of [lo, hi]. */
  errorOf(lo: number, hi: number): number {
    const qp = this.qparamsFrom(Float32Array.of(lo), Float32Array.of(hi));
    return histogramQuantError(this.hist, qp.scale[0], qp.zeroPoint[0], this.quantMin, this.quantMax);
  }
  clipRange(): [number, number] {
    const h = this.hist;
    const mn = Math.min(0, h.min), mx = Math.max(0, h.max);
    let best: [number, number] = [mn, mx], bestErr = Infinity;
    for (let k = Math.max(1, Math.floor(this.steps / 10)); k <= this.steps; k++) {
      const a = k / this.steps;
      const lo = Math.fround(a * mn), hi = Math.fround(a * mx);
      const err = this.errorOf(lo, hi);
      if (err < bestErr) { bestErr = err; best = [lo, hi]; }
    }
    return best;
  }
}

/** Sum over bins of count * (centre - fakequant(centre))^2 for the given affine qparams. */
export function histogramQuantError(h: StreamingHistogram, scale: number, zp: number, qmin: number, qmax: number): number {
  let err = 0;
  for (let i = 0; i < h.bins; i++) {
    const c = h.counts[i];
    if (!c) continue;
    const x = h.lo + (i + 0.5) * h.width;
    let q = Math.round(x / scale) + zp;
    q = q < qmin ? qmin : q > qmax ? qmax : q;
    const d = x - (q - zp) * scale;
    err += c * d * d;
  }
  return err;
}
