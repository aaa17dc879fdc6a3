// u8s8 GEMM, AVX-VNNI: VEX vpdpbusd on ymm, a 6-row x 16-column register tile (12 accumulators).
// Compiled with -mavx2 -mfma -mavxvnni only; internal linkage throughout (see kernels.h).
#include <immintrin.h>
#include <string.h>

#include "../kernels.h"

namespace {

constexpr int kMR = 6;

inline int32_t load_u32(const uint8_t* p) {
  int32_t v;
  memcpy(&v, p, 4);
  return v;
}

inline int32_t load_tail(const uint8_t* p, size_t r) {
  uint32_t v = 0;
  for (size_t i = 0; i < r; i++) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return static_cast<int32_t>(v);
}

// Requantizes 16 accumulators (two ymm, columns 0-7 and 8-15) to 16 bytes.
inline __m128i requantize16(__m256i a0, __m256i a1, const float* bias, const float* mult,
                            __m256i lo, __m256i hi, __m256i zp) {
  __m256 f0 = _mm256_mul_ps(_mm256_add_ps(_mm256_cvtepi32_ps(a0), _mm256_loadu_ps(bias)),
                            _mm256_loadu_ps(mult));
  __m256 f1 = _mm256_mul_ps(_mm256_add_ps(_mm256_cvtepi32_ps(a1), _mm256_loadu_ps(bias + 8)),
                            _mm256_loadu_ps(mult + 8));
  __m256i v0 = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(_mm256_cvtps_epi32(f0), lo), hi), zp);
  __m256i v1 = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(_mm256_cvtps_epi32(f1), lo), hi), zp);
  // Values are in [0, 255] already, so the saturating packs only reorder lanes.
  __m256i p16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(v0, v1), 0xD8);
  __m256i p8 = _mm256_packus_epi16(p16, p16);
  return _mm256_castsi256_si128(_mm256_permute4x64_epi64(p8, 0x08));
}

template <int MR>
void tile(const ptq_qgemm_weights* w, const uint8_t* a, size_t lda, uint8_t* c, size_t ldc,
          size_t b) {
  const size_t k = w->k, kq = (k + 3) / 4, kfull = k / 4, krem = k % 4;
  const int8_t* wp = static_cast<const int8_t*>(w->packed_w) + b * kq * 64;
  __m256i acc0[MR], acc1[MR];
  const __m256i i0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w->acc_init + b * 16));
  const __m256i i1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w->acc_init + b * 16 + 8));
#pragma GCC unroll 8
  for (int r = 0; r < MR; r++) {
    acc0[r] = i0;
    acc1[r] = i1;
  }
  for (size_t g = 0; g < kfull; g++) {
    const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(wp + g * 64));
    const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(wp + g * 64 + 32));
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
      const __m256i av = _mm256_set1_epi32(load_u32(a + r * lda + g * 4));
      acc0[r] = _mm256_dpbusd_avx_epi32(acc0[r], av, b0);
      acc1[r] = _mm256_dpbusd_avx_epi32(acc1[r], av, b1);
    }
  }
  if (krem) {
    const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(wp + kfull * 64));
    const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(wp + kfull * 64 + 32));
    for (int r = 0; r < MR; r++) {
      const __m256i av = _mm256_set1_epi32(load_tail(a + r * lda + kfull * 4, krem));
      acc0[r] = _mm256_dpbusd_avx_epi32(acc0[r], av, b0);
      acc1[r] = _mm256_dpbusd_avx_epi32(acc1[r], av, b1);
    }
  }
  const __m256i zp = _mm256_set1_epi32(w->out_zero_point);
  const __m256i lo = _mm256_set1_epi32(w->out_min - w->out_zero_point);
  const __m256i hi = _mm256_set1_epi32(w->out_max - w->out_zero_point);
  const size_t col = b * 16, cols = col + 16 <= w->n ? 16 : w->n - col;
#pragma GCC unroll 8
  for (int r = 0; r < MR; r++) {
    const __m128i bytes = requantize16(acc0[r], acc1[r], w->bias + col, w->multiplier + col, lo, hi, zp);
    if (cols == 16) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(c + r * ldc + col), bytes);
    } else {
      uint8_t tmp[16];
      _mm_storeu_si128(reinterpret_cast<__m128i*>(tmp), bytes);
      memcpy(c + r * ldc + col, tmp, cols);
    }
  }
}

}  // namespace

extern "C" void ptq_qgemm_u8s8_avxvnni(const ptq_qgemm_weights* w, const ptq_qgemm_io* io,
                                       size_t m_begin, size_t m_end, size_t nb_begin,
                                       size_t nb_end) {
  for (size_t b = nb_begin; b < nb_end; b++)
    for (size_t i = m_begin; i < m_end; i += kMR) {
      const uint8_t* a = io->a + i * io->lda;
      uint8_t* c = io->c + i * io->ldc;
      switch (m_end - i < static_cast<size_t>(kMR) ? m_end - i : kMR) {
        case 1: tile<1>(w, a, io->lda, c, io->ldc, b); break;
        case 2: tile<2>(w, a, io->lda, c, io->ldc, b); break;
        case 3: tile<3>(w, a, io->lda, c, io->ldc, b); break;
        case 4: tile<4>(w, a, io->lda, c, io->ldc, b); break;
        case 5: tile<5>(w, a, io->lda, c, io->ldc, b); break;
        default: tile<6>(w, a, io->lda, c, io->ldc, b); break;
      }
    }
}

// The peak probe (see kernels.h): 14 independent VEX vpdpbusd chains (ymm0-13; VEX reaches 16
// registers), operands never reloaded.
extern "C" void ptq_qgemm_peak_avxvnni(uint64_t iters) {
  if (iters == 0) return;
  asm volatile(
      "vpxor %%ymm14, %%ymm14, %%ymm14\n\t"
      "vpxor %%ymm15, %%ymm15, %%ymm15\n"
      "1:\n\t"
      ".irp r, 0,1,2,3,4,5,6,7,8,9,10,11,12,13\n\t"
      "%{vex%} vpdpbusd %%ymm14, %%ymm15, %%ymm\\r\n\t"
      ".endr\n\t"
      "dec %0\n\t"
      "jnz 1b"
      : "+r"(iters)
      :
      : "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
        "xmm12", "xmm13", "xmm14", "xmm15");
}
