// Registration of the quantized-op N-API functions (addon_qops.cc).
#ifndef PTQ_ADDON_QOPS_H_
#define PTQ_ADDON_QOPS_H_

#include <napi.h>

namespace ptq {
void RegisterQOps(Napi::Env env, Napi::Object exports);
// Threads of the eager (module-by-module) float ops: setNumThreads' value, capped at the pool.
size_t EagerThreads();
void SetEagerThreads(size_t threads);
}

#endif  // PTQ_ADDON_QOPS_H_
