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

// Packed size in bytes of an N x K weight matrix for an ISA, and the packer (scalar code, all ISAs).
size_t ptq_qgemm_packed_size(ptq_isa isa, size_t k, size_t n);
void ptq_qgemm_pack(ptq_isa isa, size_t k, size_t n, const int8_t* w /* [n][k] */, void* packed);

#ifdef __cplusplus
}
#endif

#endif  // PTQ_KERNELS_H_
