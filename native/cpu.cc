// CPU feature detection from cpuid and xgetbv (baseline code: no ISA flags in this file).
// An ISA counts only when both the CPU reports it and the OS saves its registers (XCR0), as MLAS does.
#include "kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t read_xcr0(void) {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

extern "C" uint32_t ptq_cpu_supported_isas(void) {
  uint32_t mask = 1u << PTQ_ISA_SCALAR;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return mask;
  const bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
  if (!osxsave || !avx) return mask;
  const uint64_t xcr0 = read_xcr0();
  const bool os_ymm = (xcr0 & 0x6) == 0x6;             // XMM + YMM state
  const bool os_zmm = os_ymm && (xcr0 & 0xE0) == 0xE0;  // opmask + ZMM_Hi256 + Hi16_ZMM
  if (__get_cpuid_max(0, nullptr) < 7) return mask;
  unsigned a7, b7, c7, d7;
  __cpuid_count(7, 0, a7, b7, c7, d7);
  unsigned a71, b71, c71, d71;
  __cpuid_count(7, 1, a71, b71, c71, d71);
  const bool avx2 = (b7 >> 5) & 1;
  const bool avx512f = (b7 >> 16) & 1, avx512bw = (b7 >> 30) & 1, avx512vl = (b7 >> 31) & 1;
  const bool avx512vnni = (c7 >> 11) & 1;
  const bool avxvnni = (a71 >> 4) & 1;
  if (os_ymm && avx2 && fma) {
    mask |= 1u << PTQ_ISA_AVX2;
    if (avxvnni) mask |= 1u << PTQ_ISA_AVXVNNI;
    if (os_zmm && avx512f && avx512bw && avx512vl && avx512vnni) mask |= 1u << PTQ_ISA_AVX512VNNI;
  }
  return mask;
}
#else
extern "C" uint32_t ptq_cpu_supported_isas(void) { return 1u << PTQ_ISA_SCALAR; }
#endif
