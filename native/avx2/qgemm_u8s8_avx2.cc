// u8s8 GEMM, AVX2: both operands widened to int16 and multiplied with vpmaddwd (XNNPACK style),
// so the full u8 activation range is exact (vpmaddubsw would saturate: 255*127*2 > 32767).
// A 6-row x 16-column register tile. Compiled with -mavx2 -mfma only; internal linkage throughout.
#include <immintrin.h>
#include <string.h>

#include "../kernels.h"

namespace {

constexpr int kMR = 6;

inline __m128i load_a4(const uint8_t* p) {
  int32_t v;
  memcpy(&v, p, 4);
  return _mm_cvtepu8_epi16(_mm_cvtsi32_si128(v));  // (a0, a1, a2, a3) as int16
}

inline __m128i load_a_tail(const uint8_t* p, size_t r) {
  uint32_t v = 0;
  for (size_t i = 0; i < r; i++) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return _mm_cvtepu8_epi16(_mm_cvtsi32_si128(static_cast<int32_t>(v)));
}

inline __m128i requantize16(__m256i a0, __m256i a1, const float* bias, const float* mult,
                            __m256i lo, __m256i hi, __m256i zp) {
  __m256 f0 = _mm256_mul_ps(_mm256_add_ps(_mm256_cvtepi32_ps(a0), _mm256_loadu_ps(bias)),
                            _mm256_loadu_ps(mult));
  __m256 f1 = _mm256_mul_ps(_mm256_add_ps(_mm256_cvtepi32_ps(a1), _mm256_loadu_ps(bias + 8)),
                            _mm256_loadu_ps(mult + 8));
  __m256i v0 = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(_mm256_cvtps_epi32(f0), lo), hi), zp);
  __m256i v1 = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(_mm256_cvtps_epi32(f1), lo), hi), zp);
  __m256i p16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(v0, v1), 0xD8);
  __m256i p8 = _mm256_packus_epi16(p16, p16);
  return _mm256_castsi256_si128(_mm256_permute4x64_epi64(p8, 0x08));
}

template <int MR>
void tile(const ptq_qgemm_weights* w, const uint8_t* a, size_t lda, uint8_t* c, size_t ldc,
          size_t b) {
  const size_t k = w->k, kp2 = (k + 1) / 2, kfull = k / 4, krem = k % 4;
  // One k-pair of a 16-column block is 16 x 2 int16 = 64 bytes (two ymm).
  const int16_t* wp = static_cast<const int16_t*>(w->packed_w) + b * kp2 * 32;
  __m256i acc0[MR], acc1[MR];
  const __m256i i0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w->acc_init + b * 16));
  const __m256i i1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w->acc_init + b * 16 + 8));
#pragma GCC unroll 8
  for (int r = 0; r < MR; r++) {
    acc0[r] = i0;
    acc1[r] = i1;
  }
  for (size_t g = 0; g < kfull; g++) {
    const int16_t* wk = wp + g * 2 * 32;
    const __m256i b00 = _mm256_load_si256(reinterpret_cast<const __m256i*>(wk));
    const __m256i b01 = _mm256_load_si256(reinterpret_cast<const __m256i*>(wk + 16));
    const __m256i b10 = _mm256_load_si256(reinterpret_cast<const __m256i*>(wk + 32));
    const __m256i b11 = _mm256_load_si256(reinterpret_cast<const __m256i*>(wk + 48));
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
      const __m128i a16 = load_a4(a + r * lda + g * 4);
      const __m256i p0 = _mm256_broadcastd_epi32(a16);
      const __m256i p1 = _mm256_broadcastd_epi32(_mm_srli_si128(a16, 4));
      acc0[r] = _mm256_add_epi32(acc0[r], _mm256_madd_epi16(p0, b00));
      acc1[r] = _mm256_add_epi32(acc1[r], _mm256_madd_epi16(p0, b01));
      acc0[r] = _mm256_add_epi32(acc0[r], _mm256_madd_epi16(p1, b10));
      acc1[r] = _mm256_add_epi32(acc1[r], _mm256_madd_epi16(p1, b11));
    }
  }
  if (krem) {
    const int16_t* wk = wp + kfull * 2 * 32;
    const size_t pairs = (krem + 1) / 2;
    for (int r = 0; r < MR; r++) {
      const __m128i a16 = load_a_tail(a + r * lda + kfull * 4, krem);
      const __m256i p0 = _mm256_broadcastd_epi32(a16);
      acc0[r] = _mm256_add_epi32(acc0[r], _mm256_madd_epi16(p0, _mm256_load_si256(reinterpret_cast<const __m256i*>(wk))));
      acc1[r] = _mm256_add_epi32(acc1[r], _mm256_madd_epi16(p0, _mm256_load_si256(reinterpret_cast<const __m256i*>(wk + 16))));
      if (pairs == 2) {
        const __m256i p1 = _mm256_broadcastd_epi32(_mm_srli_si128(a16, 4));
        acc0[r] = _mm256_add_epi32(acc0[r], _mm256_madd_epi16(p1, _mm256_load_si256(reinterpret_cast<const __m256i*>(wk + 32))));
        acc1[r] = _mm256_add_epi32(acc1[r], _mm256_madd_epi16(p1, _mm256_load_si256(reinterpret_cast<const __m256i*>(wk + 48))));
      }
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

extern "C" void ptq_qgemm_u8s8_avx2(const ptq_qgemm_weights* w, const ptq_qgemm_io* io,
                                    size_t m_begin, size_t m_end, size_t nb_begin, size_t nb_end) {
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

// The peak probe (see kernels.h): the kernel's vpmaddwd + vpaddd pair, 18 an iteration on 6
// accumulators (ymm0-5, products in ymm10-15), operands never reloaded.
extern "C" void ptq_qgemm_peak_avx2(uint64_t iters) {
  if (iters == 0) return;
  asm volatile(
      "vpxor %%ymm6, %%ymm6, %%ymm6\n\t"
      "vpxor %%ymm7, %%ymm7, %%ymm7\n"
      "1:\n\t"
      ".rept 3\n\t"
      ".irp r, 0,1,2,3,4,5\n\t"
      "vpmaddwd %%ymm6, %%ymm7, %%ymm1\\r\n\t"
      "vpaddd %%ymm1\\r, %%ymm\\r, %%ymm\\r\n\t"
      ".endr\n\t"
      ".endr\n\t"
      "dec %0\n\t"
      "jnz 1b"
      : "+r"(iters)
      :
      : "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm10", "xmm11", "xmm12", "xmm13",
        "xmm14", "xmm15");
}
