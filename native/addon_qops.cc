// N-API functions of the quantized ops (conv, depthwise, element-wise, pooling). Thin: shapes are
// validated in TS (lib/kernels/native.ts); here only what memory safety depends on is re-checked.
#include <atomic>
#include <vector>

#include "addon_qops.h"
#include "napi_util.h"
#include "qconv.h"
#include "qops.h"
#include "threadpool.h"

namespace ptq {
namespace {

// qconv2dPack(isa, geometry Int32Array[11], weight Int8Array, accInit Int32Array[cout],
//             bias Float32Array[cout], multiplier Float32Array[cout], inputZp, outZp, outMin, outMax)
// geometry = [cin, cout, kh, kw, strideH, strideW, padH, padW, dilationH, dilationW, groups].
// weight layout: PyTorch's [cout][cin/groups][kh][kw]; reordered here for the kernels (depthwise
// [kh][kw][c], otherwise per group [cout/groups][kh][kw][cin/groups], the im2col order), one group
// at a time, so the copy is freed at once (a JS-side reorder left megabytes of garbage per model).
Napi::Value QConv2dPack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 10) ThrowType(env, "qconv2dPack expects 10 arguments");
  const ptq_isa isa = ArgIsa(info, 0);
  auto geo = ArgArray<int32_t>(info, 1, "geometry", napi_int32_array, "Int32Array");
  if (geo.ElementLength() != 11) ThrowRange(env, "geometry must have 11 elements");
  for (size_t i = 0; i < 11; i++)
    if (geo[i] < (i == 6 || i == 7 ? 0 : 1) || geo[i] > (1 << 20)) ThrowRange(env, Cat("geometry[", i, "] out of range: ", geo[i]));
  auto p = std::make_unique<PackedQConv>();
  p->isa = isa;
  p->cin = geo[0]; p->cout = geo[1]; p->kh = geo[2]; p->kw = geo[3]; p->sh = geo[4]; p->sw = geo[5];
  p->ph = geo[6]; p->pw = geo[7]; p->dh = geo[8]; p->dw = geo[9]; p->groups = geo[10];
  if (p->cin % p->groups || p->cout % p->groups) ThrowRange(env, "channels must be divisible by groups");
  auto weight = ArgArray<int8_t>(info, 2, "weight", napi_int8_array, "Int8Array");
  auto acc = ArgArray<int32_t>(info, 3, "accInit", napi_int32_array, "Int32Array");
  auto bias = ArgArray<float>(info, 4, "bias", napi_float32_array, "Float32Array");
  auto mult = ArgArray<float>(info, 5, "multiplier", napi_float32_array, "Float32Array");
  p->zx = static_cast<uint8_t>(ArgInt(info, 6, "inputZeroPoint", 0, 255));
  p->zp = ArgInt(info, 7, "outZeroPoint", 0, 255);
  p->lo = ArgInt(info, 8, "outMin", 0, 255);
  p->hi = ArgInt(info, 9, "outMax", 0, 255);
  if (p->lo > p->hi) ThrowRange(env, "outMin must not exceed outMax");
  const size_t cpg = p->cin / p->groups, opg = p->cout / p->groups, k = cpg * p->kh * p->kw;
  if (weight.ElementLength() != p->cout * k) ThrowRange(env, Cat("weight must have ", p->cout * k, " elements"));
  if (acc.ElementLength() != p->cout || bias.ElementLength() != p->cout || mult.ElementLength() != p->cout)
    ThrowRange(env, "accInit, bias and multiplier must have outChannels elements");
  p->depthwise = p->groups == p->cin && p->groups == p->cout;
  if (p->depthwise) {
    const size_t taps = p->kh * p->kw;
    p->dw_w.resize(p->cout * taps);
    for (size_t oc = 0; oc < p->cout; oc++)
      for (size_t t = 0; t < taps; t++) p->dw_w[t * p->cout + oc] = weight[oc * taps + t];
    p->dw_acc.assign(acc.Data(), acc.Data() + p->cout);
    p->dw_bias.assign(bias.Data(), bias.Data() + p->cout);
    p->dw_mult.assign(mult.Data(), mult.Data() + p->cout);
    p->bytes = p->cout * (k + 12);
  } else {
    p->kernel = QGemmKernel(isa);
    const size_t np = (opg + PTQ_GEMM_NR - 1) / PTQ_GEMM_NR * PTQ_GEMM_NR;
    for (size_t g = 0; g < p->groups; g++) {
      GroupGemm gg;
      const size_t sz = ptq_qgemm_packed_size(isa, k, opg);
      gg.packed = AlignedArray<uint8_t>(sz);
      const size_t khw = p->kh * p->kw;
      if (khw == 1) {
        // 1x1: OIHW already is [o][ic]; no reordered copy (a temporary that stayed in the heap).
        ptq_qgemm_pack(isa, k, opg, weight.Data() + g * opg * k, gg.packed.get());
      } else {
        std::vector<int8_t> wg(opg * k);  // [o][ky][kx][ic] of this group
        for (size_t o = 0; o < opg; o++)
          for (size_t ic = 0; ic < cpg; ic++)
            for (size_t t = 0; t < khw; t++) wg[(o * khw + t) * cpg + ic] = weight[((g * opg + o) * cpg + ic) * khw + t];
        ptq_qgemm_pack(isa, k, opg, wg.data(), gg.packed.get());
      }
      gg.acc_init = AlignedArray<int32_t>(np);
      gg.bias = AlignedArray<float>(np);
      gg.multiplier = AlignedArray<float>(np);
      memcpy(gg.acc_init.get(), acc.Data() + g * opg, opg * sizeof(int32_t));
      memcpy(gg.bias.get(), bias.Data() + g * opg, opg * sizeof(float));
      memcpy(gg.multiplier.get(), mult.Data() + g * opg, opg * sizeof(float));
      gg.w = ptq_qgemm_weights{k, opg, gg.packed.get(), gg.acc_init.get(), gg.bias.get(), gg.multiplier.get(), p->zp, p->lo, p->hi};
      p->bytes += sz + np * 12;
      p->gemms.push_back(std::move(gg));
    }
  }
  const int64_t bytes = static_cast<int64_t>(p->bytes);
  auto ext = Napi::External<PackedQConv>::New(env, p.release(), [](Napi::Env e, PackedQConv* q) {
    Napi::MemoryManagement::AdjustExternalMemory(e, -static_cast<int64_t>(q->bytes));
    delete q;
  });
  TagHandle(env, ext, &kQConvTag);
  Napi::MemoryManagement::AdjustExternalMemory(env, bytes);
  return ext;
}

// qconv2d(packed, x Uint8Array NHWC, n, h, w, y Uint8Array NHWC)
Napi::Value QConv2d(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 6) ThrowType(env, "qconv2d expects 6 arguments");
  const PackedQConv& p = *HandleOf<PackedQConv>(env, info[0], &kQConvTag, "packed must be the handle returned by qconv2dPack");
  auto x = ArgArray<uint8_t>(info, 1, "x", napi_uint8_array, "Uint8Array");
  const size_t n = ArgSize(info, 2, "n", 1u << 24), h = ArgSize(info, 3, "h", 1u << 20), w = ArgSize(info, 4, "w", 1u << 20);
  auto y = ArgArray<uint8_t>(info, 5, "y", napi_uint8_array, "Uint8Array");
  const ptrdiff_t ehh = static_cast<ptrdiff_t>(h + 2 * p.ph) - static_cast<ptrdiff_t>(p.dh * (p.kh - 1) + 1);
  const ptrdiff_t eww = static_cast<ptrdiff_t>(w + 2 * p.pw) - static_cast<ptrdiff_t>(p.dw * (p.kw - 1) + 1);
  if (ehh < 0 || eww < 0) ThrowRange(env, "input is smaller than the kernel");
  const size_t oh = ehh / p.sh + 1, ow = eww / p.sw + 1;
  CheckLength(env, x.ElementLength(), static_cast<double>(n) * h * w * p.cin, "x (n*h*w*cin)");
  CheckLength(env, y.ElementLength(), static_cast<double>(n) * oh * ow * p.cout, "y (n*oh*ow*cout)");
  CheckDisjoint(env, x, "x", y, "y");
  if (n == 0) return env.Undefined();
  QConvRun(p, x.Data(), n, h, w, y.Data(), oh, ow, 1);
  return env.Undefined();
}

// Optional trailing isa argument of the element-wise functions: absent or undefined = DefaultIsa()
// (the best level, or PTQ_ISA's); otherwise a level this CPU supports.
ptq_isa OptIsa(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || info[i].IsUndefined()) return DefaultIsa();
  return ArgIsa(info, i);
}

// quantize(x Float32Array, y Uint8Array, scale, zp, isa?)
Napi::Value Quantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 4 && info.Length() != 5) ThrowType(env, "quantize expects 4 or 5 arguments");
  auto x = ArgArray<float>(info, 0, "x", napi_float32_array, "Float32Array");
  auto y = ArgArray<uint8_t>(info, 1, "y", napi_uint8_array, "Uint8Array");
  if (x.ElementLength() != y.ElementLength()) ThrowRange(env, "x and y must have the same length");
  CheckDisjoint(env, x, "x", y, "y");
  const float scale = ArgScale(info, 2, "scale");
  const int32_t zp = ArgInt(info, 3, "zeroPoint", 0, 255);
  QuantizeKernel(OptIsa(info, 4))(x.Data(), y.Data(), 0, x.ElementLength(), scale, zp);
  return env.Undefined();
}

// dequantize(x Uint8Array, y Float32Array, scale, zp, isa?)
Napi::Value Dequantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 4 && info.Length() != 5) ThrowType(env, "dequantize expects 4 or 5 arguments");
  auto x = ArgArray<uint8_t>(info, 0, "x", napi_uint8_array, "Uint8Array");
  auto y = ArgArray<float>(info, 1, "y", napi_float32_array, "Float32Array");
  if (x.ElementLength() != y.ElementLength()) ThrowRange(env, "x and y must have the same length");
  CheckDisjoint(env, x, "x", y, "y");
  const float scale = ArgScale(info, 2, "scale");
  const int32_t zp = ArgInt(info, 3, "zeroPoint", 0, 255);
  DequantizeKernel(OptIsa(info, 4))(x.Data(), y.Data(), 0, x.ElementLength(), scale, zp);
  return env.Undefined();
}

// qadd(a, b, y, aScale, aZp, bScale, bZp, outScale, outZp, relu, isa?)
Napi::Value QAdd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 10 && info.Length() != 11) ThrowType(env, "qadd expects 10 or 11 arguments");
  auto a = ArgArray<uint8_t>(info, 0, "a", napi_uint8_array, "Uint8Array");
  auto b = ArgArray<uint8_t>(info, 1, "b", napi_uint8_array, "Uint8Array");
  auto y = ArgArray<uint8_t>(info, 2, "y", napi_uint8_array, "Uint8Array");
  if (a.ElementLength() != y.ElementLength() || b.ElementLength() != y.ElementLength()) ThrowRange(env, "a, b and y must have the same length");
  // Element-wise: y may be exactly a or b (in place), but not a shifted view of either.
  if (y.Data() != a.Data()) CheckDisjoint(env, a, "a", y, "y");
  if (y.Data() != b.Data()) CheckDisjoint(env, b, "b", y, "y");
  ptq_qadd_params p{ArgScale(info, 3, "aScale"), ArgScale(info, 5, "bScale"), ArgScale(info, 7, "outScale"),
                    ArgInt(info, 4, "aZeroPoint", 0, 255), ArgInt(info, 6, "bZeroPoint", 0, 255),
                    ArgInt(info, 8, "outZeroPoint", 0, 255), info[9].ToBoolean().Value() ? 1 : 0, y.ElementLength()};
  QAddKernel(OptIsa(info, 10))(a.Data(), b.Data(), y.Data(), 0, y.ElementLength(), &p);
  return env.Undefined();
}

// qmeanHW(x, n, hw, c, y, scale, zp)
Napi::Value QMeanHW(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 7) ThrowType(env, "qmeanHW expects 7 arguments");
  auto x = ArgArray<uint8_t>(info, 0, "x", napi_uint8_array, "Uint8Array");
  const size_t n = ArgSize(info, 1, "n", 1u << 24), hw = ArgSize(info, 2, "hw", 1u << 30), c = ArgSize(info, 3, "c", 1u << 24);
  auto y = ArgArray<uint8_t>(info, 4, "y", napi_uint8_array, "Uint8Array");
  if (hw == 0) ThrowRange(env, "hw must be positive");
  CheckLength(env, x.ElementLength(), static_cast<double>(n) * hw * c, "x (n*hw*c)");
  CheckLength(env, y.ElementLength(), static_cast<double>(n) * c, "y (n*c)");
  CheckDisjoint(env, x, "x", y, "y");
  ptq_qmean_hw_u8_scalar(x.Data(), y.Data(), n, hw, c, ArgScale(info, 5, "scale"), ArgInt(info, 6, "zeroPoint", 0, 255));
  return env.Undefined();
}

// qadaptiveAvgPool(x, n, hw, c, y, inScale, inZp, outScale, outZp)
Napi::Value QAdaptiveAvgPool(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 9) ThrowType(env, "qadaptiveAvgPool expects 9 arguments");
  auto x = ArgArray<uint8_t>(info, 0, "x", napi_uint8_array, "Uint8Array");
  const size_t n = ArgSize(info, 1, "n", 1u << 24), hw = ArgSize(info, 2, "hw", 1u << 22), c = ArgSize(info, 3, "c", 1u << 24);
  auto y = ArgArray<uint8_t>(info, 4, "y", napi_uint8_array, "Uint8Array");
  if (hw == 0) ThrowRange(env, "hw must be positive");
  CheckLength(env, x.ElementLength(), static_cast<double>(n) * hw * c, "x (n*hw*c)");
  CheckLength(env, y.ElementLength(), static_cast<double>(n) * c, "y (n*c)");
  CheckDisjoint(env, x, "x", y, "y");
  const double si = ArgScale(info, 5, "inScale"), so = ArgScale(info, 7, "outScale");
  // PyTorch: float multiplier = q_scale_in / q_scale_out / size, computed in double.
  const float mult = static_cast<float>(si / so / static_cast<double>(hw));
  ptq_qadaptive_avgpool_u8_scalar(x.Data(), y.Data(), n, hw, c, mult, ArgInt(info, 6, "inZeroPoint", 0, 255), ArgInt(info, 8, "outZeroPoint", 0, 255));
  return env.Undefined();
}

// qmaxpool2d(x, n, h, w, c, k, stride, pad, y)
Napi::Value QMaxPool2d(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 9) ThrowType(env, "qmaxpool2d expects 9 arguments");
  auto x = ArgArray<uint8_t>(info, 0, "x", napi_uint8_array, "Uint8Array");
  const size_t n = ArgSize(info, 1, "n", 1u << 24), h = ArgSize(info, 2, "h", 1u << 20), w = ArgSize(info, 3, "w", 1u << 20);
  const size_t c = ArgSize(info, 4, "c", 1u << 24), k = ArgSize(info, 5, "k", 1024), s = ArgSize(info, 6, "stride", 1024);
  const size_t pad = ArgSize(info, 7, "pad", 1024);
  auto y = ArgArray<uint8_t>(info, 8, "y", napi_uint8_array, "Uint8Array");
  if (k == 0 || s == 0 || pad * 2 > k || h + 2 * pad < k || w + 2 * pad < k) ThrowRange(env, "bad pooling geometry");
  const size_t oh = (h + 2 * pad - k) / s + 1, ow = (w + 2 * pad - k) / s + 1;
  CheckLength(env, x.ElementLength(), static_cast<double>(n) * h * w * c, "x (n*h*w*c)");
  CheckLength(env, y.ElementLength(), static_cast<double>(n) * oh * ow * c, "y (n*oh*ow*c)");
  CheckDisjoint(env, x, "x", y, "y");
  QMaxPool2dRun(x.Data(), y.Data(), n, h, w, c, k, s, pad, oh, ow, EagerThreads());
  return env.Undefined();
}

// minmaxF32(x Float32Array, start, end) -> [min, max, nan ? 1 : 0]
Napi::Value MinMaxF32(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3) ThrowType(env, "minmaxF32 expects 3 arguments");
  auto x = ArgArray<float>(info, 0, "x", napi_float32_array, "Float32Array");
  const size_t start = ArgSize(info, 1, "start"), end = ArgSize(info, 2, "end");
  if (start > end || end > x.ElementLength()) ThrowRange(env, "start/end out of range");
  float mn, mx;
  int32_t nan;
  ptq_minmax_f32_scalar(x.Data() + start, end - start, &mn, &mx, &nan);
  Napi::Array out = Napi::Array::New(env, 3);
  out.Set(0u, Napi::Number::New(env, mn));
  out.Set(1u, Napi::Number::New(env, mx));
  out.Set(2u, Napi::Number::New(env, nan));
  return out;
}

// histcCountsF32(x Float32Array, left, right, width, counts Int32Array): adds bin counts
Napi::Value HistcCountsF32(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 5) ThrowType(env, "histcCountsF32 expects 5 arguments");
  auto x = ArgArray<float>(info, 0, "x", napi_float32_array, "Float32Array");
  for (size_t i = 1; i <= 3; i++) if (!info[i].IsNumber()) ThrowType(env, "left, right and width must be numbers");
  const float left = static_cast<float>(info[1].As<Napi::Number>().DoubleValue());
  const float right = static_cast<float>(info[2].As<Napi::Number>().DoubleValue());
  const float width = static_cast<float>(info[3].As<Napi::Number>().DoubleValue());
  auto counts = ArgArray<int32_t>(info, 4, "counts", napi_int32_array, "Int32Array");
  if (counts.ElementLength() == 0 || counts.ElementLength() > (1u << 30)) ThrowRange(env, "counts must have 1..2^30 bins");
  if (!(left < right) || !(width > 0.0f) || !(right - left <= width * 2.0f)) ThrowRange(env, "bad histogram range");
  ptq_histc_counts_f32_scalar(x.Data(), x.ElementLength(), left, right, width, static_cast<int32_t>(counts.ElementLength()), counts.Data());
  return env.Undefined();
}

// Memory-bound element-wise work: [begin, end) ranges of `chunk` items of n, over the eager pool
// once there are a few of them (fewer run on the calling thread: a handoff costs more).
void ForChunks(size_t n, size_t chunk, FunctionRef<void(size_t, size_t)> fn) {
  const size_t tasks = (n + chunk - 1) / chunk;
  ThreadPool::Global().ParallelFor(tasks, tasks >= 4 ? EagerThreads() : 1, [&](size_t t, size_t) {
    fn(t * chunk, (t + 1) * chunk < n ? (t + 1) * chunk : n);
  });
}

// f32Binary(a, b, y, op): y = a + b (op 0), relu(a + b) (1) or a * b (2), element-wise
Napi::Value F32Binary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 4) ThrowType(env, "f32Binary expects 4 arguments");
  auto a = ArgArray<float>(info, 0, "a", napi_float32_array, "Float32Array");
  auto b = ArgArray<float>(info, 1, "b", napi_float32_array, "Float32Array");
  auto y = ArgArray<float>(info, 2, "y", napi_float32_array, "Float32Array");
  const int32_t op = ArgInt(info, 3, "op", 0, 2);
  CheckLength(env, b.ElementLength(), static_cast<double>(a.ElementLength()), "b (a.length)");
  CheckLength(env, y.ElementLength(), static_cast<double>(a.ElementLength()), "y (a.length)");
  CheckDisjoint(env, a, "a", y, "y");
  CheckDisjoint(env, b, "b", y, "y");
  const float *pa = a.Data(), *pb = b.Data();
  float* py = y.Data();
  ForChunks(a.ElementLength(), 65536, [&](size_t s, size_t e) { ptq_binary_f32_scalar(pa + s, pb + s, py + s, e - s, op); });
  return env.Undefined();
}

// f32ChannelAffine(x, pixels, c, alpha, beta, y): y[p][ch] = x[p][ch] * alpha[ch] + beta[ch]
Napi::Value F32ChannelAffine(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 6) ThrowType(env, "f32ChannelAffine expects 6 arguments");
  auto x = ArgArray<float>(info, 0, "x", napi_float32_array, "Float32Array");
  const size_t pixels = ArgSize(info, 1, "pixels", 1u << 30), c = ArgSize(info, 2, "c", 1u << 24);
  auto alpha = ArgArray<float>(info, 3, "alpha", napi_float32_array, "Float32Array");
  auto beta = ArgArray<float>(info, 4, "beta", napi_float32_array, "Float32Array");
  auto y = ArgArray<float>(info, 5, "y", napi_float32_array, "Float32Array");
  CheckLength(env, x.ElementLength(), static_cast<double>(pixels) * c, "x (pixels*c)");
  CheckLength(env, y.ElementLength(), static_cast<double>(pixels) * c, "y (pixels*c)");
  CheckLength(env, alpha.ElementLength(), static_cast<double>(c), "alpha (c)");
  CheckLength(env, beta.ElementLength(), static_cast<double>(c), "beta (c)");
  CheckDisjoint(env, x, "x", y, "y");
  CheckDisjoint(env, alpha, "alpha", y, "y");
  CheckDisjoint(env, beta, "beta", y, "y");
  if (c == 0) return env.Undefined();
  const float *px = x.Data(), *pa = alpha.Data(), *pb = beta.Data();
  float* py = y.Data();
  // ~64K floats a task, whole pixels.
  ForChunks(pixels, (65535 + c) / c, [&](size_t p0, size_t p1) { ptq_channel_affine_f32_scalar(px, py, c, pa, pb, p0, p1); });
  return env.Undefined();
}

// f32Relu(x, y, max): y = x > 0 ? min(x, max) : 0 element-wise
Napi::Value F32Relu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3) ThrowType(env, "f32Relu expects 3 arguments");
  auto x = ArgArray<float>(info, 0, "x", napi_float32_array, "Float32Array");
  auto y = ArgArray<float>(info, 1, "y", napi_float32_array, "Float32Array");
  if (!info[2].IsNumber()) ThrowType(env, "max must be a number");
  const float max = static_cast<float>(info[2].As<Napi::Number>().DoubleValue());
  if (!(max >= 0.0f)) ThrowRange(env, "max must be at least 0");
  CheckLength(env, y.ElementLength(), static_cast<double>(x.ElementLength()), "y (x.length)");
  const float* px = x.Data();
  float* py = y.Data();
  // y may be x itself (in place) but not a shifted view of it.
  if (px != py) CheckDisjoint(env, x, "x", y, "y");
  ForChunks(x.ElementLength(), 65536, [&](size_t s, size_t e) { ptq_relu_f32_scalar(px + s, py + s, e - s, max); });
  return env.Undefined();
}

// f32MeanHW(x, n, hw, c, y): y[n][c] = mean over the hw pixels of NHWC x
Napi::Value F32MeanHW(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 5) ThrowType(env, "f32MeanHW expects 5 arguments");
  auto x = ArgArray<float>(info, 0, "x", napi_float32_array, "Float32Array");
  const size_t n = ArgSize(info, 1, "n", 1u << 24), hw = ArgSize(info, 2, "hw", 1u << 30), c = ArgSize(info, 3, "c", 1u << 24);
  auto y = ArgArray<float>(info, 4, "y", napi_float32_array, "Float32Array");
  if (hw == 0) ThrowRange(env, "hw must be at least 1");
  CheckLength(env, x.ElementLength(), static_cast<double>(n) * hw * c, "x (n*hw*c)");
  CheckLength(env, y.ElementLength(), static_cast<double>(n) * c, "y (n*c)");
  CheckDisjoint(env, x, "x", y, "y");
  ptq_mean_hw_f32_scalar(x.Data(), y.Data(), n, hw, c);
  return env.Undefined();
}

// f32ToChannelsLast(x, n, c, hw, y): NCHW -> NHWC
Napi::Value F32ToChannelsLast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 5) ThrowType(env, "f32ToChannelsLast expects 5 arguments");
  auto x = ArgArray<float>(info, 0, "x", napi_float32_array, "Float32Array");
  const size_t n = ArgSize(info, 1, "n", 1u << 24), c = ArgSize(info, 2, "c", 1u << 24), hw = ArgSize(info, 3, "hw", 1u << 30);
  auto y = ArgArray<float>(info, 4, "y", napi_float32_array, "Float32Array");
  CheckLength(env, x.ElementLength(), static_cast<double>(n) * c * hw, "x (n*c*hw)");
  CheckLength(env, y.ElementLength(), static_cast<double>(n) * c * hw, "y (n*c*hw)");
  CheckDisjoint(env, x, "x", y, "y");
  // Blocks of pixels of one image per task, over the pool when there are several (a 224x224x3
  // image: 0.1 ms on one thread).
  const size_t block = 8192, per_image = (hw + block - 1) / block, tasks = n * per_image;
  const float* px = x.Data();
  float* py = y.Data();
  ThreadPool::Global().ParallelFor(tasks, tasks > 1 && static_cast<double>(n) * c * hw >= 1e5 ? EagerThreads() : 1, [&](size_t t, size_t) {
    const size_t b = t / per_image, p0 = (t % per_image) * block, p1 = p0 + block < hw ? p0 + block : hw;
    ptq_nchw_to_nhwc_f32_scalar(px + b * c * hw, py + b * c * hw, c, hw, p0, p1);
  });
  return env.Undefined();
}

// f32MaxPool2d(x, n, h, w, c, k, stride, pad, dilation, y)
Napi::Value F32MaxPool2d(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 10) ThrowType(env, "f32MaxPool2d expects 10 arguments");
  auto x = ArgArray<float>(info, 0, "x", napi_float32_array, "Float32Array");
  const size_t n = ArgSize(info, 1, "n", 1u << 24), h = ArgSize(info, 2, "h", 1u << 20), w = ArgSize(info, 3, "w", 1u << 20);
  const size_t c = ArgSize(info, 4, "c", 1u << 24), k = ArgSize(info, 5, "k", 1024), s = ArgSize(info, 6, "stride", 1024);
  const size_t pad = ArgSize(info, 7, "pad", 1024), d = ArgSize(info, 8, "dilation", 1024);
  auto y = ArgArray<float>(info, 9, "y", napi_float32_array, "Float32Array");
  if (k == 0 || s == 0 || d == 0 || pad * 2 > k || h + 2 * pad < d * (k - 1) + 1 || w + 2 * pad < d * (k - 1) + 1)
    ThrowRange(env, "bad pooling geometry");
  const size_t oh = (h + 2 * pad - d * (k - 1) - 1) / s + 1, ow = (w + 2 * pad - d * (k - 1) - 1) / s + 1;
  CheckLength(env, x.ElementLength(), static_cast<double>(n) * h * w * c, "x (n*h*w*c)");
  CheckLength(env, y.ElementLength(), static_cast<double>(n) * oh * ow * c, "y (n*oh*ow*c)");
  CheckDisjoint(env, x, "x", y, "y");
  // One task per image row of outputs, over the pool when there is enough work.
  const float* px = x.Data();
  float* py = y.Data();
  const size_t rows = n * oh;
  ThreadPool::Global().ParallelFor(rows, static_cast<double>(rows) * ow * c * k * k >= 2e5 ? EagerThreads() : 1, [&](size_t r, size_t) {
    const size_t b = r / oh, oy = r % oh;
    ptq_maxpool2d_f32_scalar(px + b * h * w * c, py + b * oh * ow * c, 1, h, w, c, k, s, pad, d, oh, ow, oy, oy + 1);
  });
  return env.Undefined();
}

}  // namespace

namespace {
std::atomic<size_t> g_num_threads{0};  // 0 = every thread of the pool
}  // namespace

size_t EagerThreads() {
  const size_t t = g_num_threads.load(std::memory_order_relaxed), pool = ThreadPool::Global().Size();
  return t == 0 || t > pool ? pool : t;
}

void SetEagerThreads(size_t threads) { g_num_threads.store(threads, std::memory_order_relaxed); }

void RegisterQOps(Napi::Env env, Napi::Object exports) {
  exports.Set("qconv2dPack", Napi::Function::New(env, QConv2dPack, "qconv2dPack"));
  exports.Set("qconv2d", Napi::Function::New(env, QConv2d, "qconv2d"));
  exports.Set("quantize", Napi::Function::New(env, Quantize, "quantize"));
  exports.Set("dequantize", Napi::Function::New(env, Dequantize, "dequantize"));
  exports.Set("qadd", Napi::Function::New(env, QAdd, "qadd"));
  exports.Set("qmeanHW", Napi::Function::New(env, QMeanHW, "qmeanHW"));
  exports.Set("qmaxpool2d", Napi::Function::New(env, QMaxPool2d, "qmaxpool2d"));
  exports.Set("qadaptiveAvgPool", Napi::Function::New(env, QAdaptiveAvgPool, "qadaptiveAvgPool"));
  exports.Set("minmaxF32", Napi::Function::New(env, MinMaxF32, "minmaxF32"));
  exports.Set("histcCountsF32", Napi::Function::New(env, HistcCountsF32, "histcCountsF32"));
  exports.Set("f32Binary", Napi::Function::New(env, F32Binary, "f32Binary"));
  exports.Set("f32ChannelAffine", Napi::Function::New(env, F32ChannelAffine, "f32ChannelAffine"));
  exports.Set("f32Relu", Napi::Function::New(env, F32Relu, "f32Relu"));
  exports.Set("f32MeanHW", Napi::Function::New(env, F32MeanHW, "f32MeanHW"));
  exports.Set("f32ToChannelsLast", Napi::Function::New(env, F32ToChannelsLast, "f32ToChannelsLast"));
  exports.Set("f32MaxPool2d", Napi::Function::New(env, F32MaxPool2d, "f32MaxPool2d"));
}

}  // namespace ptq
