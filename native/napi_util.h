// Argument readers for the N-API layer (baseline translation units only). They throw
// TypeError/RangeError naming the argument; nothing unchecked reaches a kernel.
#ifndef PTQ_NAPI_UTIL_H_
#define PTQ_NAPI_UTIL_H_

#include <napi.h>
#include <stdlib.h>
#include <string.h>

#include <memory>
#include <sstream>
#include <string>

#include "dispatch.h"

namespace ptq {

template <typename... Args>
std::string Cat(Args&&... args) {
  std::ostringstream s;
  (s << ... << args);
  return s.str();
}

[[noreturn]] inline void ThrowType(Napi::Env env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }
[[noreturn]] inline void ThrowRange(Napi::Env env, const std::string& msg) { throw Napi::RangeError::New(env, msg); }

inline size_t ArgSize(const Napi::CallbackInfo& info, size_t i, const char* name, size_t max = (1ull << 40)) {
  if (!info[i].IsNumber()) ThrowType(info.Env(), Cat(name, " must be a number"));
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 0 && v <= static_cast<double>(max)) || v != static_cast<double>(static_cast<size_t>(v)))
    ThrowRange(info.Env(), Cat(name, " must be an integer in [0, ", max, "], got ", v));
  return static_cast<size_t>(v);
}

inline int32_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* name, int32_t lo, int32_t hi) {
  if (!info[i].IsNumber()) ThrowType(info.Env(), Cat(name, " must be a number"));
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= lo && v <= hi) || v != static_cast<double>(static_cast<int32_t>(v)))
    ThrowRange(info.Env(), Cat(name, " must be an integer in [", lo, ", ", hi, "], got ", v));
  return static_cast<int32_t>(v);
}

inline float ArgScale(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber()) ThrowType(info.Env(), Cat(name, " must be a number"));
  const float v = static_cast<float>(info[i].As<Napi::Number>().DoubleValue());
  if (!(v > 0.0f) || !(v < 3.4e38f)) ThrowRange(info.Env(), Cat(name, " must be a positive finite float32"));
  return v;
}

template <typename T>
Napi::TypedArrayOf<T> ArgArray(const Napi::CallbackInfo& info, size_t i, const char* name,
                               napi_typedarray_type type, const char* type_name) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != type)
    ThrowType(info.Env(), Cat(name, " must be a ", type_name));
  // A view of a detached (transferred) buffer reads as empty; say so instead of computing on nothing.
  napi_value buffer;
  bool detached = false;
  if (napi_get_typedarray_info(info.Env(), info[i], nullptr, nullptr, nullptr, &buffer, nullptr) != napi_ok ||
      napi_is_detached_arraybuffer(info.Env(), buffer, &detached) != napi_ok)
    throw Napi::Error::New(info.Env());
  if (detached) ThrowType(info.Env(), Cat(name, " is a view of a detached ArrayBuffer"));
  return info[i].As<Napi::TypedArrayOf<T>>();
}

inline ptq_isa ArgIsa(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsString()) ThrowType(info.Env(), "isa must be a string");
  const std::string name = info[i].As<Napi::String>().Utf8Value();
  ptq_isa isa;
  if (!ParseIsa(name, &isa))
    ThrowRange(info.Env(), Cat("unknown isa '", name, "' (expected scalar, avx2, avxvnni or avx512vnni)"));
  if (!(SupportedIsas() & (1u << isa))) ThrowRange(info.Env(), Cat("isa '", name, "' is not supported by this CPU"));
  return isa;
}

// Native handles are Externals tagged with their kind (napi_type_tag), so a handle of one kind (or
// any other External a caller got hold of) can never be reinterpreted as another.
inline const napi_type_tag kQGemmTag = {0x7074712d7167656dull, 0x6d5061636b656401ull};
inline const napi_type_tag kQConvTag = {0x7074712d71636f6eull, 0x765061636b656402ull};
inline const napi_type_tag kPlanTag = {0x7074712d706c616eull, 0x48616e646c650003ull};

inline void TagHandle(Napi::Env env, Napi::Value v, const napi_type_tag* tag) {
  if (napi_type_tag_object(env, v, tag) != napi_ok) throw Napi::Error::New(env);
}

// The native pointer of an External carrying `tag`, else a TypeError `msg`.
template <typename T>
T* HandleOf(Napi::Env env, Napi::Value v, const napi_type_tag* tag, const std::string& msg) {
  bool ok = false;
  if (v.IsExternal() && napi_check_object_type_tag(env, v, tag, &ok) != napi_ok) throw Napi::Error::New(env);
  if (!ok) ThrowType(env, msg);
  return v.As<Napi::External<T>>().Data();
}

// Byte ranges [a, a+na) and [b, b+nb) share a byte (empty ranges never do).
inline bool Overlaps(const void* a, size_t na, const void* b, size_t nb) {
  const uint8_t *pa = static_cast<const uint8_t*>(a), *pb = static_cast<const uint8_t*>(b);
  return na && nb && pa < pb + nb && pb < pa + na;
}

template <typename A, typename B>
void CheckDisjoint(Napi::Env env, const Napi::TypedArrayOf<A>& a, const char* an, const Napi::TypedArrayOf<B>& b, const char* bn) {
  if (Overlaps(a.Data(), a.ByteLength(), b.Data(), b.ByteLength())) ThrowRange(env, Cat(bn, " must not overlap ", an));
}

// `count` (a product computed in double: exact below 2^53, and any larger product can never equal
// a real length, so size_t wrap-around cannot make a huge shape look small) equals the length.
inline void CheckLength(Napi::Env env, size_t length, double count, const char* what) {
  if (static_cast<double>(length) != count) ThrowRange(env, Cat(what, " must have ", count, " elements, got ", length));
}

struct AlignedFree {
  void operator()(void* p) const { free(p); }
};

template <typename T>
std::unique_ptr<T, AlignedFree> AlignedArray(size_t count) {
  const size_t bytes = ((count * sizeof(T) + 63) / 64) * 64;
  void* p = aligned_alloc(64, bytes ? bytes : 64);
  if (!p) throw std::bad_alloc();
  memset(p, 0, bytes ? bytes : 64);
  return std::unique_ptr<T, AlignedFree>(static_cast<T*>(p));
}

}  // namespace ptq

#endif  // PTQ_NAPI_UTIL_H_
