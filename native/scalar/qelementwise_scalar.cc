// Element-wise quantized ops, portable C++: quantize, dequantize, add/add_relu, mean over H*W,
// max pooling. Each is bit-exact with lib/kernels/reference/qops.ts (float32 steps, RNE).
#include <math.h>
#include <string.h>

#include "../qops.h"

namespace {

inline int32_t cvt_rne(float x) {
  if (!(x >= -2147483648.0f && x < 2147483648.0f)) return INT32_MIN;
  return static_cast<int32_t>(nearbyintf(x));
}

inline uint8_t clamp_u8(int64_t q) { return static_cast<uint8_t>(q < 0 ? 0 : (q > 255 ? 255 : q)); }

}  // namespace

extern "C" void ptq_quantize_f32_u8_scalar(const float* x, uint8_t* y, size_t begin, size_t end, float scale, int32_t zp) {
  const float inv = 1.0f / scale;
  for (size_t i = begin; i < end; i++) y[i] = clamp_u8(static_cast<int64_t>(zp) + cvt_rne(x[i] * inv));
}

extern "C" void ptq_dequantize_u8_f32_scalar(const uint8_t* x, float* y, size_t begin, size_t end, float scale, int32_t zp) {
  for (size_t i = begin; i < end; i++) y[i] = static_cast<float>(static_cast<int32_t>(x[i]) - zp) * scale;
}

extern "C" void ptq_qadd_u8_scalar(const uint8_t* a, const uint8_t* b, uint8_t* y, size_t begin, size_t end, const ptq_qadd_params* p) {
  // Elements below vec_end use PyTorch's vector dequantize fma(q, s, -zp*s); the tail its scalar
  // (q - zp) * s (see QADD_VECTOR_BLOCK in lib/kernels/reference/qops.ts). vec_end is relative to
  // the whole tensor: p->total.
  const float inv = 1.0f / p->out_scale;
  const float pa = static_cast<float>(-p->a_zero_point) * p->a_scale, pb = static_cast<float>(-p->b_zero_point) * p->b_scale;
  const size_t vec_end = p->total - p->total % 64;
  for (size_t i = begin; i < end; i++) {
    const float da = i < vec_end ? fmaf(static_cast<float>(a[i]), p->a_scale, pa)
                                 : static_cast<float>(static_cast<int32_t>(a[i]) - p->a_zero_point) * p->a_scale;
    const float db = i < vec_end ? fmaf(static_cast<float>(b[i]), p->b_scale, pb)
                                 : static_cast<float>(static_cast<int32_t>(b[i]) - p->b_zero_point) * p->b_scale;
    float c = da + db;
    if (p->relu && c < 0.0f) c = 0.0f;
    y[i] = clamp_u8(static_cast<int64_t>(p->out_zero_point) + cvt_rne(c * inv));
  }
}

// Channels are the inner loop (contiguous, vectorized) while each channel still sums its pixels in
// order, so the float sums are the reference's exactly.
extern "C" void ptq_qmean_hw_u8_scalar(const uint8_t* x, uint8_t* y, size_t n, size_t hw, size_t c, float scale, int32_t zp) {
  constexpr size_t kBlock = 256;
  const float inv = 1.0f / scale, count = static_cast<float>(hw);
  float acc[kBlock];
  for (size_t b = 0; b < n; b++)
    for (size_t c0 = 0; c0 < c; c0 += kBlock) {
      const size_t cb = c - c0 < kBlock ? c - c0 : kBlock;
      for (size_t j = 0; j < cb; j++) acc[j] = 0.0f;
      for (size_t p = 0; p < hw; p++) {
        const uint8_t* row = x + (b * hw + p) * c + c0;
        for (size_t j = 0; j < cb; j++) acc[j] = acc[j] + static_cast<float>(static_cast<int32_t>(row[j]) - zp) * scale;
      }
      for (size_t j = 0; j < cb; j++) y[b * c + c0 + j] = clamp_u8(static_cast<int64_t>(zp) + cvt_rne((acc[j] / count) * inv));
    }
}

namespace {
// 64 channels as four 16-byte vectors (GCC vector extensions: pmaxub at the baseline ISA), so a
// window's running max stays in registers instead of being stored and reloaded after every tap.
typedef uint8_t u8x16 __attribute__((vector_size(16), aligned(1)));

inline u8x16 max16(u8x16 a, u8x16 b) { return a > b ? a : b; }
}  // namespace

// Padding taps are skipped (PyTorch pads max pooling with -inf), so 0 is a neutral start for u8.
// The valid tap range of a window is computed once. ResNet-50's stem pool (112x112x64): 0.155 -> 0.038 ms.
extern "C" void ptq_qmaxpool2d_u8_scalar(const uint8_t* x, uint8_t* y, size_t h, size_t w, size_t c, size_t k,
                                         size_t stride, size_t pad, size_t oh, size_t ow, size_t row_begin,
                                         size_t row_end) {
  const size_t c64 = c & ~static_cast<size_t>(63);
  for (size_t row = row_begin; row < row_end; row++) {
    const size_t b = row / oh, oy = row % oh;
    const ptrdiff_t y0 = static_cast<ptrdiff_t>(oy * stride) - static_cast<ptrdiff_t>(pad);
    const size_t ky0 = y0 < 0 ? static_cast<size_t>(-y0) : 0;
    const size_t ky1 = static_cast<ptrdiff_t>(h) - y0 < static_cast<ptrdiff_t>(k) ? static_cast<size_t>(static_cast<ptrdiff_t>(h) - y0) : k;
    for (size_t ox = 0; ox < ow; ox++) {
      const ptrdiff_t x0 = static_cast<ptrdiff_t>(ox * stride) - static_cast<ptrdiff_t>(pad);
      const size_t kx0 = x0 < 0 ? static_cast<size_t>(-x0) : 0;
      const size_t kx1 = static_cast<ptrdiff_t>(w) - x0 < static_cast<ptrdiff_t>(k) ? static_cast<size_t>(static_cast<ptrdiff_t>(w) - x0) : k;
      uint8_t* out = y + ((b * oh + oy) * ow + ox) * c;
      // Tap (ky, kx) of channel ch is at base + (ky * w + kx) * c + ch.
      const uint8_t* base = x + ((b * h + static_cast<size_t>(y0 + static_cast<ptrdiff_t>(ky0))) * w +
                                 static_cast<size_t>(x0 + static_cast<ptrdiff_t>(kx0))) * c;
      const size_t ny = ky1 - ky0, nx = kx1 - kx0;
      for (size_t ch = 0; ch < c64; ch += 64) {
        u8x16 m0 = {}, m1 = {}, m2 = {}, m3 = {};
        for (size_t ky = 0; ky < ny; ky++)
          for (size_t kx = 0; kx < nx; kx++) {
            const uint8_t* t = base + (ky * w + kx) * c + ch;
            m0 = max16(m0, *reinterpret_cast<const u8x16*>(t));
            m1 = max16(m1, *reinterpret_cast<const u8x16*>(t + 16));
            m2 = max16(m2, *reinterpret_cast<const u8x16*>(t + 32));
            m3 = max16(m3, *reinterpret_cast<const u8x16*>(t + 48));
          }
        *reinterpret_cast<u8x16*>(out + ch) = m0;
        *reinterpret_cast<u8x16*>(out + ch + 16) = m1;
        *reinterpret_cast<u8x16*>(out + ch + 32) = m2;
        *reinterpret_cast<u8x16*>(out + ch + 48) = m3;
      }
      for (size_t ch = c64; ch < c; ch++) {
        uint8_t m = 0;
        for (size_t ky = 0; ky < ny; ky++)
          for (size_t kx = 0; kx < nx; kx++) {
            const uint8_t v = base[(ky * w + kx) * c + ch];
            m = v > m ? v : m;
          }
        out[ch] = m;
      }
    }
  }
}

// Pixels outer, channels inner (contiguous, vectorized): integer sums are exact in any order.
// ResNet-50's 7x7x2048 pool: 0.080 -> 0.017 ms.
extern "C" void ptq_qadaptive_avgpool_u8_scalar(const uint8_t* x, uint8_t* y, size_t n, size_t hw, size_t c, float multiplier,
                                                int32_t in_zp, int32_t out_zp) {
  constexpr size_t kBlock = 512;
  int32_t acc[kBlock];
  for (size_t b = 0; b < n; b++)
    for (size_t c0 = 0; c0 < c; c0 += kBlock) {
      const size_t cb = c - c0 < kBlock ? c - c0 : kBlock;
      for (size_t j = 0; j < cb; j++) acc[j] = -in_zp * static_cast<int32_t>(hw);
      for (size_t p = 0; p < hw; p++) {
        const uint8_t* row = x + (b * hw + p) * c + c0;
        for (size_t j = 0; j < cb; j++) acc[j] += row[j];
      }
      for (size_t j = 0; j < cb; j++) y[b * c + c0 + j] = clamp_u8(static_cast<int64_t>(out_zp) + cvt_rne(static_cast<float>(acc[j]) * multiplier));
    }
}
