// u8s8 GEMM, AVX-512 VNNI: vpdpbusd on zmm, an 8-row x 32-column register tile (16 accumulators).
// Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni only; everything here has internal
// linkage so no AVX-512 code can be shared with the baseline translation units.
#include <immintrin.h>
#include <string.h>

#include "../kernels.h"

namespace {

constexpr int kMR = 8;

inline int32_t load_u32(const uint8_t* p) {
  int32_t v;
  memcpy(&v, p, 4);
  return v;
}

// acc += dot(a u8, b s8) in place. With the intrinsic, GCC 12 kept two register sets for the
// accumulators across the k loop, copying (and spilling) every one each iteration: about 60 uops
// for 16 vpdpbusd. The asm ties each accumulator to one register; callers pass a local copy so
// the accumulator array still lives in registers.
inline __m512i dpbusd(__m512i acc, __m512i a, __m512i b) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
  return acc;
}

inline int32_t load_tail(const uint8_t* p, size_t r) {
  uint32_t v = 0;
  for (size_t i = 0; i < r; i++) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return static_cast<int32_t>(v);
}

template <int MR, int NBK>
void tile(const ptq_qgemm_weights* w, const uint8_t* a, size_t lda, uint8_t* c, size_t ldc,
          size_t b, const int8_t* pf, size_t pf_stride, size_t pf_iters) {
  const size_t k = w->k, kq = (k + 3) / 4, kfull = k / 4, krem = k % 4;
  const int8_t* wp = static_cast<const int8_t*>(w->packed_w) + b * kq * 64;
  __m512i acc[MR][NBK];
#pragma GCC unroll 16
  for (int q = 0; q < NBK; q++) {
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) acc[r][q] = _mm512_loadu_si512(w->acc_init + (b + q) * 16);
  }
  const size_t pf_every = pf_iters ? (kfull + pf_iters - 1) / pf_iters : 1;
  size_t pf_countdown = 1;
  for (size_t g = 0; g < kfull; g++) {
    // Two lines of the panel that comes next (into L2: a large-K panel would not fit in L1), one
    // pair every pf_every k groups: spread over the whole tile, not in a burst that fills the
    // line-fill buffers while the panel is still on its way from DRAM.
    if (--pf_countdown == 0 && pf_iters) {
      pf_countdown = pf_every;
      pf_iters--;
      _mm_prefetch(reinterpret_cast<const char*>(pf), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(pf + 64), _MM_HINT_T1);
      pf += pf_stride;
    }
    __m512i bw[NBK];
#pragma GCC unroll 4
    for (int q = 0; q < NBK; q++) bw[q] = _mm512_load_si512(wp + (q * kq + g) * 64);
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) {
      const __m512i av = _mm512_set1_epi32(load_u32(a + r * lda + g * 4));
#pragma GCC unroll 4
      for (int q = 0; q < NBK; q++) acc[r][q] = dpbusd(acc[r][q], av, bw[q]);
    }
  }
  if (krem) {
    __m512i bw[NBK];
#pragma GCC unroll 4
    for (int q = 0; q < NBK; q++) bw[q] = _mm512_load_si512(wp + (q * kq + kfull) * 64);
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) {
      const __m512i av = _mm512_set1_epi32(load_tail(a + r * lda + kfull * 4, krem));
#pragma GCC unroll 4
      for (int q = 0; q < NBK; q++) acc[r][q] = dpbusd(acc[r][q], av, bw[q]);
    }
  }
  if constexpr (NBK == 2) {
    if ((b + 2) * 16 <= w->n) {
      // Both 16-column blocks full: rows in pairs, each row's 32 output bytes stored at once
      // (11 pack/store uops per 64 outputs instead of 15). Same arithmetic as below.
      const size_t col = b * 16;
      const __m512 bias0 = _mm512_loadu_ps(w->bias + col), bias1 = _mm512_loadu_ps(w->bias + col + 16);
      const __m512 mult0 = _mm512_loadu_ps(w->multiplier + col), mult1 = _mm512_loadu_ps(w->multiplier + col + 16);
      const __m512i zp16 = _mm512_set1_epi16(static_cast<short>(w->out_zero_point));
      const __m512i min8 = _mm512_set1_epi8(static_cast<char>(w->out_min));
      const __m512i max8 = _mm512_set1_epi8(static_cast<char>(w->out_max));
      // Lane L of the packed bytes holds [r q0][r q1][r+1 q0][r+1 q1], 4 bytes each.
      const __m512i rows_idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
      auto rq = [&](const __m512i a, const __m512 bias, const __m512 mult) {
        return _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_add_ps(_mm512_cvtepi32_ps(a), bias), mult));
      };
#pragma GCC unroll 8
      for (int r = 0; r < MR; r += 2) {
        const int r1 = r + 1 < MR ? r + 1 : r;  // a lone last row is computed twice, stored once
        const __m512i p0 = _mm512_adds_epi16(_mm512_packs_epi32(rq(acc[r][0], bias0, mult0), rq(acc[r][1], bias1, mult1)), zp16);
        const __m512i p1 = _mm512_adds_epi16(_mm512_packs_epi32(rq(acc[r1][0], bias0, mult0), rq(acc[r1][1], bias1, mult1)), zp16);
        __m512i u = _mm512_min_epu8(_mm512_max_epu8(_mm512_packus_epi16(p0, p1), min8), max8);
        u = _mm512_permutexvar_epi32(rows_idx, u);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + r * ldc + col), _mm512_castsi512_si256(u));
        if (r + 1 < MR) _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + (r + 1) * ldc + col), _mm512_extracti64x4_epi64(u, 1));
      }
      return;
    }
  }
  // Requantize 4 rows at a time: (acc + bias) * mult rounded to int32 as the reference does, then
  // saturating packs 32 -> 16 bits (+ zero point, saturating) -> 8 bits unsigned and a clamp on the
  // bytes. Saturation only moves values further in the direction the clamp sends them, so this
  // equals clamp(v, min - zp, max - zp) + zp. One dword permute puts each row's 16 bytes together.
  const __m512i zp16 = _mm512_set1_epi16(static_cast<short>(w->out_zero_point));
  const __m512i min8 = _mm512_set1_epi8(static_cast<char>(w->out_min));
  const __m512i max8 = _mm512_set1_epi8(static_cast<char>(w->out_max));
  const __m512i rows_idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
#pragma GCC unroll 4
  for (int q = 0; q < NBK; q++) {
    const size_t col = (b + q) * 16;
    const __m512 bias = _mm512_loadu_ps(w->bias + col);
    const __m512 mult = _mm512_loadu_ps(w->multiplier + col);
    const size_t cols = col + 16 <= w->n ? 16 : w->n - col;
    const __mmask16 mask = static_cast<__mmask16>((1u << cols) - 1);
    __m512i v[MR];
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) v[r] = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_add_ps(_mm512_cvtepi32_ps(acc[r][q]), bias), mult));
#pragma GCC unroll 4
    for (int r = 0; r < MR; r += 4) {
      // Rows past MR repeat the last row; they are never stored.
      const __m512i v1 = v[r + 1 < MR ? r + 1 : MR - 1], v2 = v[r + 2 < MR ? r + 2 : MR - 1], v3 = v[r + 3 < MR ? r + 3 : MR - 1];
      const __m512i p01 = _mm512_adds_epi16(_mm512_packs_epi32(v[r], v1), zp16);
      const __m512i p23 = _mm512_adds_epi16(_mm512_packs_epi32(v2, v3), zp16);
      __m512i u = _mm512_min_epu8(_mm512_max_epu8(_mm512_packus_epi16(p01, p23), min8), max8);
      u = _mm512_permutexvar_epi32(rows_idx, u);
      const __m128i r0 = _mm512_castsi512_si128(u), r1 = _mm512_extracti32x4_epi32(u, 1),
                    r2 = _mm512_extracti32x4_epi32(u, 2), r3 = _mm512_extracti32x4_epi32(u, 3);
      uint8_t* out = c + r * ldc + col;
      if (cols == 16) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out), r0);
        if (r + 1 < MR) _mm_storeu_si128(reinterpret_cast<__m128i*>(out + ldc), r1);
        if (r + 2 < MR) _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * ldc), r2);
        if (r + 3 < MR) _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 3 * ldc), r3);
      } else {
        _mm_mask_storeu_epi8(out, mask, r0);
        if (r + 1 < MR) _mm_mask_storeu_epi8(out + ldc, mask, r1);
        if (r + 2 < MR) _mm_mask_storeu_epi8(out + 2 * ldc, mask, r2);
        if (r + 3 < MR) _mm_mask_storeu_epi8(out + 3 * ldc, mask, r3);
      }
    }
  }
}

template <int NBK>
void rows(const ptq_qgemm_weights* w, const uint8_t* a, size_t lda, uint8_t* c, size_t ldc,
          size_t b, size_t mr, const int8_t* pf, size_t pf_stride, size_t pf_iters) {
  switch (mr) {
    case 1: tile<1, NBK>(w, a, lda, c, ldc, b, pf, pf_stride, pf_iters); break;
    case 2: tile<2, NBK>(w, a, lda, c, ldc, b, pf, pf_stride, pf_iters); break;
    case 3: tile<3, NBK>(w, a, lda, c, ldc, b, pf, pf_stride, pf_iters); break;
    case 4: tile<4, NBK>(w, a, lda, c, ldc, b, pf, pf_stride, pf_iters); break;
    case 5: tile<5, NBK>(w, a, lda, c, ldc, b, pf, pf_stride, pf_iters); break;
    case 6: tile<6, NBK>(w, a, lda, c, ldc, b, pf, pf_stride, pf_iters); break;
    case 7: tile<7, NBK>(w, a, lda, c, ldc, b, pf, pf_stride, pf_iters); break;
    default: tile<8, NBK>(w, a, lda, c, ldc, b, pf, pf_stride, pf_iters); break;
  }
}

}  // namespace

extern "C" void ptq_qgemm_u8s8_avx512vnni(const ptq_qgemm_weights* w, const ptq_qgemm_io* io,
                                          size_t m_begin, size_t m_end, size_t nb_begin,
                                          size_t nb_end) {
  // Rows are split evenly over ceil(m / kMR) tiles (49 rows: 7 x 7, not 6 x 8 + 1): a 1-row tile
  // streams the whole weight panel for one row of work.
  const size_t m = m_end - m_begin, tiles = (m + kMR - 1) / kMR;
  if (tiles == 0) return;
  const size_t base = m / tiles, extra = m % tiles;  // the last `extra` tiles get base + 1 rows
  // Column blocks outside, rows inside: the packed weight panel stays in L1 (or L2, for large K)
  // while A streams by. Meanwhile the row tiles prefetch the next pair's panel, interleaved (tile
  // t takes its 128-byte chunks t, t + tiles, ...): at batch 1 the late layers' weights (megabytes,
  // each used by a few rows) come from L3, and one tile alone could not pull a panel in time.
  const int8_t* packed = static_cast<const int8_t*>(w->packed_w);
  const size_t kq = (w->k + 3) / 4, panel = kq * 64;  // bytes per 16-column block
  size_t b = nb_begin;
  for (; b + 2 <= nb_end; b += 2) {
    const bool next = b + 2 < nb_end;
    for (size_t t = 0, i = m_begin; t < tiles; t++) {
      const size_t mr = base + (t >= tiles - extra);
      const size_t iters = next && t < kq ? (kq - t + tiles - 1) / tiles : 0;
      rows<2>(w, io->a + i * io->lda, io->lda, io->c + i * io->ldc, io->ldc, b, mr, packed + (b + 2) * panel + t * 128,
              tiles * 128, iters);
      i += mr;
    }
  }
  if (b < nb_end)
    for (size_t t = 0, i = m_begin; t < tiles; t++) {
      const size_t mr = base + (t >= tiles - extra);
      rows<1>(w, io->a + i * io->lda, io->lda, io->c + i * io->ldc, io->ldc, b, mr, packed, 0, 0);
      i += mr;
    }
}

// The peak probe (see kernels.h): 16 independent vpdpbusd chains (zmm0-15), operands never reloaded.
extern "C" void ptq_qgemm_peak_avx512vnni(uint64_t iters) {
  if (iters == 0) return;
  asm volatile(
      "vpxord %%zmm30, %%zmm30, %%zmm30\n\t"
      "vpxord %%zmm31, %%zmm31, %%zmm31\n"
      "1:\n\t"
      ".irp r, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm\\r\n\t"
      ".endr\n\t"
      "dec %0\n\t"
      "jnz 1b"
      : "+r"(iters)
      :
      : "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
        "xmm12", "xmm13", "xmm14", "xmm15", "xmm30", "xmm31");
}
