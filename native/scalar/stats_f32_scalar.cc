// Calibration statistics, portable C++: the two hot loops of the observers (torch.aminmax and
// torch.histc's counting), bit-exact with lib/quantization/observer.ts's TS loops.
#include "../qops.h"

extern "C" void ptq_minmax_f32_scalar(const float* x, size_t n, float* out_min, float* out_max, int32_t* out_nan) {
  float mn = __builtin_inff(), mx = -__builtin_inff();
  bool nan = false;
  size_t i = 0;
  // Same pairwise order and strict comparisons as the TS scan, so +-0 ties resolve identically.
  for (; i + 1 < n; i += 2) {
    const float v = x[i], w = x[i + 1];
    const float lo = v < w ? v : w, hi = v < w ? w : v;
    if (!(lo <= hi)) nan = true;
    if (lo < mn) mn = lo;
    if (hi > mx) mx = hi;
  }
  if (i < n) {
    const float v = x[i];
    if (v != v) nan = true;
    if (v < mn) mn = v;
    if (v > mx) mx = v;
  }
  *out_min = mn;
  *out_max = mx;
  *out_nan = nan ? 1 : 0;
}

extern "C" void ptq_histc_counts_f32_scalar(const float* x, size_t n, float left, float right, float width,
                                            int32_t bins, int32_t* counts) {
  const float fb = static_cast<float>(bins);
  const int32_t last = bins - 1;
  for (size_t i = 0; i < n; i++) {
    const float v = x[i];
    if (v >= left && v <= right) {  // NaN fails both
      const float d = v - left;
      const float q = (d * fb) / width;
      int32_t p = static_cast<int32_t>(q);
      counts[p > last ? last : p]++;
    }
  }
}
