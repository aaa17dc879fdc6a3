// Registration of the quantized-op N-API functions (addon_qops.cc).
#ifndef PTQ_ADDON_QOPS_H_
#define PTQ_ADDON_QOPS_H_

#include <napi.h>

namespace ptq {
void RegisterQOps(Napi::Env env, Napi::Object exports);
}

#endif  // PTQ_ADDON_QOPS_H_
