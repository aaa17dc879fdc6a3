// Registration of the whole-model plan N-API functions (plan.cc).
#ifndef PTQ_ADDON_PLAN_H_
#define PTQ_ADDON_PLAN_H_

#include <napi.h>

namespace ptq {
void RegisterPlan(Napi::Env env, Napi::Object exports);
}

#endif  // PTQ_ADDON_PLAN_H_
