// Element-wise quantized ops, AVX2 + FMA: quantize (f32 -> u8), dequantize (u8 -> f32),
// add/add_relu. Also the avxvnni level's kernels. Bit-exact with the scalar kernels and
// lib/kernels/reference/qops.ts: the same float32 operations in the same order, vfmadd only where
// the spec has a fused multiply-add (qadd's dequantize below PyTorch's 64-element vector split),
// cvtps2dq for rne (INT32_MIN out of range, like cvt_rne). The u8 clamp of zp + r is done with
// saturating packs: sat16(sat16(r) + zp) then unsigned saturation equals clamp(zp + r, 0, 255).
// 32 elements per step; a ragged end goes through a zero-padded copy. Compiled with -mavx2 -mfma
// only; internal linkage but for the extern "C" entries.
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../qops.h"

namespace {

// clamp(zp + r, 0, 255) of 4 x 8 int32 as 32 bytes in order.
inline __m256i to_u8(__m256i r0, __m256i r1, __m256i r2, __m256i r3, __m256i zp16) {
  const __m256i p01 = _mm256_adds_epi16(_mm256_packs_epi32(r0, r1), zp16);
  const __m256i p23 = _mm256_adds_epi16(_mm256_packs_epi32(r2, r3), zp16);
  // In-lane packs leave dwords r0[0:4] r1[0:4] r2[0:4] r3[0:4] | r0[4:8] r1[4:8] r2[4:8] r3[4:8].
  return _mm256_permutevar8x32_epi32(_mm256_packus_epi16(p01, p23), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

inline __m256i load_u8(const uint8_t* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

inline void quantize32(const float* x, uint8_t* y, __m256 inv, __m256i zp16) {
  __m256i r[4];
  for (int u = 0; u < 4; u++) r[u] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * u), inv));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(y), to_u8(r[0], r[1], r[2], r[3], zp16));
}

inline void dequantize32(const uint8_t* x, float* y, __m256 s, __m256i z) {
  for (int u = 0; u < 4; u++)
    _mm256_storeu_ps(y + 8 * u, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(load_u8(x + 8 * u), z)), s));
}

struct AddConsts {
  __m256 sa, sb, pa, pb, inv, zero;
  __m256i za, zb, zp16;
  bool relu;
};

// 32 sums; kFma: PyTorch's vector dequantize fma(q, s, -zp*s), else its scalar (q - zp) * s.
template <bool kFma>
inline void add32(const AddConsts& k, const uint8_t* a, const uint8_t* b, uint8_t* y) {
  __m256i r[4];
  for (int u = 0; u < 4; u++) {
    const __m256i qa = load_u8(a + 8 * u), qb = load_u8(b + 8 * u);
    __m256 da, db;
    if (kFma) {
      da = _mm256_fmadd_ps(_mm256_cvtepi32_ps(qa), k.sa, k.pa);
      db = _mm256_fmadd_ps(_mm256_cvtepi32_ps(qb), k.sb, k.pb);
    } else {
      da = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(qa, k.za)), k.sa);
      db = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(qb, k.zb)), k.sb);
    }
    __m256 c = _mm256_add_ps(da, db);
    if (k.relu) c = _mm256_max_ps(k.zero, c);  // 0 > c ? 0 : c: NaN and -0 pass, as `c < 0 ? 0 : c`
    r[u] = _mm256_cvtps_epi32(_mm256_mul_ps(c, k.inv));
  }
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(y), to_u8(r[0], r[1], r[2], r[3], k.zp16));
}

template <bool kFma>
void add_range(const AddConsts& k, const uint8_t* a, const uint8_t* b, uint8_t* y, size_t i, size_t end) {
  for (; i + 32 <= end; i += 32) add32<kFma>(k, a + i, b + i, y + i);
  if (i < end) {
    const size_t n = end - i;
    alignas(32) uint8_t ta[32] = {0}, tb[32] = {0}, ty[32];
    memcpy(ta, a + i, n);
    memcpy(tb, b + i, n);
    add32<kFma>(k, ta, tb, ty);
    memcpy(y + i, ty, n);
  }
}

}  // namespace

extern "C" void ptq_quantize_f32_u8_avx2(const float* x, uint8_t* y, size_t begin, size_t end, float scale, int32_t zp) {
  const __m256 inv = _mm256_set1_ps(1.0f / scale);
  const __m256i zp16 = _mm256_set1_epi16(static_cast<short>(zp));
  size_t i = begin;
  for (; i + 32 <= end; i += 32) quantize32(x + i, y + i, inv, zp16);
  if (i < end) {
    const size_t n = end - i;
    alignas(32) float tx[32] = {0};
    alignas(32) uint8_t ty[32];
    memcpy(tx, x + i, n * sizeof(float));
    quantize32(tx, ty, inv, zp16);
    memcpy(y + i, ty, n);
  }
}

extern "C" void ptq_dequantize_u8_f32_avx2(const uint8_t* x, float* y, size_t begin, size_t end, float scale, int32_t zp) {
  const __m256 s = _mm256_set1_ps(scale);
  const __m256i z = _mm256_set1_epi32(zp);
  size_t i = begin;
  for (; i + 32 <= end; i += 32) dequantize32(x + i, y + i, s, z);
  if (i < end) {
    const size_t n = end - i;
    alignas(32) uint8_t tx[32] = {0};
    alignas(32) float ty[32];
    memcpy(tx, x + i, n);
    dequantize32(tx, ty, s, z);
    memcpy(y + i, ty, n * sizeof(float));
  }
}

extern "C" void ptq_qadd_u8_avx2(const uint8_t* a, const uint8_t* b, uint8_t* y, size_t begin, size_t end,
                                 const ptq_qadd_params* p) {
  AddConsts k;
  k.sa = _mm256_set1_ps(p->a_scale);
  k.sb = _mm256_set1_ps(p->b_scale);
  k.pa = _mm256_set1_ps(static_cast<float>(-p->a_zero_point) * p->a_scale);
  k.pb = _mm256_set1_ps(static_cast<float>(-p->b_zero_point) * p->b_scale);
  k.inv = _mm256_set1_ps(1.0f / p->out_scale);
  k.zero = _mm256_setzero_ps();
  k.za = _mm256_set1_epi32(p->a_zero_point);
  k.zb = _mm256_set1_epi32(p->b_zero_point);
  k.zp16 = _mm256_set1_epi16(static_cast<short>(p->out_zero_point));
  k.relu = p->relu != 0;
  // Below vec_end (a multiple of 64 of the whole tensor) PyTorch's vector path, above it the scalar.
  const size_t vec_end = p->total - p->total % 64;
  const size_t mid = vec_end < begin ? begin : (vec_end > end ? end : vec_end);
  if (begin < mid) add_range<true>(k, a, b, y, begin, mid);
  if (mid < end) add_range<false>(k, a, b, y, mid, end);
}
