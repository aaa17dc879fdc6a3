// Float32 SGEMM, AVX2 + FMA: a 6-row x 16-column register tile (12 ymm accumulators), BLIS
// Haswell style. Same chunking and fused epilogue as the AVX-512 kernel. Compiled with -mavx2
// -mfma only (also the avxvnni level's float kernel); internal linkage but for the extern "C" entry.
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "../kernels.h"

namespace {

constexpr size_t kNR = PTQ_SGEMM_NR;
constexpr int kMR = 6;
constexpr size_t kKC = PTQ_SGEMM_KC;
constexpr size_t kMC = 144;

alignas(64) const int32_t kMaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

// First `lanes` (0..8) lanes set.
inline __m256i lane_mask(size_t lanes) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMaskTable + 8 - lanes));
}

struct TileArgs {
  const float* a;
  size_t lda;
  const float* b;
  size_t kc;
  float* c;
  size_t ldc;
  const float* bias;  // at the first column, or NULL
  size_t cols;        // valid columns of the block, 1..16
  bool accumulate;      // a later chunk: add this chunk's sum (from zero) to C
  bool bias_init;       // first chunk of a bias_first GEMM: the chain starts from the bias
  bool bias_init_gemm;  // the GEMM is bias_first (no bias at the end)
  bool finish;          // last chunk: bias (unless bias_first), ReLU
  bool relu;
};

template <int MR>
void tile(const TileArgs& t) {
  __m256 acc[MR][2];
  const bool full = t.cols == kNR;
  const __m256i m0 = lane_mask(t.cols >= 8 ? 8 : t.cols), m1 = lane_mask(t.cols > 8 ? t.cols - 8 : 0);
  if (t.bias_init && t.bias) {
    const __m256 bias0 = _mm256_loadu_ps(t.bias), bias1 = _mm256_loadu_ps(t.bias + 8);  // padded
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
      acc[r][0] = bias0;
      acc[r][1] = bias1;
    }
  } else {
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  }
  const float* a = t.a;
  const float* b = t.b;
  for (size_t k = 0; k < t.kc; k++, b += kNR) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
      const __m256 av = _mm256_broadcast_ss(a + r * t.lda + k);
      acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
    }
  }
  if (t.accumulate) {
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
      const float* c = t.c + r * t.ldc;
      acc[r][0] = _mm256_add_ps(full ? _mm256_loadu_ps(c) : _mm256_maskload_ps(c, m0), acc[r][0]);
      acc[r][1] = _mm256_add_ps(full ? _mm256_loadu_ps(c + 8) : _mm256_maskload_ps(c + 8, m1), acc[r][1]);
    }
  }
  if (t.finish) {
    if (t.bias && !t.bias_init_gemm) {
      const __m256 bias0 = _mm256_loadu_ps(t.bias), bias1 = _mm256_loadu_ps(t.bias + 8);  // padded
#pragma GCC unroll 8
      for (int r = 0; r < MR; r++) {
        acc[r][0] = _mm256_add_ps(acc[r][0], bias0);
        acc[r][1] = _mm256_add_ps(acc[r][1], bias1);
      }
    }
    if (t.relu) {
      // max(0, y): vmaxps returns its second operand for NaN and for +-0, like `y < 0 ? 0 : y`.
      const __m256 zero = _mm256_setzero_ps();
#pragma GCC unroll 8
      for (int r = 0; r < MR; r++) {
        acc[r][0] = _mm256_max_ps(zero, acc[r][0]);
        acc[r][1] = _mm256_max_ps(zero, acc[r][1]);
      }
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; r++) {
    float* c = t.c + r * t.ldc;
    if (full) {
      _mm256_storeu_ps(c, acc[r][0]);
      _mm256_storeu_ps(c + 8, acc[r][1]);
    } else {
      _mm256_maskstore_ps(c, m0, acc[r][0]);
      _mm256_maskstore_ps(c + 8, m1, acc[r][1]);
    }
  }
}

typedef void (*TileFn)(const TileArgs&);
const TileFn kTiles[kMR] = {tile<1>, tile<2>, tile<3>, tile<4>, tile<5>, tile<6>};

}  // namespace

extern "C" void ptq_sgemm_f32_avx2(const ptq_sgemm_weights* w, const ptq_sgemm_io* io,
                                   size_t m_begin, size_t m_end, size_t nb_begin, size_t nb_end) {
  const size_t k = w->k, n = w->n;
  if (m_begin >= m_end || nb_begin >= nb_end || k == 0) return;
  const size_t kstep = kKC;
  TileArgs t;
  t.bias_init_gemm = io->bias_first != 0;
  t.lda = io->lda;
  t.ldc = io->ldc;
  t.relu = io->relu != 0;
  for (size_t k0 = 0; k0 < k; k0 += t.kc) {
    t.kc = k - k0 < kstep ? k - k0 : kstep;
    t.accumulate = k0 != 0;
    t.bias_init = k0 == 0 && t.bias_init_gemm;
    t.finish = k0 + t.kc == k;
    for (size_t m0 = m_begin; m0 < m_end; m0 += kMC) {
      const size_t m1 = m_end - m0 < kMC ? m_end : m0 + kMC;
      for (size_t nb = nb_begin; nb < nb_end; nb++) {
        const size_t col = nb * kNR;
        t.cols = n - col < kNR ? n - col : kNR;
        t.b = w->packed_b + nb * k * kNR + k0 * kNR;
        t.bias = w->bias ? w->bias + col : NULL;
        for (size_t i = m0; i < m1; i += kMR) {
          const size_t rows = m1 - i < static_cast<size_t>(kMR) ? m1 - i : kMR;
          t.a = io->a + i * t.lda + k0;
          t.c = io->c + i * t.ldc + col;
          kTiles[rows - 1](t);
        }
      }
    }
  }
}
