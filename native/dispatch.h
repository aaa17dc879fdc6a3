// Baseline-only helpers around the kernel table (never included by ISA translation units).
#ifndef PTQ_DISPATCH_H_
#define PTQ_DISPATCH_H_

#include <string>

#include "kernels.h"
#include "qops.h"

namespace ptq {

const char* IsaName(ptq_isa isa);
bool ParseIsa(const std::string& name, ptq_isa* out);
// Bit mask of ptq_isa levels this CPU and OS can run, probed once.
uint32_t SupportedIsas();
ptq_qgemm_fn QGemmKernel(ptq_isa isa);
// The GEMM peak probe of a level and its MACs per iteration; null for scalar (no SIMD dot product).
ptq_qgemm_peak_fn QGemmPeakKernel(ptq_isa isa, uint32_t* macs_per_iter);
// Float32 kernels. The avxvnni level runs the AVX2 float kernels (VNNI is integer-only).
ptq_sgemm_fn SGemmF32Kernel(ptq_isa isa);
ptq_dwconv_fn DwConvF32Kernel(ptq_isa isa);
// The level whose float kernels `isa` runs (avxvnni -> avx2).
ptq_isa FloatKernelIsa(ptq_isa isa);

// Quantized depthwise conv and element-wise kernels; avxvnni runs the AVX2 versions.
ptq_qdwconv_fn QDwConvKernel(ptq_isa isa);
ptq_quantize_fn QuantizeKernel(ptq_isa isa);
ptq_dequantize_fn DequantizeKernel(ptq_isa isa);
ptq_qadd_fn QAddKernel(ptq_isa isa);
// The level for kernels called without one (the element-wise N-API functions): PTQ_ISA when it
// names a level (read once; capped to the best supported level not above it), else the best
// level this CPU supports. Never a level the CPU lacks.
ptq_isa DefaultIsa();

}  // namespace ptq

#endif  // PTQ_DISPATCH_H_
