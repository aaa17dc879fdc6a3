// The kernel table: one entry per ISA level. Which entry runs is decided by the caller (the TS
// layer picks the level once at load; packed weights remember the level they were packed for).
#include "dispatch.h"

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

}  // namespace ptq
