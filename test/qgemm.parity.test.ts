// Native u8s8 GEMM vs the TS reference, bit-exact, on every ISA level this CPU supports.
import { loadNative, nativeBackend, referenceBackend } from '../lib/kernels';
import { QGemmTester } from './helpers/qgemm-tester';
import { nextPrime } from './helpers/random';

const addon = loadNative();
const ZERO_POINTS = [0, 1, 18, 75, 128, 157, 231, 255]; // MLAS's zero point classes

describe.each(addon.supported.map((isa) => [isa]))('qgemm u8s8 %s', (isa) => {
  const t = () => new QGemmTester();
  const K_LIST = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 960];

  test('k sweep (k_lt/k_eq/k_gt/k_div around the 4-byte and vector blocks)', () => {
    for (const k of K_LIST) for (const m of [1, 6, 8]) t().m(m).n(16).k(k).test(nativeBackend, isa);
  });
  test('n sweep (ragged column blocks)', () => {
    for (let n = 1; n <= 34; n++) t().m(5).n(n).k(19).test(nativeBackend, isa);
    for (const n of [47, 48, 49, 63, 64, 65, 100, 1280]) t().m(3).n(n).k(37).test(nativeBackend, isa);
  });
  test('m sweep (row subtiles and remainders)', () => {
    for (let m = 1; m <= 25; m++) t().m(m).n(33).k(23).test(nativeBackend, isa);
    for (const m of [49, 196]) t().m(m).n(24).k(96).test(nativeBackend, isa);
  });
  test('strided a and c (prime strides)', () => {
    for (const k of [3, 16, 45]) for (const n of [5, 16, 40])
      t().m(11).n(n).k(k).lda(nextPrime(k + 1)).ldc(nextPrime(n + 1)).test(nativeBackend, isa);
  });
  test('every zero point class, per-tensor and per-channel, ReLU on/off', () => {
    for (const za of ZERO_POINTS) for (const zy of ZERO_POINTS) for (const pc of [true, false]) for (const relu of [false, true])
      t().m(7).n(21).k(29).inputZeroPoint(za).outputZeroPoint(zy).perChannel(pc).relu(relu).seed(za + zy).test(nativeBackend, isa);
  });
  test('no bias, clamp below 255 (ReLU6-style max)', () => {
    t().m(9).n(18).k(40).bias(false).test(nativeBackend, isa);
    t().m(9).n(18).k(40).outputZeroPoint(10).relu(true).outMax(100).test(nativeBackend, isa);
  });
  test('outputs far outside int16 and u8 saturate to the clamp bounds in both directions', () => {
    for (const zy of [0, 77, 255]) for (const spread of [1e3, 1e5, 1e9])
      t().m(13).n(35).k(24).outputZeroPoint(zy).spread(spread).relu(zy === 77).outMax(zy === 77 ? 200 : 255).seed(zy).test(nativeBackend, isa);
  });
  test('extreme operands: 255 x -128/127 (vpmaddubsw would saturate), int32 wrap-around', () => {
    for (const w of ['max', 'min', 'mixed-extreme'] as const) {
      t().m(4).n(17).k(64).inputs('max').weights(w).inputZeroPoint(0).test(nativeBackend, isa);
      t().m(4).n(17).k(64).inputs('zero').weights(w).inputZeroPoint(255).test(nativeBackend, isa);
    }
    // 255 * -128 * 70001 overflows int32: every implementation wraps the same way.
    t().m(2).n(3).k(70001).inputs('max').weights('min').inputZeroPoint(0).test(nativeBackend, isa);
  });
  test('MobileNetV2 pointwise shapes', () => {
    for (const [m, k, n] of [[196, 16, 96], [49, 160, 960], [49, 320, 1280], [1, 1280, 10], [784, 24, 144]])
      t().m(m).n(n).k(k).test(nativeBackend, isa);
  });
});

test('the sweep covers every level this CPU has (scalar always)', () => {
  expect(addon.supported[0]).toBe('scalar');
  expect(addon.supported).toContain(addon.isa);
});

test('the tester catches a single wrong output byte', () => {
  // A backend that corrupts one byte must fail the comparison.
  const broken = {
    ...referenceBackend,
    qgemm(p: Parameters<typeof referenceBackend.qgemm>[0], m: number, a: Uint8Array, c: Uint8Array, lda?: number, ldc?: number) {
      referenceBackend.qgemm(p, m, a, c, lda, ldc);
      c[Math.floor(c.length / 2)] ^= 1;
    },
  };
  expect(() => new QGemmTester().m(4).n(8).k(8).test(broken)).toThrow(/qgemm mismatch isa=reference M=4 N=8 K=8 .* expected \d+, actual \d+, accumulator -?\d+/);
});
