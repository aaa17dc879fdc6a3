// Baseline-only helpers around the kernel table (never included by ISA translation units).
#ifndef PTQ_DISPATCH_H_
#define PTQ_DISPATCH_H_

#include <string>

#include "kernels.h"

namespace ptq {

const char* IsaName(ptq_isa isa);
bool ParseIsa(const std::string& name, ptq_isa* out);
// Bit mask of ptq_isa levels this CPU and OS can run, probed once.
uint32_t SupportedIsas();
ptq_qgemm_fn QGemmKernel(ptq_isa isa);
// Float32 kernels. The avxvnni level runs the AVX2 float kernels (VNNI is integer-only).
ptq_sgemm_fn SGemmF32Kernel(ptq_isa isa);
ptq_dwconv_fn DwConvF32Kernel(ptq_isa isa);
// The level whose float kernels `isa` runs (avxvnni -> avx2).
ptq_isa FloatKernelIsa(ptq_isa isa);

}  // namespace ptq

#endif  // PTQ_DISPATCH_H_
