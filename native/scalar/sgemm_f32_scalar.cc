// Portable float32 SGEMM (baseline flags, no FMA contraction): the fallback for CPUs without
// AVX2. Sums each output in k order with a rounding after every product and add, exactly as the
// TS reference does.
#include <stddef.h>

#include "../kernels.h"

namespace {

constexpr size_t kNR = PTQ_SGEMM_NR;

template <int MR>
void tile(const ptq_sgemm_weights* w, const ptq_sgemm_io* io, size_t i, size_t b) {
  const size_t k = w->k;
  const float* bp = w->packed_b + b * k * kNR;
  const float* a = io->a + i * io->lda;
  float acc[MR][kNR];
  for (int r = 0; r < MR; r++)
    for (size_t j = 0; j < kNR; j++) acc[r][j] = 0.0f;
  for (size_t kk = 0; kk < k; kk++) {
    const float* bk = bp + kk * kNR;
    for (int r = 0; r < MR; r++) {
      const float av = a[r * io->lda + kk];
      for (size_t j = 0; j < kNR; j++) acc[r][j] += av * bk[j];
    }
  }
  const size_t col = b * kNR, cols = w->n - col < kNR ? w->n - col : kNR;
  for (int r = 0; r < MR; r++) {
    float* c = io->c + (i + r) * io->ldc + col;
    for (size_t j = 0; j < cols; j++) {
      float v = acc[r][j];
      if (w->bias) v += w->bias[col + j];
      c[j] = io->relu && v < 0.0f ? 0.0f : v;
    }
  }
}

}  // namespace

extern "C" void ptq_sgemm_f32_scalar(const ptq_sgemm_weights* w, const ptq_sgemm_io* io,
                                     size_t m_begin, size_t m_end, size_t nb_begin, size_t nb_end) {
  for (size_t b = nb_begin; b < nb_end; b++) {
    size_t i = m_begin;
    for (; i + 4 <= m_end; i += 4) tile<4>(w, io, i, b);
    for (; i < m_end; i++) tile<1>(w, io, i, b);
  }
}
