// Float32 kernels (the float model's forward pass and calibration), NHWC activations.
// Two implementations behind one interface: the TS reference (readable loops) and the native
// one (AVX2/AVX-512 FMA, same runtime ISA dispatch). They agree to float32 rounding, not bitwise:
// summation order differs, as it does between PyTorch's own CPU backends.

/** Geometry of a 2-D convolution. */
export interface Conv2dGeometry {
  inChannels: number;
  outChannels: number;
  kernelH: number;
  kernelW: number;
  strideH: number;
  strideW: number;
  padH: number;
  padW: number;
  dilationH: number;
  dilationW: number;
  groups: number;
}

/** Conv2d weights (OIHW as in PyTorch, [outChannels][inChannels/groups][kh][kw]) packed once. */
export interface PackedConv2dF32 {
  readonly geometry: Conv2dGeometry;
}

/** Linear weights ([out][in] as in PyTorch) packed once. */
export interface PackedLinearF32 {
  readonly inFeatures: number;
  readonly outFeatures: number;
}

/** The float kernels a float model needs. */
export interface FloatKernels {
  readonly name: 'native' | 'reference';
  /** Packs conv weights (OIHW) and optional bias. */
  packConv2d(weight: Float32Array, bias: Float32Array | null, g: Conv2dGeometry): PackedConv2dF32;
  /**
   * y (NHWC [n][oh][ow][outChannels]) = conv(x (NHWC [n][h][w][inChannels])) + bias, then max(y, 0)
   * when relu. oh = floor((h + 2*padH - dilationH*(kernelH-1) - 1)/strideH) + 1, same for ow.
   */
  conv2d(p: PackedConv2dF32, x: Float32Array, n: number, h: number, w: number, y: Float32Array, relu: boolean): void;
  /** Packs linear weights ([out][in]) and optional bias. */
  packLinear(weight: Float32Array, bias: Float32Array | null, inFeatures: number, outFeatures: number): PackedLinearF32;
  /** y[m][out] = x[m][in] * W^T + bias, then max(y, 0) when relu. */
  linear(p: PackedLinearF32, m: number, x: Float32Array, y: Float32Array, relu: boolean): void;
  /** y = a + b, relu(a + b) (a NaN or -0 sum gives +0) or a * b, element-wise; y may not overlap a or b. */
  binary(op: BinaryOpF32, a: Float32Array, b: Float32Array, y: Float32Array): void;
  /** y[p][ch] = x[p][ch] * alpha[ch] + beta[ch] over `pixels` NHWC pixels, rounded after the multiply and the add (eval BatchNorm2d). */
  channelAffine(x: Float32Array, pixels: number, c: number, alpha: Float32Array, beta: Float32Array, y: Float32Array): void;
  /** y = x > 0 ? min(x, max) : 0 element-wise (NaN gives 0): ReLU (max = Infinity) and ReLU6; y may be x. */
  relu(x: Float32Array, y: Float32Array, max: number): void;
  /** y[n][c] = mean over the hw pixels of NHWC x[n][hw][c] (a double sum in pixel order, then / hw). */
  meanHW(x: Float32Array, n: number, hw: number, c: number, y: Float32Array): void;
  /** NCHW x [n][c][hw] -> NHWC y [n][hw][c]. */
  toChannelsLast(x: Float32Array, n: number, c: number, hw: number, y: Float32Array): void;
  /** Max pooling of NHWC x (running max from -inf; NaN inputs never win), y NHWC [n][oh][ow][c]. */
  maxPool2d(x: Float32Array, n: number, h: number, w: number, c: number, p: Pool2dGeometry, y: Float32Array): void;
}

/** Element-wise float ops of FloatFunctional. */
export type BinaryOpF32 = 'add' | 'add_relu' | 'mul';

/** Square max-pooling window geometry. */
export interface Pool2dGeometry {
  kernelSize: number;
  stride: number;
  padding: number;
  dilation: number;
}

/** Output spatial size of a convolution along one axis. */
export function convOutSize(size: number, kernel: number, stride: number, pad: number, dilation: number): number {
  return Math.floor((size + 2 * pad - dilation * (kernel - 1) - 1) / stride) + 1;
}
