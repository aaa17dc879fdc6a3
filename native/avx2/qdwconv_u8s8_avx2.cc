// Depthwise quantized conv (NHWC u8 x s8 [kh][kw][c]), AVX2, bit-exact with
// ptq_qdwconv_u8s8_scalar / qconv2dRef. Also the avxvnni level's kernel.
// - Channels in lanes, taps in pairs: per block of 32 channels (ymm; a last block of 16 or fewer
//   runs on xmm), the bytes of 2 taps are interleaved and zero-extended to int16 pairs with two
//   rounds of in-lane unpacks (6 shuffles for 2 taps x 32 channels), then vpmaddwd with the weights
//   interleaved the same way (int16, zero for a missing second tap) adds x0*w0 + x1*w1 exactly
//   (|sum| < 2^16) into the int32 accumulators, which wrap as the reference's.
// - Accumulator j's lane (L, e) holds channel 16L + 4j + e; the epilogue constants are transposed
//   to match once per call, and the saturating packs (32 -> 16 -> 8 bits) restore channel order.
//   Clamping after the int16 saturation equals clamping the int32 (bounds within +-255).
// - Interior pixels read fixed offsets from the pixel's first tap; border pixels point outside
//   taps at a row of the input zero point. A ragged last block reads whole vectors when that stays
//   inside the image (the extra lanes have zero weights and are not stored), else a copy.
// Compiled with -mavx2 -mfma only; internal linkage but for the extern "C" entry.
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../qops.h"

namespace {

constexpr size_t kMaxTaps = 256;        // more taps (kernels > 16x16) go to the scalar kernel
constexpr size_t kWeightBytes = 16384;  // rearranged weights of one superblock of channels
constexpr size_t kMaxSuper = 1024;      // channels per superblock

template <int NL>
struct Vec;

template <>
struct Vec<2> {
  typedef __m256i I;
  typedef __m256 F;
  static I load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
  static I set16(int v) { return _mm256_set1_epi16(static_cast<short>(v)); }
  static I zero() { return _mm256_setzero_si256(); }
  static I lo8(I a, I b) { return _mm256_unpacklo_epi8(a, b); }
  static I hi8(I a, I b) { return _mm256_unpackhi_epi8(a, b); }
  static I lo16(I a, I b) { return _mm256_unpacklo_epi16(a, b); }
  static I hi16(I a, I b) { return _mm256_unpackhi_epi16(a, b); }
  static I madd(I a, I b) { return _mm256_madd_epi16(a, b); }
  static I add32(I a, I b) { return _mm256_add_epi32(a, b); }
  static I sext8(const int8_t* p) { return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static F cvt(I a) { return _mm256_cvtepi32_ps(a); }
  static F loadf(const float* p) { return _mm256_loadu_ps(p); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static I rne(F a) { return _mm256_cvtps_epi32(a); }
  static I packs32(I a, I b) { return _mm256_packs_epi32(a, b); }
  static I max16(I a, I b) { return _mm256_max_epi16(a, b); }
  static I min16(I a, I b) { return _mm256_min_epi16(a, b); }
  static I add16(I a, I b) { return _mm256_add_epi16(a, b); }
  static I packus16(I a, I b) { return _mm256_packus_epi16(a, b); }
  static void store(void* p, I v) { _mm256_storeu_si256(static_cast<__m256i*>(p), v); }
};

template <>
struct Vec<1> {
  typedef __m128i I;
  typedef __m128 F;
  static I load(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
  static I set16(int v) { return _mm_set1_epi16(static_cast<short>(v)); }
  static I zero() { return _mm_setzero_si128(); }
  static I lo8(I a, I b) { return _mm_unpacklo_epi8(a, b); }
  static I hi8(I a, I b) { return _mm_unpackhi_epi8(a, b); }
  static I lo16(I a, I b) { return _mm_unpacklo_epi16(a, b); }
  static I hi16(I a, I b) { return _mm_unpackhi_epi16(a, b); }
  static I madd(I a, I b) { return _mm_madd_epi16(a, b); }
  static I add32(I a, I b) { return _mm_add_epi32(a, b); }
  static F cvt(I a) { return _mm_cvtepi32_ps(a); }
  static F loadf(const float* p) { return _mm_loadu_ps(p); }
  static F add(F a, F b) { return _mm_add_ps(a, b); }
  static F mul(F a, F b) { return _mm_mul_ps(a, b); }
  static I rne(F a) { return _mm_cvtps_epi32(a); }
  static I packs32(I a, I b) { return _mm_packs_epi32(a, b); }
  static I max16(I a, I b) { return _mm_max_epi16(a, b); }
  static I min16(I a, I b) { return _mm_min_epi16(a, b); }
  static I add16(I a, I b) { return _mm_add_epi16(a, b); }
  static I packus16(I a, I b) { return _mm_packus_epi16(a, b); }
  static void store(void* p, I v) { _mm_storeu_si128(static_cast<__m128i*>(p), v); }
};

struct Ctx {
  size_t taps, pairs;
  size_t sc;                  // channels in the superblock
  const int16_t* wbuf;        // per block at cb: [pairs][4][W/4][2] at wbuf + cb * 2 * pairs
  const int32_t* ibuf;        // per block at cb: [4][W/4] at ibuf + cb (permuted channels)
  const float* bbuf;
  const float* mbuf;
  uintptr_t limit;            // end of the image: whole-vector reads below it are safe
  int32_t zp, lo, hi;         // lo, hi: out_min - zp, out_max - zp
};

// A block's input vector of tap pointer p: n valid bytes (n < W only for the ragged last block).
template <int NL, bool kPart>
inline typename Vec<NL>::I load_x(const Ctx& k, const uint8_t* p, size_t n) {
  if (!kPart || reinterpret_cast<uintptr_t>(p) + 16 * NL <= k.limit) return Vec<NL>::load(p);
  alignas(32) uint8_t tmp[32] = {0};
  memcpy(tmp, p, n);
  return Vec<NL>::load(tmp);
}

// Two taps of W channels -> 4 vectors of int16 pairs (x0, x1), q[j] lane (L, e) = channel 16L+4j+e.
template <int NL>
inline void interleave2(typename Vec<NL>::I t0, typename Vec<NL>::I t1, typename Vec<NL>::I* q) {
  typedef Vec<NL> V;
  const typename V::I z = V::zero(), a = V::lo8(t0, t1), b = V::hi8(t0, t1);
  q[0] = V::lo8(a, z);
  q[1] = V::hi8(a, z);
  q[2] = V::lo8(b, z);
  q[3] = V::hi8(b, z);
}

// Where a pixel's taps are: interior pixels at fixed offsets from the first tap (nothing stored
// per pixel), border pixels through a pointer per tap (the zero-point row for outside taps).
struct InteriorTaps {
  const uint8_t* base;
  const ptrdiff_t* off;
  const uint8_t* operator()(size_t t) const { return base + off[t]; }
};
struct BorderTaps {
  const uint8_t* const* tp;
  const uint8_t* operator()(size_t t) const { return tp[t]; }
};

// One pixel, one block of 16*NL channels at superblock offset cb.
template <int NL, int KT, bool kPart, typename Taps>
inline void pixel(const Ctx& k, const Taps& tap, size_t cb, uint8_t* out, size_t n) {
  typedef Vec<NL> V;
  typedef typename V::I I;
  constexpr size_t W = 16 * NL, Q = 4 * NL;
  const size_t taps = KT ? static_cast<size_t>(KT) : k.taps;
  const int16_t* wp = k.wbuf + cb * 2 * k.pairs;
  const int32_t* ip = k.ibuf + cb;
  I acc0 = V::load(ip), acc1 = V::load(ip + Q), acc2 = V::load(ip + 2 * Q), acc3 = V::load(ip + 3 * Q);
#pragma GCC unroll 8
  for (size_t t = 0; t < taps; t += 2, wp += 2 * W) {
    const I t0 = load_x<NL, kPart>(k, tap(t) + cb, n);
    const I t1 = t + 1 < taps ? load_x<NL, kPart>(k, tap(t + 1) + cb, n) : V::zero();
    I q[4];
    interleave2<NL>(t0, t1, q);
    acc0 = V::add32(acc0, V::madd(q[0], V::load(wp)));
    acc1 = V::add32(acc1, V::madd(q[1], V::load(wp + W / 2)));
    acc2 = V::add32(acc2, V::madd(q[2], V::load(wp + W)));
    acc3 = V::add32(acc3, V::madd(q[3], V::load(wp + 3 * W / 2)));
  }
  const float* bp = k.bbuf + cb;
  const float* mp = k.mbuf + cb;
  const I r0 = V::rne(V::mul(V::add(V::cvt(acc0), V::loadf(bp)), V::loadf(mp)));
  const I r1 = V::rne(V::mul(V::add(V::cvt(acc1), V::loadf(bp + Q)), V::loadf(mp + Q)));
  const I r2 = V::rne(V::mul(V::add(V::cvt(acc2), V::loadf(bp + 2 * Q)), V::loadf(mp + 2 * Q)));
  const I r3 = V::rne(V::mul(V::add(V::cvt(acc3), V::loadf(bp + 3 * Q)), V::loadf(mp + 3 * Q)));
  const I lo = V::set16(k.lo), hi = V::set16(k.hi), zp = V::set16(k.zp);
  const I p01 = V::add16(V::min16(V::max16(V::packs32(r0, r1), lo), hi), zp);
  const I p23 = V::add16(V::min16(V::max16(V::packs32(r2, r3), lo), hi), zp);
  const I bytes = V::packus16(p01, p23);
  if (kPart) {
    alignas(32) uint8_t tmp[32];
    V::store(tmp, bytes);
    memcpy(out + cb, tmp, n);
  } else {
    V::store(out + cb, bytes);
  }
}

template <int KT, typename Taps>
inline void pixel_blocks(const Ctx& k, const Taps& tp, uint8_t* out) {
  size_t cb = 0;
  for (; cb + 32 <= k.sc; cb += 32) pixel<2, KT, false>(k, tp, cb, out, 32);
  const size_t r = k.sc - cb;
  if (r == 0) return;
  if (r > 16)
    pixel<2, KT, true>(k, tp, cb, out, r);
  else if (r == 16)
    pixel<1, KT, false>(k, tp, cb, out, 16);
  else
    pixel<1, KT, true>(k, tp, cb, out, r);
}

// Epilogue constants of a block of 16*nl channels in accumulator order (zero past n).
template <typename T>
inline void permute_consts(const T* src, size_t n, size_t nl, T* dst) {
  for (size_t j = 0; j < 4; j++)
    for (size_t l = 0; l < nl; l++)
      for (size_t e = 0; e < 4; e++) {
        const size_t ch = 16 * l + 4 * j + e;
        dst[j * 4 * nl + 4 * l + e] = ch < n ? src[ch] : T(0);
      }
}

// Weights of a block as int16 pairs in accumulator order: [pair][j][lane (L, e)][tap % 2].
inline void prepare_weights(const int8_t* w, size_t c, size_t ch0, size_t n, size_t nl, size_t taps, size_t pairs,
                            int16_t* dst) {
  const size_t W = 16 * nl;
  if (n == W && nl == 2) {
    // Full ymm blocks: sign-extend and interleave with the input's unpack order.
    for (size_t pr = 0; pr < pairs; pr++) {
      const size_t t0 = 2 * pr, t1 = 2 * pr + 1;
      // Channels 0..15 and 16..31 of each tap as int16 (natural order).
      const __m256i a0 = Vec<2>::sext8(w + t0 * c + ch0), a1 = Vec<2>::sext8(w + t0 * c + ch0 + 16);
      const __m256i z = _mm256_setzero_si256();
      const __m256i b0 = t1 < taps ? Vec<2>::sext8(w + t1 * c + ch0) : z;
      const __m256i b1 = t1 < taps ? Vec<2>::sext8(w + t1 * c + ch0 + 16) : z;
      // Pairs (w0, w1) per channel, natural order: ch 0-3 | 8-11 and 4-7 | 12-15 of each half.
      const __m256i l0 = _mm256_unpacklo_epi16(a0, b0), h0 = _mm256_unpackhi_epi16(a0, b0);
      const __m256i l1 = _mm256_unpacklo_epi16(a1, b1), h1 = _mm256_unpackhi_epi16(a1, b1);
      // l0: [ch 0-3 | ch 8-11], h0: [4-7 | 12-15], l1: [16-19 | 24-27], h1: [20-23 | 28-31].
      // j-th vector: lanes (L=0: ch 4j..4j+3, L=1: ch 16+4j..).
      int16_t* d = dst + pr * 2 * W;  // [4][W/4][2] int16 per pair
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + 0 * W / 2), _mm256_permute2x128_si256(l0, l1, 0x20));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + 1 * W / 2), _mm256_permute2x128_si256(h0, h1, 0x20));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + 2 * W / 2), _mm256_permute2x128_si256(l0, l1, 0x31));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + 3 * W / 2), _mm256_permute2x128_si256(h0, h1, 0x31));
    }
    return;
  }
  for (size_t pr = 0; pr < pairs; pr++)
    for (size_t j = 0; j < 4; j++)
      for (size_t l = 0; l < nl; l++)
        for (size_t e = 0; e < 4; e++)
          for (size_t i = 0; i < 2; i++) {
            const size_t ch = 16 * l + 4 * j + e, tap = 2 * pr + i;
            dst[((pr * 4 + j) * 4 * nl + 4 * l + e) * 2 + i] =
                ch < n && tap < taps ? static_cast<int16_t>(w[tap * c + ch0 + ch]) : static_cast<int16_t>(0);
          }
}

// The same for a full ymm block of 32 4-byte constants: vector j = chunk j of each 16-channel half.
inline void permute_consts32(const void* src, void* dst) {
  const __m256i* s = static_cast<const __m256i*>(src);
  __m256i* d = static_cast<__m256i*>(dst);
  const __m256i a = _mm256_loadu_si256(s), b = _mm256_loadu_si256(s + 1), c = _mm256_loadu_si256(s + 2),
                e = _mm256_loadu_si256(s + 3);
  _mm256_storeu_si256(d, _mm256_permute2x128_si256(a, c, 0x20));
  _mm256_storeu_si256(d + 1, _mm256_permute2x128_si256(a, c, 0x31));
  _mm256_storeu_si256(d + 2, _mm256_permute2x128_si256(b, e, 0x20));
  _mm256_storeu_si256(d + 3, _mm256_permute2x128_si256(b, e, 0x31));
}

inline void prepare_block(const ptq_qdwconv_params* p, size_t cs, size_t cb, size_t n, size_t nl, size_t taps,
                          size_t pairs, int16_t* wbuf, int32_t* ibuf, float* bbuf, float* mbuf) {
  prepare_weights(p->w, p->c, cs + cb, n, nl, taps, pairs, wbuf + cb * 2 * pairs);
  if (nl == 2 && n == 32) {
    permute_consts32(p->acc_init + cs + cb, ibuf + cb);
    permute_consts32(p->bias + cs + cb, bbuf + cb);
    permute_consts32(p->multiplier + cs + cb, mbuf + cb);
    return;
  }
  permute_consts(p->acc_init + cs + cb, n, nl, ibuf + cb);
  permute_consts(p->bias + cs + cb, n, nl, bbuf + cb);
  permute_consts(p->multiplier + cs + cb, n, nl, mbuf + cb);
}

template <int KT>
void run(const ptq_qdwconv_params* p, const uint8_t* x, size_t h, size_t w, uint8_t* y, size_t oh, size_t ow, size_t b,
         size_t oy_begin, size_t oy_end) {
  const size_t c = p->c, kh = p->kh, kw = p->kw, sh = p->stride_h, sw = p->stride_w, ph = p->pad_h, pw = p->pad_w;
  const size_t dh = p->dil_h, dw = p->dil_w;
  const size_t taps = kh * kw, pairs = (taps + 1) / 2;
  // Bytes of rearranged weights per channel: 4 per pair.
  size_t sup = kWeightBytes / (4 * pairs) / 32 * 32;
  if (sup > kMaxSuper) sup = kMaxSuper;

  alignas(64) int16_t wbuf[kWeightBytes / 2];
  alignas(64) int32_t ibuf[kMaxSuper];
  alignas(64) float bbuf[kMaxSuper];
  alignas(64) float mbuf[kMaxSuper];
  alignas(64) uint8_t pad[kMaxSuper];
  memset(pad, p->input_zero_point, p->c < sup ? (p->c + 31) / 32 * 32 : sup);
  ptrdiff_t off[kMaxTaps];
  const uint8_t* tp[kMaxTaps];
  for (size_t ky = 0; ky < kh; ky++)
    for (size_t kx = 0; kx < kw; kx++) off[ky * kw + kx] = static_cast<ptrdiff_t>((ky * dh * w + kx * dw) * c);

  const size_t span_w = (kw - 1) * dw, span_h = (kh - 1) * dh;
  size_t ox_lo = (pw + sw - 1) / sw, ox_hi = w + pw >= span_w + 1 ? (w + pw - span_w - 1) / sw + 1 : 0;
  if (ox_hi > ow) ox_hi = ow;
  if (ox_lo > ox_hi) ox_lo = ox_hi;
  const uint8_t* image = x + b * h * w * c;

  Ctx k;
  k.taps = taps;
  k.pairs = pairs;
  k.wbuf = wbuf;
  k.ibuf = ibuf;
  k.bbuf = bbuf;
  k.mbuf = mbuf;
  k.limit = reinterpret_cast<uintptr_t>(image + h * w * c);
  k.zp = p->out_zero_point;
  k.lo = p->out_min - p->out_zero_point;
  k.hi = p->out_max - p->out_zero_point;

  for (size_t cs = 0; cs < c; cs += sup) {
    const size_t sc = c - cs < sup ? c - cs : sup;
    k.sc = sc;
    size_t cb = 0;
    for (; cb + 32 <= sc; cb += 32) prepare_block(p, cs, cb, 32, 2, taps, pairs, wbuf, ibuf, bbuf, mbuf);
    const size_t r = sc - cb;
    if (r > 16)
      prepare_block(p, cs, cb, r, 2, taps, pairs, wbuf, ibuf, bbuf, mbuf);
    else if (r > 0)
      prepare_block(p, cs, cb, r, 1, taps, pairs, wbuf, ibuf, bbuf, mbuf);

    for (size_t oy = oy_begin; oy < oy_end; oy++) {
      const ptrdiff_t iy0 = static_cast<ptrdiff_t>(oy * sh) - static_cast<ptrdiff_t>(ph);
      const bool row_inside = iy0 >= 0 && static_cast<size_t>(iy0) + span_h < h;
      uint8_t* yrow = y + (b * oh + oy) * ow * c + cs;
      const size_t ia = row_inside ? ox_lo : ow, ib = row_inside ? ox_hi : ow;
      for (size_t ox = 0; ox < ow; ox++) {
        const ptrdiff_t ix0 = static_cast<ptrdiff_t>(ox * sw) - static_cast<ptrdiff_t>(pw);
        if (ox >= ia && ox < ib) {
          const InteriorTaps it{image + (static_cast<size_t>(iy0) * w + static_cast<size_t>(ix0)) * c + cs, off};
          pixel_blocks<KT>(k, it, yrow + ox * c);
        } else {
          for (size_t ky = 0; ky < kh; ky++) {
            const ptrdiff_t iy = iy0 + static_cast<ptrdiff_t>(ky * dh);
            const bool row_ok = iy >= 0 && iy < static_cast<ptrdiff_t>(h);
            for (size_t kx = 0; kx < kw; kx++) {
              const ptrdiff_t ix = ix0 + static_cast<ptrdiff_t>(kx * dw);
              const bool ok = row_ok && ix >= 0 && ix < static_cast<ptrdiff_t>(w);
              tp[ky * kw + kx] = ok ? image + (static_cast<size_t>(iy) * w + static_cast<size_t>(ix)) * c + cs : pad;
            }
          }
          const BorderTaps bt{tp};
          pixel_blocks<KT>(k, bt, yrow + ox * c);
        }
      }
    }
  }
}

}  // namespace

extern "C" void ptq_qdwconv_u8s8_avx2(const ptq_qdwconv_params* p, const uint8_t* x, size_t h, size_t w, uint8_t* y,
                                      size_t oh, size_t ow, size_t b, size_t oy_begin, size_t oy_end) {
  const size_t taps = p->kh * p->kw;
  if (taps > kMaxTaps || p->c == 0) {
    if (p->c) ptq_qdwconv_u8s8_scalar(p, x, h, w, y, oh, ow, b, oy_begin, oy_end);
    return;
  }
  if (taps == 9)
    run<9>(p, x, h, w, y, oh, ow, b, oy_begin, oy_end);
  else
    run<0>(p, x, h, w, y, oh, ow, b, oy_begin, oy_end);
}
