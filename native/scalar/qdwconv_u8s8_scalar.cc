// Depthwise quantized conv, portable C++ (all ISAs for now), bit-exact with qconv2dRef.
#include <math.h>

#include "../qops.h"

namespace {

inline int32_t cvt_rne(float x) {
  if (!(x >= -2147483648.0f && x < 2147483648.0f)) return INT32_MIN;
  return static_cast<int32_t>(nearbyintf(x));
}

}  // namespace

extern "C" void ptq_qdwconv_u8s8_scalar(const ptq_qdwconv_params* p, const uint8_t* x, size_t h, size_t w,
                                        uint8_t* y, size_t oh, size_t ow, size_t b, size_t oy_begin,
                                        size_t oy_end) {
  const size_t c = p->c;
  const int32_t zx = p->input_zero_point, zp = p->out_zero_point, lo = p->out_min - zp, hi = p->out_max - zp;
  for (size_t oy = oy_begin; oy < oy_end; oy++)
    for (size_t ox = 0; ox < ow; ox++) {
      uint8_t* out = y + ((b * oh + oy) * ow + ox) * c;
      for (size_t ch = 0; ch < c; ch++) {
        uint32_t acc = static_cast<uint32_t>(p->acc_init[ch]);
        for (size_t ky = 0; ky < p->kh; ky++) {
          const ptrdiff_t iy = static_cast<ptrdiff_t>(oy * p->stride_h + ky * p->dil_h) - static_cast<ptrdiff_t>(p->pad_h);
          for (size_t kx = 0; kx < p->kw; kx++) {
            const ptrdiff_t ix = static_cast<ptrdiff_t>(ox * p->stride_w + kx * p->dil_w) - static_cast<ptrdiff_t>(p->pad_w);
            const bool inside = iy >= 0 && iy < static_cast<ptrdiff_t>(h) && ix >= 0 && ix < static_cast<ptrdiff_t>(w);
            const int32_t xv = inside ? x[((b * h + iy) * w + ix) * c + ch] : zx;
            acc += static_cast<uint32_t>(xv * static_cast<int32_t>(p->w[(ky * p->kw + kx) * c + ch]));
          }
        }
        float f = static_cast<float>(static_cast<int32_t>(acc));
        f = f + p->bias[ch];
        f = f * p->multiplier[ch];
        int32_t r = cvt_rne(f);
        r = r < lo ? lo : (r > hi ? hi : r);
        out[ch] = static_cast<uint8_t>(r + zp);
      }
    }
}
