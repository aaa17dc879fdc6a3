// The exact shape of what build/Release/ptq_node.node (or prebuilds/linux-x64/ptq-node.napi.node)
// exports. Nothing else: the public API, validation and docs live in lib/.

/** ISA level names, ascending. */
export type IsaName = 'scalar' | 'avx2' | 'avxvnni' | 'avx512vnni';

/** Opaque handle to packed GEMM weights plus their requantization constants (freed by GC). */
export interface QGemmPacked {
  readonly __brand: 'QGemmPacked';
}

/** Opaque handle to a packed quantized conv2d (freed by GC). */
export interface QConv2dPacked {
  readonly __brand: 'QConv2dPacked';
}

/** Opaque handle to a compiled whole-model plan (freed by GC). */
export interface PlanHandle {
  readonly __brand: 'PlanHandle';
}

/** One op of a plan; slots are arena buffers (-1 = the plan input, -2 = the plan output). */
export interface PlanOp {
  kind: 'quantize' | 'dequantize' | 'conv' | 'gemm' | 'add' | 'mean' | 'aap' | 'maxpool';
  in0: number;
  in1?: number;
  out: number;
  handle?: QConv2dPacked | QGemmPacked;
  [field: string]: unknown;
}

export interface Binding {
  /** Compiles ops over slots (bytes per sample) into a plan with an arena for maxBatch samples. */
  planCreate(ops: PlanOp[], slotBytes: number[], maxBatch: number, inFloats: number, outFloats: number, isa: IsaName): PlanHandle;
  /** Runs a plan on n samples on the calling thread (threads 0 = the whole pool). */
  planRunSync(plan: PlanHandle, input: Float32Array, n: number, output: Float32Array, threads: number): void;
  /** Queues a run of the plan; one libuv thread per plan runs its queue in order (on each run's own copies of input and output; output is written when it settles). */
  planRun(plan: PlanHandle, input: Float32Array, n: number, output: Float32Array, threads: number): Promise<void>;
  /** Runs a plan `reps` times and returns the mean nanoseconds spent in each op. */
  planProfile(plan: PlanHandle, input: Float32Array, n: number, output: Float32Array, threads: number, reps: number): Float64Array;
  /** Frees a plan's arena and packed weights now (waits for the run in progress; later runs reject). Idempotent. */
  planDispose(plan: PlanHandle): void;
  /** Describes a plan. */
  planInfo(plan: PlanHandle): { ops: number; arenaBytes: number; maxBatch: number; depthFirstOps: number; poolThreads: number };

  /**
   * Packs a quantized conv2d. geometry = [cin, cout, kh, kw, strideH, strideW, padH, padW,
   * dilationH, dilationW, groups]; weight in PyTorch order [cout][cin/groups][kh][kw].
   */
  qconv2dPack(
    isa: IsaName, geometry: Int32Array, weight: Int8Array, accInit: Int32Array, bias: Float32Array,
    multiplier: Float32Array, inputZeroPoint: number, outZeroPoint: number, outMin: number, outMax: number,
  ): QConv2dPacked;
  /** Quantized conv2d over NHWC quint8 x [n][h][w][cin] into y [n][oh][ow][cout]. */
  qconv2d(packed: QConv2dPacked, x: Uint8Array, n: number, h: number, w: number, y: Uint8Array): void;
  /**
   * quint8 = clamp(zp + rne(x * (1/scale))). `isa` picks the kernel (bit-exact on every level);
   * omitted: the best level, or PTQ_ISA's, capped to what the CPU supports.
   */
  quantize(x: Float32Array, y: Uint8Array, scale: number, zeroPoint: number, isa?: IsaName): void;
  /** float32 = (q - zp) * scale. `isa` as for quantize. */
  dequantize(x: Uint8Array, y: Float32Array, scale: number, zeroPoint: number, isa?: IsaName): void;
  /** Quantized add / add_relu (PyTorch's dequantize-add-quantize in float32). `isa` as for quantize. */
  qadd(a: Uint8Array, b: Uint8Array, y: Uint8Array, aScale: number, aZeroPoint: number, bScale: number, bZeroPoint: number,
    outScale: number, outZeroPoint: number, relu: boolean, isa?: IsaName): void;
  /** Mean over hw of NHWC [n][hw][c] into [n][c] with the same qparams. */
  qmeanHW(x: Uint8Array, n: number, hw: number, c: number, y: Uint8Array, scale: number, zeroPoint: number): void;
  /** min, max and NaN flag (1/0) of x[start, end), scanned in the observers' order. */
  minmaxF32(x: Float32Array, start: number, end: number): [number, number, number];
  /** Adds torch.histc bin counts of x over [left, right] (bin width `width` = right - left in float32). */
  histcCountsF32(x: Float32Array, left: number, right: number, width: number, counts: Int32Array): void;
  /** y = a + b (op 0), relu(a + b) (1) or a * b (2), element-wise in float32. */
  f32Binary(a: Float32Array, b: Float32Array, y: Float32Array, op: 0 | 1 | 2): void;
  /** y[p][ch] = x[p][ch] * alpha[ch] + beta[ch] (float32 multiply, then add) over pixels x c. */
  f32ChannelAffine(x: Float32Array, pixels: number, c: number, alpha: Float32Array, beta: Float32Array, y: Float32Array): void;
  /** y = x > 0 ? min(x, max) : 0 element-wise (NaN gives 0); y may be x. */
  f32Relu(x: Float32Array, y: Float32Array, max: number): void;
  /** y[n][c] = float32(double sum over the hw pixels of NHWC x, in pixel order, / hw). */
  f32MeanHW(x: Float32Array, n: number, hw: number, c: number, y: Float32Array): void;
  /** NCHW x -> NHWC y. */
  f32ToChannelsLast(x: Float32Array, n: number, c: number, hw: number, y: Float32Array): void;
  /** k x k max pooling (stride, symmetric padding, dilation) over NHWC float32. */
  f32MaxPool2d(x: Float32Array, n: number, h: number, w: number, c: number, k: number, stride: number, pad: number,
    dilation: number, y: Float32Array): void;
  /** adaptive_avg_pool2d to 1x1: zp_out + rne(f32(sum q - zp_in*hw) * f32(s_in/s_out/hw)). */
  qadaptiveAvgPool(x: Uint8Array, n: number, hw: number, c: number, y: Uint8Array, inScale: number, inZeroPoint: number,
    outScale: number, outZeroPoint: number): void;
  /** k x k max pooling with stride and symmetric padding over NHWC quint8. */
  qmaxpool2d(x: Uint8Array, n: number, h: number, w: number, c: number, k: number, stride: number, pad: number, y: Uint8Array): void;

  /** Package version baked in at build time. */
  readonly version: string;
  /** Threads of the process-wide intra-op pool, the calling thread included (creates the pool). */
  threadPoolSize(): number;
  /** ISA levels this CPU and OS can run, ascending (always starts with 'scalar'). */
  supportedIsas(): IsaName[];
  /** Packs an n x k int8 weight matrix (row-major [n][k]) and its per-column epilogue constants. */
  qgemmPack(
    isa: IsaName,
    k: number,
    n: number,
    weight: Int8Array,
    accInit: Int32Array,
    bias: Float32Array,
    multiplier: Float32Array,
    outZeroPoint: number,
    outMin: number,
    outMax: number,
  ): QGemmPacked;
  /** Describes a packed GEMM. */
  qgemmInfo(packed: QGemmPacked): { isa: IsaName; k: number; n: number; bytes: number };
  /** c[m][ldc] = requantize(a[m][lda] x weight^T), synchronously on the calling thread. */
  qgemm(packed: QGemmPacked, m: number, a: Uint8Array, lda: number, c: Uint8Array, ldc: number): void;
  /**
   * MACs per second of the ISA level's GEMM dot-product instruction alone (no loads, no epilogue)
   * on the calling thread, best of ~2 ms runs over at least `ms`: the bound any int8 GEMM of that
   * level can reach on this core. Blocks the thread; for benchmarks. RangeError for 'scalar'.
   */
  qgemmPeak(isa: IsaName, ms: number): number;
}

// ---- float32 kernels (appended; the qgemm API above is unchanged) ----

/** Conv2d geometry as the native float kernels read it (PyTorch Conv2d arguments). */
export interface F32ConvGeometry {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelH: number;
  readonly kernelW: number;
  readonly strideH: number;
  readonly strideW: number;
  readonly padH: number;
  readonly padW: number;
  readonly dilationH: number;
  readonly dilationW: number;
  readonly groups: number;
}

/** Opaque handle to packed float32 conv weights (type-tagged object, freed by GC). Immutable. */
export interface F32ConvPacked {
  readonly __brand: 'F32ConvPacked';
}

/** Opaque handle to packed float32 linear weights (type-tagged object, freed by GC). Immutable. */
export interface F32LinearPacked {
  readonly __brand: 'F32LinearPacked';
}

/** How a packed float layer runs: GEMM on x (1x1 s1 p0), im2col + GEMM, direct depthwise, GEMM. */
export type F32Method = 'direct' | 'im2col' | 'depthwise' | 'linear';

export interface Binding {
  /** Packs OIHW conv weights and an optional bias for an ISA level (its float kernels are bound now). */
  f32ConvPack(isa: IsaName, geometry: F32ConvGeometry, weight: Float32Array, bias: Float32Array | null): F32ConvPacked;
  /** y (NHWC [n][oh][ow][out]) = conv(x (NHWC [n][h][w][in])) + bias, then ReLU; synchronous. */
  f32Conv(packed: F32ConvPacked, x: Float32Array, n: number, h: number, w: number, y: Float32Array, relu: boolean): void;
  /** Packs [out][in] linear weights and an optional bias for an ISA level. */
  f32LinearPack(isa: IsaName, inFeatures: number, outFeatures: number, weight: Float32Array, bias: Float32Array | null): F32LinearPacked;
  /** y[m][out] = x[m][in] * W^T + bias, then ReLU; synchronous. */
  f32Linear(packed: F32LinearPacked, m: number, x: Float32Array, y: Float32Array, relu: boolean): void;
  /** Describes a packed float layer: the level asked for, the level whose kernels run, the method. */
  /** Threads of the eager float ops (0 = all threads of the pool; capped at its size). */
  setNumThreads(threads: number): void;
  /** Threads the eager float ops use now. */
  getNumThreads(): number;
  f32Info(packed: F32ConvPacked | F32LinearPacked): { isa: IsaName; kernelIsa: IsaName; method: F32Method; bytes: number };
}
