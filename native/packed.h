// Packed weights owned by JS handles (Externals): the per-op functions and the whole-model plan
// both read them. Baseline code only.
#ifndef PTQ_PACKED_H_
#define PTQ_PACKED_H_

#include <memory>
#include <vector>

#include "kernels.h"
#include "napi_util.h"
#include "qops.h"

namespace ptq {

// Packed weights and epilogue constants of one GEMM (1x1 conv, linear).
struct PackedQGemm {
  ptq_isa isa;
  ptq_qgemm_fn kernel;
  std::unique_ptr<uint8_t, AlignedFree> weights;
  std::unique_ptr<int32_t, AlignedFree> acc_init;
  std::unique_ptr<float, AlignedFree> bias, multiplier;
  ptq_qgemm_weights w;
  size_t bytes;
};

// One group's GEMM of a conv: packed weights plus its slice of the epilogue constants.
struct GroupGemm {
  std::unique_ptr<uint8_t, AlignedFree> packed;
  std::unique_ptr<int32_t, AlignedFree> acc_init;
  std::unique_ptr<float, AlignedFree> bias, multiplier;
  ptq_qgemm_weights w;
};

struct PackedQConv {
  // Geometry and epilogue; the GEMM path keeps one packed GEMM per group, depthwise its own arrays.
  ptq_isa isa;
  bool depthwise;
  size_t cin, cout, kh, kw, sh, sw, ph, pw, dh, dw, groups;
  uint8_t zx;
  int32_t zp, lo, hi;
  std::vector<GroupGemm> gemms;  // groups entries (GEMM path)
  ptq_qgemm_fn kernel;
  // depthwise path
  std::vector<int8_t> dw_w;
  std::vector<int32_t> dw_acc;
  std::vector<float> dw_bias, dw_mult;
  size_t bytes = 0;
};


}  // namespace ptq

#endif  // PTQ_PACKED_H_
