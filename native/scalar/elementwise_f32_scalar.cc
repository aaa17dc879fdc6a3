// Float32 element-wise and pooling ops of the float model's forward pass (NHWC), portable C++
// the compiler vectorizes: add / add_relu / mul, the mean over H*W, max pooling and the NCHW ->
// NHWC input transpose. Bit-exact with the TS loops they replace (lib/kernels/reference/float.ts):
// each is one float32 operation per element, or a double sum in the same order.
#include "../qops.h"

extern "C" void ptq_binary_f32_scalar(const float* a, const float* b, float* y, size_t n, int32_t op) {
  if (op == PTQ_F32_ADD) {
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
  } else if (op == PTQ_F32_MUL) {
    for (size_t i = 0; i < n; i++) y[i] = a[i] * b[i];
  } else {
    // s > 0 ? s : 0, as the TS loop: NaN and -0 give +0.
    for (size_t i = 0; i < n; i++) {
      const float s = a[i] + b[i];
      y[i] = s > 0.0f ? s : 0.0f;
    }
  }
}

extern "C" void ptq_channel_affine_f32_scalar(const float* x, float* y, size_t c, const float* alpha, const float* beta,
                                              size_t p_begin, size_t p_end) {
  // Two roundings, as the TS loop: -ffp-contract=off (CMakeLists.txt) keeps the multiply and the
  // add apart.
  for (size_t p = p_begin; p < p_end; p++) {
    const float* xp = x + p * c;
    float* yp = y + p * c;
    for (size_t ch = 0; ch < c; ch++) yp[ch] = xp[ch] * alpha[ch] + beta[ch];
  }
}

extern "C" void ptq_relu_f32_scalar(const float* x, float* y, size_t n, float max) {
  for (size_t i = 0; i < n; i++) {
    const float v = x[i];
    y[i] = v > 0.0f ? (v > max ? max : v) : 0.0f;
  }
}

extern "C" void ptq_mean_hw_f32_scalar(const float* x, float* y, size_t n, size_t hw, size_t c) {
  // Per channel, a double sum over pixels in pixel order (the TS loop's Float64Array), 64
  // channels at a time so the accumulators stay in registers / L1.
  constexpr size_t kBlock = 64;
  double acc[kBlock];
  for (size_t b = 0; b < n; b++) {
    const float* img = x + b * hw * c;
    for (size_t c0 = 0; c0 < c; c0 += kBlock) {
      const size_t cb = c - c0 < kBlock ? c - c0 : kBlock;
      for (size_t j = 0; j < cb; j++) acc[j] = 0.0;
      for (size_t p = 0; p < hw; p++) {
        const float* row = img + p * c + c0;
        for (size_t j = 0; j < cb; j++) acc[j] += row[j];
      }
      for (size_t j = 0; j < cb; j++) y[b * c + c0 + j] = static_cast<float>(acc[j] / static_cast<double>(hw));
    }
  }
}

extern "C" void ptq_nchw_to_nhwc_f32_scalar(const float* x, float* y, size_t c, size_t hw, size_t p_begin, size_t p_end) {
  if (c == 3) {
    // RGB images: three planes interleaved pixel by pixel (GCC vectorizes the 3-way interleave).
    const float *r = x, *g = x + hw, *b = x + 2 * hw;
    for (size_t p = p_begin; p < p_end; p++) {
      y[3 * p] = r[p];
      y[3 * p + 1] = g[p];
      y[3 * p + 2] = b[p];
    }
    return;
  }
  // Blocks of 16 pixels x 16 channels: both sides touch whole cache lines.
  constexpr size_t kB = 16;
  for (size_t p0 = p_begin; p0 < p_end; p0 += kB) {
    const size_t pe = p0 + kB < p_end ? p0 + kB : p_end;
    for (size_t c0 = 0; c0 < c; c0 += kB) {
      const size_t ce = c0 + kB < c ? c0 + kB : c;
      for (size_t p = p0; p < pe; p++)
        for (size_t ch = c0; ch < ce; ch++) y[p * c + ch] = x[ch * hw + p];
    }
  }
}

extern "C" void ptq_maxpool2d_f32_scalar(const float* x, float* y, size_t n, size_t h, size_t w, size_t c, size_t k,
                                         size_t stride, size_t pad, size_t dilation, size_t oh, size_t ow,
                                         size_t oy_begin, size_t oy_end) {
  for (size_t b = 0; b < n; b++)
    for (size_t oy = oy_begin; oy < oy_end; oy++)
      for (size_t ox = 0; ox < ow; ox++) {
        float* out = y + ((b * oh + oy) * ow + ox) * c;
        for (size_t ch = 0; ch < c; ch++) out[ch] = -__builtin_inff();
        for (size_t ky = 0; ky < k; ky++) {
          const ptrdiff_t iy = static_cast<ptrdiff_t>(oy * stride + ky * dilation) - static_cast<ptrdiff_t>(pad);
          if (iy < 0 || iy >= static_cast<ptrdiff_t>(h)) continue;
          for (size_t kx = 0; kx < k; kx++) {
            const ptrdiff_t ix = static_cast<ptrdiff_t>(ox * stride + kx * dilation) - static_cast<ptrdiff_t>(pad);
            if (ix < 0 || ix >= static_cast<ptrdiff_t>(w)) continue;
            const float* in = x + ((b * h + static_cast<size_t>(iy)) * w + static_cast<size_t>(ix)) * c;
            // v > m ? v : m, as the TS loop: a NaN input never replaces the running max.
            for (size_t ch = 0; ch < c; ch++) out[ch] = in[ch] > out[ch] ? in[ch] : out[ch];
          }
        }
      }
}
