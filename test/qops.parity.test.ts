// Native quantized conv (GEMM, im2col, depthwise, grouped), quantize/dequantize, add, mean and
// max pooling vs the TS reference: bit-exact on every ISA level this CPU has.
import type { IsaName } from '../binding';
import { loadNative, nativeBackend, QConv2dSpec, referenceBackend } from '../lib/kernels';
import type { Conv2dGeometry } from '../lib/kernels/float';
import { convOutSize } from '../lib/kernels/float';
import { randInt, rng } from './helpers/random';

const addon = loadNative();
const ZPS = [0, 1, 75, 128, 231, 255];

// k, s, p, d apply to both axes unless kw, sw, pw, dw override the width's.
interface ConvCase {
  cin: number; cout: number; k: number; s: number; p: number; d?: number; g?: number; h: number; w: number; n?: number;
  kw?: number; sw?: number; pw?: number; dw?: number;
}

function convSpec(c: ConvCase, r: () => number, zx: number, zy: number, perChannel: boolean, relu: boolean): QConv2dSpec {
  const g = c.g ?? 1;
  const geometry: Conv2dGeometry = { inChannels: c.cin, outChannels: c.cout, kernelH: c.k, kernelW: c.kw ?? c.k, strideH: c.s,
    strideW: c.sw ?? c.s, padH: c.p, padW: c.pw ?? c.p, dilationH: c.d ?? 1, dilationW: c.dw ?? c.d ?? 1, groups: g };
  const k = (c.cin / g) * geometry.kernelH * geometry.kernelW;
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
  const oh = convOutSize(c.h, c.k, c.s, c.p, c.d ?? 1), ow = convOutSize(c.w, c.kw ?? c.k, c.sw ?? c.s, c.pw ?? c.p, c.dw ?? c.d ?? 1);
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
      // Indirect GEMM (AVX-512): several pixel tiles, row tails, segments padded to 4 bytes,
      // rectangular kernels, dilated single-tap segments, borders on every side.
      { cin: 64, cout: 40, k: 3, s: 1, p: 1, h: 11, w: 13, n: 2 },
      { cin: 3, cout: 20, k: 7, kw: 5, s: 2, sw: 1, p: 3, pw: 1, h: 12, w: 9 },
      { cin: 6, cout: 35, k: 3, s: 2, p: 1, d: 2, h: 13, w: 12, n: 2 },
      { cin: 12, cout: 48, k: 2, s: 2, p: 0, h: 7, w: 7 },
      // im2col kernel-row copies at each size class edge: 16, 32, 33, 256 and 258 bytes.
      { cin: 16, cout: 8, k: 1, s: 2, p: 0, h: 6, w: 7 },
      { cin: 32, cout: 8, k: 1, s: 2, p: 0, h: 6, w: 7 },
      { cin: 11, cout: 16, k: 3, s: 1, p: 1, h: 6, w: 7 },
      { cin: 128, cout: 9, k: 2, s: 1, p: 1, h: 5, w: 6 },
      { cin: 86, cout: 20, k: 3, s: 2, p: 1, h: 7, w: 6 },
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
  // The SIMD depthwise kernels put 64/32/16 channels in a vector (ragged ends masked), interleave
  // taps in 4s (VNNI) or 2s (AVX2), and take interior pixels without bounds checks.
  const DW_CHANNELS = [1, 7, 15, 16, 17, 31, 33, 64, 96, 144, 960];
  test('depthwise 3x3 s1/s2 pad 1: ragged channel counts, borders, batch', () => {
    for (const c of DW_CHANNELS)
      for (const s of [1, 2]) {
        const [h, w] = c >= 144 ? [7, 6] : [10, 9];
        checkConv(isa, { cin: c, cout: c, g: c, k: 3, s, p: 1, h, w, n: 2 }, 1000 + c * 10 + s);
      }
    // One interior pixel at most, all border, a 1x1 image, odd sizes with stride 2, oh > 8 (row chunks).
    for (const [h, w, s] of [[3, 3, 1], [2, 2, 1], [1, 1, 1], [1, 5, 2], [5, 1, 2], [13, 4, 1], [19, 3, 2]])
      for (const c of [17, 64, 65])
        checkConv(isa, { cin: c, cout: c, g: c, k: 3, s, p: 1, h, w, n: 3 }, 2000 + h * 100 + w * 10 + c);
  });
  test('depthwise: other kernels, strides, padding, dilation', () => {
    const geos: Omit<ConvCase, 'cin' | 'cout' | 'g' | 'h' | 'w'>[] = [
      { k: 1, s: 1, p: 0 }, { k: 1, s: 2, p: 0 }, { k: 3, s: 1, p: 0 }, { k: 3, s: 2, p: 0 }, { k: 3, s: 3, p: 1 },
      { k: 3, s: 1, p: 2, d: 2 }, { k: 3, s: 2, p: 3 }, { k: 5, s: 1, p: 2 }, { k: 5, s: 2, p: 2 }, { k: 7, s: 2, p: 3 },
      { k: 2, s: 1, p: 1 }, { k: 4, s: 2, p: 1 }, { k: 1, kw: 3, s: 1, p: 0, pw: 1 }, { k: 3, kw: 1, s: 1, p: 1, pw: 0 },
      { k: 2, kw: 3, s: 1, sw: 2, p: 1, pw: 0 }, { k: 3, kw: 5, s: 2, sw: 1, p: 1, pw: 2, d: 1, dw: 2 },
      { k: 17, s: 1, p: 8 }, // 289 taps: beyond the SIMD kernels' tap limit (scalar fallback)
    ];
    geos.forEach((g, i) => {
      for (const c of [5, 33, 96]) checkConv(isa, { ...g, cin: c, cout: c, g: c, h: 11, w: 9, n: 2 }, 3000 + i * 7 + c);
    });
  });
  test('depthwise: every zero point class, per-tensor and per-channel, ReLU, ragged channels', () => {
    for (const zx of ZPS) for (const zy of ZPS) for (const pc of [true, false]) for (const relu of [false, true]) {
      checkConv(isa, { cin: 33, cout: 33, g: 33, k: 3, s: 1, p: 1, h: 5, w: 6, n: 2 }, zx * 3 + zy, zx, zy, pc, relu);
      checkConv(isa, { cin: 17, cout: 17, g: 17, k: 3, s: 2, p: 1, h: 6, w: 5 }, zx * 11 + zy, zx, zy, pc, relu);
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
    // Channels below, at and past the 64-channel vector blocks; windows cut by every border.
    for (const [h, w, c, k, s, pad] of [[9, 8, 5, 3, 2, 1], [9, 8, 64, 3, 2, 1], [7, 10, 67, 3, 1, 1], [6, 6, 130, 2, 2, 0], [5, 9, 128, 3, 3, 1], [1, 1, 64, 1, 1, 0]]) {
      const x = new Uint8Array(2 * h * w * c).map(() => randInt(r, 0, 255));
      const oh = convOutSize(h, k, s, pad, 1), ow = convOutSize(w, k, s, pad, 1);
      const want = new Uint8Array(2 * oh * ow * c), got = new Uint8Array(want.length);
      referenceBackend.qmaxpool2d(x, 2, h, w, c, k, s, pad, want);
      nativeBackend.qmaxpool2d(x, 2, h, w, c, k, s, pad, got);
      expect(got).toEqual(want);
    }
  });
  test('adaptive average pooling to 1x1 (integer sums, channel blocks of 512)', () => {
    for (const [bn, hw, c] of [[1, 1, 7], [2, 49, 33], [3, 16, 600], [1, 49, 2048]]) {
      const x = new Uint8Array(bn * hw * c).map(() => randInt(r, 0, 255));
      const want = new Uint8Array(bn * c), got = new Uint8Array(bn * c);
      // Scales as the model holds them (float32): the binding reads them as such.
      const [si, so] = [Math.fround(0.0431), Math.fround(0.0227)];
      referenceBackend.qadaptiveAvgPool(x, bn, hw, c, want, si, 9, so, 4);
      nativeBackend.qadaptiveAvgPool(x, bn, hw, c, got, si, 9, so, 4);
      expect(got).toEqual(want);
    }
  });
});

// Element-wise kernels per ISA level, called through the binding with the level named explicitly.
// Lengths straddle the vector widths (8/16/32/64) and PyTorch's 64-element fma/scalar split of qadd.
const EW_LENGTHS = [...Array.from({ length: 131 }, (_, i) => i), 255, 256, 257, 4099];

function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): string {
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return `at ${i}: expected ${a[i]}, actual ${b[i]}`;
  return 'none';
}

describe.each(addon.supported.map((i) => [i]))('element-wise ops %s, native vs reference (bit-exact)', (isa) => {
  const { binding } = addon;
  const r = rng(4242);

  function checkQAdd(a: Uint8Array, b: Uint8Array, p: { aScale: number; aZeroPoint: number; bScale: number; bZeroPoint: number;
    outScale: number; outZeroPoint: number; relu: boolean }): void {
    const want = new Uint8Array(a.length), got = new Uint8Array(a.length).fill(0xa5);
    referenceBackend.qadd(a, b, want, p);
    binding.qadd(a, b, got, p.aScale, p.aZeroPoint, p.bScale, p.bZeroPoint, p.outScale, p.outZeroPoint, p.relu, isa);
    if (!sameBytes(want, got)) throw new Error(`qadd mismatch isa=${isa} n=${a.length} ${JSON.stringify(p)} ${firstDiff(want, got)}`);
  }

  test('qadd / add_relu: every length to 130 and beyond, every zero point class', () => {
    let i = 0;
    for (const n of EW_LENGTHS)
      for (const relu of [false, true]) {
        const a = new Uint8Array(n).map(() => randInt(r, 0, 255)), b = new Uint8Array(n).map(() => randInt(r, 0, 255));
        const za = ZPS[i % 6], zb = ZPS[Math.floor(i / 6) % 6], zo = ZPS[Math.floor(i / 36) % 6];
        i++;
        checkQAdd(a, b, { aScale: 0.01 + r() * 0.1, aZeroPoint: za, bScale: 0.01 + r() * 0.1, bZeroPoint: zb, outScale: 0.02 + r() * 0.1,
          outZeroPoint: zo, relu });
      }
    const n = 4099;
    const a = new Uint8Array(n).map(() => randInt(r, 0, 255)), b = new Uint8Array(n).map(() => randInt(r, 0, 255));
    for (const za of ZPS) for (const zb of ZPS) for (const zo of ZPS)
      checkQAdd(a, b, { aScale: 0.01 + r() * 0.1, aZeroPoint: za, bScale: 0.01 + r() * 0.1, bZeroPoint: zb, outScale: 0.02 + r() * 0.1,
        outZeroPoint: zo, relu: (za + zb + zo) % 2 === 1 });
  });

  test('qadd: rounding ties, fma-sensitive scales, saturation, overflow to inf/NaN', () => {
    for (const n of [63, 64, 65, 127, 128, 129, 200]) {
      const a = new Uint8Array(n).map((_, i) => (i * 37) & 255), b = new Uint8Array(n).map((_, i) => 255 - ((i * 11) & 255));
      for (const relu of [false, true]) {
        // Quarter steps: c * (1/out) lands on .5 ties everywhere.
        checkQAdd(a, b, { aScale: 0.5, aZeroPoint: 128, bScale: 0.25, bZeroPoint: 3, outScale: 1, outZeroPoint: 100, relu });
        // Scales whose q*s + (-zp*s) differs from (q - zp)*s in the last bit for some q.
        checkQAdd(a, b, { aScale: 0.1234567, aZeroPoint: 77, bScale: 0.0987654, bZeroPoint: 201, outScale: 0.0311, outZeroPoint: 64, relu });
        checkQAdd(a, b, { aScale: 1e-3, aZeroPoint: 255, bScale: 3e-3, bZeroPoint: 0, outScale: 1e-7, outZeroPoint: 128, relu });
        // Huge scales: products overflow to +-inf, inf - inf = NaN, and c * inv beyond int32.
        checkQAdd(a, b, { aScale: 3e38, aZeroPoint: 0, bScale: 3e38, bZeroPoint: 255, outScale: 1e-30, outZeroPoint: 17, relu });
        checkQAdd(a, b, { aScale: 1e37, aZeroPoint: 128, bScale: 2e-30, bZeroPoint: 1, outScale: 3e38, outZeroPoint: 255, relu });
      }
    }
  });

  test('qadd: the fma / (q - zp) * s split at the last multiple of 64 changes outputs here', () => {
    // fma(246, s, -75s) and (246 - 75) * s differ in the last bit, and c * (1/outScale) sits on a
    // rounding boundary, so elements below the split give 104 and the tail 105 (b adds exactly 0).
    const p = { aScale: 0.022582007572054863, aZeroPoint: 75, bScale: 0.05, bZeroPoint: 0, outScale: 0.8581162691116333,
      outZeroPoint: 100, relu: false };
    const p2 = { aScale: 0.06824801117181778, aZeroPoint: 255, bScale: 0.3, bZeroPoint: 0, outScale: 11.738656044006348,
      outZeroPoint: 9, relu: false };
    for (const [pp, q] of [[p, 246], [p2, 169]] as const)
      for (const n of [1, 17, 63, 64, 65, 100, 127, 128, 129, 191, 4099]) {
        const a = new Uint8Array(n).fill(q), b = new Uint8Array(n);
        const want = new Uint8Array(n);
        referenceBackend.qadd(a, b, want, pp);
        expect(new Set(want).size).toBe(n % 64 === 0 || n < 64 ? 1 : 2);
        checkQAdd(a, b, pp);
      }
  });

  test('quantize / dequantize: every length to 130 and beyond, ties, saturation, NaN and infinities', () => {
    const specials = [1e30, -1e30, 2.5, 3.5, -0.5, -2.5, 0, -0, NaN, Infinity, -Infinity, 2147483520, -2147483648, 2147483648, 1e-45];
    let i = 0;
    for (const n of EW_LENGTHS) {
      const x = new Float32Array(n).map((_, j) => (j % 5 === 0 ? specials[(j / 5) % specials.length] : (r() - 0.5) * 80));
      const [s, z] = [[0.1, 0], [0.0078431377, 128], [1, 10], [0.5, 255], [0.37, 1], [3e-5, 77], [0.25, 231]][i++ % 7];
      const want = new Uint8Array(n), got = new Uint8Array(n).fill(0xa5);
      referenceBackend.quantize(x, want, s, z);
      binding.quantize(x, got, s, z, isa);
      if (!sameBytes(want, got)) throw new Error(`quantize mismatch isa=${isa} n=${n} scale=${s} zp=${z} ${firstDiff(want, got)}`);
      const q = new Uint8Array(n).map(() => randInt(r, 0, 255));
      const fw = new Float32Array(n), fg = new Float32Array(n).fill(NaN);
      referenceBackend.dequantize(q, fw, s, z);
      binding.dequantize(q, fg, s, z, isa);
      if (!sameBytes(fw, fg)) throw new Error(`dequantize mismatch isa=${isa} n=${n} scale=${s} zp=${z} ${firstDiff(fw, fg)}`);
    }
    for (const z of ZPS) {
      const n = 4099;
      const x = new Float32Array(n).map((_, j) => (j - 2049) * 0.125 + (j % 3) * 0.0625); // many exact ties at scale 0.125
      const want = new Uint8Array(n), got = new Uint8Array(n);
      referenceBackend.quantize(x, want, 0.125, z);
      binding.quantize(x, got, 0.125, z, isa);
      expect(firstDiff(want, got)).toBe('none');
    }
  });

  test('the isa argument: omitted = the default level, unknown rejected', () => {
    const a = new Uint8Array(100).map(() => randInt(r, 0, 255)), y1 = new Uint8Array(100), y2 = new Uint8Array(100);
    binding.qadd(a, a, y1, 0.1, 3, 0.2, 5, 0.3, 7, false);
    binding.qadd(a, a, y2, 0.1, 3, 0.2, 5, 0.3, 7, false, isa);
    expect(sameBytes(y1, y2)).toBe(true);
    expect(() => binding.qadd(a, a, y1, 0.1, 3, 0.2, 5, 0.3, 7, false, 'bogus' as IsaName)).toThrow(/unknown isa/);
    expect(() => binding.quantize(new Float32Array(4), new Uint8Array(4), 0.1, 0, 'sse9' as IsaName)).toThrow(/unknown isa/);
  });
});
