// The native kernel contract: plain C declarations and POD structs only.
// Every ISA's translation unit includes this header and nothing else that has inline code shared
// with other translation units: an inline function compiled with -mavx512f in one file and picked
// by the linker for the baseline code is how prebuilt binaries die with SIGILL on older CPUs.
#ifndef PTQ_KERNELS_H_
#define PTQ_KERNELS_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// ISA levels, ascending. Each level's kernels only run where the CPU (and OS, via XCR0) has them.
typedef enum {
  PTQ_ISA_SCALAR = 0,
  PTQ_ISA_AVX2 = 1,        // AVX2 + FMA
  PTQ_ISA_AVXVNNI = 2,     // AVX2 + FMA + AVX-VNNI (VEX vpdpbusd on ymm)
  PTQ_ISA_AVX512VNNI = 3,  // AVX-512 F/BW/VL + AVX512-VNNI
  PTQ_ISA_COUNT = 4
} ptq_isa;

// Bit mask of the ISA levels this CPU and OS support (bit i = ptq_isa i). Scalar is always set.
uint32_t ptq_cpu_supported_isas(void);

// ---- u8 x s8 -> int32 GEMM with the fp32 requantization epilogue (PyTorch 1.13 x86 numerics) ----
//
// C[i][j] = clamp(rne(f32(f32(acc) + bias[j]) * multiplier[j]), out_min - zp, out_max - zp) + zp
// acc     = acc_init[j] + sum_k A[i][k] * W[j][k]   (int32, wrapping)
// rne(x)  = round half to even, INT32_MIN when x is not in [-2^31, 2^31) (cvtps2dq semantics)
// acc_init carries -A_zero_point * colsum(W[j]); bias is the float bias already divided by
// (input_scale * weight_scale[j]) and multiplier = input_scale * weight_scale[j] / output_scale.
//
// Packed weight layouts (blocks of PTQ_GEMM_NR output columns, zero padded):
//   scalar, avxvnni, avx512vnni: int8  [ceil(N/16)][Kp/4][16][4], Kp = round_up(K, 4)
//   avx2:                        int16 [ceil(N/16)][Kp/2][16][2], Kp = round_up(K, 2)
// The per-column arrays (acc_init, bias, multiplier) are padded to a multiple of 16 as well.
#define PTQ_GEMM_NR 16

typedef struct {
  size_t k;                  // reduction length
  size_t n;                  // output columns
  const void* packed_w;      // layout above, 64-byte aligned
  const int32_t* acc_init;   // [round_up(n,16)]
  const float* bias;         // [round_up(n,16)]
  const float* multiplier;   // [round_up(n,16)]
  int32_t out_zero_point;
  int32_t out_min;           // clamp bounds on the quantized output, 0 <= out_min <= out_max <= 255
  int32_t out_max;
} ptq_qgemm_weights;

typedef struct {
  const uint8_t* a;  // [m][lda]
  size_t lda;
  uint8_t* c;        // [m][ldc]
  size_t ldc;
} ptq_qgemm_io;

// Computes rows [m_begin, m_end) and 16-column blocks [nb_begin, nb_end) of C.
typedef void (*ptq_qgemm_fn)(const ptq_qgemm_weights* w, const ptq_qgemm_io* io, size_t m_begin,
                             size_t m_end, size_t nb_begin, size_t nb_end);

void ptq_qgemm_u8s8_scalar(const ptq_qgemm_weights* w, const ptq_qgemm_io* io, size_t m_begin,
                           size_t m_end, size_t nb_begin, size_t nb_end);
void ptq_qgemm_u8s8_avx2(const ptq_qgemm_weights* w, const ptq_qgemm_io* io, size_t m_begin,
                         size_t m_end, size_t nb_begin, size_t nb_end);
void ptq_qgemm_u8s8_avxvnni(const ptq_qgemm_weights* w, const ptq_qgemm_io* io, size_t m_begin,
                            size_t m_end, size_t nb_begin, size_t nb_end);
void ptq_qgemm_u8s8_avx512vnni(const ptq_qgemm_weights* w, const ptq_qgemm_io* io, size_t m_begin,
                               size_t m_end, size_t nb_begin, size_t nb_end);

// Peak probe: `iters` iterations of the level's GEMM dot-product instruction alone on independent
// accumulators, no loads and no epilogue. The MAC rate it reaches bounds what any GEMM
// tile of that level can do on this core (benchmarks report efficiency against it).
// PTQ_QGEMM_PEAK_*_MACS: MACs per iteration.
typedef void (*ptq_qgemm_peak_fn)(uint64_t iters);
#define PTQ_QGEMM_PEAK_AVX2_MACS 288         /* 18 x vpmaddwd ymm (8 lanes x 2) + vpaddd */
#define PTQ_QGEMM_PEAK_AVXVNNI_MACS 448      /* 14 x vpdpbusd ymm (8 lanes x 4) */
#define PTQ_QGEMM_PEAK_AVX512VNNI_MACS 1024  /* 16 x vpdpbusd zmm (16 lanes x 4) */
void ptq_qgemm_peak_avx2(uint64_t iters);
void ptq_qgemm_peak_avxvnni(uint64_t iters);
void ptq_qgemm_peak_avx512vnni(uint64_t iters);

// Packed size in bytes of an N x K weight matrix for an ISA, and the packer (scalar code, all ISAs).
size_t ptq_qgemm_packed_size(ptq_isa isa, size_t k, size_t n);
void ptq_qgemm_pack(ptq_isa isa, size_t k, size_t n, const int8_t* w /* [n][k] */, void* packed);


// ---- float32 kernels (the float model's forward pass and calibration), NHWC activations ----
//
// IEEE float32 throughout (no fast-math); the SIMD kernels use FMA, so results agree with the TS
// reference (lib/kernels/reference/float.ts) to float32 rounding, not bitwise. The bias is added
// after the full reduction and ReLU is max(0, y) with y passed through when NaN (the reference's
// `y < 0 ? 0 : y`), both fused in the store.
//
// SGEMM: C[i][j] = sum_k A[i][k] * B[k][j] (+ bias[j]) (then ReLU), for 1x1 convs, linear layers
// and im2col'd KxK convs. B is packed once (ptq_sgemm_pack), identically for every ISA level:
//   float [ceil(N/16)][K][16], 64-byte aligned, columns >= N zero padded.
#define PTQ_SGEMM_NR 16

typedef struct {
  size_t k;                // reduction length
  size_t n;                // output columns
  const float* packed_b;   // layout above
  const float* bias;       // [round_up(n,16)], or NULL for no bias
} ptq_sgemm_weights;

typedef struct {
  const float* a;  // [m][lda]
  size_t lda;
  float* c;        // [m][ldc], must not overlap a
  size_t ldc;
  int relu;
  // Summation order (matches oneDNN's fp32 convs in PyTorch 1.13, so calibration sees the same
  // activations bit for bit): the k range is cut into chunks of PTQ_SGEMM_KC; each chunk is an FMA
  // chain in k order starting from 0, except that with bias_first the first chunk starts from the
  // bias; chunk sums are added to the running total in order; without bias_first the bias is
  // added after the last chunk. 1x1 convs and linears use bias_first, im2col convs do not.
  int bias_first;
} ptq_sgemm_io;

#define PTQ_SGEMM_KC 256

// Computes rows [m_begin, m_end) and 16-column blocks [nb_begin, nb_end) of C. Reentrant (no
// state), so disjoint ranges may run on different threads.
typedef void (*ptq_sgemm_fn)(const ptq_sgemm_weights* w, const ptq_sgemm_io* io, size_t m_begin,
                             size_t m_end, size_t nb_begin, size_t nb_end);

void ptq_sgemm_f32_scalar(const ptq_sgemm_weights* w, const ptq_sgemm_io* io, size_t m_begin,
                          size_t m_end, size_t nb_begin, size_t nb_end);
void ptq_sgemm_f32_avx2(const ptq_sgemm_weights* w, const ptq_sgemm_io* io, size_t m_begin,
                        size_t m_end, size_t nb_begin, size_t nb_end);
void ptq_sgemm_f32_avx512vnni(const ptq_sgemm_weights* w, const ptq_sgemm_io* io, size_t m_begin,
                              size_t m_end, size_t nb_begin, size_t nb_end);

// Depthwise conv (groups == in == out channels), direct NHWC, any kernel/stride/pad/dilation.
// Weights are packed [kh*kw][round_up(C,16)] (tap-major, channels zero padded) plus 16 floats of
// slack (ptq_dwconv_f32_packed_floats), 64-byte aligned: the kernels align their channel blocks
// to x, so a full-width load may start up to 15 floats before the end of a row.
typedef struct {
  size_t channels;
  size_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
  const float* packed_w;
  const float* bias;  // [round_up(channels,16) + 16], or NULL
} ptq_dwconv_weights;

typedef struct {
  const float* x;  // [n][h][w][channels]
  size_t h, w;
  float* y;        // [n][oh][ow][channels], must not overlap x
  size_t oh, ow;
  int relu;
} ptq_dwconv_io;

// Computes output rows [row_begin, row_end) of the n*oh rows (row r = image r/oh, oy = r%oh).
typedef void (*ptq_dwconv_fn)(const ptq_dwconv_weights* w, const ptq_dwconv_io* io,
                              size_t row_begin, size_t row_end);

void ptq_dwconv_f32_scalar(const ptq_dwconv_weights* w, const ptq_dwconv_io* io, size_t row_begin,
                           size_t row_end);
void ptq_dwconv_f32_avx2(const ptq_dwconv_weights* w, const ptq_dwconv_io* io, size_t row_begin,
                         size_t row_end);
void ptq_dwconv_f32_avx512vnni(const ptq_dwconv_weights* w, const ptq_dwconv_io* io,
                               size_t row_begin, size_t row_end);

// Conv geometry (PyTorch's Conv2d arguments). in/out channels divisible by groups.
typedef struct {
  size_t in_channels, out_channels, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
      dilation_h, dilation_w, groups;
} ptq_conv2d_geometry;

// A conv run as per-group GEMMs (everything but depthwise): directly on x for 1x1 stride-1
// unpadded convs, else over an im2col of a block of output pixels (K ordered (ky, kx, ci), as the
// reference sums). Baseline code (native/conv_f32.cc); the GEMM is the ISA kernel it points to.
typedef struct {
  ptq_conv2d_geometry g;
  size_t k;                // per-group reduction: kernel_h*kernel_w*in_channels/groups
  size_t n;                // per-group output channels: out_channels/groups
  const float* packed_b;   // groups consecutive SGEMM panels of round_up(n,16)*k floats
  const float* bias;       // groups x round_up(n,16), or NULL
  ptq_sgemm_fn gemm;
} ptq_conv2d_f32_plan;

// True when the plan runs the GEMM directly on x (1x1, stride 1, no padding): no scratch needed.
int ptq_conv2d_f32_is_direct(const ptq_conv2d_geometry* g);
// Floats of scratch one ptq_conv2d_f32 call needs (0 when direct). Per calling thread.
size_t ptq_conv2d_f32_scratch_floats(const ptq_conv2d_f32_plan* plan);
// Computes output pixels [p_begin, p_end) of the n*oh*ow pixels, 16-column blocks [nb_begin,
// nb_end) of each group's outputs. scratch: 64-byte aligned, ptq_conv2d_f32_scratch_floats(plan)
// floats, private to the calling thread.
void ptq_conv2d_f32(const ptq_conv2d_f32_plan* plan, const float* x, size_t h, size_t w, float* y,
                    size_t oh, size_t ow, int relu, size_t p_begin, size_t p_end, size_t nb_begin,
                    size_t nb_end, float* scratch);

// Packers (baseline code, same layout for every ISA level).
// SGEMM B from a row-major [n][k] matrix (a PyTorch Linear weight): round_up(n,16)*k floats.
size_t ptq_sgemm_packed_floats(size_t k, size_t n);
void ptq_sgemm_pack(size_t k, size_t n, const float* w /* [n][k] */, float* packed);
// A conv's OIHW weight as groups SGEMM panels: groups * ptq_sgemm_packed_floats(k, n) floats.
void ptq_conv2d_f32_pack(const ptq_conv2d_geometry* g, const float* w /* OIHW */, float* packed);
// A depthwise conv's [C][1][kh][kw] weight as [kh*kw][round_up(C,16)] + 16 floats of slack.
size_t ptq_dwconv_f32_packed_floats(const ptq_conv2d_geometry* g);
void ptq_dwconv_f32_pack(const ptq_conv2d_geometry* g, const float* w, float* packed);

#ifdef __cplusplus
}
#endif

#endif  // PTQ_KERNELS_H_
