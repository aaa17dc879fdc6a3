// Element-wise quantized ops, AVX-512: quantize (f32 -> u8), dequantize (u8 -> f32), add/add_relu.
// Bit-exact with the scalar kernels and lib/kernels/reference/qops.ts: the same float32 operations
// in the same order, vfmadd only where the spec has a fused multiply-add (qadd's dequantize below
// PyTorch's 64-element vector split), cvtps2dq for rne (INT32_MIN out of range, like cvt_rne), and
// the u8 clamp of zp + r done with saturating packs (64 at a time) or on int32 before adding the
// zero point (so zp + INT32_MAX-ish cannot wrap). Ragged ends use masked loads/stores. Compiled with the avx512vnni level's
// flags only; internal linkage but for the extern "C" entries.
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "../qops.h"

namespace {

inline __mmask16 tail_mask(size_t n) { return static_cast<__mmask16>((1u << n) - 1); }

// clamp(zp + r, 0, 255) as bytes: clamp r to [-zp, 255 - zp] first.
inline __m128i to_u8(__m512i r, __m512i lo, __m512i hi, __m512i zp) {
  return _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(r, lo), hi), zp));
}

// clamp(zp + r, 0, 255) of 4 x 16 int32 as 64 bytes in order, with saturating packs:
// sat16(sat16(r) + zp) then unsigned saturation equals the clamp (3 shuffles + 1 permute instead
// of 4 two-uop vpmovdb).
inline __m512i to_u8_64(__m512i r0, __m512i r1, __m512i r2, __m512i r3, __m512i zp16) {
  const __m512i p01 = _mm512_adds_epi16(_mm512_packs_epi32(r0, r1), zp16);
  const __m512i p23 = _mm512_adds_epi16(_mm512_packs_epi32(r2, r3), zp16);
  // In-lane packs leave dword 4L + j = r_j[4L : 4L + 4]; put r_j[4L : 4L + 4] at dword 4j + L.
  const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  return _mm512_permutexvar_epi32(idx, _mm512_packus_epi16(p01, p23));
}

inline __m512i load_u8(const uint8_t* p) { return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
inline __m512i load_u8(const uint8_t* p, __mmask16 m) { return _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p)); }

struct AddConsts {
  __m512 sa, sb, pa, pb, inv, zero;
  __m512i za, zb, lo, hi, zp, zp16;
  bool relu;
};

// rne(c * inv) of 16 sums; kFma: PyTorch's vector dequantize fma(q, s, -zp*s), else its scalar
// (q - zp) * s.
template <bool kFma>
inline __m512i add16_i32(const AddConsts& k, __m512i qa, __m512i qb) {
  __m512 da, db;
  if (kFma) {
    da = _mm512_fmadd_ps(_mm512_cvtepi32_ps(qa), k.sa, k.pa);
    db = _mm512_fmadd_ps(_mm512_cvtepi32_ps(qb), k.sb, k.pb);
  } else {
    da = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(qa, k.za)), k.sa);
    db = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(qb, k.zb)), k.sb);
  }
  __m512 c = _mm512_add_ps(da, db);
  if (k.relu) c = _mm512_max_ps(k.zero, c);  // 0 > c ? 0 : c: NaN and -0 pass, as `c < 0 ? 0 : c`
  return _mm512_cvtps_epi32(_mm512_mul_ps(c, k.inv));
}

template <bool kFma>
inline __m128i add16(const AddConsts& k, __m512i qa, __m512i qb) {
  return to_u8(add16_i32<kFma>(k, qa, qb), k.lo, k.hi, k.zp);
}

template <bool kFma>
void add_range(const AddConsts& k, const uint8_t* a, const uint8_t* b, uint8_t* y, size_t i, size_t end) {
  for (; i + 64 <= end; i += 64) {
    __m512i r[4];
#pragma GCC unroll 4
    for (size_t u = 0; u < 4; u++) r[u] = add16_i32<kFma>(k, load_u8(a + i + 16 * u), load_u8(b + i + 16 * u));
    _mm512_storeu_si512(y + i, to_u8_64(r[0], r[1], r[2], r[3], k.zp16));
  }
  for (; i + 16 <= end; i += 16)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), add16<kFma>(k, load_u8(a + i), load_u8(b + i)));
  if (i < end) {
    const __mmask16 m = tail_mask(end - i);
    _mm_mask_storeu_epi8(y + i, m, add16<kFma>(k, load_u8(a + i, m), load_u8(b + i, m)));
  }
}

}  // namespace

extern "C" void ptq_quantize_f32_u8_avx512vnni(const float* x, uint8_t* y, size_t begin, size_t end, float scale,
                                               int32_t zp) {
  const __m512 inv = _mm512_set1_ps(1.0f / scale);
  const __m512i lo = _mm512_set1_epi32(-zp), hi = _mm512_set1_epi32(255 - zp), z = _mm512_set1_epi32(zp);
  const __m512i z16 = _mm512_set1_epi16(static_cast<short>(zp));
  size_t i = begin;
  for (; i + 64 <= end; i += 64) {
    __m512i r[4];
#pragma GCC unroll 4
    for (size_t u = 0; u < 4; u++) r[u] = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + i + 16 * u), inv));
    _mm512_storeu_si512(y + i, to_u8_64(r[0], r[1], r[2], r[3], z16));
  }
  for (; i + 16 <= end; i += 16)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), to_u8(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + i), inv)), lo, hi, z));
  if (i < end) {
    const __mmask16 m = tail_mask(end - i);
    _mm_mask_storeu_epi8(y + i, m, to_u8(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv)), lo, hi, z));
  }
}

// pshufb masks that interleave three 16-byte planes (a, b, c) into 48 bytes a0 b0 c0 a1 ...:
// output vector k, source plane s: byte p takes plane byte (16k + p) / 3 when (16k + p) % 3 == s.
struct Interleave3Masks {
  alignas(16) int8_t m[3][3][16];
  Interleave3Masks() {
    for (int k = 0; k < 3; k++)
      for (int s = 0; s < 3; s++)
        for (int p = 0; p < 16; p++) {
          const int g = 16 * k + p;
          m[k][s][p] = g % 3 == s ? static_cast<int8_t>(g / 3) : static_cast<int8_t>(-128);
        }
  }
};
const Interleave3Masks kInterleave3;

namespace {

// kStream: non-temporal 16-byte stores (y 16-byte aligned), for a snapshot read much later by
// another thread: no read-for-ownership of cold destination lines (64 snapshots queued at once
// took 40 instead of 23 us each).
template <bool kStream>
void quantize_nchw3(const float* x, uint8_t* y, size_t hw, size_t plane, float scale, int32_t zp) {
  // Quantizes 3 channel planes of hw floats (NCHW, one image) into NHWC bytes: each plane as the
  // per-element kernel does, then one pshufb interleave per 16 pixels.
  const __m512 inv = _mm512_set1_ps(1.0f / scale);
  const __m512i lo = _mm512_set1_epi32(-zp), hi = _mm512_set1_epi32(255 - zp), z = _mm512_set1_epi32(zp);
  const float *x0 = x, *x1 = x + plane, *x2 = x + 2 * plane;
  __m128i mk[3][3];
  for (int k = 0; k < 3; k++)
    for (int s = 0; s < 3; s++) mk[k][s] = _mm_load_si128(reinterpret_cast<const __m128i*>(kInterleave3.m[k][s]));
  size_t i = 0;
  // 64 pixels at a time: each plane's 64 bytes with saturating packs (as quantize's main loop),
  // then each 64-byte output vector takes, per lane, the plane lane its 16 bytes come from (one
  // lane shuffle) and one in-lane pshufb per plane: 18 shuffle-port uops for 192 bytes instead of
  // 36 pshufb plus 12 byte narrowings. Output vector k, lane d is 16-byte chunk j = 4k + d of the
  // 192 bytes: plane lane j / 3, interleave pattern j % 3.
  {
    const __m512i z16 = _mm512_set1_epi16(static_cast<short>(zp));
    __m512i mk512[3][3];
    for (int k = 0; k < 3; k++)
      for (int s = 0; s < 3; s++)
        mk512[k][s] = _mm512_inserti32x4(
            _mm512_inserti32x4(_mm512_inserti32x4(_mm512_castsi128_si512(mk[(4 * k) % 3][s]), mk[(4 * k + 1) % 3][s], 1),
                               mk[(4 * k + 2) % 3][s], 2),
            mk[(4 * k + 3) % 3][s], 3);
    auto q64 = [&](const float* p) {
      return to_u8_64(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(p), inv)),
                      _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(p + 16), inv)),
                      _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(p + 32), inv)),
                      _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(p + 48), inv)), z16);
    };
    const bool stream64 = kStream && reinterpret_cast<uintptr_t>(y) % 64 == 0;
    for (; i + 64 <= hw; i += 64, y += 192) {
      const __m512i a = q64(x0 + i), b = q64(x1 + i), c = q64(x2 + i);
      // Plane lanes (j / 3) for the chunks j = 4k .. 4k + 3: k = 0: 0 0 0 1, k = 1: 1 1 2 2, k = 2: 2 3 3 3.
      const __m512i v0 = _mm512_ternarylogic_epi32(_mm512_shuffle_epi8(_mm512_shuffle_i32x4(a, a, 0x40), mk512[0][0]),
                                                   _mm512_shuffle_epi8(_mm512_shuffle_i32x4(b, b, 0x40), mk512[0][1]),
                                                   _mm512_shuffle_epi8(_mm512_shuffle_i32x4(c, c, 0x40), mk512[0][2]), 0xFE);
      const __m512i v1 = _mm512_ternarylogic_epi32(_mm512_shuffle_epi8(_mm512_shuffle_i32x4(a, a, 0xA5), mk512[1][0]),
                                                   _mm512_shuffle_epi8(_mm512_shuffle_i32x4(b, b, 0xA5), mk512[1][1]),
                                                   _mm512_shuffle_epi8(_mm512_shuffle_i32x4(c, c, 0xA5), mk512[1][2]), 0xFE);
      const __m512i v2 = _mm512_ternarylogic_epi32(_mm512_shuffle_epi8(_mm512_shuffle_i32x4(a, a, 0xFE), mk512[2][0]),
                                                   _mm512_shuffle_epi8(_mm512_shuffle_i32x4(b, b, 0xFE), mk512[2][1]),
                                                   _mm512_shuffle_epi8(_mm512_shuffle_i32x4(c, c, 0xFE), mk512[2][2]), 0xFE);
      if (stream64) {
        _mm512_stream_si512(reinterpret_cast<__m512i*>(y), v0);
        _mm512_stream_si512(reinterpret_cast<__m512i*>(y + 64), v1);
        _mm512_stream_si512(reinterpret_cast<__m512i*>(y + 128), v2);
      } else {
        _mm512_storeu_si512(y, v0);
        _mm512_storeu_si512(y + 64, v1);
        _mm512_storeu_si512(y + 128, v2);
      }
    }
  }
  for (; i + 16 <= hw; i += 16, y += 48) {
    const __m128i a = to_u8(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x0 + i), inv)), lo, hi, z);
    const __m128i b = to_u8(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x1 + i), inv)), lo, hi, z);
    const __m128i c = to_u8(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x2 + i), inv)), lo, hi, z);
#pragma GCC unroll 3
    for (int k = 0; k < 3; k++) {
      const __m128i v = _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(a, mk[k][0]), _mm_shuffle_epi8(b, mk[k][1])), _mm_shuffle_epi8(c, mk[k][2]));
      if (kStream) _mm_stream_si128(reinterpret_cast<__m128i*>(y + 16 * k), v);
      else _mm_storeu_si128(reinterpret_cast<__m128i*>(y + 16 * k), v);
    }
  }
  if (kStream) _mm_sfence();  // the snapshot is handed to another thread: order the streamed bytes first
  if (i < hw) {
    const __mmask16 m = tail_mask(hw - i);
    alignas(16) uint8_t t[3][16];
    _mm_store_si128(reinterpret_cast<__m128i*>(t[0]), to_u8(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x0 + i), inv)), lo, hi, z));
    _mm_store_si128(reinterpret_cast<__m128i*>(t[1]), to_u8(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x1 + i), inv)), lo, hi, z));
    _mm_store_si128(reinterpret_cast<__m128i*>(t[2]), to_u8(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x2 + i), inv)), lo, hi, z));
    for (size_t p = 0; p < hw - i; p++, y += 3) {
      y[0] = t[0][p];
      y[1] = t[1][p];
      y[2] = t[2][p];
    }
  }
}

}  // namespace

extern "C" void ptq_quantize_nchw3_f32_u8_avx512vnni(const float* x, uint8_t* y, size_t hw, size_t plane, float scale,
                                                     int32_t zp, int stream) {
  if (stream && reinterpret_cast<uintptr_t>(y) % 16 == 0) quantize_nchw3<true>(x, y, hw, plane, scale, zp);
  else quantize_nchw3<false>(x, y, hw, plane, scale, zp);
}

extern "C" void ptq_dequantize_u8_f32_avx512vnni(const uint8_t* x, float* y, size_t begin, size_t end, float scale,
                                                 int32_t zp) {
  const __m512 s = _mm512_set1_ps(scale);
  const __m512i z = _mm512_set1_epi32(zp);
  size_t i = begin;
  for (; i + 64 <= end; i += 64) {
#pragma GCC unroll 4
    for (size_t u = 0; u < 64; u += 16)
      _mm512_storeu_ps(y + i + u, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(load_u8(x + i + u), z)), s));
  }
  for (; i + 16 <= end; i += 16)
    _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(load_u8(x + i), z)), s));
  if (i < end) {
    const __mmask16 m = tail_mask(end - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(load_u8(x + i, m), z)), s));
  }
}

extern "C" void ptq_qadd_u8_avx512vnni(const uint8_t* a, const uint8_t* b, uint8_t* y, size_t begin, size_t end,
                                       const ptq_qadd_params* p) {
  AddConsts k;
  k.sa = _mm512_set1_ps(p->a_scale);
  k.sb = _mm512_set1_ps(p->b_scale);
  k.pa = _mm512_set1_ps(static_cast<float>(-p->a_zero_point) * p->a_scale);
  k.pb = _mm512_set1_ps(static_cast<float>(-p->b_zero_point) * p->b_scale);
  k.inv = _mm512_set1_ps(1.0f / p->out_scale);
  k.zero = _mm512_setzero_ps();
  k.za = _mm512_set1_epi32(p->a_zero_point);
  k.zb = _mm512_set1_epi32(p->b_zero_point);
  k.lo = _mm512_set1_epi32(-p->out_zero_point);
  k.hi = _mm512_set1_epi32(255 - p->out_zero_point);
  k.zp = _mm512_set1_epi32(p->out_zero_point);
  k.zp16 = _mm512_set1_epi16(static_cast<short>(p->out_zero_point));
  k.relu = p->relu != 0;
  // Below vec_end (a multiple of 64 of the whole tensor) PyTorch's vector path, above it the scalar.
  const size_t vec_end = p->total - p->total % 64;
  const size_t mid = vec_end < begin ? begin : (vec_end > end ? end : vec_end);
  if (begin < mid) add_range<true>(k, a, b, y, begin, mid);
  if (mid < end) add_range<false>(k, a, b, y, mid, end);
}
