// The native observer loops (aminmax, histc counting) equal the TS loops they accelerate.
import { HistogramObserver, MinMaxObserver } from '../lib/quantization/observer';
import { getStatsKernels, useReferenceStats } from '../lib/kernels/stats';
import { rng } from './helpers/random';

afterAll(() => useReferenceStats(false));

function run(make: () => MinMaxObserver | HistogramObserver, batches: Float32Array[]): string {
  const o = make();
  for (const b of batches) o.forward(b, [b.length]);
  const q = o.calculateQParams();
  return `${q.scale[0]} ${q.zeroPoint[0]} ${o.toString()}`;
}

test('native stats kernels are available and agree with the TS loops', () => {
  expect(getStatsKernels()).not.toBeNull();
  const r = rng(11);
  const batches: Float32Array[] = [];
  for (let b = 0; b < 4; b++) {
    const x = new Float32Array(5000 + b * 333).map(() => (r() - 0.3) * (b + 1) * 3.7);
    x[0] = -0; x[1] = 0; x[2] = Math.fround(b + 0.999999);
    batches.push(x);
  }
  for (const make of [() => new MinMaxObserver(), () => new HistogramObserver({ reduceRange: true }), () => new HistogramObserver()]) {
    useReferenceStats(false);
    const native = run(make, batches);
    useReferenceStats(true);
    const ts = run(make, batches);
    expect(native).toBe(ts);
  }
});

test('NaN input is detected the same way', () => {
  const x = new Float32Array(3000).fill(1);
  x[1777] = NaN;
  useReferenceStats(false);
  expect(() => new HistogramObserver().forward(x, [x.length])).toThrow();
  useReferenceStats(true);
  expect(() => new HistogramObserver().forward(x, [x.length])).toThrow();
});
