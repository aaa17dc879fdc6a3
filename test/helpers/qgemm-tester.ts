// QGemmTester: a builder in the style of XNNPACK's GemmMicrokernelTester. It builds random
// operands for one shape, runs a backend's packed GEMM and the TS reference, and compares every
// output byte with tolerance 0, reporting ISA, shape, index, expected, actual and accumulator.
import type { IsaName } from '../../binding';
import { Backend, QGemmSpec, qgemmEpilogue, requantize } from '../../lib/kernels';
import { qgemmReference } from '../../lib/kernels/reference/qgemm';
import { randInt, rng } from './random';

export type WeightFill = 'random' | 'max' | 'min' | 'mixed-extreme';
export type InputFill = 'random' | 'max' | 'zero';

export class QGemmTester {
  private o = {
    m: 1, n: 1, k: 1, lda: 0, ldc: 0, inputZeroPoint: 128, outputZeroPoint: 128, perChannel: true,
    relu: false, bias: true, seed: 1, weights: 'random' as WeightFill, inputs: 'random' as InputFill,
    outMax: 255, spread: 200,
  };

  m(v: number): this { this.o.m = v; return this; }
  n(v: number): this { this.o.n = v; return this; }
  k(v: number): this { this.o.k = v; return this; }
  lda(v: number): this { this.o.lda = v; return this; }
  ldc(v: number): this { this.o.ldc = v; return this; }
  inputZeroPoint(v: number): this { this.o.inputZeroPoint = v; return this; }
  outputZeroPoint(v: number): this { this.o.outputZeroPoint = v; return this; }
  perChannel(v: boolean): this { this.o.perChannel = v; return this; }
  relu(v: boolean): this { this.o.relu = v; return this; }
  bias(v: boolean): this { this.o.bias = v; return this; }
  seed(v: number): this { this.o.seed = v; return this; }
  weights(v: WeightFill): this { this.o.weights = v; return this; }
  inputs(v: InputFill): this { this.o.inputs = v; return this; }
  outMax(v: number): this { this.o.outMax = v; return this; }
  /** Output steps the accumulator range spans (200 spreads it over u8; huge values saturate every pack). */
  spread(v: number): this { this.o.spread = v; return this; }

  /** Runs the backend at the given ISA against the reference; throws a descriptive Error on any mismatch. */
  test(backend: Backend, isa?: IsaName): void {
    const { m, n, k, inputZeroPoint: za, outputZeroPoint: zy, seed } = this.o;
    const lda = this.o.lda || k, ldc = this.o.ldc || n;
    const r = rng(seed * 7919 + m * 131 + n * 17 + k);
    const a = new Uint8Array(m === 0 ? 0 : (m - 1) * lda + k);
    for (let i = 0; i < a.length; i++)
      a[i] = this.o.inputs === 'max' ? 255 : this.o.inputs === 'zero' ? 0 : randInt(r, 0, 255);
    const weight = new Int8Array(n * k);
    for (let i = 0; i < weight.length; i++) {
      const f = this.o.weights;
      weight[i] = f === 'max' ? 127 : f === 'min' ? -128 : f === 'mixed-extreme' ? (r() < 0.5 ? -128 : 127) : randInt(r, -128, 127);
    }
    const inputScale = 0.01 + r() * 0.05;
    const weightScale = new Float32Array(this.o.perChannel ? n : 1).map(() => 0.001 + r() * 0.02);
    const bias = this.o.bias ? new Float32Array(n).map(() => (r() - 0.5) * 4) : null;
    // Pick the output scale so the outputs spread over the u8 range (as XNNPACK's tester does).
    const probe = qgemmEpilogue({ k, n, weight, inputScale, inputZeroPoint: za, weightScale, bias: null,
      outputScale: 1, outputZeroPoint: 0, outMin: 0, outMax: 255 });
    let lo = Infinity, hi = -Infinity;
    const accs = qgemmReference(Math.min(m, 8), k, n, a, lda, weight, probe, new Uint8Array(Math.min(m, 8) * n), n);
    for (let i = 0; i < accs.length; i++) {
      const v = accs[i] * inputScale * weightScale[this.o.perChannel ? i % n : 0];
      lo = Math.min(lo, v); hi = Math.max(hi, v);
    }
    const outputScale = hi > lo ? (hi - lo) / this.o.spread : 0.1;
    const spec: QGemmSpec = { k, n, weight, inputScale, inputZeroPoint: za, weightScale, bias, outputScale,
      outputZeroPoint: zy, outMin: this.o.relu ? zy : 0, outMax: this.o.outMax };

    const canary = 0xa5;
    const expected = new Uint8Array(m === 0 ? 0 : (m - 1) * ldc + n).fill(canary);
    const e = qgemmEpilogue(spec);
    const refAccs = qgemmReference(m, k, n, a, lda, weight, e, expected, ldc);
    const actual = new Uint8Array(expected.length).fill(canary);
    const packed = backend.packQGemm(spec, isa ? { isa } : undefined);
    backend.qgemm(packed, m, a, actual, lda, ldc);
    for (let i = 0; i < m; i++)
      for (let j = 0; j < ldc && i * ldc + j < actual.length; j++) {
        const idx = i * ldc + j;
        if (actual[idx] !== expected[idx]) {
          const acc = j < n ? refAccs[i * n + j] : NaN;
          throw new Error(
            `qgemm mismatch isa=${packed.isa} M=${m} N=${n} K=${k} lda=${lda} ldc=${ldc} za=${za} zy=${zy} ` +
              `${this.o.perChannel ? 'per-channel' : 'per-tensor'} relu=${this.o.relu} weights=${this.o.weights} ` +
              `at [${i}][${j}]: expected ${expected[idx]}, actual ${actual[idx]}` +
              (j < n ? `, accumulator ${acc} (requantized ${requantize(acc, j, e)})` : ' (outside N: canary overwritten)'),
          );
        }
      }
  }
}
