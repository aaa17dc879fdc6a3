// Float32 and rounding primitives shared by every reference kernel. Each mirrors one x86
// instruction or C library call used by PyTorch 1.13 / FBGEMM, so the TS path is bit-exact.

const fround = Math.fround;
const floor = Math.floor;

/** Rounds half to even (std::nearbyint in the default rounding mode); JS Math.round rounds ties up. */
export function roundHalfEven(x: number): number {
  const r = floor(x);
  const d = x - r;
  if (d > 0.5) return r + 1;
  if (d < 0.5) return r;
  return r % 2 === 0 ? r : r + 1;
}

/** cvtps2dq: float32 -> int32 rounding half to even; NaN and out-of-range give INT32_MIN. */
export function cvtRne(x: number): number {
  if (!(x >= -2147483648 && x < 2147483648)) return -2147483648;
  return roundHalfEven(x);
}

/** float32 multiplication (both operands already float32). */
export function fmul(a: number, b: number): number {
  return fround(a * b);
}

/** float32 addition (both operands already float32). */
export function fadd(a: number, b: number): number {
  return fround(a + b);
}

/** float32 division (both operands already float32). */
export function fdiv(a: number, b: number): number {
  return fround(a / b);
}
