// The exact shape of what build/Release/ptq_node.node (or prebuilds/linux-x64/ptq-node.napi.node)
// exports. Nothing else: the public API, validation and docs live in lib/.

/** ISA level names, ascending. */
export type IsaName = 'scalar' | 'avx2' | 'avxvnni' | 'avx512vnni';

/** Opaque handle to packed GEMM weights plus their requantization constants (freed by GC). */
export interface QGemmPacked {
  readonly __brand: 'QGemmPacked';
}

export interface Binding {
  /** Package version baked in at build time. */
  readonly version: string;
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
}
