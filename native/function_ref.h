// A non-owning reference to a callable, for callbacks that only run during the call that receives
// them (parallel regions, per-tile hooks): unlike std::function it never copies the callable, so
// a lambda capturing many locals by reference costs no heap allocation on the hot path.
#ifndef PTQ_FUNCTION_REF_H_
#define PTQ_FUNCTION_REF_H_

#include <type_traits>
#include <utility>

namespace ptq {

template <class Sig>
class FunctionRef;

template <class R, class... Args>
class FunctionRef<R(Args...)> {
 public:
  // The callable must outlive every call through this reference.
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FunctionRef>>>
  FunctionRef(const F& f)  // NOLINT: implicit, as std::function's
      : obj_(&f), call_([](const void* o, Args... a) -> R { return (*static_cast<const F*>(o))(std::forward<Args>(a)...); }) {}
  R operator()(Args... a) const { return call_(obj_, std::forward<Args>(a)...); }

 private:
  const void* obj_;
  R (*call_)(const void*, Args...);
};

}  // namespace ptq

#endif  // PTQ_FUNCTION_REF_H_
