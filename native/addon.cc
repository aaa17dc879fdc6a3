// N-API binding: thin. Types, shapes and friendly messages are checked in TypeScript
// (lib/kernels/native.ts); this layer re-checks what memory safety depends on and throws
// TypeError/RangeError instead of ever touching memory out of bounds.
#include <napi.h>
#include <stdlib.h>
#include <string.h>

#include <memory>
#include <sstream>
#include <string>

#include "dispatch.h"
#include "kernels.h"

#ifndef PTQ_VERSION
#define PTQ_VERSION "0.0.0"
#endif

namespace {

template <typename... Args>
std::string Cat(Args&&... args) {
  std::ostringstream s;
  (s << ... << args);
  return s.str();
}

[[noreturn]] void ThrowType(Napi::Env env, const std::string& msg) {
  throw Napi::TypeError::New(env, msg);
}
[[noreturn]] void ThrowRange(Napi::Env env, const std::string& msg) {
  throw Napi::RangeError::New(env, msg);
}

size_t ArgSize(const Napi::CallbackInfo& info, size_t i, const char* name, size_t max = (1ull << 40)) {
  if (!info[i].IsNumber()) ThrowType(info.Env(), Cat(name, " must be a number"));
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 0 && v <= static_cast<double>(max)) || v != static_cast<double>(static_cast<size_t>(v)))
    ThrowRange(info.Env(), Cat(name, " must be an integer in [0, ", max, "], got ", v));
  return static_cast<size_t>(v);
}

int32_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* name, int32_t lo, int32_t hi) {
  if (!info[i].IsNumber()) ThrowType(info.Env(), Cat(name, " must be a number"));
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= lo && v <= hi) || v != static_cast<double>(static_cast<int32_t>(v)))
    ThrowRange(info.Env(), Cat(name, " must be an integer in [", lo, ", ", hi, "], got ", v));
  return static_cast<int32_t>(v);
}

template <typename T>
Napi::TypedArrayOf<T> ArgArray(const Napi::CallbackInfo& info, size_t i, const char* name,
                               napi_typedarray_type type, const char* type_name) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != type)
    ThrowType(info.Env(), Cat(name, " must be a ", type_name));
  return info[i].As<Napi::TypedArrayOf<T>>();
}

ptq_isa ArgIsa(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsString()) ThrowType(info.Env(), "isa must be a string");
  const std::string name = info[i].As<Napi::String>().Utf8Value();
  ptq_isa isa;
  if (!ptq::ParseIsa(name, &isa))
    ThrowRange(info.Env(), Cat("unknown isa '", name, "' (expected scalar, avx2, avxvnni or avx512vnni)"));
  if (!(ptq::SupportedIsas() & (1u << isa)))
    ThrowRange(info.Env(), Cat("isa '", name, "' is not supported by this CPU"));
  return isa;
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

// Packed weights and epilogue constants of one GEMM, owned by a JS object (External).
struct PackedQGemm {
  ptq_isa isa;
  ptq_qgemm_fn kernel;
  std::unique_ptr<uint8_t, AlignedFree> weights;
  std::unique_ptr<int32_t, AlignedFree> acc_init;
  std::unique_ptr<float, AlignedFree> bias, multiplier;
  ptq_qgemm_weights w;
  size_t bytes;
};

// qgemmPack(isa, k, n, weight Int8Array[n*k], accInit Int32Array[n], bias Float32Array[n],
//           multiplier Float32Array[n], outZeroPoint, outMin, outMax) -> External
Napi::Value QGemmPack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 10) ThrowType(env, "qgemmPack expects 10 arguments");
  const ptq_isa isa = ArgIsa(info, 0);
  const size_t k = ArgSize(info, 1, "k", 1u << 24), n = ArgSize(info, 2, "n", 1u << 24);
  if (k == 0 || n == 0) ThrowRange(env, "k and n must be positive");
  auto weight = ArgArray<int8_t>(info, 3, "weight", napi_int8_array, "Int8Array");
  auto acc_init = ArgArray<int32_t>(info, 4, "accInit", napi_int32_array, "Int32Array");
  auto bias = ArgArray<float>(info, 5, "bias", napi_float32_array, "Float32Array");
  auto mult = ArgArray<float>(info, 6, "multiplier", napi_float32_array, "Float32Array");
  const int32_t zp = ArgInt(info, 7, "outZeroPoint", 0, 255);
  const int32_t lo = ArgInt(info, 8, "outMin", 0, 255), hi = ArgInt(info, 9, "outMax", 0, 255);
  if (lo > hi) ThrowRange(env, Cat("outMin (", lo, ") must not exceed outMax (", hi, ")"));
  if (weight.ElementLength() != n * k)
    ThrowRange(env, Cat("weight must have n*k = ", n * k, " elements, got ", weight.ElementLength()));
  if (acc_init.ElementLength() != n || bias.ElementLength() != n || mult.ElementLength() != n)
    ThrowRange(env, Cat("accInit, bias and multiplier must have n = ", n, " elements"));

  auto p = std::make_unique<PackedQGemm>();
  const size_t np = (n + PTQ_GEMM_NR - 1) / PTQ_GEMM_NR * PTQ_GEMM_NR;
  const size_t packed_bytes = ptq_qgemm_packed_size(isa, k, n);
  p->isa = isa;
  p->kernel = ptq::QGemmKernel(isa);
  p->weights = AlignedArray<uint8_t>(packed_bytes);
  p->acc_init = AlignedArray<int32_t>(np);
  p->bias = AlignedArray<float>(np);
  p->multiplier = AlignedArray<float>(np);
  ptq_qgemm_pack(isa, k, n, weight.Data(), p->weights.get());
  memcpy(p->acc_init.get(), acc_init.Data(), n * sizeof(int32_t));
  memcpy(p->bias.get(), bias.Data(), n * sizeof(float));
  memcpy(p->multiplier.get(), mult.Data(), n * sizeof(float));
  p->w = ptq_qgemm_weights{k, n, p->weights.get(), p->acc_init.get(), p->bias.get(), p->multiplier.get(), zp, lo, hi};
  p->bytes = packed_bytes + np * 12;
  const size_t bytes = p->bytes;
  auto ext = Napi::External<PackedQGemm>::New(env, p.release(), [](Napi::Env e, PackedQGemm* q) {
    Napi::MemoryManagement::AdjustExternalMemory(e, -static_cast<int64_t>(q->bytes));
    delete q;
  });
  Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(bytes));
  return ext;
}

PackedQGemm* ArgPacked(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsExternal()) ThrowType(info.Env(), "packed must be the handle returned by qgemmPack");
  return info[i].As<Napi::External<PackedQGemm>>().Data();
}

// qgemm(packed, m, a Uint8Array, lda, c Uint8Array, ldc): C = requant(A * W^T), synchronous.
Napi::Value QGemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 6) ThrowType(env, "qgemm expects 6 arguments");
  PackedQGemm* p = ArgPacked(info, 0);
  const size_t m = ArgSize(info, 1, "m", 1u << 30);
  auto a = ArgArray<uint8_t>(info, 2, "a", napi_uint8_array, "Uint8Array");
  const size_t lda = ArgSize(info, 3, "lda", 1u << 30);
  auto c = ArgArray<uint8_t>(info, 4, "c", napi_uint8_array, "Uint8Array");
  const size_t ldc = ArgSize(info, 5, "ldc", 1u << 30);
  const size_t k = p->w.k, n = p->w.n;
  if (lda < k) ThrowRange(env, Cat("lda (", lda, ") must be >= k (", k, ")"));
  if (ldc < n) ThrowRange(env, Cat("ldc (", ldc, ") must be >= n (", n, ")"));
  if (m == 0) return env.Undefined();
  if (a.ElementLength() < (m - 1) * lda + k)
    ThrowRange(env, Cat("a is too short: ", a.ElementLength(), " < ", (m - 1) * lda + k));
  if (c.ElementLength() < (m - 1) * ldc + n)
    ThrowRange(env, Cat("c is too short: ", c.ElementLength(), " < ", (m - 1) * ldc + n));
  const ptq_qgemm_io io{a.Data(), lda, c.Data(), ldc};
  p->kernel(&p->w, &io, 0, m, 0, (n + PTQ_GEMM_NR - 1) / PTQ_GEMM_NR);
  return env.Undefined();
}

Napi::Value SupportedIsasJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  uint32_t j = 0;
  for (int i = 0; i < PTQ_ISA_COUNT; i++)
    if (ptq::SupportedIsas() & (1u << i)) out.Set(j++, ptq::IsaName(static_cast<ptq_isa>(i)));
  return out;
}

Napi::Value PackedInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  PackedQGemm* p = ArgPacked(info, 0);
  Napi::Object o = Napi::Object::New(env);
  o.Set("isa", ptq::IsaName(p->isa));
  o.Set("k", static_cast<double>(p->w.k));
  o.Set("n", static_cast<double>(p->w.n));
  o.Set("bytes", static_cast<double>(p->bytes));
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("version", Napi::String::New(env, PTQ_VERSION));
  exports.Set("supportedIsas", Napi::Function::New(env, SupportedIsasJs, "supportedIsas"));
  exports.Set("qgemmPack", Napi::Function::New(env, QGemmPack, "qgemmPack"));
  exports.Set("qgemmInfo", Napi::Function::New(env, PackedInfo, "qgemmInfo"));
  exports.Set("qgemm", Napi::Function::New(env, QGemm, "qgemm"));
  return exports;
}

}  // namespace

NODE_API_MODULE(ptq_node, Init)
