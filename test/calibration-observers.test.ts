// Percentile, entropy (KL) and MSE observers against straightforward references on seeded data.
import { EntropyObserver, MseObserver, PercentileObserver, StreamingHistogram } from '../lib/quantization/calibration-observers';
import { MinMaxObserver } from '../lib/quantization/observer';
import { calculateQParams } from '../lib/quantization/qparams';
import { rng } from './helpers/random';
import { qconfigByName } from '../lib/workflow';
import { defaultQConfig, getDefaultQConfig } from '../lib/quantization/qconfig';
import { fullRangeWarning } from '../lib/quantization/qconfig-extra';

/** Heavy-tailed, ReLU-like data: many zeros, a Laplace bulk and rare large outliers. */
function reluLaplace(seed: number, n: number, scale = 1): Float32Array {
  const r = rng(seed), x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = r();
    const v = -Math.log(1 - r()) * scale * (r() < 0.002 ? 12 : 1);
    x[i] = u < 0.4 ? 0 : v;
  }
  return x;
}

/** Signed data with a wide tail. */
function signed(seed: number, n: number, scale: number): Float32Array {
  const r = rng(seed), x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (r() < 0.5 ? -1 : 1) * -Math.log(1 - r()) * scale;
  return x;
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

// Batches with growing ranges force several re-binnings of the streaming histogram.
const batches = [signed(1, 4000, 0.5), signed(2, 4000, 1), reluLaplace(3, 4000, 2), signed(4, 4000, 3)];
const all = concat(batches);

describe('streaming histogram', () => {
  test('equals one histogram of all data with the final edges (exact counts)', () => {
    const h = new StreamingHistogram(2048);
    for (const b of batches) h.add(b);
    // tolerance 0: old bins merge whole into new ones, so only a value within rounding of a bin edge
    // could land differently, and the seeded data has none
    const ref = new Float64Array(2048);
    for (const v of all) ref[Math.min(2047, Math.max(0, Math.floor((v - h.lo) / h.width)))]++;
    expect(Array.from(h.counts)).toEqual(Array.from(ref));
    expect(h.total()).toBe(all.length);
    let mn = Infinity, mx = -Infinity;
    for (const v of all) { mn = Math.min(mn, v); mx = Math.max(mx, v); }
    expect([h.min, h.max]).toEqual([mn, mx]);
    expect(h.lo).toBeLessThanOrEqual(mn);
    expect(h.hi).toBeGreaterThanOrEqual(mx);
  });
});

describe('PercentileObserver', () => {
  test.each([[99.9], [99.99], [99]])('clips at the %p-th percentile of the sorted data (within one bin)', (pct) => {
    const o = new PercentileObserver({ percentile: pct });
    for (const b of batches) o.forward(b, [b.length]);
    const sorted = Float64Array.from(all).sort();
    const exact = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
    const [lo, hi] = o.clipRange();
    // the histogram estimate lies in the bin holding the true percentile: error < one bin width
    expect(Math.abs(hi - exact(pct / 100))).toBeLessThanOrEqual(o.hist.width);
    expect(Math.abs(lo - exact(1 - pct / 100))).toBeLessThanOrEqual(o.hist.width);
    const qp = o.calculateQParams();
    const ref = calculateQParams(Float32Array.of(lo), Float32Array.of(hi), {
      dtype: 'quint8', qscheme: 'per_tensor_affine', quantMin: 0, quantMax: 255, hasCustomizedQrange: false, eps: o.eps,
    });
    expect(qp.scale[0]).toBe(ref.scale[0]);
    expect(qp.zeroPoint[0]).toBe(ref.zeroPoint[0]);
  });
});

/** TensorRT entropy calibration written out plainly (the NVIDIA GTC 2017 pseudo-code). */
function referenceKlThreshold(data: Float32Array, bins: number, target: number): number {
  let amax = 0;
  for (const v of data) if (v !== 0) amax = Math.max(amax, Math.abs(v));
  const width = amax / bins;
  const hist = new Array<number>(bins).fill(0);
  for (const v of data) if (v !== 0) hist[Math.min(bins - 1, Math.floor(Math.abs(v) / width))]++;
  let bestI = bins, bestD = Infinity;
  for (let i = target; i <= bins; i++) {
    const ref = hist.slice(0, i);
    ref[i - 1] += hist.slice(i).reduce((a, b) => a + b, 0);
    const cand: number[] = [];
    const step = i / target;
    for (let t = 0; t < target; t++) {
      const s = Math.floor(t * step), e = t === target - 1 ? i : Math.floor((t + 1) * step);
      const chunk = hist.slice(s, e);
      const nonzero = chunk.filter((c) => c !== 0).length;
      const sum = chunk.reduce((a, b) => a + b, 0);
      for (const c of chunk) cand.push(c === 0 ? 0 : sum / nonzero);
    }
    const ps = ref.reduce((a, b) => a + b, 0), qs = cand.reduce((a, b) => a + b, 0);
    let d = 0;
    for (let j = 0; j < i; j++) if (ref[j] > 0) d += (ref[j] / ps) * Math.log((ref[j] / ps) / (cand[j] / qs));
    if (d < bestD) { bestD = d; bestI = i; }
  }
  return bestI * width;
}

describe('EntropyObserver', () => {
  test('threshold equals the plain TensorRT reference (ReLU data, 2048 bins, 256 levels)', () => {
    const x = reluLaplace(11, 30000);
    const o = new EntropyObserver({});
    o.forward(x, [x.length]);
    const ref = referenceKlThreshold(x, 2048, 256);
    // one batch: both histograms use the same edges; the KL sums differ only in summation order
    expect(o.threshold()).toBeCloseTo(ref, 12);
    expect(o.clipRange()[0]).toBe(0);
    expect(o.threshold()).toBeLessThan(o.hist.max);
  });

  test('signed data uses half the levels per side and a symmetric clip', () => {
    const x = signed(12, 20000, 1);
    const o = new EntropyObserver({});
    o.forward(x, [x.length]);
    expect(o.targetBins()).toBe(128);
    const t = referenceKlThreshold(x, 2048, 128);
    expect(o.threshold()).toBeCloseTo(t, 12);
    const [lo, hi] = o.clipRange();
    expect(lo).toBeCloseTo(-Math.min(t, -o.hist.min), 12);
    expect(hi).toBeCloseTo(Math.min(t, o.hist.max), 12);
  });
});

/** Exact squared error of fake-quantizing raw data with the qparams of [lo, hi]. */
function rawError(x: Float32Array, lo: number, hi: number): number {
  const qp = calculateQParams(Float32Array.of(lo), Float32Array.of(hi), {
    dtype: 'quint8', qscheme: 'per_tensor_affine', quantMin: 0, quantMax: 255, hasCustomizedQrange: false, eps: 2 ** -52,
  });
  const s = qp.scale[0], z = qp.zeroPoint[0];
  let e = 0;
  for (const v of x) {
    const q = Math.min(255, Math.max(0, Math.round(v / s) + z));
    e += (v - (q - z) * s) ** 2;
  }
  return e;
}

describe('MseObserver', () => {
  test.each([['relu-laplace', reluLaplace(21, 20000)], ['signed', signed(22, 20000, 1)]])(
    '%s: the chosen range is as good as a brute-force search on the raw data (within 2%%)', (_n, x) => {
      const o = new MseObserver({ steps: 200 });
      for (let i = 0; i < x.length; i += 5000) o.forward(x.subarray(i, i + 5000), [5000]);
      let mn = 0, mx = 0;
      for (const v of x) { mn = Math.min(mn, v); mx = Math.max(mx, v); }
      let best = Infinity;
      for (let k = 20; k <= 200; k++) best = Math.min(best, rawError(x, Math.fround((k / 200) * mn), Math.fround((k / 200) * mx)));
      const [lo, hi] = o.clipRange();
      const got = rawError(x, lo, hi);
      // the observer estimates the error from 2048 bin centres, not the raw values
      expect(got).toBeLessThanOrEqual(best * 1.02);
      // and it beats plain min/max on heavy-tailed data
      const mm = new MinMaxObserver({ quantMin: 0, quantMax: 255 });
      mm.forward(x, [x.length]);
      expect(got).toBeLessThan(rawError(x, Math.min(0, mm.minVal), Math.max(0, mm.maxVal)));
    });
});

test('observers warn and return scale 1 before calibration, and reject NaN', () => {
  const spy = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
  for (const O of [PercentileObserver, EntropyObserver, MseObserver]) {
    const o = new O({});
    expect(o.calculateQParams().scale[0]).toBe(1);
    expect(() => o.forward(Float32Array.of(1, NaN), [2])).toThrow(/NaN/);
  }
  spy.mockRestore();
});

describe('full-range qconfigs', () => {
  test('the new names use quint8 0..255 without reduce_range; PyTorch names are unchanged', () => {
    for (const n of ['fullrange', 'percentile', 'entropy', 'mse']) {
      const a = qconfigByName(n).activation();
      expect([a.dtype, a.quantMin, a.quantMax, a.reduceRange]).toEqual(['quint8', 0, 255, false]);
      expect(qconfigByName(n).weight().qscheme).toBe('per_channel_symmetric');
    }
    expect(String(qconfigByName('default'))).toBe(String(defaultQConfig));
    for (const b of ['fbgemm', 'x86', 'qnnpack', 'onednn']) expect(String(qconfigByName(b))).toBe(String(getDefaultQConfig(b)));
    expect(String(qconfigByName('fullrange'))).toBe(String(getDefaultQConfig('onednn')));
  });

  test('the reduce_range note appears only for full-range activations on ISAs without VNNI', () => {
    expect(fullRangeWarning(qconfigByName('mse'), 'avx2')).toMatch(/vpmaddubsw/);
    expect(fullRangeWarning(qconfigByName('mse'), 'scalar')).toMatch(/exact/);
    expect(fullRangeWarning(qconfigByName('mse'), 'avx512vnni')).toBeNull();
    expect(fullRangeWarning(qconfigByName('mse'), 'avxvnni')).toBeNull();
    expect(fullRangeWarning(qconfigByName('fbgemm'), 'avx2')).toBeNull();
    expect(fullRangeWarning(qconfigByName('default'), 'avx2')).toBeNull();
  });
});
