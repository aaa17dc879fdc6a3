// The kernel table: one entry per ISA level. Which entry runs is decided by the caller (the TS
// layer picks the level once at load; packed weights remember the level they were packed for).
#include "dispatch.h"

#include <stdlib.h>

namespace ptq {

static const char* const kIsaNames[PTQ_ISA_COUNT] = {"scalar", "avx2", "avxvnni", "avx512vnni"};

const char* IsaName(ptq_isa isa) { return kIsaNames[isa]; }

bool ParseIsa(const std::string& name, ptq_isa* out) {
  for (int i = 0; i < PTQ_ISA_COUNT; i++)
    if (name == kIsaNames[i]) {
      *out = static_cast<ptq_isa>(i);
      return true;
    }
  return false;
}

uint32_t SupportedIsas() {
  static const uint32_t mask = ptq_cpu_supported_isas();
  return mask;
}

ptq_qgemm_fn QGemmKernel(ptq_isa isa) {
  switch (isa) {
#if defined(PTQ_X86)
    case PTQ_ISA_AVX2: return ptq_qgemm_u8s8_avx2;
    case PTQ_ISA_AVXVNNI: return ptq_qgemm_u8s8_avxvnni;
    case PTQ_ISA_AVX512VNNI: return ptq_qgemm_u8s8_avx512vnni;
#endif
    default: return ptq_qgemm_u8s8_scalar;
  }
}

ptq_qgemm_peak_fn QGemmPeakKernel(ptq_isa isa, uint32_t* macs_per_iter) {
  switch (isa) {
#if defined(PTQ_X86)
    case PTQ_ISA_AVX2: *macs_per_iter = PTQ_QGEMM_PEAK_AVX2_MACS; return ptq_qgemm_peak_avx2;
    case PTQ_ISA_AVXVNNI: *macs_per_iter = PTQ_QGEMM_PEAK_AVXVNNI_MACS; return ptq_qgemm_peak_avxvnni;
    case PTQ_ISA_AVX512VNNI: *macs_per_iter = PTQ_QGEMM_PEAK_AVX512VNNI_MACS; return ptq_qgemm_peak_avx512vnni;
#endif
    default: *macs_per_iter = 0; return nullptr;
  }
}

ptq_isa FloatKernelIsa(ptq_isa isa) {
#if defined(PTQ_X86)
  if (isa == PTQ_ISA_AVXVNNI) return PTQ_ISA_AVX2;
  if (isa == PTQ_ISA_AVX2 || isa == PTQ_ISA_AVX512VNNI) return isa;
#endif
  return PTQ_ISA_SCALAR;
}

ptq_sgemm_fn SGemmF32Kernel(ptq_isa isa) {
  switch (FloatKernelIsa(isa)) {
#if defined(PTQ_X86)
    case PTQ_ISA_AVX2: return ptq_sgemm_f32_avx2;
    case PTQ_ISA_AVX512VNNI: return ptq_sgemm_f32_avx512vnni;
#endif
    default: return ptq_sgemm_f32_scalar;
  }
}

ptq_dwconv_fn DwConvF32Kernel(ptq_isa isa) {
  switch (FloatKernelIsa(isa)) {
#if defined(PTQ_X86)
    case PTQ_ISA_AVX2: return ptq_dwconv_f32_avx2;
    case PTQ_ISA_AVX512VNNI: return ptq_dwconv_f32_avx512vnni;
#endif
    default: return ptq_dwconv_f32_scalar;
  }
}

// Integer SIMD kernels other than the GEMM: one AVX2 version (also avxvnni's) and one AVX-512.
static ptq_isa IntKernelIsa(ptq_isa isa) {
#if defined(PTQ_X86)
  if (isa == PTQ_ISA_AVX2 || isa == PTQ_ISA_AVXVNNI) return PTQ_ISA_AVX2;
  if (isa == PTQ_ISA_AVX512VNNI) return PTQ_ISA_AVX512VNNI;
#endif
  return PTQ_ISA_SCALAR;
}

ptq_qdwconv_fn QDwConvKernel(ptq_isa isa) {
  switch (IntKernelIsa(isa)) {
#if defined(PTQ_X86)
    case PTQ_ISA_AVX2: return ptq_qdwconv_u8s8_avx2;
    case PTQ_ISA_AVX512VNNI: return ptq_qdwconv_u8s8_avx512vnni;
#endif
    default: return ptq_qdwconv_u8s8_scalar;
  }
}

ptq_quantize_fn QuantizeKernel(ptq_isa isa) {
  switch (IntKernelIsa(isa)) {
#if defined(PTQ_X86)
    case PTQ_ISA_AVX2: return ptq_quantize_f32_u8_avx2;
    case PTQ_ISA_AVX512VNNI: return ptq_quantize_f32_u8_avx512vnni;
#endif
    default: return ptq_quantize_f32_u8_scalar;
  }
}

ptq_dequantize_fn DequantizeKernel(ptq_isa isa) {
  switch (IntKernelIsa(isa)) {
#if defined(PTQ_X86)
    case PTQ_ISA_AVX2: return ptq_dequantize_u8_f32_avx2;
    case PTQ_ISA_AVX512VNNI: return ptq_dequantize_u8_f32_avx512vnni;
#endif
    default: return ptq_dequantize_u8_f32_scalar;
  }
}

ptq_qadd_fn QAddKernel(ptq_isa isa) {
  switch (IntKernelIsa(isa)) {
#if defined(PTQ_X86)
    case PTQ_ISA_AVX2: return ptq_qadd_u8_avx2;
    case PTQ_ISA_AVX512VNNI: return ptq_qadd_u8_avx512vnni;
#endif
    default: return ptq_qadd_u8_scalar;
  }
}

static ptq_isa ComputeDefaultIsa() {
  const uint32_t mask = SupportedIsas();
  int cap = PTQ_ISA_COUNT - 1;
  const char* env = getenv("PTQ_ISA");
  ptq_isa requested;
  if (env && ParseIsa(env, &requested)) cap = requested;
  for (int i = cap; i > 0; i--)
    if (mask & (1u << i)) return static_cast<ptq_isa>(i);
  return PTQ_ISA_SCALAR;
}

ptq_isa DefaultIsa() {
  static const ptq_isa isa = ComputeDefaultIsa();
  return isa;
}

}  // namespace ptq
