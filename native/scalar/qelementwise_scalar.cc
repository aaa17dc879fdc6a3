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
// o = max(o, a) over c bytes; restrict lets the compiler vectorize it (pmaxub) at baseline ISA.
inline void max_into(uint8_t* __restrict o, const uint8_t* __restrict a, size_t c) {
  for (size_t ch = 0; ch < c; ch++) o[ch] = a[ch] > o[ch] ? a[ch] : o[ch];
}
}  // namespace

// Padding taps are skipped (PyTorch pads max pooling with -inf), so 0 is a neutral start for u8.
extern "C" void ptq_qmaxpool2d_u8_scalar(const uint8_t* x, uint8_t* y, size_t h, size_t w, size_t c, size_t k,
                                         size_t stride, size_t pad, size_t oh, size_t ow, size_t row_begin,
                                         size_t row_end) {
  for (size_t row = row_begin; row < row_end; row++) {
    const size_t b = row / oh, oy = row % oh;
    for (size_t ox = 0; ox < ow; ox++) {
      uint8_t* out = y + ((b * oh + oy) * ow + ox) * c;
      memset(out, 0, c);
      for (size_t ky = 0; ky < k; ky++) {
        const ptrdiff_t iy = static_cast<ptrdiff_t>(oy * stride + ky) - static_cast<ptrdiff_t>(pad);
        if (iy < 0 || iy >= static_cast<ptrdiff_t>(h)) continue;
        for (size_t kx = 0; kx < k; kx++) {
          const ptrdiff_t ix = static_cast<ptrdiff_t>(ox * stride + kx) - static_cast<ptrdiff_t>(pad);
          if (ix < 0 || ix >= static_cast<ptrdiff_t>(w)) continue;
          max_into(out, x + ((b * h + iy) * w + ix) * c, c);
        }
      }
    }
  }
}

extern "C" void ptq_qadaptive_avgpool_u8_scalar(const uint8_t* x, uint8_t* y, size_t n, size_t hw, size_t c, float multiplier,
                                                int32_t in_zp, int32_t out_zp) {
  for (size_t b = 0; b < n; b++)
    for (size_t ch = 0; ch < c; ch++) {
      int32_t acc = -in_zp * static_cast<int32_t>(hw);
      for (size_t p = 0; p < hw; p++) acc += x[(b * hw + p) * c + ch];
      y[b * c + ch] = clamp_u8(static_cast<int64_t>(out_zp) + cvt_rne(static_cast<float>(acc) * multiplier));
    }
}
