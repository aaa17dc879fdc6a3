// Portable depthwise float32 conv, direct NHWC (baseline flags, no FMA contraction): each output
// sums its valid taps in (ky, kx) order, then adds the bias, like the TS reference.
#include <math.h>
#include <stddef.h>

#include "../kernels.h"

namespace {

constexpr size_t kChunk = 64;  // channels accumulated at once (a stack block the compiler vectorizes)

}  // namespace

extern "C" void ptq_dwconv_f32_scalar(const ptq_dwconv_weights* w, const ptq_dwconv_io* io,
                                      size_t row_begin, size_t row_end) {
  const size_t c = w->channels, cp = (c + PTQ_SGEMM_NR - 1) / PTQ_SGEMM_NR * PTQ_SGEMM_NR;
  const size_t kh = w->kernel_h, kw = w->kernel_w, h = io->h, wd = io->w, oh = io->oh, ow = io->ow;
  for (size_t r = row_begin; r < row_end; r++) {
    const size_t b = r / oh, oy = r % oh;
    const float* xb = io->x + b * h * wd * c;
    float* yr = io->y + r * ow * c;
    const ptrdiff_t iy0 = static_cast<ptrdiff_t>(oy * w->stride_h) - static_cast<ptrdiff_t>(w->pad_h);
    for (size_t ox = 0; ox < ow; ox++) {
      const ptrdiff_t ix0 = static_cast<ptrdiff_t>(ox * w->stride_w) - static_cast<ptrdiff_t>(w->pad_w);
      for (size_t c0 = 0; c0 < c; c0 += kChunk) {
        const size_t cn = c - c0 < kChunk ? c - c0 : kChunk;
        float acc[kChunk];
        for (size_t j = 0; j < kChunk; j++) acc[j] = w->bias && j < cn ? w->bias[c0 + j] : 0.0f;
        for (size_t ky = 0; ky < kh; ky++) {
          const ptrdiff_t iy = iy0 + static_cast<ptrdiff_t>(ky * w->dilation_h);
          if (iy < 0 || iy >= static_cast<ptrdiff_t>(h)) continue;
          for (size_t kx = 0; kx < kw; kx++) {
            const ptrdiff_t ix = ix0 + static_cast<ptrdiff_t>(kx * w->dilation_w);
            if (ix < 0 || ix >= static_cast<ptrdiff_t>(wd)) continue;
            const float* xp = xb + (static_cast<size_t>(iy) * wd + static_cast<size_t>(ix)) * c + c0;
            const float* wp = w->packed_w + (ky * kw + kx) * cp + c0;
            for (size_t j = 0; j < cn; j++) acc[j] = fmaf(xp[j], wp[j], acc[j]);
          }
        }
        float* yp = yr + ox * c + c0;
        for (size_t j = 0; j < cn; j++) {
          const float v = acc[j];
          yp[j] = io->relu && v < 0.0f ? 0.0f : v;
        }
      }
    }
  }
}
