// Whole-model plans: a converted model compiled once into a list of native ops over an arena of
// activation buffers, so inference never returns to JS between layers. runSync executes on the
// calling thread; run executes on a libuv worker (AsyncWorker) and resolves a Promise. Each op
// splits its work over the intra-op pool; a plan runs one batch at a time (its arena is shared).
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#define PTQ_MMAP_ARENA 1
#endif

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "addon_plan.h"
#include "dispatch.h"
#include "napi_util.h"
#include "qconv.h"
#include "threadpool.h"

namespace ptq {
namespace {

enum class OpKind { kQuantize, kDequantize, kConv, kGemm, kAdd, kMeanHW, kAdaptiveAvgPool, kMaxPool };

constexpr int kInput = -1, kOutput = -2;

struct Op {
  OpKind kind;
  int in0 = 0, in1 = 0, out = 0;
  // quantize / dequantize / add: elements per sample; mean/aap: hw, c; conv: h, w, oh, ow; gemm: rows per sample
  size_t count = 0, hw = 0, c = 0, h = 0, w = 0, oh = 0, ow = 0, rows = 0, k = 0, stride = 0, pad = 0;
  size_t nchw_c = 0, nchw_hw = 0;  // quantize straight from an NCHW float input
  float scale = 1, scale_b = 1, scale_out = 1;
  int32_t zp = 0, zp_b = 0, zp_out = 0, relu = 0;
  // conv with a fused residual add: add(conv out, slot in1) (conv out is the add's first operand
  // when conv_is_a) into slot out2, tile by tile while the conv output is in cache.
  bool fused_add = false, conv_is_a = true;
  int out2 = 0;
  const PackedQConv* conv = nullptr;
  const PackedQGemm* gemm = nullptr;
};

// The activation arena gets its own pages from the OS: dispose then always gives them back (from
// malloc's heap a freed arena can stay resident, depending on what was allocated around it), and
// pages no run touches cost nothing.
struct ArenaFree {
  size_t bytes = 0;
  void operator()(uint8_t* p) const {
#if defined(PTQ_MMAP_ARENA)
    munmap(p, bytes);
#else
    free(p);
#endif
  }
};
using ArenaPtr = std::unique_ptr<uint8_t, ArenaFree>;

ArenaPtr AllocArena(size_t bytes) {
  if (bytes == 0) bytes = 64;
#if defined(PTQ_MMAP_ARENA)
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
#else
  void* p = aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (!p) throw std::bad_alloc();
#endif
  return ArenaPtr(static_cast<uint8_t*>(p), ArenaFree{bytes});
}

struct PlanJob;

struct Plan {
  ptq_isa isa = PTQ_ISA_SCALAR;  // level of the element-wise kernels (convs use their packed level)
  std::vector<Op> ops;
  std::vector<size_t> slot_offset, slot_bytes;  // per-sample bytes; offsets in the arena for max_batch
  size_t max_batch = 1, in_floats = 0, out_floats = 0, arena_bytes = 0;
  // Sample regions per slot: max_batch, plus one per pool thread when batches run depth first
  // (region max_batch + w is thread w's scratch; see RunPlan).
  size_t regions = 1;
  // What ops from depth_first_end on read before writing it: slot and bytes per sample (the
  // stride those ops read a batch with, which may be less than the slot's size).
  std::vector<std::pair<int, size_t>> handoff;
  // Batches run ops [0, depth_first_end) depth first, the rest layer by layer (see RunPlan); 0 for
  // small models (a sample's activations far inside L2): per-op overheads then weigh more than
  // cache misses.
  size_t depth_first_end = 0;
  bool prequantize = false;  // only the first op reads the input (a quantize): async runs do it up front
  ArenaPtr arena;
  std::vector<Napi::Reference<Napi::Value>> keep;  // the packed-weight handles stay alive
  std::mutex mu;                                    // one run at a time per plan
  std::atomic<bool> disposed{false};                // set (under mu) by planDispose
  // Input/output copies of async runs, recycled: a fresh multi-megabyte copy for each of many
  // runs in flight page-faults on the JS thread (tens of ms of event-loop lag for 64 runs).
  std::mutex io_mu;
  // Async runs waiting for the plan, in order, and whether a PlanRunner is draining them.
  std::mutex queue_mu;
  std::deque<PlanJob*> queue;
  bool draining = false;
  std::vector<std::vector<float>> io_free[2];  // [0] inputs, [1] outputs
  std::vector<std::vector<uint8_t>> qin_free;   // quantized inputs
  std::vector<float> TakeIo(int kind) {
    std::lock_guard<std::mutex> l(io_mu);
    auto& f = io_free[kind];
    if (f.empty()) return {};
    std::vector<float> v = std::move(f.back());
    f.pop_back();
    return v;
  }
  void GiveIo(int kind, std::vector<float>&& v) {
    std::lock_guard<std::mutex> l(io_mu);
    if (io_free[kind].size() < kMaxIoFree) io_free[kind].push_back(std::move(v));
  }
  std::vector<uint8_t> TakeQin() {
    std::lock_guard<std::mutex> l(io_mu);
    if (qin_free.empty()) return {};
    std::vector<uint8_t> v = std::move(qin_free.back());
    qin_free.pop_back();
    return v;
  }
  void GiveQin(std::vector<uint8_t>&& v) {
    std::lock_guard<std::mutex> l(io_mu);
    if (qin_free.size() < kMaxIoFree) qin_free.push_back(std::move(v));
  }
  static constexpr size_t kMaxIoFree = 64;
};

constexpr size_t kMaxArenaBytes = size_t{1} << 34;  // 16 GiB: far beyond any real model at maxBatch

constexpr size_t kElemChunk = 16384;
constexpr size_t kPixelChunk = 4096;  // pixels per task when quantizing NCHW images (a multiple of 16)
constexpr size_t kDepthFirstMinBytes = size_t(256) << 10;

// Where a batch stops running depth first: after the last conv or gemm whose output (per sample)
// outweighs its weights. From there on every weighted op reads more weight bytes than it writes
// activation bytes, and running it once on the whole batch reads those weights once, not n times.
size_t DepthFirstEnd(const std::vector<Op>& ops) {
  size_t end = 0;
  for (size_t i = 0; i < ops.size(); i++) {
    const Op& op = ops[i];
    size_t weights = 0, out = 0;
    if (op.kind == OpKind::kConv) {
      const PackedQConv& c = *op.conv;
      weights = c.cout * (c.cin / c.groups) * c.kh * c.kw;
      out = op.oh * op.ow * c.cout;
    } else if (op.kind == OpKind::kGemm) {
      weights = op.gemm->w.k * op.gemm->w.n;
      out = op.rows * op.gemm->w.n;
    } else {
      continue;
    }
    if (weights < out) end = i + 1;
  }
  return end;
}

// Bytes per sample an op reads from its first input slot.
size_t InBytes(const Op& op) {
  switch (op.kind) {
    case OpKind::kConv: return op.h * op.w * op.conv->cin;
    case OpKind::kGemm: return op.rows * op.gemm->w.k;
    case OpKind::kMeanHW:
    case OpKind::kAdaptiveAvgPool: return op.hw * op.c;
    case OpKind::kMaxPool: return op.h * op.w * op.c;
    default: return op.count;  // add, dequantize (quantize reads the input, not a slot)
  }
}

// What ops from `split` on read before writing it: what a sample run depth first up to split
// hands over to the layer-by-layer rest, with the per-sample stride they read it at.
std::vector<std::pair<int, size_t>> Handoff(const std::vector<Op>& ops, size_t split) {
  std::vector<std::pair<int, size_t>> live;
  std::vector<bool> written;
  auto mark = [&](int s) {
    if (s < 0) return;
    if (written.size() <= static_cast<size_t>(s)) written.resize(s + 1, false);
    written[s] = true;
  };
  auto read = [&](int s, size_t bytes) {
    if (s < 0 || (static_cast<size_t>(s) < written.size() && written[s])) return;
    for (const auto& l : live)
      if (l.first == s) return;
    live.emplace_back(s, bytes);
  };
  for (size_t i = split; i < ops.size(); i++) {
    const Op& op = ops[i];
    if (op.kind != OpKind::kQuantize) read(op.in0, InBytes(op));
    if (op.kind == OpKind::kAdd || (op.kind == OpKind::kConv && op.fused_add)) read(op.in1, op.count);
    if (op.kind != OpKind::kDequantize) mark(op.out);
    if (op.kind == OpKind::kConv && op.fused_add) mark(op.out2);
  }
  return live;
}

// The add's kernel parameters (kind add, or a conv's fused add) over `total` elements.
ptq_qadd_params AddParams(const Op& op, size_t total) {
  return ptq_qadd_params{op.scale, op.scale_b, op.scale_out, op.zp, op.zp_b, op.zp_out, op.relu, total};
}

// Quantizes n float input samples into y (the plan's first op), on up to `threads` threads.
// snapshot: y is a queued run's copy of its input, read later on another thread (streamed stores).
void QuantizeInput(const Plan& plan, const Op& op, size_t n, const float* input, uint8_t* y, size_t threads,
                   bool snapshot = false) {
  ThreadPool& pool = ThreadPool::Global();
  if (op.nchw_c) {
    // NCHW float input -> NHWC quint8: each channel plane is quantized by the SIMD kernel
    // (contiguous), then the planes are interleaved.
    const size_t c = op.nchw_c, hw = op.nchw_hw;
    const ptq_quantize_fn quantize = QuantizeKernel(plan.isa);
#if defined(PTQ_X86)
    if (c == 3 && plan.isa == PTQ_ISA_AVX512VNNI) {
      // Pixel chunks of every image over the threads (one image is most of a batch-1 run's input).
      const size_t chunks = (hw + kPixelChunk - 1) / kPixelChunk;
      pool.ParallelFor(n * chunks, threads, [&](size_t t, size_t) {
        const size_t b = t / chunks, p0 = (t % chunks) * kPixelChunk, p1 = p0 + kPixelChunk < hw ? p0 + kPixelChunk : hw;
        ptq_quantize_nchw3_f32_u8_avx512vnni(input + b * 3 * hw + p0, y + (b * hw + p0) * 3, p1 - p0, hw, op.scale, op.zp,
                                             snapshot ? 1 : 0);
      });
      return;
    }
#endif
    pool.ParallelFor(n, threads, [&](size_t b, size_t) {
      thread_local std::vector<uint8_t> planes;
      if (planes.size() < c * hw) planes.resize(c * hw);
      for (size_t ch = 0; ch < c; ch++) quantize(input + (b * c + ch) * hw, planes.data() + ch * hw, 0, hw, op.scale, op.zp);
      uint8_t* dst = y + b * hw * c;
      if (c == 3) {
        const uint8_t *p0 = planes.data(), *p1 = p0 + hw, *p2 = p1 + hw;
        for (size_t p = 0; p < hw; p++, dst += 3) {
          dst[0] = p0[p];
          dst[1] = p1[p];
          dst[2] = p2[p];
        }
      } else {
        for (size_t p = 0; p < hw; p++)
          for (size_t ch = 0; ch < c; ch++) dst[p * c + ch] = planes[ch * hw + p];
      }
    });
  } else {
    const size_t total = op.count * n, chunks = (total + kElemChunk - 1) / kElemChunk;
    const ptq_quantize_fn quantize = QuantizeKernel(plan.isa);
    pool.ParallelFor(chunks, threads, [&](size_t t, size_t) {
      const size_t b = t * kElemChunk, e = b + kElemChunk < total ? b + kElemChunk : total;
      quantize(input, y, b, e, op.scale, op.zp);
    });
  }
}

// Slot s of sample region r.
inline uint8_t* SlotAt(const Plan& plan, int s, size_t r) {
  return plan.arena.get() + plan.slot_offset[s] * plan.regions + r * plan.slot_bytes[s];
}

// Runs op on n samples. A batch (r0 == 0) lies back to back in each slot, at the op's own sizes
// per sample; a single sample (n == 1) may sit in any sample region r0 (slot_bytes apart). input,
// output and qinput (when set: the first op's output, already quantized) point at the first
// sample's.
void RunOp(const Plan& plan, const Op& op, size_t r0, size_t n, const float* input, float* output, size_t threads,
           const uint8_t* qinput = nullptr) {
  ThreadPool& pool = ThreadPool::Global();
  auto slot = [&](int s) -> uint8_t* { return SlotAt(plan, s, r0); };
  switch (op.kind) {
    case OpKind::kQuantize: {
      uint8_t* y = slot(op.out);
      // Quantized on the JS thread when the run was queued (see PlanJob): copy it in.
      if (qinput && &op == &plan.ops.front()) memcpy(y, qinput, op.count * n);
      else QuantizeInput(plan, op, n, input, y, threads);
      return;
    }
    case OpKind::kDequantize: {
      const uint8_t* x = slot(op.in0);
      DequantizeKernel(plan.isa)(x, output, 0, op.count * n, op.scale, op.zp);
      return;
    }
    case OpKind::kConv: {
      if (!op.fused_add) {
        QConvRun(*op.conv, slot(op.in0), n, op.h, op.w, slot(op.out), op.oh, op.ow, threads);
        return;
      }
      const uint8_t* conv_out = slot(op.out);
      const uint8_t* other = slot(op.in1);
      const uint8_t *a = op.conv_is_a ? conv_out : other, *b = op.conv_is_a ? other : conv_out;
      uint8_t* y = slot(op.out2);
      const size_t cout = op.conv->cout;
      const ptq_qadd_params p = AddParams(op, op.count * n);
      const ptq_qadd_fn add = QAddKernel(plan.isa);
      const auto tile_add = [&](size_t pix0, size_t pix1, size_t c0, size_t c1) {
        if (c0 == 0 && c1 == cout) {
          add(a, b, y, pix0 * cout, pix1 * cout, &p);
        } else {
          for (size_t px = pix0; px < pix1; px++) add(a, b, y, px * cout + c0, px * cout + c1, &p);
        }
      };
      const QConvTileFn after(tile_add);
      QConvRun(*op.conv, slot(op.in0), n, op.h, op.w, slot(op.out), op.oh, op.ow, threads, &after);
      return;
    }
    case OpKind::kGemm: {
      const PackedQGemm& g = *op.gemm;
      const size_t m = op.rows * n, nb = (g.w.n + PTQ_GEMM_NR - 1) / PTQ_GEMM_NR;
      const ptq_qgemm_io io{slot(op.in0), g.w.k, slot(op.out), g.w.n};
      const size_t split = nb < threads ? nb : threads;
      pool.ParallelFor(split, threads, [&](size_t t, size_t) { g.kernel(&g.w, &io, 0, m, nb * t / split, nb * (t + 1) / split); });
      return;
    }
    case OpKind::kAdd: {
      const size_t total = op.count * n, chunks = (total + kElemChunk - 1) / kElemChunk;
      const ptq_qadd_params p = AddParams(op, total);
      const uint8_t *a = slot(op.in0), *b = slot(op.in1);
      uint8_t* y = slot(op.out);
      const ptq_qadd_fn add = QAddKernel(plan.isa);
      pool.ParallelFor(chunks, threads, [&](size_t t, size_t) {
        const size_t s = t * kElemChunk, e = s + kElemChunk < total ? s + kElemChunk : total;
        add(a, b, y, s, e, &p);
      });
      return;
    }
    case OpKind::kMeanHW:
      ptq_qmean_hw_u8_scalar(slot(op.in0), slot(op.out), n, op.hw, op.c, op.scale, op.zp);
      return;
    case OpKind::kAdaptiveAvgPool:
      ptq_qadaptive_avgpool_u8_scalar(slot(op.in0), slot(op.out), n, op.hw, op.c,
                                      static_cast<float>(static_cast<double>(op.scale) / op.scale_out / static_cast<double>(op.hw)),
                                      op.zp, op.zp_out);
      return;
    case OpKind::kMaxPool:
      // Over the threads (ResNet-50's 112x112x64 max pool: 0.11 ms on one).
      QMaxPool2dRun(slot(op.in0), slot(op.out), n, op.h, op.w, op.c, op.k, op.stride, op.pad, op.oh, op.ow, threads);
      return;
  }
}

// Runs sample b through ops [0, plan.depth_first_end) in sample region `scratch` on up to
// `threads` threads, then hands the slots the later ops read over to sample b of a batch: at
// b times the stride those ops read it with (a batch op takes its samples back to back).
void RunSampleDepthFirst(const Plan& plan, size_t b, size_t scratch, const float* input, float* output,
                         const uint8_t* qinput, size_t threads) {
  const float* in = input ? input + b * plan.in_floats : nullptr;
  const uint8_t* qin = qinput ? qinput + b * plan.in_floats : nullptr;
  float* out = output + b * plan.out_floats;
  for (size_t i = 0; i < plan.depth_first_end; i++) RunOp(plan, plan.ops[i], scratch, 1, in, out, threads, qin);
  for (const auto& h : plan.handoff)
    memcpy(SlotAt(plan, h.first, 0) + b * h.second, SlotAt(plan, h.first, scratch), h.second);
}

// Runs the plan; false (nothing run) when it has been disposed.
// qinput: the first op already run on the input (see PlanJob), or null.
bool RunPlan(Plan& plan, size_t n, const float* input, float* output, size_t threads, double* op_ns = nullptr,
             const uint8_t* qinput = nullptr) {
  std::lock_guard<std::mutex> lock(plan.mu);
  if (plan.disposed.load()) return false;
  if (threads > ThreadPool::Global().Size()) threads = ThreadPool::Global().Size();
  // Batches run depth first: each thread takes whole samples through ops [0, depth_first_end), so
  // a sample's activations stay in its core's L2 from layer to layer and threads never wait on
  // each other between layers. Thread w keeps the sample it runs in its own scratch region, warm
  // in its cache from sample to sample (in region b, a MobileNetV2 batch of 16 ran 7% slower).
  // The last n % threads samples (if any) go one by one with every thread on each op. The ops
  // from depth_first_end on, whose weights outweigh a sample's activations (ResNet's layer3 and
  // layer4, the classifier), then run layer by layer on the whole batch: each weight panel is
  // read from memory once per batch, not once per sample. Small models and profiling (it times
  // ops) keep the layer-by-layer order throughout.
  const size_t nops = plan.ops.size();
  size_t split = 0;
  if (!op_ns && plan.depth_first_end > 0 && n >= 2 && n >= threads) {
    const size_t first = n - n % threads;
    split = plan.depth_first_end;
    ThreadPool::Global().ParallelFor(first, threads, [&](size_t b, size_t worker) {
      RunSampleDepthFirst(plan, b, plan.max_batch + worker, input, output, qinput, 1);
    });
    for (size_t b = first; b < n; b++) RunSampleDepthFirst(plan, b, plan.max_batch, input, output, qinput, threads);
  }
  for (size_t i = split; i < nops; i++) {
    const auto t0 = std::chrono::steady_clock::now();
    RunOp(plan, plan.ops[i], 0, n, input, output, threads, qinput);
    if (op_ns) op_ns[i] += std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
  }
  return true;
}

constexpr const char* kDisposed = "the plan has been disposed";

size_t Num(Napi::Object o, const char* key, Napi::Env env, size_t max = (1ull << 32)) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) ThrowType(env, Cat("plan op field '", key, "' must be a number"));
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= static_cast<double>(max)) || d != static_cast<double>(static_cast<size_t>(d)))
    ThrowRange(env, Cat("plan op field '", key, "' out of range: ", d));
  return static_cast<size_t>(d);
}

float Flt(Napi::Object o, const char* key, Napi::Env env) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) ThrowType(env, Cat("plan op field '", key, "' must be a number"));
  const float f = static_cast<float>(v.As<Napi::Number>().DoubleValue());
  if (!(f > 0.0f) || !(f < 3.4e38f)) ThrowRange(env, Cat("plan op field '", key, "' must be a positive float32"));
  return f;
}

int SlotOf(Napi::Object o, const char* key, Napi::Env env, size_t nslots) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) ThrowType(env, Cat("plan op field '", key, "' must be a slot index"));
  const double d = v.As<Napi::Number>().DoubleValue();
  if (d != static_cast<double>(static_cast<int>(d))) ThrowRange(env, Cat("bad slot ", d));  // NaN, fractions, huge
  const int s = static_cast<int>(d);
  if (s != kInput && s != kOutput && (s < 0 || static_cast<size_t>(s) >= nslots)) ThrowRange(env, Cat("bad slot ", s));
  return s;
}

// The operands' qparams of an add (kind "add", or the add fused into a conv).
void ReadAddParams(Napi::Object o, Napi::Env env, Op* op) {
  op->scale = Flt(o, "aScale", env);
  op->scale_b = Flt(o, "bScale", env);
  op->scale_out = Flt(o, "outScale", env);
  op->zp = static_cast<int32_t>(Num(o, "aZeroPoint", env, 255));
  op->zp_b = static_cast<int32_t>(Num(o, "bZeroPoint", env, 255));
  op->zp_out = static_cast<int32_t>(Num(o, "outZeroPoint", env, 255));
  op->relu = o.Get("relu").ToBoolean().Value() ? 1 : 0;
}

// planCreate(ops, slotBytes number[] (per sample), maxBatch, inFloats, outFloats, isa) -> External<Plan>
Napi::Value PlanCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 6 || !info[0].IsArray() || !info[1].IsArray()) ThrowType(env, "planCreate(ops, slotBytes, maxBatch, inFloats, outFloats, isa)");
  auto plan = std::make_unique<Plan>();
  plan->isa = ArgIsa(info, 5);
  Napi::Array slots = info[1].As<Napi::Array>();
  plan->max_batch = ArgSize(info, 2, "maxBatch", 1u << 16);
  if (plan->max_batch == 0) ThrowRange(env, "maxBatch must be positive");
  plan->in_floats = ArgSize(info, 3, "inFloats", 1u << 30);
  plan->out_floats = ArgSize(info, 4, "outFloats", 1u << 30);
  size_t off = 0;
  for (uint32_t i = 0; i < slots.Length(); i++) {
    Napi::Value v = slots.Get(i);
    if (!v.IsNumber()) ThrowType(env, "slotBytes must be numbers");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!(d > 0 && d < 1e12)) ThrowRange(env, "slot sizes must be positive");
    const size_t b = (static_cast<size_t>(d) + 63) / 64 * 64;
    plan->slot_offset.push_back(off);
    plan->slot_bytes.push_back(static_cast<size_t>(d));
    off += b;
  }
  const size_t nslots = plan->slot_bytes.size();
  Napi::Array ops = info[0].As<Napi::Array>();
  auto need = [&](int s, size_t bytes, const char* what) {
    if (s == kInput) {
      if (bytes != plan->in_floats * 4) ThrowRange(env, Cat(what, ": input size mismatch"));
    } else if (s == kOutput) {
      if (bytes != plan->out_floats * 4) ThrowRange(env, Cat(what, ": output size mismatch"));
    } else if (plan->slot_bytes[s] < bytes) {
      ThrowRange(env, Cat(what, ": slot ", s, " holds ", plan->slot_bytes[s], " bytes per sample, op needs ", bytes));
    }
  };
  for (uint32_t i = 0; i < ops.Length(); i++) {
    if (!ops.Get(i).IsObject()) ThrowType(env, "plan ops must be objects");
    Napi::Object o = ops.Get(i).As<Napi::Object>();
    const std::string kind = o.Get("kind").ToString().Utf8Value();
    Op op;
    op.in0 = SlotOf(o, "in0", env, nslots);
    op.out = SlotOf(o, "out", env, nslots);
    if (kind == "quantize") {
      op.kind = OpKind::kQuantize;
      op.count = Num(o, "count", env);
      op.scale = Flt(o, "scale", env);
      op.zp = static_cast<int32_t>(Num(o, "zeroPoint", env, 255));
      op.nchw_c = Num(o, "nchwC", env);
      op.nchw_hw = Num(o, "nchwHW", env);
      if (op.in0 != kInput || op.out < 0) ThrowRange(env, "quantize reads the plan input into a slot");
      if (op.nchw_c && op.nchw_c * op.nchw_hw != op.count) ThrowRange(env, "quantize: nchwC * nchwHW must equal count");
      need(op.in0, op.count * 4, "quantize");
      need(op.out, op.count, "quantize");
    } else if (kind == "dequantize") {
      op.kind = OpKind::kDequantize;
      op.count = Num(o, "count", env);
      op.scale = Flt(o, "scale", env);
      op.zp = static_cast<int32_t>(Num(o, "zeroPoint", env, 255));
      if (op.out != kOutput || op.in0 < 0) ThrowRange(env, "dequantize writes a slot into the plan output");
      need(op.in0, op.count, "dequantize");
      need(op.out, op.count * 4, "dequantize");
    } else if (kind == "conv") {
      op.kind = OpKind::kConv;
      Napi::Value hv = o.Get("handle");
      op.conv = HandleOf<PackedQConv>(env, hv, &kQConvTag, "conv op needs the packed conv handle");
      op.h = Num(o, "h", env, 1u << 20);
      op.w = Num(o, "w", env, 1u << 20);
      if (!QConvOutSize(*op.conv, op.h, op.w, &op.oh, &op.ow)) ThrowRange(env, "conv: input smaller than the kernel");
      if (op.in0 < 0 || op.out < 0) ThrowRange(env, "conv reads and writes slots");
      need(op.in0, op.h * op.w * op.conv->cin, "conv");
      need(op.out, op.oh * op.ow * op.conv->cout, "conv");
      if (o.Has("addOut")) {
        // Residual add fused into the conv (the add's operands as for kind "add").
        op.fused_add = true;
        op.in1 = SlotOf(o, "in1", env, nslots);
        op.out2 = SlotOf(o, "addOut", env, nslots);
        op.conv_is_a = o.Get("convIsA").ToBoolean().Value();
        ReadAddParams(o, env, &op);
        // The add writes tiles while the conv still reads its input, so out2 may not be the conv
        // input; it may be the conv output (in place: each tile is read, then written, by one add).
        if (op.in1 < 0 || op.out2 < 0 || op.out2 == op.in0 || op.in1 == op.out)
          ThrowRange(env, "conv+add: the add output needs a slot apart from the conv's input, and the other operand may not be the conv output");
        op.count = op.oh * op.ow * op.conv->cout;
        need(op.in1, op.count, "conv+add");
        need(op.out2, op.count, "conv+add");
      }
      plan->keep.push_back(Napi::Persistent(hv));
    } else if (kind == "gemm") {
      op.kind = OpKind::kGemm;
      Napi::Value hv = o.Get("handle");
      op.gemm = HandleOf<PackedQGemm>(env, hv, &kQGemmTag, "gemm op needs the packed gemm handle");
      op.rows = Num(o, "rows", env, 1u << 24);
      if (op.in0 < 0 || op.out < 0) ThrowRange(env, "gemm reads and writes slots");
      need(op.in0, op.rows * op.gemm->w.k, "gemm");
      need(op.out, op.rows * op.gemm->w.n, "gemm");
      plan->keep.push_back(Napi::Persistent(hv));
    } else if (kind == "add") {
      op.kind = OpKind::kAdd;
      op.in1 = SlotOf(o, "in1", env, nslots);
      op.count = Num(o, "count", env);
      ReadAddParams(o, env, &op);
      if (op.in0 < 0 || op.in1 < 0 || op.out < 0) ThrowRange(env, "add reads and writes slots");
      need(op.in0, op.count, "add");
      need(op.in1, op.count, "add");
      need(op.out, op.count, "add");
    } else if (kind == "mean" || kind == "aap") {
      op.kind = kind == "mean" ? OpKind::kMeanHW : OpKind::kAdaptiveAvgPool;
      op.hw = Num(o, "hw", env, 1u << 24);
      op.c = Num(o, "c", env, 1u << 24);
      op.scale = Flt(o, "scale", env);
      op.zp = static_cast<int32_t>(Num(o, "zeroPoint", env, 255));
      op.scale_out = kind == "aap" ? Flt(o, "outScale", env) : op.scale;
      op.zp_out = kind == "aap" ? static_cast<int32_t>(Num(o, "outZeroPoint", env, 255)) : op.zp;
      if (op.hw == 0 || op.in0 < 0 || op.out < 0) ThrowRange(env, "mean reads and writes slots, hw > 0");
      need(op.in0, op.hw * op.c, "mean");
      need(op.out, op.c, "mean");
    } else if (kind == "maxpool") {
      op.kind = OpKind::kMaxPool;
      op.h = Num(o, "h", env, 1u << 20);
      op.w = Num(o, "w", env, 1u << 20);
      op.c = Num(o, "c", env, 1u << 24);
      op.k = Num(o, "k", env, 1024);
      op.stride = Num(o, "stride", env, 1024);
      op.pad = Num(o, "pad", env, 1024);
      if (op.k == 0 || op.stride == 0 || 2 * op.pad > op.k || op.h + 2 * op.pad < op.k || op.w + 2 * op.pad < op.k)
        ThrowRange(env, "maxpool: bad geometry");
      op.oh = (op.h + 2 * op.pad - op.k) / op.stride + 1;
      op.ow = (op.w + 2 * op.pad - op.k) / op.stride + 1;
      if (op.in0 < 0 || op.out < 0) ThrowRange(env, "maxpool reads and writes slots");
      need(op.in0, op.h * op.w * op.c, "maxpool");
      need(op.out, op.oh * op.ow * op.c, "maxpool");
    } else {
      ThrowRange(env, Cat("unknown plan op kind '", kind, "'"));
    }
    plan->ops.push_back(op);
  }
  if (plan->ops.empty() || plan->ops.front().kind != OpKind::kQuantize || plan->ops.back().kind != OpKind::kDequantize)
    ThrowRange(env, "a plan starts with quantize and ends with dequantize");
  size_t input_readers = 0;
  for (const Op& op : plan->ops) input_readers += op.in0 == kInput || op.in1 == kInput;
  plan->prequantize = input_readers == 1 && plan->ops.front().in0 == kInput && plan->ops.front().count == plan->in_floats;
  if (off >= kDepthFirstMinBytes && plan->max_batch >= 2) {
    plan->depth_first_end = DepthFirstEnd(plan->ops);
    plan->handoff = Handoff(plan->ops, plan->depth_first_end);
  }
  plan->regions = plan->max_batch + (plan->depth_first_end ? ThreadPool::Global().Size() : 0);
  if (off > kMaxArenaBytes / plan->regions)
    ThrowRange(env, Cat("the activation arena would need ", static_cast<double>(off) * plan->regions, " bytes (limit ", kMaxArenaBytes, ")"));
  plan->arena_bytes = off * plan->regions;
  // Not written here: every slot is written before it is read, and untouched regions (a batch
  // smaller than maxBatch) then cost no memory.
  plan->arena = AllocArena(plan->arena_bytes);
  const int64_t bytes = static_cast<int64_t>(plan->arena_bytes);
  auto ext = Napi::External<Plan>::New(env, plan.release(), [](Napi::Env e, Plan* p) {
    Napi::MemoryManagement::AdjustExternalMemory(e, -static_cast<int64_t>(p->arena_bytes));
    delete p;
  });
  TagHandle(env, ext, &kPlanTag);
  Napi::MemoryManagement::AdjustExternalMemory(env, bytes);
  return ext;
}

struct RunArgs {
  Plan* plan;
  const float* in;
  float* out;
  size_t n, threads;
};

RunArgs ParseRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5) ThrowType(env, "planRun(plan, input, n, output, threads)");
  RunArgs r{};
  r.plan = HandleOf<Plan>(env, info[0], &kPlanTag, "plan must be the handle returned by planCreate");
  if (r.plan->disposed.load()) throw Napi::Error::New(env, kDisposed);
  auto in = ArgArray<float>(info, 1, "input", napi_float32_array, "Float32Array");
  r.n = ArgSize(info, 2, "n", r.plan->max_batch);
  auto out = ArgArray<float>(info, 3, "output", napi_float32_array, "Float32Array");
  r.threads = ArgSize(info, 4, "threads", 1024);
  if (r.n == 0) ThrowRange(env, "n must be positive");
  if (r.threads == 0) r.threads = ThreadPool::Global().Size();
  if (in.ElementLength() != r.n * r.plan->in_floats) ThrowRange(env, Cat("input must have ", r.n * r.plan->in_floats, " floats"));
  if (out.ElementLength() != r.n * r.plan->out_floats) ThrowRange(env, Cat("output must have ", r.n * r.plan->out_floats, " floats"));
  CheckDisjoint(env, in, "input", out, "output");
  r.in = in.Data();
  r.out = out.Data();
  return r;
}

Napi::Value PlanRunSync(const Napi::CallbackInfo& info) {
  RunArgs r = ParseRun(info);
  if (!RunPlan(*r.plan, r.n, r.in, r.out, r.threads)) throw Napi::Error::New(info.Env(), kDisposed);
  return info.Env().Undefined();
}

// One queued run: its own copies of the input and output, so JS may detach, transfer or resize
// the caller's buffers (or write to a shared one) while the run is in flight without the runner
// ever touching freed or foreign memory. The output is copied back on the JS thread, if the
// output view still has its length. When only the first op (a quantize) reads the input, the
// snapshot is that op's output, made on the JS thread when the run is queued: a quarter of the
// bytes of a float copy (64 runs queued in one tick copied 38 MB and held the event loop for
// 4-14 ms). Created and destroyed on the JS thread.
struct PlanJob {
  PlanJob(Napi::Env env, const RunArgs& r, const Napi::CallbackInfo& info)
      : args(r), deferred(Napi::Promise::Deferred::New(env)), out(r.plan->TakeIo(1)) {
    const size_t in_count = r.n * r.plan->in_floats;
    if (r.plan->prequantize) {
      qin = r.plan->TakeQin();
      qin.resize(in_count + 63);  // reuses a recycled vector's memory
      // 64-byte aligned, so the snapshot is written with whole-line streaming stores.
      qin_at = qin.data() + (64 - reinterpret_cast<uintptr_t>(qin.data()) % 64) % 64;
      QuantizeInput(*r.plan, r.plan->ops.front(), r.n, r.in, qin_at, 1, /*snapshot=*/true);
    } else {
      in = r.plan->TakeIo(0);
      in.assign(r.in, r.in + in_count);
    }
    out.resize(r.n * r.plan->out_floats);
    plan_ref = Napi::Persistent(info[0]);  // keeps the plan alive until the job is done
    out_ref = Napi::Persistent(info[3]);
  }
  ~PlanJob() {
    if (args.plan->prequantize) args.plan->GiveQin(std::move(qin));
    else args.plan->GiveIo(0, std::move(in));
    args.plan->GiveIo(1, std::move(out));
  }
  // Runs on the runner's thread; never throws (the runner must go on with the queue).
  void Run() {
    try {
      if (!(args.plan->prequantize ? RunPlan(*args.plan, args.n, nullptr, out.data(), args.threads, nullptr, qin_at)
                                   : RunPlan(*args.plan, args.n, in.data(), out.data(), args.threads)))
        error = kDisposed;
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  // Back on the JS thread: settles the promise.
  void Settle(Napi::Env env) {
    if (!error.empty()) {
      deferred.Reject(Napi::Error::New(env, error).Value());
      return;
    }
    Napi::Value v = out_ref.Value();
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array ||
        v.As<Napi::Float32Array>().ElementLength() != out.size()) {
      deferred.Reject(Napi::Error::New(env, "the output buffer was detached or resized during the run").Value());
      return;
    }
    memcpy(v.As<Napi::Float32Array>().Data(), out.data(), out.size() * sizeof(float));
    deferred.Resolve(env.Undefined());
  }

  RunArgs args;
  Napi::Promise::Deferred deferred;
  std::vector<float> in, out;
  std::vector<uint8_t> qin;
  uint8_t* qin_at = nullptr;  // the snapshot: qin's first 64-byte aligned byte
  Napi::Reference<Napi::Value> plan_ref, out_ref;
  std::string error;  // set by Run when the run failed
};

// Drains a plan's queue of runs on one libuv thread, in order, settling each run's promise as it
// finishes. One runner per plan drains at a time: runs of a plan go one at a time anyway (one
// arena), and 64 runs queued as 64 libuv work items had taken every libuv thread (fs, dns,
// crypto and zlib calls then waited behind the runs), with the threads blocked on the plan
// taking turns at the cores against the JS thread (event-loop lag: median 3.1-3.3 ms per burst
// of 64 runs; 0.6-0.8 ms with one runner).
class PlanRunner : public Napi::AsyncProgressQueueWorker<PlanJob*> {
 public:
  PlanRunner(Napi::Env env, Plan* plan, Napi::Value handle)
      : Napi::AsyncProgressQueueWorker<PlanJob*>(env, "ptq:planRun"), plan_(plan), plan_ref_(Napi::Persistent(handle)) {}
  void Execute(const ExecutionProgress& progress) override {
    auto nice = std::make_unique<ScopedRunNice>();  // the JS thread first, as with the pool's workers
    for (PlanJob* job = Next(); job;) {
      job->Run();
      PlanJob* next = Next();
      if (!next) nice.reset();  // back to the thread's own priority before the last promise settles
      progress.Send(&job, 1);
      job = next;
    }
  }
  void OnProgress(PlanJob* const* jobs, size_t count) override {
    for (size_t i = 0; i < count; i++) {
      std::unique_ptr<PlanJob> job(jobs[i]);
      try {
        job->Settle(Env());
      } catch (const Napi::Error&) {
        // JS cannot run any more (a worker thread being terminated): nobody is left to tell. Had
        // the error gone on, node-addon-api would rethrow it from a C callback and abort.
      }
    }
  }

 private:
  // The next queued run, or null after marking the plan idle (the next run() starts a new runner).
  PlanJob* Next() {
    std::lock_guard<std::mutex> l(plan_->queue_mu);
    if (plan_->queue.empty()) {
      plan_->draining = false;
      return nullptr;
    }
    PlanJob* job = plan_->queue.front();
    plan_->queue.pop_front();
    return job;
  }

  Plan* plan_;
  Napi::Reference<Napi::Value> plan_ref_;  // the plan outlives its runner
};

Napi::Value PlanRun(const Napi::CallbackInfo& info) {
  RunArgs r = ParseRun(info);
  auto* job = new PlanJob(info.Env(), r, info);
  Napi::Promise promise = job->deferred.Promise();
  bool start;
  {
    std::lock_guard<std::mutex> l(r.plan->queue_mu);
    r.plan->queue.push_back(job);
    start = !r.plan->draining;
    r.plan->draining = true;
  }
  if (start) {
    try {
      (new PlanRunner(info.Env(), r.plan, info[0]))->Queue();
    } catch (...) {
      std::lock_guard<std::mutex> l(r.plan->queue_mu);  // no runner: take the job back
      r.plan->queue.pop_back();
      r.plan->draining = false;
      delete job;
      throw;
    }
  }
  return promise;
}

// planProfile(plan, input, n, output, threads, reps) -> Float64Array of mean ns per op
Napi::Value PlanProfile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 6) ThrowType(env, "planProfile(plan, input, n, output, threads, reps)");
  const size_t reps = ArgSize(info, 5, "reps", 1u << 20);
  RunArgs r = ParseRun(info);
  auto out = Napi::Float64Array::New(env, r.plan->ops.size());
  std::vector<double> ns(r.plan->ops.size(), 0.0);
  for (size_t i = 0; i < reps; i++)
    if (!RunPlan(*r.plan, r.n, r.in, r.out, r.threads, ns.data())) throw Napi::Error::New(env, kDisposed);
  for (size_t i = 0; i < ns.size(); i++) out[i] = reps ? ns[i] / reps : 0.0;
  return out;
}

Napi::Value PlanInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1) ThrowType(env, "planInfo(plan)");
  const Plan& p = *HandleOf<Plan>(env, info[0], &kPlanTag, "plan must be the handle returned by planCreate");
  if (p.disposed.load()) throw Napi::Error::New(env, kDisposed);
  Napi::Object o = Napi::Object::New(env);
  o.Set("ops", static_cast<double>(p.ops.size()));
  o.Set("arenaBytes", static_cast<double>(p.arena_bytes));
  o.Set("maxBatch", static_cast<double>(p.max_batch));
  o.Set("depthFirstOps", static_cast<double>(p.depth_first_end));
  o.Set("poolThreads", static_cast<double>(ThreadPool::Global().Size()));
  return o;
}

// planDispose(plan): frees the arena and releases the packed weights now instead of at GC. Waits for
// the run in progress (if any) to finish; runs queued after it reject, later calls throw.
// Idempotent. The handle itself (a few bytes) is freed by GC as before.
Napi::Value PlanDispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1) ThrowType(env, "planDispose(plan)");
  Plan& p = *HandleOf<Plan>(env, info[0], &kPlanTag, "plan must be the handle returned by planCreate");
  std::lock_guard<std::mutex> lock(p.mu);
  if (p.disposed.load()) return env.Undefined();
  p.disposed.store(true);
  p.ops.clear();
  p.arena.reset();
  for (auto& ref : p.keep) ref.Reset();
  p.keep.clear();
  Napi::MemoryManagement::AdjustExternalMemory(env, -static_cast<int64_t>(p.arena_bytes));
  p.arena_bytes = 0;
  return env.Undefined();
}

}  // namespace

void RegisterPlan(Napi::Env env, Napi::Object exports) {
  exports.Set("planCreate", Napi::Function::New(env, PlanCreate, "planCreate"));
  exports.Set("planRunSync", Napi::Function::New(env, PlanRunSync, "planRunSync"));
  exports.Set("planRun", Napi::Function::New(env, PlanRun, "planRun"));
  exports.Set("planInfo", Napi::Function::New(env, PlanInfo, "planInfo"));
  exports.Set("planProfile", Napi::Function::New(env, PlanProfile, "planProfile"));
  exports.Set("planDispose", Napi::Function::New(env, PlanDispose, "planDispose"));
}

}  // namespace ptq
