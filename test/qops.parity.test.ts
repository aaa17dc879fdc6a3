// Native quantized conv (GEMM, im2col, depthwise, grouped), quantize/dequantize, add, mean and
// max pooling vs the TS reference: bit-exact on every ISA level this CPU has.
import type { IsaName } from '../binding';
import { loadNative, nativeBackend, QConv2dSpec, referenceBackend } from '../lib/kernels';
import type { Conv2dGeometry } from '../lib/kernels/float';
import { convOutSize } from '../lib/kernels/float';
import { randInt, rng } from './helpers/random';

const addon = loadNative();
const ZPS = [0, 1, 75, 128, 231, 255];

interface ConvCase { cin: number; cout: number; k: number; s: number; p: number; d?: number; g?: number; h: number; w: number; n?: number }

function convSpec(c: ConvCase, r: () => number, zx: number, zy: number, perChannel: boolean, relu: boolean): QConv2dSpec {
  const g = c.g ?? 1;
  const geometry: Conv2dGeometry = { inChannels: c.cin, outChannels: c.cout, kernelH: c.k, kernelW: c.k, strideH: c.s, strideW: c.s,
    padH: c.p, padW: c.p, dilationH: c.d ?? 1, dilationW: c.d ?? 1, groups: g };
  const k = (c.cin / g) * c.k * c.k;
  const weight = new Int8Array(c.cout * k).map(() => randInt(r, -128, 127));
  const inputScale = 0.02 + r() * 0.02;
  const weightScale = new Float32Array(perChannel ? c.cout : 1).map(() => 0.002 + r() * 0.01);
  // Output scale so that typical accumulators spread over the u8 range.
  const outputScale = (inputScale * weightScale[0] * Math.sqrt(k) * 74 * 64) / 50;
  return { geometry, weight, inputScale, inputZeroPoint: zx, weightScale, bias: new Float32Array(c.cout).map(() => (r() - 0.5) * 3),
    outputScale, outputZeroPoint: zy, outMin: relu ? zy : 0, outMax: 255 };
}

function checkConv(isa: IsaName, c: ConvCase, seed: number, zx = 128, zy = 100, perChannel = true, relu = false): void {
  const r = rng(seed);
  const spec = convSpec(c, r, zx, zy, perChannel, relu);
  const n = c.n ?? 1;
  const x = new Uint8Array(n * c.h * c.w * c.cin).map(() => randInt(r, 0, 255));
  const oh = convOutSize(c.h, c.k, c.s, c.p, c.d ?? 1), ow = convOutSize(c.w, c.k, c.s, c.p, c.d ?? 1);
  const want = new Uint8Array(n * oh * ow * c.cout), got = new Uint8Array(want.length).fill(0xa5);
  referenceBackend.qconv2d(referenceBackend.packQConv2d(spec), x, n, c.h, c.w, want);
  nativeBackend.qconv2d(nativeBackend.packQConv2d(spec, { isa }), x, n, c.h, c.w, got);
  for (let i = 0; i < want.length; i++)
    if (want[i] !== got[i]) {
      const ch = i % c.cout, pix = Math.floor(i / c.cout);
      throw new Error(`qconv2d mismatch isa=${isa} ${JSON.stringify(c)} zx=${zx} zy=${zy} ${perChannel ? 'per-channel' : 'per-tensor'} relu=${relu} ` +
        `at pixel ${pix} channel ${ch}: expected ${want[i]}, actual ${got[i]}`);
    }
  // Outputs must not be degenerate (all clamped), or the comparison proves little; a ReLU with a
  // zero point near 255 leaves no room by construction.
  if (!relu || zy <= 200) expect(new Set(want).size).toBeGreaterThan(Math.min(8, want.length / 4));
}

describe.each(addon.supported.map((i) => [i]))('quantized ops %s', (isa) => {
  test('conv: 1x1, KxK, strides, padding, dilation, batch', () => {
    const cases: ConvCase[] = [
      { cin: 16, cout: 24, k: 1, s: 1, p: 0, h: 7, w: 5 },
      { cin: 3, cout: 32, k: 3, s: 2, p: 1, h: 28, w: 28 }, // MobileNetV2 stem
      { cin: 3, cout: 16, k: 7, s: 2, p: 3, h: 19, w: 23 }, // ResNet stem
      { cin: 8, cout: 17, k: 3, s: 1, p: 1, h: 6, w: 9, n: 3 },
      { cin: 5, cout: 33, k: 3, s: 2, p: 0, h: 9, w: 8 },
      { cin: 24, cout: 16, k: 1, s: 2, p: 0, h: 8, w: 8 }, // ResNet downsample
      { cin: 7, cout: 9, k: 3, s: 1, p: 2, d: 2, h: 10, w: 11 },
      { cin: 13, cout: 5, k: 5, s: 3, p: 2, h: 14, w: 15 },
      { cin: 64, cout: 1, k: 1, s: 1, p: 0, h: 1, w: 1, n: 2 },
    ];
    cases.forEach((c, i) => checkConv(isa, c, 100 + i));
  });
  test('depthwise 3x3 stride 1/2 and grouped convs', () => {
    for (const c of [1, 7, 16, 17, 32, 33, 96, 144])
      for (const s of [1, 2]) checkConv(isa, { cin: c, cout: c, g: c, k: 3, s, p: 1, h: 9, w: 7, n: 2 }, c * 10 + s);
    checkConv(isa, { cin: 16, cout: 16, g: 16, k: 5, s: 1, p: 2, h: 8, w: 8 }, 5);
    checkConv(isa, { cin: 8, cout: 12, g: 4, k: 3, s: 1, p: 1, h: 6, w: 6 }, 6);
    checkConv(isa, { cin: 6, cout: 4, g: 2, k: 1, s: 1, p: 0, h: 5, w: 5 }, 7);
  });
  test('conv: every zero point class, per-tensor and per-channel, ReLU', () => {
    for (const zx of ZPS) for (const zy of ZPS) for (const pc of [true, false]) for (const relu of [false, true]) {
      checkConv(isa, { cin: 4, cout: 6, k: 3, s: 1, p: 1, h: 5, w: 5 }, zx * 7 + zy, zx, zy, pc, relu);
      checkConv(isa, { cin: 8, cout: 8, g: 8, k: 3, s: 2, p: 1, h: 6, w: 6 }, zx * 5 + zy, zx, zy, pc, relu);
    }
  });
});

describe('element-wise ops, native vs reference (bit-exact)', () => {
  const r = rng(42);
  const n = 4099;
  test('quantize / dequantize, incl. ties, saturation and extremes', () => {
    const x = new Float32Array(n).map((_, i) => (i % 7 === 0 ? (i - 2000) * 0.5 : (r() - 0.5) * 40));
    x[0] = 1e30; x[1] = -1e30; x[2] = 2.5; x[3] = 3.5; x[4] = -0.5;
    for (const [s, z] of [[0.1, 0], [0.0078431377, 128], [1, 10], [0.37, 255], [3e-5, 77]]) {
      const a = new Uint8Array(n), b = new Uint8Array(n);
      referenceBackend.quantize(x, a, s, z);
      nativeBackend.quantize(x, b, s, z);
      expect(b).toEqual(a);
      const fa = new Float32Array(n), fb = new Float32Array(n);
      referenceBackend.dequantize(a, fa, s, z);
      nativeBackend.dequantize(a, fb, s, z);
      expect(fb).toEqual(fa);
    }
  });
  test('add and add_relu over zero points and scales', () => {
    for (const relu of [false, true]) for (const [za, zb, zo] of [[0, 0, 0], [128, 3, 200], [255, 255, 17], [64, 191, 128]]) {
      const a = new Uint8Array(n).map(() => randInt(r, 0, 255)), b = new Uint8Array(n).map(() => randInt(r, 0, 255));
      const p = { aScale: 0.01 + r() * 0.1, aZeroPoint: za, bScale: 0.01 + r() * 0.1, bZeroPoint: zb, outScale: 0.02 + r() * 0.1, outZeroPoint: zo, relu };
      const want = new Uint8Array(n), got = new Uint8Array(n);
      referenceBackend.qadd(a, b, want, p);
      nativeBackend.qadd(a, b, got, p);
      expect(got).toEqual(want);
    }
  });
  test('mean over H*W and max pooling', () => {
    for (const [bn, hw, c] of [[1, 1, 7], [2, 49, 33], [3, 16, 1280]]) {
      const x = new Uint8Array(bn * hw * c).map(() => randInt(r, 0, 255));
      const want = new Uint8Array(bn * c), got = new Uint8Array(bn * c);
      referenceBackend.qmeanHW(x, bn, hw, c, want, 0.0431, 9);
      nativeBackend.qmeanHW(x, bn, hw, c, got, 0.0431, 9);
      expect(got).toEqual(want);
    }
    const [h, w, c] = [9, 8, 5];
    const x = new Uint8Array(2 * h * w * c).map(() => randInt(r, 0, 255));
    const oh = convOutSize(h, 3, 2, 1, 1), ow = convOutSize(w, 3, 2, 1, 1);
    const want = new Uint8Array(2 * oh * ow * c), got = new Uint8Array(want.length);
    referenceBackend.qmaxpool2d(x, 2, h, w, c, 3, 2, 1, want);
    nativeBackend.qmaxpool2d(x, 2, h, w, c, 3, 2, 1, got);
    expect(got).toEqual(want);
  });
});
