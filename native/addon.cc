// N-API binding: thin. Types, shapes and friendly messages are checked in TypeScript
// (lib/kernels/native.ts); this layer re-checks what memory safety depends on and throws
// TypeError/RangeError instead of ever touching memory out of bounds.
#include <napi.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <sstream>
#include <string>

#include "addon_plan.h"
#include "addon_qops.h"
#include "napi_util.h"
#include "packed.h"
#include "threadpool.h"
#include "dispatch.h"
#include "kernels.h"

#ifndef PTQ_VERSION
#define PTQ_VERSION "0.0.0"
#endif

namespace {

// Argument readers, AlignedArray and the packed structs come from napi_util.h / packed.h.
using namespace ptq;  // NOLINT: the helpers are this file's vocabulary


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
  TagHandle(env, ext, &kQGemmTag);
  Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(bytes));
  return ext;
}

PackedQGemm* ArgPacked(const Napi::CallbackInfo& info, size_t i) {
  return HandleOf<PackedQGemm>(info.Env(), info[i], &kQGemmTag, "packed must be the handle returned by qgemmPack");
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
  CheckDisjoint(env, a, "a", c, "c");
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
  if (info.Length() != 1) ThrowType(env, "qgemmInfo expects 1 argument");
  PackedQGemm* p = ArgPacked(info, 0);
  Napi::Object o = Napi::Object::New(env);
  o.Set("isa", ptq::IsaName(p->isa));
  o.Set("k", static_cast<double>(p->w.k));
  o.Set("n", static_cast<double>(p->w.n));
  o.Set("bytes", static_cast<double>(p->bytes));
  return o;
}

// ---- float32 conv / linear ----
//
// Handles are plain JS objects wrapping the native struct (napi_wrap) and carrying a type tag per
// kind, so a float handle can never be mistaken for a qgemm External (or the other float kind).

const napi_type_tag kF32ConvTag = {0x7074712d66333263ull, 0x6f6e76c0ffee0001ull};
const napi_type_tag kF32LinearTag = {0x7074712d6633326cull, 0x696e6561c0ffee02ull};

enum class F32Method { kDirect, kIm2col, kDepthwise, kLinear };

const char* F32MethodName(F32Method m) {
  switch (m) {
    case F32Method::kDirect: return "direct";
    case F32Method::kIm2col: return "im2col";
    case F32Method::kDepthwise: return "depthwise";
    default: return "linear";
  }
}

// Packed weights of one float conv or linear layer. Immutable after packing: calls share nothing
// but the per-thread im2col scratch below, so a handle may be used from any number of threads.
struct PackedF32 {
  F32Method method;
  ptq_isa isa;
  std::unique_ptr<float, AlignedFree> weights, bias;
  ptq_conv2d_geometry g;
  ptq_conv2d_f32_plan plan;       // direct, im2col
  ptq_dwconv_weights dw;          // depthwise
  ptq_dwconv_fn dw_kernel;
  ptq_sgemm_weights linear;       // linear
  ptq_sgemm_fn gemm;
  size_t bytes;
};

// The im2col block of the calling thread, grown to the largest need seen and kept.
struct Scratch {
  float* data = nullptr;
  size_t floats = 0;
  ~Scratch() { free(data); }
  // nullptr when out of memory.
  float* Get(size_t need) {
    if (need > floats) {
      free(data);
      data = nullptr;
      floats = 0;
      const size_t bytes = (need * sizeof(float) + 63) / 64 * 64;
      data = static_cast<float*>(aligned_alloc(64, bytes));
      if (!data) return nullptr;
      floats = need;
    }
    return data;
  }
};
thread_local Scratch tls_scratch;

void Check(Napi::Env env, napi_status s) {
  if (s != napi_ok) throw Napi::Error::New(env);
}

Napi::Object WrapF32(Napi::Env env, std::unique_ptr<PackedF32> p, const napi_type_tag* tag) {
  Napi::Object obj = Napi::Object::New(env);
  const int64_t bytes = static_cast<int64_t>(p->bytes);
  Check(env, napi_wrap(env, obj, p.get(),
                       [](napi_env e, void* data, void*) {
                         PackedF32* q = static_cast<PackedF32*>(data);
                         int64_t ignored;
                         napi_adjust_external_memory(e, -static_cast<int64_t>(q->bytes), &ignored);
                         delete q;
                       },
                       nullptr, nullptr));
  p.release();
  Check(env, napi_type_tag_object(env, obj, tag));
  Napi::MemoryManagement::AdjustExternalMemory(env, bytes);
  return obj;
}

PackedF32* UnwrapF32(const Napi::CallbackInfo& info, size_t i, const napi_type_tag* tag, const char* what) {
  Napi::Env env = info.Env();
  bool ok = false;
  if (info[i].IsObject()) Check(env, napi_check_object_type_tag(env, info[i], tag, &ok));
  if (!ok) ThrowType(env, Cat("packed must be the handle returned by ", what));
  void* data = nullptr;
  Check(env, napi_unwrap(env, info[i], &data));
  return static_cast<PackedF32*>(data);
}

PackedF32* UnwrapAnyF32(const Napi::CallbackInfo& info, size_t i) {
  Napi::Env env = info.Env();
  bool conv = false, linear = false;
  if (info[i].IsObject()) {
    Check(env, napi_check_object_type_tag(env, info[i], &kF32ConvTag, &conv));
    Check(env, napi_check_object_type_tag(env, info[i], &kF32LinearTag, &linear));
  }
  if (!conv && !linear) ThrowType(env, "packed must be a handle returned by f32ConvPack or f32LinearPack");
  void* data = nullptr;
  Check(env, napi_unwrap(env, info[i], &data));
  return static_cast<PackedF32*>(data);
}

size_t GeomField(Napi::Env env, Napi::Object o, const char* name, size_t lo, size_t hi) {
  Napi::Value v = o.Get(name);
  if (!v.IsNumber()) ThrowType(env, Cat("geometry.", name, " must be a number"));
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || d != static_cast<double>(static_cast<size_t>(d)))
    ThrowRange(env, Cat("geometry.", name, " must be an integer in [", lo, ", ", hi, "], got ", d));
  return static_cast<size_t>(d);
}

// Float32Array or null (no bias) of exactly n elements.
const float* ArgBias(const Napi::CallbackInfo& info, size_t i, size_t n) {
  if (info[i].IsNull()) return nullptr;
  auto b = ArgArray<float>(info, i, "bias", napi_float32_array, "Float32Array or null");
  if (b.ElementLength() != n) ThrowRange(info.Env(), Cat("bias must have ", n, " elements, got ", b.ElementLength()));
  return b.Data();
}

bool ArgBool(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsBoolean()) ThrowType(info.Env(), Cat(name, " must be a boolean"));
  return info[i].As<Napi::Boolean>().Value();
}

// Float32Array of exactly `count` elements (count computed in double: exact below 2^53, and any
// larger product can never equal a real length).
float* ArgF32Exact(const Napi::CallbackInfo& info, size_t i, const char* name, double count) {
  auto a = ArgArray<float>(info, i, name, napi_float32_array, "Float32Array");
  if (static_cast<double>(a.ElementLength()) != count)
    ThrowRange(info.Env(), Cat(name, " must have ", count, " elements, got ", a.ElementLength()));
  return a.Data();
}

void CheckNoOverlap(Napi::Env env, const float* x, size_t nx, const float* y, size_t ny) {
  if (nx && ny && x < y + ny && y < x + nx) ThrowRange(env, "y must not overlap x");
}

size_t RoundUp16(size_t v) { return (v + 15) / 16 * 16; }

// f32ConvPack(isa, geometry, weight Float32Array (OIHW), bias Float32Array | null) -> handle
Napi::Value F32ConvPack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 4) ThrowType(env, "f32ConvPack expects 4 arguments");
  const ptq_isa isa = ArgIsa(info, 0);
  if (!info[1].IsObject()) ThrowType(env, "geometry must be an object");
  Napi::Object go = info[1].As<Napi::Object>();
  ptq_conv2d_geometry g;
  g.in_channels = GeomField(env, go, "inChannels", 1, 1u << 24);
  g.out_channels = GeomField(env, go, "outChannels", 1, 1u << 24);
  g.kernel_h = GeomField(env, go, "kernelH", 1, 1u << 16);
  g.kernel_w = GeomField(env, go, "kernelW", 1, 1u << 16);
  g.stride_h = GeomField(env, go, "strideH", 1, 1u << 16);
  g.stride_w = GeomField(env, go, "strideW", 1, 1u << 16);
  g.pad_h = GeomField(env, go, "padH", 0, 1u << 16);
  g.pad_w = GeomField(env, go, "padW", 0, 1u << 16);
  g.dilation_h = GeomField(env, go, "dilationH", 1, 1u << 16);
  g.dilation_w = GeomField(env, go, "dilationW", 1, 1u << 16);
  g.groups = GeomField(env, go, "groups", 1, 1u << 24);
  if (g.in_channels % g.groups || g.out_channels % g.groups)
    ThrowRange(env, Cat("geometry.groups (", g.groups, ") must divide inChannels (", g.in_channels,
                        ") and outChannels (", g.out_channels, ")"));
  const size_t cpg = g.in_channels / g.groups, opg = g.out_channels / g.groups;
  const double wcount = static_cast<double>(g.out_channels) * cpg * g.kernel_h * g.kernel_w;
  const float* weight = ArgF32Exact(info, 2, "weight", wcount);
  const float* bias = ArgBias(info, 3, g.out_channels);

  auto p = std::make_unique<PackedF32>();
  p->isa = isa;
  p->g = g;
  const bool depthwise = g.groups == g.in_channels && g.groups == g.out_channels;
  if (depthwise) {
    const size_t cp = RoundUp16(g.in_channels) + PTQ_SGEMM_NR, floats = ptq_dwconv_f32_packed_floats(&g);
    p->method = F32Method::kDepthwise;
    p->weights = AlignedArray<float>(floats);
    ptq_dwconv_f32_pack(&g, weight, p->weights.get());
    if (bias) {
      p->bias = AlignedArray<float>(cp);  // with the 16 floats of slack the kernels may read
      memcpy(p->bias.get(), bias, g.out_channels * sizeof(float));
    }
    p->dw = ptq_dwconv_weights{g.in_channels, g.kernel_h, g.kernel_w, g.stride_h, g.stride_w, g.pad_h,
                               g.pad_w, g.dilation_h, g.dilation_w, p->weights.get(), p->bias.get()};
    p->dw_kernel = ptq::DwConvF32Kernel(isa);
    p->bytes = (floats + (bias ? cp : 0)) * sizeof(float);
  } else {
    const size_t k = g.kernel_h * g.kernel_w * cpg, panel = ptq_sgemm_packed_floats(k, opg);
    p->method = ptq_conv2d_f32_is_direct(&g) ? F32Method::kDirect : F32Method::kIm2col;
    p->weights = AlignedArray<float>(g.groups * panel);
    ptq_conv2d_f32_pack(&g, weight, p->weights.get());
    if (bias) {
      p->bias = AlignedArray<float>(g.groups * RoundUp16(opg));
      for (size_t grp = 0; grp < g.groups; grp++)
        memcpy(p->bias.get() + grp * RoundUp16(opg), bias + grp * opg, opg * sizeof(float));
    }
    p->plan = ptq_conv2d_f32_plan{g, k, opg, p->weights.get(), p->bias.get(), ptq::SGemmF32Kernel(isa)};
    p->bytes = (g.groups * panel + (bias ? g.groups * RoundUp16(opg) : 0)) * sizeof(float);
  }
  return WrapF32(env, std::move(p), &kF32ConvTag);
}

// setNumThreads(n): threads of the eager float ops (0 = all); capped at the pool size.
Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  SetEagerThreads(ArgSize(info, 0, "threads", 1u << 16));
  return info.Env().Undefined();
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(EagerThreads()));
}

// f32Conv(packed, x Float32Array [n][h][w][cin], n, h, w, y Float32Array [n][oh][ow][cout], relu)
Napi::Value F32Conv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 7) ThrowType(env, "f32Conv expects 7 arguments");
  PackedF32* p = UnwrapF32(info, 0, &kF32ConvTag, "f32ConvPack");
  const size_t n = ArgSize(info, 2, "n", 1u << 24);
  const size_t h = ArgSize(info, 3, "h", 1u << 24), w = ArgSize(info, 4, "w", 1u << 24);
  const bool relu = ArgBool(info, 6, "relu");
  const ptq_conv2d_geometry& g = p->g;
  const size_t exth = g.dilation_h * (g.kernel_h - 1) + 1, extw = g.dilation_w * (g.kernel_w - 1) + 1;
  if (h == 0 || w == 0) ThrowRange(env, "h and w must be positive");
  if (h + 2 * g.pad_h < exth) ThrowRange(env, Cat("h (", h, ") is too small for the kernel: the output would be empty"));
  if (w + 2 * g.pad_w < extw) ThrowRange(env, Cat("w (", w, ") is too small for the kernel: the output would be empty"));
  const size_t oh = (h + 2 * g.pad_h - exth) / g.stride_h + 1, ow = (w + 2 * g.pad_w - extw) / g.stride_w + 1;
  const double nx = static_cast<double>(n) * h * w * g.in_channels;
  const double ny = static_cast<double>(n) * oh * ow * g.out_channels;
  const float* x = ArgF32Exact(info, 1, "x", nx);
  float* y = ArgF32Exact(info, 5, "y", ny);
  CheckNoOverlap(env, x, static_cast<size_t>(nx), y, static_cast<size_t>(ny));
  if (n == 0) return env.Undefined();
  // Split over the intra-op pool: every output is computed the same way whatever the split, so
  // results do not depend on the thread count.
  ThreadPool& pool = ThreadPool::Global();
  if (p->method == F32Method::kDepthwise) {
    const ptq_dwconv_io io{x, h, w, y, oh, ow, relu ? 1 : 0};
    const size_t rows = n * oh, per = 4, tasks = (rows + per - 1) / per;
    pool.ParallelFor(tasks, EagerThreads(), [&](size_t t, size_t) {
      p->dw_kernel(&p->dw, &io, t * per, (t + 1) * per < rows ? (t + 1) * per : rows);
    });
  } else {
    const size_t need = ptq_conv2d_f32_scratch_floats(&p->plan);
    const size_t pixels = n * oh * ow, threads = EagerThreads();
    size_t ptasks = (pixels + 383) / 384;
    // Few row tasks but more pixels than output channels (the activations outweigh the weights,
    // as in MobileNetV2's 14x14 1x1 convs): 2 per thread, so each thread reads only its own rows
    // (at 196 pixels one task had run them all, its columns split: 1.15x from a second thread).
    if (threads > 1 && ptasks < 2 * threads && pixels >= p->plan.n) ptasks = pixels < 2 * threads ? pixels : 2 * threads;
    // Still few (late layers, 7x7 or 14x14, weights outweigh the pixels): split the output columns
    // too, so every thread has work (each column-split task redoes its pixels' im2col, cheap next
    // to the GEMM there).
    const ColumnSplit cols((p->plan.n + PTQ_SGEMM_NR - 1) / PTQ_SGEMM_NR, ptasks, threads, 2 * threads);
    const size_t nsplit = cols.parts;
    std::atomic<bool> oom{false};
    pool.ParallelFor(ptasks * nsplit, threads, [&](size_t t, size_t) {
      float* scratch = need ? tls_scratch.Get(need) : nullptr;
      if (need && !scratch) {
        oom = true;
        return;
      }
      const size_t pt = t / nsplit, ns = t % nsplit;
      // Rows split evenly (384 pixels a task for large layers).
      ptq_conv2d_f32(&p->plan, x, h, w, y, oh, ow, relu ? 1 : 0, pixels * pt / ptasks, pixels * (pt + 1) / ptasks,
                     cols.Begin(ns), cols.End(ns), scratch);
    });
    if (oom) throw Napi::Error::New(env, Cat("out of memory allocating the im2col scratch (", need * sizeof(float), " bytes)"));
  }
  return env.Undefined();
}

// f32LinearPack(isa, inFeatures, outFeatures, weight Float32Array [out][in], bias | null) -> handle
Napi::Value F32LinearPack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 5) ThrowType(env, "f32LinearPack expects 5 arguments");
  const ptq_isa isa = ArgIsa(info, 0);
  const size_t k = ArgSize(info, 1, "inFeatures", 1u << 24), n = ArgSize(info, 2, "outFeatures", 1u << 24);
  if (k == 0 || n == 0) ThrowRange(env, "inFeatures and outFeatures must be positive");
  const float* weight = ArgF32Exact(info, 3, "weight", static_cast<double>(k) * n);
  const float* bias = ArgBias(info, 4, n);
  auto p = std::make_unique<PackedF32>();
  p->method = F32Method::kLinear;
  p->isa = isa;
  p->g = ptq_conv2d_geometry{k, n, 1, 1, 1, 1, 0, 0, 1, 1, 1};
  const size_t floats = ptq_sgemm_packed_floats(k, n);
  p->weights = AlignedArray<float>(floats);
  ptq_sgemm_pack(k, n, weight, p->weights.get());
  if (bias) {
    p->bias = AlignedArray<float>(RoundUp16(n));
    memcpy(p->bias.get(), bias, n * sizeof(float));
  }
  p->linear = ptq_sgemm_weights{k, n, p->weights.get(), p->bias.get()};
  p->gemm = ptq::SGemmF32Kernel(isa);
  p->bytes = (floats + (bias ? RoundUp16(n) : 0)) * sizeof(float);
  return WrapF32(env, std::move(p), &kF32LinearTag);
}

// f32Linear(packed, m, x Float32Array [m][in], y Float32Array [m][out], relu)
Napi::Value F32Linear(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 5) ThrowType(env, "f32Linear expects 5 arguments");
  PackedF32* p = UnwrapF32(info, 0, &kF32LinearTag, "f32LinearPack");
  const size_t m = ArgSize(info, 1, "m", 1u << 30);
  const bool relu = ArgBool(info, 4, "relu");
  const size_t k = p->linear.k, n = p->linear.n;
  const float* x = ArgF32Exact(info, 2, "x", static_cast<double>(m) * k);
  float* y = ArgF32Exact(info, 3, "y", static_cast<double>(m) * n);
  CheckNoOverlap(env, x, m * k, y, m * n);
  if (m == 0) return env.Undefined();
  const ptq_sgemm_io io{x, k, y, n, relu ? 1 : 0, 1};  // linear: bias first (checked against torch)
  // Row blocks x column splits over the pool (a batch-1 classifier is all columns).
  const size_t threads = EagerThreads(), per = 96, mtasks = (m + per - 1) / per;
  const ColumnSplit cols((n + PTQ_SGEMM_NR - 1) / PTQ_SGEMM_NR, mtasks, threads, 2 * threads);
  const size_t nsplit = cols.parts;
  const size_t work = m * n * k;
  ThreadPool::Global().ParallelFor(mtasks * nsplit, work < 200000 ? 1 : threads, [&](size_t t, size_t) {
    const size_t mt = t / nsplit, ns = t % nsplit;
    p->gemm(&p->linear, &io, mt * per, (mt + 1) * per < m ? (mt + 1) * per : m, cols.Begin(ns), cols.End(ns));
  });
  return env.Undefined();
}

// f32Info(packed) -> { isa, kernelIsa, method, bytes }
Napi::Value F32Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1) ThrowType(env, "f32Info expects 1 argument");
  PackedF32* p = UnwrapAnyF32(info, 0);
  Napi::Object o = Napi::Object::New(env);
  o.Set("isa", ptq::IsaName(p->isa));
  o.Set("kernelIsa", ptq::IsaName(ptq::FloatKernelIsa(p->isa)));
  o.Set("method", F32MethodName(p->method));
  o.Set("bytes", static_cast<double>(p->bytes));
  return o;
}

// qgemmPeak(isa, ms) -> MACs per second of the level's GEMM dot-product instruction alone on the
// calling thread (the best of runs of about 2 ms each, for at least ms in all). Blocks the thread.
Napi::Value QGemmPeak(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2) ThrowType(env, "qgemmPeak expects 2 arguments");
  const ptq_isa isa = ArgIsa(info, 0);
  if (!info[1].IsNumber()) ThrowType(env, "ms must be a number");
  const double ms = info[1].As<Napi::Number>().DoubleValue();
  if (!(ms > 0 && ms <= 60000)) ThrowRange(env, Cat("ms must be in (0, 60000], got ", ms));
  uint32_t macs = 0;
  const ptq_qgemm_peak_fn probe = ptq::QGemmPeakKernel(isa, &macs);
  if (!probe) ThrowRange(env, Cat("isa '", ptq::IsaName(isa), "' has no SIMD dot product to probe"));
  using Clock = std::chrono::steady_clock;
  // About 2 ms a run on avx512vnni (16 dot products an iteration at 2 a cycle, 3 GHz), longer on
  // the ymm levels; the best of short runs leaves out runs cut by preemption or a clock still ramping.
  const uint64_t iters = 750000;
  double best = 0;
  const auto start = Clock::now();
  do {
    const auto t0 = Clock::now();
    probe(iters);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (s > 0 && iters * static_cast<double>(macs) / s > best) best = iters * static_cast<double>(macs) / s;
  } while (std::chrono::duration<double, std::milli>(Clock::now() - start).count() < ms);
  return Napi::Number::New(env, best);
}

// threadPoolSize() -> threads of the process-wide intra-op pool (the caller included).
Napi::Value ThreadPoolSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(ptq::ThreadPool::Global().Size()));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("version", Napi::String::New(env, PTQ_VERSION));
  exports.Set("threadPoolSize", Napi::Function::New(env, ThreadPoolSize, "threadPoolSize"));
  exports.Set("supportedIsas", Napi::Function::New(env, SupportedIsasJs, "supportedIsas"));
  exports.Set("qgemmPack", Napi::Function::New(env, QGemmPack, "qgemmPack"));
  exports.Set("qgemmInfo", Napi::Function::New(env, PackedInfo, "qgemmInfo"));
  exports.Set("qgemm", Napi::Function::New(env, QGemm, "qgemm"));
  exports.Set("qgemmPeak", Napi::Function::New(env, QGemmPeak, "qgemmPeak"));
  ptq::RegisterQOps(env, exports);
  ptq::RegisterPlan(env, exports);
  exports.Set("f32ConvPack", Napi::Function::New(env, F32ConvPack, "f32ConvPack"));
  exports.Set("f32Conv", Napi::Function::New(env, F32Conv, "f32Conv"));
  exports.Set("f32LinearPack", Napi::Function::New(env, F32LinearPack, "f32LinearPack"));
  exports.Set("f32Linear", Napi::Function::New(env, F32Linear, "f32Linear"));
  exports.Set("f32Info", Napi::Function::New(env, F32Info, "f32Info"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads, "setNumThreads"));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads, "getNumThreads"));
  return exports;
}

}  // namespace

NODE_API_MODULE(ptq_node, Init)
