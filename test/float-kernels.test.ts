// Native float32 conv2d / linear vs the TS reference, on every ISA level this CPU supports.
// Each case runs twice: with small-integer data (every partial sum exact in float32, so the result
// must match bit for bit whatever the summation order: checks indexing, borders, tails) and with
// uniform [-1, 1) data (must agree to float32 rounding: |d| <= 1e-5 * sqrt(K) * sum|terms|).
import { loadNative } from '../lib/kernels';
import { setNumThreads } from '../lib/kernels/native';
import { Conv2dGeometry, convOutSize } from '../lib/kernels/float';
import { nativeFloatKernels } from '../lib/kernels/native-float';
import { referenceFloatKernels } from '../lib/kernels/reference/float';
import { rng } from './helpers/random';

const addon = loadNative();
const ISAS = addon.supported;
const ref = referenceFloatKernels;
const nat = nativeFloatKernels;

type Mode = 'int' | 'float';

function fill(len: number, r: () => number, mode: Mode): Float32Array {
  const a = new Float32Array(len);
  for (let i = 0; i < len; i++) a[i] = mode === 'int' ? Math.floor(r() * 7) - 3 : r() * 2 - 1;
  return a;
}

const abs = (a: Float32Array) => a.map(Math.abs);

/** First index where got differs from want beyond the tolerance, with a description; null if none. */
function mismatch(got: Float32Array, want: Float32Array, mag: Float32Array | null, k: number): string | null {
  if (got.length !== want.length) return `length ${got.length} != ${want.length}`;
  const rel = 1e-5 * Math.sqrt(k);
  for (let i = 0; i < got.length; i++) {
    const tol = mag ? rel * mag[i] : 0;
    if (!(Math.abs(got[i] - want[i]) <= tol))
      return `index ${i}: got ${got[i]}, want ${want[i]} (tolerance ${tol})`;
  }
  return null;
}

interface ConvCase {
  name: string;
  cin: number;
  cout: number;
  k: number | [number, number];
  stride?: number | [number, number];
  pad?: number | [number, number];
  dilation?: number | [number, number];
  groups?: number;
  n?: number;
  hw: [number, number];
  bias?: boolean;
  relu?: boolean;
}

const pair = (v: number | [number, number] | undefined, d: number): [number, number] =>
  v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v;

function geometry(c: ConvCase): Conv2dGeometry {
  const [kernelH, kernelW] = pair(c.k, 1), [strideH, strideW] = pair(c.stride, 1);
  const [padH, padW] = pair(c.pad, 0), [dilationH, dilationW] = pair(c.dilation, 1);
  return { inChannels: c.cin, outChannels: c.cout, kernelH, kernelW, strideH, strideW, padH, padW, dilationH, dilationW, groups: c.groups ?? 1 };
}

let seed = 1;
function checkConv(c: ConvCase, mode: Mode): void {
  const g = geometry(c);
  const n = c.n ?? 1, [h, w] = c.hw, bias = c.bias ?? true, relu = c.relu ?? false;
  const oh = convOutSize(h, g.kernelH, g.strideH, g.padH, g.dilationH);
  const ow = convOutSize(w, g.kernelW, g.strideW, g.padW, g.dilationW);
  const r = rng(seed++);
  const cpg = g.inChannels / g.groups, k = g.kernelH * g.kernelW * cpg;
  const wt = fill(g.outChannels * k, r, mode);
  const b = bias ? fill(g.outChannels, r, mode) : null;
  const x = fill(n * h * w * g.inChannels, r, mode);
  const want = new Float32Array(n * oh * ow * g.outChannels);
  ref.conv2d(ref.packConv2d(wt, b, g), x, n, h, w, want, relu);
  let mag: Float32Array | null = null;
  if (mode === 'float') {
    mag = new Float32Array(want.length);
    ref.conv2d(ref.packConv2d(abs(wt), b && abs(b), g), abs(x), n, h, w, mag, false);
  }
  for (const isa of ISAS) {
    const got = new Float32Array(want.length).fill(NaN);
    nat.conv2d(nat.packConv2d(wt, b, g, { isa }), x, n, h, w, got, relu);
    const bad = mismatch(got, want, mag, k);
    expect({ isa, mode, case: c.name, bad }).toEqual({ isa, mode, case: c.name, bad: null });
  }
}

function checkLinear(m: number, kIn: number, nOut: number, bias: boolean, relu: boolean, mode: Mode): void {
  const r = rng(seed++);
  const wt = fill(nOut * kIn, r, mode), b = bias ? fill(nOut, r, mode) : null, x = fill(m * kIn, r, mode);
  const want = new Float32Array(m * nOut);
  ref.linear(ref.packLinear(wt, b, kIn, nOut), m, x, want, relu);
  let mag: Float32Array | null = null;
  if (mode === 'float') {
    mag = new Float32Array(want.length);
    ref.linear(ref.packLinear(abs(wt), b && abs(b), kIn, nOut), m, abs(x), mag, false);
  }
  for (const isa of ISAS) {
    const got = new Float32Array(want.length).fill(NaN);
    nat.linear(nat.packLinear(wt, b, kIn, nOut, { isa }), m, x, got, relu);
    const name = `linear m=${m} ${kIn}->${nOut} bias=${bias} relu=${relu}`;
    const bad = mismatch(got, want, mag, kIn);
    expect({ isa, mode, case: name, bad }).toEqual({ isa, mode, case: name, bad: null });
  }
}

const MODES: Mode[] = ['int', 'float'];

const POINTWISE: ConvCase[] = [
  { name: '1x1 16->17 7x7', cin: 16, cout: 17, k: 1, hw: [7, 7], relu: true },
  { name: '1x1 33->1 2x3 n3', cin: 33, cout: 1, k: 1, hw: [2, 3], n: 3 },
  { name: '1x1 7->15 1x1 no bias', cin: 7, cout: 15, k: 1, hw: [1, 1], bias: false },
  { name: '1x1 24->33 15x15 (rows > 144)', cin: 24, cout: 33, k: 1, hw: [15, 15], relu: true },
  { name: '1x1 300->16 (k chunks)', cin: 300, cout: 16, k: 1, hw: [3, 5] },
  { name: '1x1 16->24 28x28', cin: 16, cout: 24, k: 1, hw: [28, 28], bias: false, relu: true },
  { name: '1x1 s2 8->16 15x15 (im2col)', cin: 8, cout: 16, k: 1, stride: 2, hw: [15, 15] },
  { name: '1x1 p1 5->6 2x3', cin: 5, cout: 6, k: 1, pad: 1, hw: [2, 3], relu: true },
];

const KXK: ConvCase[] = [
  { name: '3x3 s1 p1 8->15 14x14', cin: 8, cout: 15, k: 3, pad: 1, hw: [14, 14], relu: true },
  { name: '3x3 s1 p1 8->16 7x7 n3', cin: 8, cout: 16, k: 3, pad: 1, hw: [7, 7], n: 3, bias: false },
  { name: '3x3 s1 p1 4->17 15x15', cin: 4, cout: 17, k: 3, pad: 1, hw: [15, 15] },
  { name: '3x3 s2 p1 6->33 15x15', cin: 6, cout: 33, k: 3, stride: 2, pad: 1, hw: [15, 15], relu: true },
  { name: '3x3 s2 p1 5->1 28x28', cin: 5, cout: 1, k: 3, stride: 2, pad: 1, hw: [28, 28] },
  { name: 'MobileNetV2 stem 3->32 3x3 s2 p1 28x28', cin: 3, cout: 32, k: 3, stride: 2, pad: 1, hw: [28, 28], relu: true },
  { name: 'stem 3->32 s2 p1 15x15 n3', cin: 3, cout: 32, k: 3, stride: 2, pad: 1, hw: [15, 15], n: 3 },
  { name: '3x3 p1 on 1x1 input', cin: 9, cout: 17, k: 3, pad: 1, hw: [1, 1], n: 3 },
  { name: '3x3 p1 on 2x3 input', cin: 3, cout: 15, k: 3, pad: 1, hw: [2, 3] },
  { name: '3x3 valid 64->16 (K=576: k chunks, im2col blocks)', cin: 64, cout: 16, k: 3, hw: [16, 16] },
  { name: '3x3 p1 48->70 5x5 (fewer pixels than channels: pair by pair, K=432 in 2 chunks)', cin: 48, cout: 70, k: 3, pad: 1, hw: [5, 5], relu: true },
  { name: '3x3 p1 1024->3 7x7 (packed weights past L2: im2col blocks of 25 + 24)', cin: 1024, cout: 3, k: 3, pad: 1, hw: [7, 7] },
  { name: '3x3 d2 p2 6->17 14x14', cin: 6, cout: 17, k: 3, pad: 2, dilation: 2, hw: [14, 14], relu: true },
  { name: '5x5 p2 4->16 7x7', cin: 4, cout: 16, k: 5, pad: 2, hw: [7, 7] },
  { name: '7x7 s2 p3 ResNet stem 3->16 16x16', cin: 3, cout: 16, k: 7, stride: 2, pad: 3, hw: [16, 16], relu: true },
  { name: '7x7 s2 p3 3->33 15x15 n3', cin: 3, cout: 33, k: 7, stride: 2, pad: 3, hw: [15, 15], n: 3, bias: false },
  { name: 'asymmetric 1x3 s(1,2) p(0,1) 5->7', cin: 5, cout: 7, k: [1, 3], stride: [1, 2], pad: [0, 1], hw: [6, 9] },
  { name: 'asymmetric 3x1 d(2,1) p(3,0) 4->9', cin: 4, cout: 9, k: [3, 1], dilation: [2, 1], pad: [3, 0], hw: [5, 4] },
  { name: 'kernel larger than input (p3)', cin: 2, cout: 3, k: 7, pad: 3, hw: [2, 3] },
];

const GROUPED: ConvCase[] = [
  { name: 'groups 2 3x3 p1 8->12', cin: 8, cout: 12, k: 3, pad: 1, groups: 2, hw: [7, 7], relu: true },
  { name: 'groups 4 3x3 s2 p1 16->8', cin: 16, cout: 8, k: 3, stride: 2, pad: 1, groups: 4, hw: [15, 15] },
  { name: 'groups 4 1x1 16->20 (direct)', cin: 16, cout: 20, k: 1, groups: 4, hw: [7, 7], n: 3 },
  { name: 'groups 2 1x1 s2 6->34', cin: 6, cout: 34, k: 1, stride: 2, groups: 2, hw: [5, 5], bias: false },
  { name: 'depth multiplier 2 (groups = cin, cout = 2cin)', cin: 7, cout: 14, k: 3, pad: 1, groups: 7, hw: [7, 7] },
];

const DW_C = [1, 7, 16, 17, 32, 33, 96, 144];
const DEPTHWISE: ConvCase[] = [
  ...DW_C.map((c): ConvCase => ({ name: `dw 3x3 s1 p1 C=${c} 14x14`, cin: c, cout: c, groups: c, k: 3, pad: 1, hw: [14, 14], relu: c % 2 === 1 })),
  ...DW_C.map((c): ConvCase => ({ name: `dw 3x3 s2 p1 C=${c} 15x15`, cin: c, cout: c, groups: c, k: 3, stride: 2, pad: 1, hw: [15, 15], bias: c !== 17 })),
  { name: 'dw 3x3 s1 p1 C=32 n3 7x7', cin: 32, cout: 32, groups: 32, k: 3, pad: 1, hw: [7, 7], n: 3, relu: true },
  { name: 'dw 3x3 s2 p1 C=24 28x28', cin: 24, cout: 24, groups: 24, k: 3, stride: 2, pad: 1, hw: [28, 28] },
  { name: 'dw 3x3 valid C=9 2x3', cin: 9, cout: 9, groups: 9, k: [2, 3], hw: [2, 3] },
  { name: 'dw 3x3 p1 C=20 1x1', cin: 20, cout: 20, groups: 20, k: 3, pad: 1, hw: [1, 1], n: 3 },
  { name: 'dw 5x5 s1 p2 C=40 14x14', cin: 40, cout: 40, groups: 40, k: 5, pad: 2, hw: [14, 14], relu: true },
  { name: 'dw 5x5 s2 p2 C=17 15x15', cin: 17, cout: 17, groups: 17, k: 5, stride: 2, pad: 2, hw: [15, 15] },
  { name: 'dw 7x7 s2 p3 C=8 15x15', cin: 8, cout: 8, groups: 8, k: 7, stride: 2, pad: 3, hw: [15, 15] },
  { name: 'dw 3x3 d2 p2 C=19 14x14', cin: 19, cout: 19, groups: 19, k: 3, dilation: 2, pad: 2, hw: [14, 14], relu: true },
  { name: 'dw 3x3 s(1,3) p(0,2) d(1,2) C=18', cin: 18, cout: 18, groups: 18, k: 3, stride: [1, 3], pad: [0, 2], dilation: [1, 2], hw: [6, 13] },
  { name: 'dw 3x3 p4 C=5 (all-padding border rows)', cin: 5, cout: 5, groups: 5, k: 3, pad: 4, hw: [3, 3] },
];

describe.each(MODES.map((m) => [m]))('native float conv2d vs reference (%s data, all ISA levels)', (mode) => {
  test('pointwise (1x1): direct GEMM and im2col', () => POINTWISE.forEach((c) => checkConv(c, mode)));
  test('KxK (groups 1): 3x3 s1/s2, stems, 5x5, 7x7, dilation, asymmetric, tiny inputs', () => KXK.forEach((c) => checkConv(c, mode)));
  test('grouped (groups 2, 4, depth multiplier)', () => GROUPED.forEach((c) => checkConv(c, mode)));
  test('depthwise (channel tails, borders, strides, dilation)', () => DEPTHWISE.forEach((c) => checkConv(c, mode)));
});

describe.each(MODES.map((m) => [m]))('native float linear vs reference (%s data, all ISA levels)', (mode) => {
  test('m in {1, 3, 17}, ragged in/out, bias and ReLU on/off', () => {
    const SHAPES: [number, number][] = [[1, 1], [15, 15], [16, 16], [17, 17], [15, 17], [17, 33], [300, 20], [1280, 10], [64, 1000]];
    for (const m of [1, 3, 17])
      for (const [i, o] of SHAPES)
        for (const [bias, relu] of [[true, false], [false, true]] as const) checkLinear(m, i, o, bias, relu, mode);
  });
});

describe('native float conv2d: the same bits on 1 and 2 threads', () => {
  // Rows split 2 per thread when the pixels outnumber the output channels (14x14 1x1), columns
  // split when they do not (7x7 late layers), or 384-pixel tasks: every output summed the same way.
  const CASES: ConvCase[] = [
    { name: '1x1 576->96 14x14', cin: 576, cout: 96, k: 1, hw: [14, 14] },
    { name: '1x1 160->960 7x7', cin: 160, cout: 960, k: 1, hw: [7, 7], relu: true },
    { name: '1x1 32->192 28x28 n2', cin: 32, cout: 192, k: 1, hw: [28, 28], n: 2 },
    { name: '3x3 p1 64->64 14x14', cin: 64, cout: 64, k: 3, pad: 1, hw: [14, 14], relu: true },
    { name: '1x1 8->4 1x3 (fewer pixels than tasks)', cin: 8, cout: 4, k: 1, hw: [1, 3] },
  ];
  afterEach(() => setNumThreads(0));
  test.each(CASES.map((c) => [c.name, c]))('%s', (_name, c) => {
    const g = geometry(c as ConvCase);
    const { n = 1, hw: [h, w], relu = false } = c as ConvCase;
    const r = rng(seed++);
    const wt = fill(g.outChannels * g.inChannels * g.kernelH * g.kernelW, r, 'float'), b = fill(g.outChannels, r, 'float');
    const x = fill(n * h * w * g.inChannels, r, 'float');
    const oh = convOutSize(h, g.kernelH, g.strideH, g.padH, g.dilationH), ow = convOutSize(w, g.kernelW, g.strideW, g.padW, g.dilationW);
    const p = nat.packConv2d(wt, b, g);
    const out = (threads: number) => {
      setNumThreads(threads);
      const y = new Float32Array(n * oh * ow * g.outChannels).fill(NaN);
      nat.conv2d(p, x, n, h, w, y, relu);
      return y;
    };
    const one = out(1);
    expect(one.some(Number.isNaN)).toBe(false);
    expect(Buffer.from(out(2).buffer).equals(Buffer.from(one.buffer))).toBe(true);
  });
});

describe('native float conv2d at every input/output alignment (subarray views)', () => {
  // The depthwise kernels align their channel blocks to x (C a multiple of the vector width);
  // views at each float offset mod 64 bytes hit every peel width, with y at another offset.
  const CASES: ConvCase[] = [
    { name: 'dw 3x3 s1 C=16', cin: 16, cout: 16, groups: 16, k: 3, pad: 1, hw: [6, 11], relu: true },
    { name: 'dw 3x3 s2 C=48', cin: 48, cout: 48, groups: 48, k: 3, stride: 2, pad: 1, hw: [9, 13] },
    { name: 'dw 3x3 s1 C=8', cin: 8, cout: 8, groups: 8, k: 3, pad: 1, hw: [5, 10] },
    { name: 'dw 3x3 s1 C=24', cin: 24, cout: 24, groups: 24, k: 3, pad: 1, hw: [4, 9], n: 2 },
    { name: 'dw 5x5 s1 C=32', cin: 32, cout: 32, groups: 32, k: 5, pad: 2, hw: [6, 9] },
    { name: 'dw 3x3 d2 C=16', cin: 16, cout: 16, groups: 16, k: 3, pad: 2, dilation: 2, hw: [6, 12] },
    { name: '1x1 16->17', cin: 16, cout: 17, k: 1, hw: [3, 5] },
    { name: '3x3 p1 8->16', cin: 8, cout: 16, k: 3, pad: 1, hw: [4, 5] },
  ];
  test('views at float offsets 0..15 agree bit for bit (integer data)', () => {
    for (const c of CASES) {
      const g = geometry(c), n = c.n ?? 1, [h, w] = c.hw;
      const oh = convOutSize(h, g.kernelH, g.strideH, g.padH, g.dilationH), ow = convOutSize(w, g.kernelW, g.strideW, g.padW, g.dilationW);
      const r = rng(seed++);
      const wt = fill(g.outChannels * (g.inChannels / g.groups) * g.kernelH * g.kernelW, r, 'int');
      const b = fill(g.outChannels, r, 'int'), x = fill(n * h * w * g.inChannels, r, 'int');
      const want = new Float32Array(n * oh * ow * g.outChannels);
      ref.conv2d(ref.packConv2d(wt, b, g), x, n, h, w, want, c.relu ?? false);
      for (const isa of ISAS) {
        const p = nat.packConv2d(wt, b, g, { isa });
        for (let off = 0; off < 16; off++) {
          const X = new Float32Array(x.length + 16), Y = new Float32Array(want.length + 32).fill(NaN);
          const xv = X.subarray(off, off + x.length), yv = Y.subarray((off * 7) % 16 + 1, (off * 7) % 16 + 1 + want.length);
          xv.set(x);
          nat.conv2d(p, xv, n, h, w, yv, c.relu ?? false);
          const bad = mismatch(yv, want, null, 0);
          const untouched = Y.subarray(0, yv.byteOffset / 4).every(Number.isNaN) && Y.subarray(yv.byteOffset / 4 + yv.length).every(Number.isNaN);
          expect({ isa, case: c.name, off, bad, untouched }).toEqual({ isa, case: c.name, off, bad: null, untouched: true });
        }
      }
    }
  });
});

describe('native float element-wise, mean, transpose and max pool vs reference (bit for bit)', () => {
  // Values with NaN, +-0, +-Inf, denormals and sums that cancel: every op is one float32 operation
  // per element (or a double sum in pixel order), so native and reference agree exactly.
  const special = [NaN, 0, -0, Infinity, -Infinity, 1e-40, -1e-40, 3.4e38, -3.4e38, 1, -1];
  const data = (len: number, seed: number): Float32Array => {
    const r = rng(seed);
    const a = new Float32Array(len);
    for (let i = 0; i < len; i++) a[i] = r() < 0.1 ? special[Math.floor(r() * special.length)] : (r() * 2 - 1) * 10 ** Math.floor(r() * 8 - 4);
    return a;
  };
  const same = (got: Float32Array, want: Float32Array): void => {
    expect(got.length).toBe(want.length);
    for (let i = 0; i < got.length; i++) if (!Object.is(got[i], want[i])) throw new Error(`index ${i}: ${got[i]} != ${want[i]}`);
  };
  test('add / add_relu / mul over lengths 0..70 and 1e5 (vector tails)', () => {
    for (const op of ['add', 'add_relu', 'mul'] as const)
      for (const n of [...Array.from({ length: 71 }, (_, i) => i), 100003, 300007]) {  // 300007: chunks over the pool
        const a = data(n, n + 1), b = data(n, n + 2), y1 = new Float32Array(n).fill(7), y2 = new Float32Array(n).fill(8);
        nat.binary(op, a, b, y1);
        ref.binary(op, a, b, y2);
        same(y1, y2);
      }
    // a + a (a and b the same array) is allowed; y must not overlap them.
    const a = data(33, 5), y1 = new Float32Array(33), y2 = new Float32Array(33);
    nat.binary('add', a, a, y1);
    ref.binary('add', a, a, y2);
    same(y1, y2);
    expect(() => nat.binary('add', a, a, a)).toThrow(RangeError);
    expect(() => nat.binary('sub' as never, a, a, y1)).toThrow(RangeError);
  });
  test('channelAffine (eval BatchNorm2d: multiply, then add) over channel counts and pixel chunks', () => {
    for (const [pixels, c] of [[0, 3], [1, 1], [7, 3], [5, 15], [9, 16], [3, 17], [200, 64], [1100, 96], [2, 1000]]) {
      const x = data(pixels * c, c + pixels), alpha = data(c, c + 1), beta = data(c, c + 2);
      const y1 = new Float32Array(x.length).fill(NaN), y2 = new Float32Array(x.length);
      nat.channelAffine(x, pixels, c, alpha, beta, y1);
      ref.channelAffine(x, pixels, c, alpha, beta, y2);
      same(y1, y2);
    }
    // Two roundings, not a fused multiply-add: 1.5 * (1 + 2^-23) + -1.5 keeps only what float32 kept.
    const y = new Float32Array(1);
    nat.channelAffine(new Float32Array([1 + 2 ** -23]), 1, 1, new Float32Array([1.5]), new Float32Array([-1.5]), y);
    expect(y[0]).toBe(Math.fround(Math.fround((1 + 2 ** -23) * 1.5) - 1.5));
    expect(() => nat.channelAffine(new Float32Array(6), 2, 3, new Float32Array(2), new Float32Array(3), new Float32Array(6))).toThrow(/alpha/);
  });
  test('relu and relu6 (NaN gives 0), out of place and in place, lengths around the chunks', () => {
    for (const n of [0, 1, 17, 65536, 65537, 200003])
      for (const max of [Infinity, 6]) {
        const x = data(n, n + 3);
        const y1 = new Float32Array(n).fill(NaN), y2 = new Float32Array(n);
        nat.relu(x, y1, max);
        ref.relu(x, y2, max);
        same(y1, y2);
        const inPlace = x.slice();
        nat.relu(inPlace, inPlace, max);
        same(inPlace, y2);
      }
    expect(() => nat.relu(new Float32Array(4), new Float32Array(4), -1)).toThrow(/max/);
    const buf = new Float32Array(8);
    expect(() => nat.relu(buf.subarray(0, 4), buf.subarray(2, 6), Infinity)).toThrow(/overlap/);
  });
  test('meanHW over channel blocks (c = 1, 63, 64, 65, 1280) and batches', () => {
    for (const [n, hw, c] of [[1, 1, 1], [2, 49, 63], [3, 7, 64], [1, 196, 65], [2, 49, 1280]]) {
      const x = data(n * hw * c, hw * c), y1 = new Float32Array(n * c), y2 = new Float32Array(n * c);
      nat.meanHW(x, n, hw, c, y1);
      ref.meanHW(x, n, hw, c, y2);
      same(y1, y2);
    }
  });
  test('toChannelsLast over block tails (c and hw around 16)', () => {
    for (const [n, c, hw] of [[1, 3, 50176], [2, 3, 40001], [1, 3, 5], [2, 1, 1], [1, 15, 17], [2, 16, 16], [1, 17, 33], [3, 40, 9]]) {
      const x = data(n * c * hw, c + hw), y1 = new Float32Array(x.length), y2 = new Float32Array(x.length);
      nat.toChannelsLast(x, n, c, hw, y1);
      ref.toChannelsLast(x, n, c, hw, y2);
      same(y1, y2);
    }
  });
  test('maxPool2d: kernel, stride, padding and dilation sweep with NaN inputs', () => {
    for (const [k, stride, padding, dilation] of [[3, 2, 1, 1], [2, 2, 0, 1], [3, 1, 1, 1], [1, 1, 0, 1], [3, 2, 1, 2], [5, 3, 2, 1]])
      for (const [n, h, w, c] of [[1, 11, 9, 3], [2, 8, 8, 17], [2, 56, 56, 64]]) {  // the last: rows over the pool
        const g = { kernelSize: k, stride, padding, dilation };
        const oh = convOutSize(h, k, stride, padding, dilation), ow = convOutSize(w, k, stride, padding, dilation);
        const x = data(n * h * w * c, k * 100 + h), y1 = new Float32Array(n * oh * ow * c), y2 = new Float32Array(y1.length);
        nat.maxPool2d(x, n, h, w, c, g, y1);
        ref.maxPool2d(x, n, h, w, c, g, y2);
        same(y1, y2);
      }
    expect(() => nat.maxPool2d(new Float32Array(4), 1, 2, 2, 1, { kernelSize: 5, stride: 1, padding: 0, dilation: 1 }, new Float32Array(1))).toThrow(RangeError);
  });
});

describe('float32 semantics', () => {
  test('ReLU keeps NaN and -0 as the reference does, bias is added after the sum', () => {
    const g: Conv2dGeometry = { inChannels: 2, outChannels: 3, kernelH: 1, kernelW: 1, strideH: 1, strideW: 1, padH: 0, padW: 0, dilationH: 1, dilationW: 1, groups: 1 };
    const wt = new Float32Array([1, 0, 0, 1, 1, 1]);
    const x = new Float32Array([NaN, 2, -0, -0]);
    const want = new Float32Array(6);
    ref.conv2d(ref.packConv2d(wt, null, g), x, 1, 2, 1, want, true);
    for (const isa of ISAS) {
      const got = new Float32Array(6);
      nat.conv2d(nat.packConv2d(wt, null, g, { isa }), x, 1, 2, 1, got, true);
      expect({ isa, got: Array.from(got).map(String) }).toEqual({ isa, got: Array.from(want).map(String) });
      expect(Object.is(got[3], -0)).toBe(Object.is(want[3], -0));
    }
  });
  test('1e8 + 1 - 1e8 style cancellation: the documented summation order (bias first for linear)', () => {
    const wt = new Float32Array([1, 1]);
    const x = new Float32Array([1e8, 1]);
    for (const isa of ISAS) {
      const y = new Float32Array(1), r = new Float32Array(1);
      nat.linear(nat.packLinear(wt, new Float32Array([-1e8]), 2, 1, { isa }), 1, x, y, false);
      ref.linear(ref.packLinear(wt, new Float32Array([-1e8]), 2, 1), 1, x, r, false);
      expect(y[0]).toBe(r[0]);
    }
  });
});

describe('packing', () => {
  const g = (o: Partial<Conv2dGeometry>): Conv2dGeometry => ({
    inChannels: 4, outChannels: 4, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, dilationH: 1, dilationW: 1, groups: 1, ...o,
  });
  const w = (gg: Conv2dGeometry) => new Float32Array(gg.outChannels * (gg.inChannels / gg.groups) * gg.kernelH * gg.kernelW);
  test('method is chosen at pack time; default ISA is the one chosen at load', () => {
    const cases: [Partial<Conv2dGeometry>, string][] = [
      [{ groups: 4 }, 'depthwise'], [{ kernelH: 1, kernelW: 1, padH: 0, padW: 0 }, 'direct'],
      [{ kernelH: 1, kernelW: 1, padH: 0, padW: 0, groups: 2 }, 'direct'], [{}, 'im2col'], [{ groups: 2 }, 'im2col'],
      [{ kernelH: 1, kernelW: 1, padH: 0, padW: 0, strideH: 2 }, 'im2col'], [{ groups: 4, outChannels: 8 }, 'im2col'],
    ];
    for (const [o, method] of cases) {
      const p = nat.packConv2d(w(g(o)), null, g(o));
      expect(p.method).toBe(method);
      expect(p.isa).toBe(addon.isa);
    }
  });
  test('avxvnni runs the AVX2 float kernels', () => {
    const { binding } = addon;
    for (const isa of ISAS) {
      const info = binding.f32Info(binding.f32LinearPack(isa, 2, 3, new Float32Array(6), null));
      expect(info.isa).toBe(isa);
      expect(info.kernelIsa).toBe(isa === 'avxvnni' ? 'avx2' : isa);
      expect(info.method).toBe('linear');
    }
  });
  test('the geometry is copied: later changes to the caller object do not matter', () => {
    const gg = g({});
    const p = nat.packConv2d(w(gg), null, gg);
    gg.kernelH = 5;
    expect(p.geometry.kernelH).toBe(3);
    expect(Object.isFrozen(p.geometry)).toBe(true);
  });
});

describe('argument validation (TS wrapper)', () => {
  const g: Conv2dGeometry = { inChannels: 4, outChannels: 6, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, dilationH: 1, dilationW: 1, groups: 2 };
  const W = () => new Float32Array(6 * 2 * 9);
  test('packConv2d names the bad argument', () => {
    expect(() => nat.packConv2d(new Float32Array(107), null, g)).toThrow(/for weight but/);
    expect(() => nat.packConv2d(new Float64Array(108) as unknown as Float32Array, null, g)).toThrow(TypeError);
    expect(() => nat.packConv2d(W(), new Float32Array(5), g)).toThrow(/for bias but/);
    expect(() => nat.packConv2d(W(), [1, 2, 3, 4, 5, 6] as unknown as Float32Array, g)).toThrow(TypeError);
    expect(() => nat.packConv2d(W(), null, { ...g, groups: 3 })).toThrow(/geometry.groups/);
    expect(() => nat.packConv2d(W(), null, { ...g, groups: 8 })).toThrow(/geometry.groups/);
    expect(() => nat.packConv2d(W(), null, { ...g, kernelH: 0 })).toThrow(/geometry.kernelH/);
    expect(() => nat.packConv2d(W(), null, { ...g, strideW: 1.5 })).toThrow(RangeError);
    expect(() => nat.packConv2d(W(), null, { ...g, padH: -1 })).toThrow(/geometry.padH/);
    expect(() => nat.packConv2d(W(), null, { ...g, dilationW: '1' as unknown as number })).toThrow(TypeError);
    expect(() => nat.packConv2d(W(), null, null as unknown as Conv2dGeometry)).toThrow(/for geometry/);
    expect(() => nat.packConv2d(W(), null, g, { isa: 'sse9' as never })).toThrow(/options.isa/);
  });
  test('conv2d names the bad argument', () => {
    const p = nat.packConv2d(W(), null, g);
    const x = new Float32Array(2 * 5 * 5 * 4), y = new Float32Array(2 * 5 * 5 * 6);
    expect(() => nat.conv2d(p, x, 2, 5, 5, y, false)).not.toThrow();
    expect(() => nat.conv2d(p, x.subarray(1), 2, 5, 5, y, false)).toThrow(/for x but/);
    expect(() => nat.conv2d(p, x, 2, 5, 5, y.subarray(1), false)).toThrow(/for y but/);
    expect(() => nat.conv2d(p, x, 2, 5, 5, new Float32Array(y.length + 1), false)).toThrow(/for y but/);
    expect(() => nat.conv2d(p, new Int32Array(200) as unknown as Float32Array, 2, 5, 5, y, false)).toThrow(TypeError);
    expect(() => nat.conv2d(p, x, -1, 5, 5, y, false)).toThrow(/for n but/);
    expect(() => nat.conv2d(p, x, 2, 5.5, 5, y, false)).toThrow(/for h but/);
    expect(() => nat.conv2d(p, x, 2, 5, 0, y, false)).toThrow(/for w but/);
    expect(() => nat.conv2d(p, x, 2, 5, 5, y, 1 as unknown as boolean)).toThrow(/for relu but/);
    const ref1 = ref.packConv2d(W(), null, g);
    expect(() => nat.conv2d(ref1, x, 2, 5, 5, y, false)).toThrow(/another backend/);
    const big = new Float32Array(400);
    expect(() => nat.conv2d(p, big.subarray(0, 200), 1, 5, 10, big.subarray(100, 400), false)).toThrow(/overlap/);
    // A kernel larger than the padded input: the output would be empty.
    const p7 = nat.packConv2d(new Float32Array(49), null, { ...g, inChannels: 1, outChannels: 1, groups: 1, kernelH: 7, kernelW: 7, padH: 0, padW: 0 });
    expect(() => nat.conv2d(p7, new Float32Array(36), 1, 6, 6, new Float32Array(0), false)).toThrow(/at least 7 .*for h but/);
    expect(() => nat.conv2d(p, new Float32Array(0), 0, 5, 5, new Float32Array(0), false)).not.toThrow();
  });
  test('linear names the bad argument', () => {
    expect(() => nat.packLinear(new Float32Array(5), null, 2, 3)).toThrow(/for weight but/);
    expect(() => nat.packLinear(new Float32Array(6), new Float32Array(2), 2, 3)).toThrow(/for bias but/);
    expect(() => nat.packLinear(new Float32Array(6), null, 0, 3)).toThrow(/for inFeatures but/);
    expect(() => nat.packLinear(new Float32Array(6), null, 2, NaN)).toThrow(/for outFeatures but/);
    const p = nat.packLinear(new Float32Array(6), null, 2, 3);
    expect(() => nat.linear(p, 2, new Float32Array(3), new Float32Array(6), false)).toThrow(/for x but/);
    expect(() => nat.linear(p, 2, new Float32Array(4), new Float32Array(5), false)).toThrow(/for y but/);
    expect(() => nat.linear(p, 1.5, new Float32Array(4), new Float32Array(6), false)).toThrow(/for m but/);
    expect(() => nat.linear(p, 2, new Float32Array(4), new Float32Array(6), null as unknown as boolean)).toThrow(/for relu/);
    expect(() => nat.linear(ref.packLinear(new Float32Array(6), null, 2, 3), 2, new Float32Array(4), new Float32Array(6), false)).toThrow(/another backend/);
    expect(() => nat.linear(p, 0, new Float32Array(0), new Float32Array(0), true)).not.toThrow();
  });
  test('subarray views are read and written at their offset', () => {
    const r = rng(99);
    const wt = fill(6, r, 'float'), x = fill(4, r, 'float');
    const p = nat.packLinear(wt, null, 2, 3);
    const bigX = new Float32Array(50).fill(7), bigY = new Float32Array(50).fill(7);
    bigX.set(x, 13);
    const y1 = new Float32Array(6);
    nat.linear(p, 2, x, y1, false);
    nat.linear(p, 2, bigX.subarray(13, 17), bigY.subarray(21, 27), false);
    expect(Array.from(bigY.subarray(21, 27))).toEqual(Array.from(y1));
    expect(bigY[20]).toBe(7);
    expect(bigY[27]).toBe(7);
  });
});

describe('raw binding re-checks what memory safety depends on', () => {
  const { binding } = addon;
  const g = { inChannels: 4, outChannels: 6, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, dilationH: 1, dilationW: 1, groups: 2 };
  const any = (f: unknown) => f as (...a: unknown[]) => unknown;
  test('pack: bad geometry, lengths, isa and arity throw', () => {
    expect(() => binding.f32ConvPack('scalar', g, new Float32Array(107), null)).toThrow(/weight must have 108/);
    expect(() => binding.f32ConvPack('scalar', { ...g, groups: 3 }, new Float32Array(108), null)).toThrow(/groups/);
    expect(() => binding.f32ConvPack('scalar', { ...g, kernelH: 2 ** 40 }, new Float32Array(108), null)).toThrow(RangeError);
    expect(() => binding.f32ConvPack('scalar', { ...g, strideH: 0 }, new Float32Array(108), null)).toThrow(RangeError);
    expect(() => binding.f32ConvPack('scalar', { ...g, padW: undefined } as never, new Float32Array(108), null)).toThrow(/padW/);
    expect(() => binding.f32ConvPack('scalar', g, new Float32Array(108), new Float32Array(5))).toThrow(/bias/);
    expect(() => binding.f32ConvPack('nope' as never, g, new Float32Array(108), null)).toThrow(/unknown isa/);
    expect(() => any(binding.f32ConvPack)('scalar', g)).toThrow(TypeError);
    expect(() => binding.f32LinearPack('scalar', 2 ** 30, 1, new Float32Array(6), null)).toThrow(RangeError);
    expect(() => binding.f32LinearPack('scalar', 2, 3, new Float32Array(5), null)).toThrow(/weight/);
  });
  test('calls: wrong handles, short or long buffers, huge dims, overlap throw', () => {
    const p = binding.f32ConvPack('scalar', g, new Float32Array(108), null);
    const l = binding.f32LinearPack('scalar', 2, 3, new Float32Array(6), null);
    const q = binding.qgemmPack('scalar', 4, 3, new Int8Array(12), new Int32Array(3), new Float32Array(3), new Float32Array(3), 0, 0, 255);
    const x = new Float32Array(100), y = new Float32Array(150);
    expect(() => binding.f32Conv(p, x, 1, 5, 5, y, false)).not.toThrow();
    expect(() => binding.f32Conv(l as never, x, 1, 5, 5, y, false)).toThrow(/f32ConvPack/);
    expect(() => binding.f32Conv(q as never, x, 1, 5, 5, y, false)).toThrow(TypeError);
    expect(() => binding.f32Conv({} as never, x, 1, 5, 5, y, false)).toThrow(TypeError);
    expect(() => binding.qgemm(p as never, 1, new Uint8Array(4), 4, new Uint8Array(3), 3)).toThrow(TypeError);
    expect(() => binding.f32Linear(p as never, 1, new Float32Array(2), new Float32Array(3), false)).toThrow(/f32LinearPack/);
    expect(() => binding.f32Conv(p, x, 1e6, 5, 5, y, false)).toThrow(/x must have/);
    expect(() => binding.f32Conv(p, x, 1, 5, 5, y.subarray(1), false)).toThrow(/y must have/);
    expect(() => binding.f32Conv(p, x, 1, 2 ** 40, 5, y, false)).toThrow(RangeError);
    expect(() => binding.f32Conv(p, x, 1, 5, 5, y, 0 as never)).toThrow(/relu/);
    expect(() => binding.f32Conv(p, new Float32Array(0), 0, 1, 1, new Float32Array(0), false)).not.toThrow();
    const buf = new Float32Array(250);
    expect(() => binding.f32Conv(p, buf.subarray(0, 100), 1, 5, 5, buf.subarray(99, 249), false)).toThrow(/overlap/);
    expect(() => binding.f32Linear(l, 3, new Float32Array(6), new Float32Array(8), false)).toThrow(/y must have/);
    expect(() => binding.f32Linear(l, -1, new Float32Array(6), new Float32Array(9), false)).toThrow(RangeError);
    expect(() => any(binding.f32Linear)(l, 1)).toThrow(TypeError);
    expect(() => binding.f32Info({} as never)).toThrow(TypeError);
    expect(binding.f32Info(p)).toMatchObject({ isa: 'scalar', method: 'im2col' });
  });
});
