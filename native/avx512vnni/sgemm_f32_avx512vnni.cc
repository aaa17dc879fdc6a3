// Float32 SGEMM, AVX-512F FMA: a 12-row x 32-column register tile (24 zmm accumulators, two
// 16-column B blocks per k). The reduction is split in chunks of ~256 (a 32 KB B panel stays in
// L1 while a block of 144 rows of A sweeps it); partial sums go through C between chunks, bias and
// ReLU are fused in the last chunk's store. Compiled with the avx512vnni level's flags only (it
// needs just AVX-512F); everything but the extern "C" entry has internal linkage.
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "../kernels.h"

namespace {

constexpr size_t kNR = PTQ_SGEMM_NR;
constexpr int kMR = 12;
constexpr size_t kKC = PTQ_SGEMM_KC;
constexpr size_t kMC = 144;
constexpr size_t kSmallB = 24 << 10;  // bytes of a B chunk that stays in L1 next to A and C

inline __mmask16 col_mask(size_t cols) {
  return cols >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << cols) - 1);
}

struct TileArgs {
  const float* a;      // first row, first k of the chunk
  size_t lda;
  const float* b;      // first block, first k of the chunk
  size_t bstride;      // floats between two 16-column blocks (K*16)
  size_t kc;           // chunk length
  float* c;            // first row, first column
  size_t ldc;
  const float* bias;   // at the first column, or NULL
  __mmask16 last_mask; // valid columns of the last block
  bool accumulate;     // a later chunk: add this chunk's sum (from zero) to C
  bool bias_init;      // first chunk of a bias_first GEMM: the chain starts from the bias
  bool bias_init_gemm; // the GEMM is bias_first (no bias at the end)
  bool finish;         // last chunk: bias (unless bias_init), ReLU
  bool relu;
  // Prefetch into L2 of the B rows that come next (NULL: none): rows pf_first, pf_first + pf_every,
  // ... below kc of the blocks at pf0 and pf1, one pair of lines per k step that hits one.
  const float* pf0;
  const float* pf1;
  size_t pf_first, pf_every, pf_rows;
};

template <int MR, int NBK>
void tile(const TileArgs& t) {
  __m512 acc[MR][NBK];
  if (t.bias_init && t.bias) {
#pragma GCC unroll 2
    for (int q = 0; q < NBK; q++) {
      const __m512 bias = _mm512_loadu_ps(t.bias + q * kNR);  // padded to 16
#pragma GCC unroll 16
      for (int r = 0; r < MR; r++) acc[r][q] = bias;
    }
  } else {
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 2
      for (int q = 0; q < NBK; q++) acc[r][q] = _mm512_setzero_ps();
  }
  const float* a = t.a;
  const float* b = t.b;
  size_t pf_countdown = t.pf0 ? t.pf_first + 1 : 0;
  for (size_t k = 0; k < t.kc; k++, b += kNR) {
    if (pf_countdown && --pf_countdown == 0) {
      pf_countdown = t.pf_every;
      if (k < t.pf_rows) {
        _mm_prefetch(reinterpret_cast<const char*>(t.pf0 + k * kNR), _MM_HINT_T1);
        _mm_prefetch(reinterpret_cast<const char*>(t.pf1 + k * kNR), _MM_HINT_T1);
      }
    }
    __m512 bv[NBK];
#pragma GCC unroll 2
    for (int q = 0; q < NBK; q++) bv[q] = _mm512_load_ps(b + q * t.bstride);
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) {
      const __m512 av = _mm512_set1_ps(a[r * t.lda + k]);
#pragma GCC unroll 2
      for (int q = 0; q < NBK; q++) acc[r][q] = _mm512_fmadd_ps(av, bv[q], acc[r][q]);
    }
  }
  if (t.accumulate) {
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 2
      for (int q = 0; q < NBK; q++)
        acc[r][q] = _mm512_add_ps(_mm512_maskz_loadu_ps(q == NBK - 1 ? t.last_mask : 0xFFFF, t.c + r * t.ldc + q * kNR), acc[r][q]);
  }
  if (t.finish) {
    if (t.bias && !t.bias_init_gemm) {
#pragma GCC unroll 2
      for (int q = 0; q < NBK; q++) {
        const __m512 bias = _mm512_loadu_ps(t.bias + q * kNR);  // padded to 16
#pragma GCC unroll 16
        for (int r = 0; r < MR; r++) acc[r][q] = _mm512_add_ps(acc[r][q], bias);
      }
    }
    if (t.relu) {
      // max(0, y): vmaxps returns its second operand for NaN and for +-0, like `y < 0 ? 0 : y`.
      const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 16
      for (int r = 0; r < MR; r++)
#pragma GCC unroll 2
        for (int q = 0; q < NBK; q++) acc[r][q] = _mm512_max_ps(zero, acc[r][q]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; r++)
#pragma GCC unroll 2
    for (int q = 0; q < NBK; q++)
      _mm512_mask_storeu_ps(t.c + r * t.ldc + q * kNR, q == NBK - 1 ? t.last_mask : 0xFFFF, acc[r][q]);
}

typedef void (*TileFn)(const TileArgs&);

#define PTQ_TILES(NBK)                                                                      \
  {tile<1, NBK>, tile<2, NBK>, tile<3, NBK>, tile<4, NBK>, tile<5, NBK>, tile<6, NBK>,     \
   tile<7, NBK>, tile<8, NBK>, tile<9, NBK>, tile<10, NBK>, tile<11, NBK>, tile<12, NBK>}
const TileFn kTiles[2][kMR] = {PTQ_TILES(1), PTQ_TILES(2)};
#undef PTQ_TILES

}  // namespace

extern "C" void ptq_sgemm_f32_avx512vnni(const ptq_sgemm_weights* w, const ptq_sgemm_io* io,
                                         size_t m_begin, size_t m_end, size_t nb_begin,
                                         size_t nb_end) {
  const size_t k = w->k, n = w->n;
  if (m_begin >= m_end || nb_begin >= nb_end || k == 0) return;
  const size_t kstep = kKC;
  TileArgs t;
  t.pf0 = t.pf1 = NULL;
  t.pf_first = t.pf_rows = 0;
  t.pf_every = 1;
  t.bias_init_gemm = io->bias_first != 0;
  t.lda = io->lda;
  t.ldc = io->ldc;
  t.bstride = k * kNR;
  t.relu = io->relu != 0;
  auto chunk = [&](size_t k0) {
    t.kc = k - k0 < kstep ? k - k0 : kstep;
    t.accumulate = k0 != 0;
    t.bias_init = k0 == 0 && t.bias_init_gemm;
    t.finish = k0 + t.kc == k;
  };
  if (m_end - m_begin <= w->n && k > kstep) {
    // No more rows than columns (late layers at batch 1) and a long reduction: the weights
    // dominate and come from L3 or DRAM. Each column pair runs all its k chunks in turn, so its
    // two B blocks stream front to back once (chunk by chunk over every pair hopped between
    // 2 * pairs streams per chunk),
    // and the next chunk is prefetched meanwhile: a 512-channel 3x3 conv at 7x7 with its 9 MB of
    // weights out of cache, 4.4 -> 4.0 ms. Same per-output sums in the same order.
    const size_t tiles = (m_end - m_begin + kMR - 1) / kMR, base = (m_end - m_begin) / tiles,
                 extra = (m_end - m_begin) % tiles;
    for (size_t nb = nb_begin; nb < nb_end; nb += 2) {
      const size_t nbk = nb_end - nb < 2 ? 1 : 2, col = nb * kNR;
      t.last_mask = col_mask(n - (col + (nbk - 1) * kNR));
      t.bias = w->bias ? w->bias + col : NULL;
      for (size_t k0 = 0; k0 < k; k0 += t.kc) {
        chunk(k0);
        t.b = w->packed_b + nb * k * kNR + k0 * kNR;
        // Meanwhile the row tiles prefetch the next chunk's B rows (tile ti: rows ti, ti + tiles,
        // ...), or the next pair's first chunk: DRAM or L3 alone could not keep up with the FMAs.
        const size_t next_nb = k0 + t.kc < k ? nb : nb + 2;
        const size_t next_k0 = k0 + t.kc < k ? k0 + t.kc : 0;
        const bool pf = next_nb < nb_end;
        const float* next = w->packed_b + next_nb * k * kNR + next_k0 * kNR;
        t.pf0 = pf ? next : NULL;
        t.pf1 = pf && next_nb + 1 < nb_end ? next + k * kNR : next;
        t.pf_every = tiles;
        t.pf_rows = k - next_k0 < kstep ? k - next_k0 : kstep;
        for (size_t ti = 0, i = m_begin; ti < tiles; ti++) {
          const size_t rows = base + (ti >= tiles - extra);
          t.a = io->a + i * t.lda + k0;
          t.c = io->c + i * t.ldc + col;
          t.pf_first = ti;
          kTiles[nbk - 1][rows - 1](t);
          i += rows;
        }
      }
    }
    return;
  }
  for (size_t k0 = 0; k0 < k; k0 += t.kc) {
    chunk(k0);
    for (size_t m0 = m_begin; m0 < m_end; m0 += kMC) {
      const size_t m1 = m_end - m0 < kMC ? m_end : m0 + kMC;
      // Rows split evenly over ceil(rows / kMR) tiles (49 rows: 10+10+10+10+9, not 4 x 12 + 1): a
      // 1-row tile streams the whole B panel for one row of work.
      const size_t tiles = (m1 - m0 + kMR - 1) / kMR, base = (m1 - m0) / tiles, extra = (m1 - m0) % tiles;
      auto run = [&](size_t nb, size_t i, size_t rows) {
        const size_t nbk = nb_end - nb < 2 ? 1 : 2, col = nb * kNR;
        t.last_mask = col_mask(n - (col + (nbk - 1) * kNR));
        t.b = w->packed_b + nb * k * kNR + k0 * kNR;
        t.bias = w->bias ? w->bias + col : NULL;
        t.a = io->a + i * t.lda + k0;
        t.c = io->c + i * t.ldc + col;
        kTiles[nbk - 1][rows - 1](t);
      };
      if (t.kc * (nb_end - nb_begin) * kNR * sizeof(float) <= kSmallB) {
        // All of B's chunk fits in L1 (small K): each row tile runs every column block, so C is
        // written a few whole rows at a time (a 16->96 1x1 conv at 112x112: 15% faster).
        for (size_t ti = 0, i = m0; ti < tiles; ti++) {
          const size_t rows = base + (ti >= tiles - extra);
          for (size_t nb = nb_begin; nb < nb_end; nb += 2) run(nb, i, rows);
          i += rows;
        }
      } else {
        for (size_t nb = nb_begin; nb < nb_end; nb += 2)
          for (size_t ti = 0, i = m0; ti < tiles; ti++) {
            const size_t rows = base + (ti >= tiles - extra);
            run(nb, i, rows);
            i += rows;
          }
      }
    }
  }
}
