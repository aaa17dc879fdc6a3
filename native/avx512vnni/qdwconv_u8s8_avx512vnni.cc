// Depthwise quantized conv (NHWC u8 x s8 [kh][kw][c]), AVX-512 VNNI, bit-exact with
// ptq_qdwconv_u8s8_scalar / qconv2dRef.
// - Channels in lanes, taps in the 4 bytes of a vpdpbusd lane: per block of 64 channels (zmm; the
//   last block of a row may be a 32-channel ymm or 16-channel xmm block, masked when ragged), the
//   bytes of 4 taps are interleaved with two rounds of in-lane unpacks (8 shuffles for 4 taps x 64
//   channels) and multiplied with weights interleaved the same way (zero for taps past kh*kw).
//   vpdpbusd adds the four u8*s8 products to int32 without saturation, so the int32 sums wrap
//   exactly as the reference's.
// - The unpacks leave accumulator j's lane (L, e) (128-bit lane L, dword e) with channel
//   16L + 4j + e; the epilogue constants are transposed to match once per call, and the
//   saturating packs of the epilogue (32 -> 16 -> 8 bits) put the channels back in order.
//   Clamping after the int32 -> int16 saturation is the same as clamping the int32 (the bounds
//   are within +-255).
// - Interior pixels (every tap inside the image) read fixed offsets from the pixel's first tap;
//   border pixels point their outside taps at a row of the input zero point.
// - Stride 1: the interior pixels of an output row are one flat stream of channels (pixel p,
//   channel ch at p*c + ch, in the input and the output alike, every tap at a fixed offset), so it
//   runs in full 64-byte blocks whatever c is: block j starts at channel (64*j) mod c, so weights
//   and constants are prepared for lcm(c, 64) "channels" (channel i = channel i mod c) and block j
//   uses phase j mod (lcm/64). A 32- or 144-channel layer then runs at full zmm width.
// Weights and constants for up to kMaxSuper channels are rearranged on the stack per call.
// Compiled with the avx512vnni level's flags only; internal linkage but for the extern "C" entry.
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../qops.h"

namespace {

constexpr size_t kMaxTaps = 256;        // more taps (kernels > 16x16) go to the scalar kernel
constexpr size_t kWeightBytes = 16384;  // rearranged weights of one superblock of channels
constexpr size_t kMaxSuper = 1024;      // channels per superblock

// Vector operations on NL 128-bit lanes: zmm (4), ymm (2), xmm (1). A block is 16 * NL channels.
template <int NL>
struct Vec;

template <>
struct Vec<4> {
  typedef __m512i I;
  typedef __m512 F;
  static I load(const void* p) { return _mm512_loadu_si512(p); }
  static I loadm(const void* p, uint64_t m) { return _mm512_maskz_loadu_epi8(static_cast<__mmask64>(m), p); }
  static I set8(int v) { return _mm512_set1_epi8(static_cast<char>(v)); }
  static I set16(int v) { return _mm512_set1_epi16(static_cast<short>(v)); }
  static I zero() { return _mm512_setzero_si512(); }
  static I lo8(I a, I b) { return _mm512_unpacklo_epi8(a, b); }
  static I hi8(I a, I b) { return _mm512_unpackhi_epi8(a, b); }
  static I lo16(I a, I b) { return _mm512_unpacklo_epi16(a, b); }
  static I hi16(I a, I b) { return _mm512_unpackhi_epi16(a, b); }
  static I dot(I acc, I a, I b) { return _mm512_dpbusd_epi32(acc, a, b); }
  static F cvt(I a) { return _mm512_cvtepi32_ps(a); }
  static F loadf(const float* p) { return _mm512_loadu_ps(p); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static I rne(F a) { return _mm512_cvtps_epi32(a); }
  static I packs32(I a, I b) { return _mm512_packs_epi32(a, b); }
  static I max16(I a, I b) { return _mm512_max_epi16(a, b); }
  static I min16(I a, I b) { return _mm512_min_epi16(a, b); }
  static I add16(I a, I b) { return _mm512_add_epi16(a, b); }
  static I packus16(I a, I b) { return _mm512_packus_epi16(a, b); }
  static void store(void* p, I v) { _mm512_storeu_si512(p, v); }
  static void storem(void* p, I v, uint64_t m) { _mm512_mask_storeu_epi8(p, static_cast<__mmask64>(m), v); }
};

template <>
struct Vec<2> {
  typedef __m256i I;
  typedef __m256 F;
  static I load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
  static I loadm(const void* p, uint64_t m) { return _mm256_maskz_loadu_epi8(static_cast<__mmask32>(m), p); }
  static I set8(int v) { return _mm256_set1_epi8(static_cast<char>(v)); }
  static I set16(int v) { return _mm256_set1_epi16(static_cast<short>(v)); }
  static I zero() { return _mm256_setzero_si256(); }
  static I lo8(I a, I b) { return _mm256_unpacklo_epi8(a, b); }
  static I hi8(I a, I b) { return _mm256_unpackhi_epi8(a, b); }
  static I lo16(I a, I b) { return _mm256_unpacklo_epi16(a, b); }
  static I hi16(I a, I b) { return _mm256_unpackhi_epi16(a, b); }
  static I dot(I acc, I a, I b) { return _mm256_dpbusd_epi32(acc, a, b); }
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
  static void storem(void* p, I v, uint64_t m) { _mm256_mask_storeu_epi8(p, static_cast<__mmask32>(m), v); }
};

template <>
struct Vec<1> {
  typedef __m128i I;
  typedef __m128 F;
  static I load(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
  static I loadm(const void* p, uint64_t m) { return _mm_maskz_loadu_epi8(static_cast<__mmask16>(m), p); }
  static I set8(int v) { return _mm_set1_epi8(static_cast<char>(v)); }
  static I set16(int v) { return _mm_set1_epi16(static_cast<short>(v)); }
  static I zero() { return _mm_setzero_si128(); }
  static I lo8(I a, I b) { return _mm_unpacklo_epi8(a, b); }
  static I hi8(I a, I b) { return _mm_unpackhi_epi8(a, b); }
  static I lo16(I a, I b) { return _mm_unpacklo_epi16(a, b); }
  static I hi16(I a, I b) { return _mm_unpackhi_epi16(a, b); }
  static I dot(I acc, I a, I b) { return _mm_dpbusd_epi32(acc, a, b); }
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
  static void storem(void* p, I v, uint64_t m) { _mm_mask_storeu_epi8(p, static_cast<__mmask16>(m), v); }
};

inline uint64_t byte_mask(size_t n) { return n >= 64 ? ~0ull : (1ull << n) - 1; }

// Interleaves the bytes of 4 vectors: q[j] lane (L, e) = bytes t0..t3 of channel 16L + 4j + e.
template <int NL>
inline void interleave4(typename Vec<NL>::I t0, typename Vec<NL>::I t1, typename Vec<NL>::I t2,
                        typename Vec<NL>::I t3, typename Vec<NL>::I* q) {
  typedef Vec<NL> V;
  const typename V::I a = V::lo8(t0, t1), b = V::hi8(t0, t1), c = V::lo8(t2, t3), d = V::hi8(t2, t3);
  q[0] = V::lo16(a, c);
  q[1] = V::hi16(a, c);
  q[2] = V::lo16(b, d);
  q[3] = V::hi16(b, d);
}

// Same with fewer than 4 vectors (the rest zero): 6 shuffles instead of 8 for one or two.
template <int NL>
inline void interleave_part(size_t n, typename Vec<NL>::I t0, typename Vec<NL>::I t1, typename Vec<NL>::I t2,
                            typename Vec<NL>::I* q) {
  typedef Vec<NL> V;
  const typename V::I z = V::zero();
  if (n == 3) {
    interleave4<NL>(t0, t1, t2, z, q);
    return;
  }
  const typename V::I a = n == 2 ? V::lo8(t0, t1) : V::lo8(t0, z), b = n == 2 ? V::hi8(t0, t1) : V::hi8(t0, z);
  q[0] = V::lo16(a, z);
  q[1] = V::hi16(a, z);
  q[2] = V::lo16(b, z);
  q[3] = V::hi16(b, z);
}

// Everything one call needs, rearranged for the current superblock of channels [cs, cs + sc).
struct Ctx {
  size_t taps, groups;
  size_t sc;                  // channels in the superblock
  const int8_t* wbuf;         // per block at cb: [groups][4][W] at wbuf + cb * 4 * groups
  const int32_t* ibuf;        // per block at cb: [4][W/4] at ibuf + cb (permuted channels)
  const float* bbuf;
  const float* mbuf;
  int32_t zp, lo, hi;         // lo, hi: out_min - zp, out_max - zp
};

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

// One pixel, one block of 16*NL channels at superblock offset cb. tap(t): tap t's first channel
// of the superblock (in the image or the zero-point row).
template <int NL, int KT, bool kMask, typename Taps>
inline void pixel(const Ctx& k, const Taps& tap, size_t cb, uint8_t* out, uint64_t mask) {
  typedef Vec<NL> V;
  typedef typename V::I I;
  constexpr size_t W = 16 * NL, Q = 4 * NL;
  const size_t taps = KT ? static_cast<size_t>(KT) : k.taps;
  const int8_t* wp = k.wbuf + cb * 4 * k.groups;
  const int32_t* ip = k.ibuf + cb;
  I acc0 = V::load(ip), acc1 = V::load(ip + Q), acc2 = V::load(ip + 2 * Q), acc3 = V::load(ip + 3 * Q);
  size_t t = 0;
#pragma GCC unroll 4
  for (; t + 4 <= taps; t += 4, wp += 4 * W) {
    I q[4];
    if (kMask)
      interleave4<NL>(V::loadm(tap(t) + cb, mask), V::loadm(tap(t + 1) + cb, mask), V::loadm(tap(t + 2) + cb, mask),
                      V::loadm(tap(t + 3) + cb, mask), q);
    else
      interleave4<NL>(V::load(tap(t) + cb), V::load(tap(t + 1) + cb), V::load(tap(t + 2) + cb), V::load(tap(t + 3) + cb), q);
    acc0 = V::dot(acc0, q[0], V::load(wp));
    acc1 = V::dot(acc1, q[1], V::load(wp + W));
    acc2 = V::dot(acc2, q[2], V::load(wp + 2 * W));
    acc3 = V::dot(acc3, q[3], V::load(wp + 3 * W));
  }
  const size_t rem = taps - t;
  if (rem) {
    I q[4];
    const I t0 = kMask ? V::loadm(tap(t) + cb, mask) : V::load(tap(t) + cb);
    const I t1 = rem < 2 ? V::zero() : kMask ? V::loadm(tap(t + 1) + cb, mask) : V::load(tap(t + 1) + cb);
    const I t2 = rem < 3 ? V::zero() : kMask ? V::loadm(tap(t + 2) + cb, mask) : V::load(tap(t + 2) + cb);
    interleave_part<NL>(rem, t0, t1, t2, q);
    acc0 = V::dot(acc0, q[0], V::load(wp));
    acc1 = V::dot(acc1, q[1], V::load(wp + W));
    acc2 = V::dot(acc2, q[2], V::load(wp + 2 * W));
    acc3 = V::dot(acc3, q[3], V::load(wp + 3 * W));
  }
  // f = (f32(acc) + bias) * multiplier, rne, then clamp and zero point on 16 bits.
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
  if (kMask)
    V::storem(out + cb, bytes, mask);
  else
    V::store(out + cb, bytes);
}

// All blocks of the superblock for one pixel.
template <int KT, typename Taps>
inline void pixel_blocks(const Ctx& k, const Taps& tp, uint8_t* out) {
  size_t cb = 0;
  for (; cb + 64 <= k.sc; cb += 64) pixel<4, KT, false>(k, tp, cb, out, 0);
  const size_t r = k.sc - cb;
  if (r == 0) return;
  if (r > 32)
    pixel<4, KT, true>(k, tp, cb, out, byte_mask(r));
  else if (r == 32)
    pixel<2, KT, false>(k, tp, cb, out, 0);
  else if (r > 16)
    pixel<2, KT, true>(k, tp, cb, out, byte_mask(r));
  else if (r == 16)
    pixel<1, KT, false>(k, tp, cb, out, 0);
  else
    pixel<1, KT, true>(k, tp, cb, out, byte_mask(r));
}

// Epilogue constants of a block of W = 16*NL channels in accumulator order: index j*4*NL + 4L + e
// holds channel 16L + 4j + e (zero past the valid n).
template <typename T>
inline void permute_consts(const T* src, size_t n, size_t nl, T* dst) {
  for (size_t j = 0; j < 4; j++)
    for (size_t l = 0; l < nl; l++)
      for (size_t e = 0; e < 4; e++) {
        const size_t ch = 16 * l + 4 * j + e;
        dst[j * 4 * nl + 4 * l + e] = ch < n ? src[ch] : T(0);
      }
}

// Weights of a block in interleaved order: [group][j][lane (L, e)][tap % 4], zero padded.
template <int NL>
inline void prepare_weights(const int8_t* w, size_t c, size_t ch0, size_t n, size_t taps, size_t groups, int8_t* dst) {
  typedef Vec<NL> V;
  constexpr size_t W = 16 * NL;
  const uint64_t mask = byte_mask(n);
  for (size_t g = 0; g < groups; g++) {
    typename V::I t[4];
    for (size_t i = 0; i < 4; i++) {
      const size_t tap = 4 * g + i;
      t[i] = tap < taps ? V::loadm(w + tap * c + ch0, mask) : V::zero();
    }
    typename V::I q[4];
    interleave4<NL>(t[0], t[1], t[2], t[3], q);
    for (size_t j = 0; j < 4; j++) V::store(dst + (4 * g + j) * W, q[j]);
  }
}

// The same for a full zmm block of 64 4-byte constants: a 4x4 transpose of 128-bit chunks
// (chunk j of source vector L -> chunk L of destination vector j).
inline void permute_consts64(const void* src, void* dst) {
  const int32_t* s = static_cast<const int32_t*>(src);
  int32_t* d = static_cast<int32_t*>(dst);
  const __m512i s0 = _mm512_loadu_si512(s), s1 = _mm512_loadu_si512(s + 16), s2 = _mm512_loadu_si512(s + 32),
                s3 = _mm512_loadu_si512(s + 48);
  const __m512i t0 = _mm512_shuffle_i32x4(s0, s1, 0x44), t1 = _mm512_shuffle_i32x4(s0, s1, 0xEE);
  const __m512i t2 = _mm512_shuffle_i32x4(s2, s3, 0x44), t3 = _mm512_shuffle_i32x4(s2, s3, 0xEE);
  _mm512_storeu_si512(d, _mm512_shuffle_i32x4(t0, t2, 0x88));
  _mm512_storeu_si512(d + 16, _mm512_shuffle_i32x4(t0, t2, 0xDD));
  _mm512_storeu_si512(d + 32, _mm512_shuffle_i32x4(t1, t3, 0x88));
  _mm512_storeu_si512(d + 48, _mm512_shuffle_i32x4(t1, t3, 0xDD));
}

template <int NL>
inline void prepare_block(const ptq_qdwconv_params* p, size_t cs, size_t cb, size_t n, size_t taps, size_t groups,
                          int8_t* wbuf, int32_t* ibuf, float* bbuf, float* mbuf) {
  prepare_weights<NL>(p->w, p->c, cs + cb, n, taps, groups, wbuf + cb * 4 * groups);
  if (NL == 4 && n == 64) {
    permute_consts64(p->acc_init + cs + cb, ibuf + cb);
    permute_consts64(p->bias + cs + cb, bbuf + cb);
    permute_consts64(p->multiplier + cs + cb, mbuf + cb);
    return;
  }
  permute_consts(p->acc_init + cs + cb, n, NL, ibuf + cb);
  permute_consts(p->bias + cs + cb, n, NL, bbuf + cb);
  permute_consts(p->multiplier + cs + cb, n, NL, mbuf + cb);
}

size_t gcd(size_t a, size_t b) {
  while (b) {
    const size_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

// Flat-stream buffers (one per thread: too large for the stack next to the per-pixel ones).
struct FlatBuffers {
  alignas(64) int8_t w[kWeightBytes];
  alignas(64) int32_t i[kMaxSuper];
  alignas(64) float b[kMaxSuper];
  alignas(64) float m[kMaxSuper];
  int8_t wrep[kWeightBytes];
  int32_t irep[kMaxSuper];
  float brep[kMaxSuper];
  float mrep[kMaxSuper];
};
thread_local FlatBuffers tls_flat;

template <int KT>
void run(const ptq_qdwconv_params* p, const uint8_t* x, size_t h, size_t w, uint8_t* y, size_t oh, size_t ow, size_t b,
         size_t oy_begin, size_t oy_end) {
  const size_t c = p->c, kh = p->kh, kw = p->kw, sh = p->stride_h, sw = p->stride_w, ph = p->pad_h, pw = p->pad_w;
  const size_t dh = p->dil_h, dw = p->dil_w;
  const size_t taps = kh * kw, groups = (taps + 3) / 4;
  size_t sup = kWeightBytes / (4 * groups) / 64 * 64;
  if (sup > kMaxSuper) sup = kMaxSuper;

  alignas(64) int8_t wbuf[kWeightBytes];
  alignas(64) int32_t ibuf[kMaxSuper];
  alignas(64) float bbuf[kMaxSuper];
  alignas(64) float mbuf[kMaxSuper];
  alignas(64) uint8_t pad[kMaxSuper];
  memset(pad, p->input_zero_point, p->c < sup ? (p->c + 63) / 64 * 64 : sup);
  ptrdiff_t off[kMaxTaps];
  const uint8_t* tp[kMaxTaps];
  for (size_t ky = 0; ky < kh; ky++)
    for (size_t kx = 0; kx < kw; kx++) off[ky * kw + kx] = static_cast<ptrdiff_t>((ky * dh * w + kx * dw) * c);

  // Output columns whose taps are all inside the image: [ox_lo, ox_hi).
  const size_t span_w = (kw - 1) * dw, span_h = (kh - 1) * dh;
  size_t ox_lo = (pw + sw - 1) / sw, ox_hi = w + pw >= span_w + 1 ? (w + pw - span_w - 1) / sw + 1 : 0;
  if (ox_hi > ow) ox_hi = ow;
  if (ox_lo > ox_hi) ox_lo = ox_hi;
  const uint8_t* image = x + b * h * w * c;

  Ctx k;
  k.taps = taps;
  k.groups = groups;
  k.wbuf = wbuf;
  k.ibuf = ibuf;
  k.bbuf = bbuf;
  k.mbuf = mbuf;
  k.zp = p->out_zero_point;
  k.lo = p->out_min - p->out_zero_point;
  k.hi = p->out_max - p->out_zero_point;

  for (size_t cs = 0; cs < c; cs += sup) {
    const size_t sc = c - cs < sup ? c - cs : sup;
    k.sc = sc;
    size_t cb = 0;
    for (; cb + 64 <= sc; cb += 64) prepare_block<4>(p, cs, cb, 64, taps, groups, wbuf, ibuf, bbuf, mbuf);
    const size_t r = sc - cb;
    if (r > 32)
      prepare_block<4>(p, cs, cb, r, taps, groups, wbuf, ibuf, bbuf, mbuf);
    else if (r > 16)
      prepare_block<2>(p, cs, cb, r, taps, groups, wbuf, ibuf, bbuf, mbuf);
    else if (r > 0)
      prepare_block<1>(p, cs, cb, r, taps, groups, wbuf, ibuf, bbuf, mbuf);

    // The flat stride-1 stream needs every channel in this superblock and lcm(c, 64) prepared
    // channels within the buffers.
    const size_t lcm = c / gcd(c, 64) * 64;
    // (With c a multiple of 64 the per-pixel blocks are full already: no stream needed.)
    const bool flat = sw == 1 && c % 64 != 0 && cs == 0 && sc == c && lcm <= sup && taps * lcm <= kWeightBytes;
    Ctx kf = k;
    size_t nphase = 0;
    if (flat) {
      FlatBuffers& fb = tls_flat;
      for (size_t i = 0; i < lcm; i += c) {  // lcm / c copies of every channel, no divisions
        for (size_t t = 0; t < taps; t++) memcpy(fb.wrep + t * lcm + i, p->w + t * c, c);
        memcpy(fb.irep + i, p->acc_init, c * sizeof(int32_t));
        memcpy(fb.brep + i, p->bias, c * sizeof(float));
        memcpy(fb.mrep + i, p->multiplier, c * sizeof(float));
      }
      ptq_qdwconv_params pf = *p;
      pf.c = lcm;
      pf.w = fb.wrep;
      pf.acc_init = fb.irep;
      pf.bias = fb.brep;
      pf.multiplier = fb.mrep;
      for (size_t cb = 0; cb < lcm; cb += 64) prepare_block<4>(&pf, 0, cb, 64, taps, groups, fb.w, fb.i, fb.b, fb.m);
      kf.sc = lcm;
      kf.wbuf = fb.w;
      kf.ibuf = fb.i;
      kf.bbuf = fb.b;
      kf.mbuf = fb.m;
      nphase = lcm / 64;
    }

    for (size_t oy = oy_begin; oy < oy_end; oy++) {
      const ptrdiff_t iy0 = static_cast<ptrdiff_t>(oy * sh) - static_cast<ptrdiff_t>(ph);
      const bool row_inside = iy0 >= 0 && static_cast<size_t>(iy0) + span_h < h;
      uint8_t* yrow = y + (b * oh + oy) * ow * c + cs;
      const size_t ia = row_inside ? ox_lo : ow, ib = row_inside ? ox_hi : ow;
      if (flat && ia < ib) {
        // Interior pixels [ia, ib) as one stream; block j reads and writes at j*64 and uses
        // phase j mod nphase (pixel() adds the phase offset cb to both pointers).
        const uint8_t* in0 = image + (static_cast<size_t>(iy0) * w + (ia - pw)) * c;
        uint8_t* o0 = yrow + ia * c;
        const size_t total = (ib - ia) * c, nfull = total / 64;
        size_t phase = 0;
        for (size_t j = 0; j < nfull; j++) {
          const size_t cb = phase * 64;
          pixel<4, KT, false>(kf, InteriorTaps{in0 + j * 64 - cb, off}, cb, o0 + j * 64 - cb, 0);
          if (++phase == nphase) phase = 0;
        }
        if (total % 64) {
          const size_t cb = phase * 64;
          pixel<4, KT, true>(kf, InteriorTaps{in0 + nfull * 64 - cb, off}, cb, o0 + nfull * 64 - cb, byte_mask(total % 64));
        }
      }
      for (size_t ox = 0; ox < ow; ox++) {
        const ptrdiff_t ix0 = static_cast<ptrdiff_t>(ox * sw) - static_cast<ptrdiff_t>(pw);
        if (ox >= ia && ox < ib) {
          if (flat) {
            ox = ib - 1;  // done as a stream above
            continue;
          }
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

extern "C" void ptq_qdwconv_u8s8_avx512vnni(const ptq_qdwconv_params* p, const uint8_t* x, size_t h, size_t w,
                                            uint8_t* y, size_t oh, size_t ow, size_t b, size_t oy_begin,
                                            size_t oy_end) {
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
