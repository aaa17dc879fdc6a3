// Intra-op thread pool: regions are published through an atomic pointer and a generation counter;
// tasks are claimed with fetch_add, own range first; the caller drains tasks too and waits for the workers to let
// go of the region before returning (so the region can live on the caller's stack).
#include "threadpool.h"

#include <chrono>

#if defined(__linux__)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sched.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PTQ_PAUSE() _mm_pause()
#else
#define PTQ_PAUSE() std::this_thread::yield()
#endif

namespace ptq {

namespace {
constexpr int kSpin = 20000;  // ~0.1-0.5 ms of pause instructions before a worker sleeps

#if defined(__linux__)
// PTQ_WORKER_NICE: 0-19 nice levels for the workers (default 5), read once.
int NiceDelta() {
  static const int delta = [] {
    if (const char* env = getenv("PTQ_WORKER_NICE")) {
      char* end = nullptr;
      const long v = strtol(env, &end, 10);
      if (end != env && *end == '\0' && v >= 0 && v <= 19) return static_cast<int>(v);
    }
    return 5;
  }();
  return delta;
}

// True when this thread may set its nice back to `nice` after raising it: CAP_SYS_NICE in the
// effective set, or RLIMIT_NICE allowing it (the lowest nice it permits is 20 - rlim_cur).
bool CanReturnToNice(int nice) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NICE, &rl) == 0 && (rl.rlim_cur == RLIM_INFINITY || 20 - static_cast<long>(rl.rlim_cur) <= nice))
    return true;
  static const bool cap_sys_nice = [] {
    FILE* f = fopen("/proc/self/status", "r");
    if (!f) return false;
    char line[256];
    unsigned long long caps = 0;
    bool found = false;
    while (fgets(line, sizeof line, f))
      if (strncmp(line, "CapEff:", 7) == 0) found = sscanf(line + 7, "%llx", &caps) == 1;
    fclose(f);
    return found && (caps >> 23 & 1);  // CAP_SYS_NICE
  }();
  return cap_sys_nice;
}
#endif

// True on a thread that runs async runs (in ScopedRunNice): its regions give way to the JS
// thread, see YieldToJs.
thread_local bool tls_background = false;

// Called after each parallel region of an async run, on every thread that took part: at most
// every 100 us, lets a thread that is waiting for this core run (sched_yield does nothing when
// none is). The JS thread that wakes for a timer while every core computes is not always let in
// at once: after it ran for a while (64 run() calls queued in one tick) it waits until it is owed
// time again, and the kernel only checks that at its tick (4 ms at HZ=250), so it waited up to
// 4-5 ms. Bursts of 64 runs, A/B: event-loop lag p90 3.1-3.9 -> 1.2-1.6 ms, max 5.1-6.3 ->
// 3.8-4.4 ms; throughput unchanged.
void YieldToJs() {
#if defined(__linux__)
  if (NiceDelta() == 0) return;  // PTQ_WORKER_NICE=0: the workers compete as equals
  thread_local std::chrono::steady_clock::time_point last;
  const auto now = std::chrono::steady_clock::now();
  if (now - last < std::chrono::microseconds(100)) return;
  last = now;
  sched_yield();
#endif
}
}  // namespace

ScopedRunNice::ScopedRunNice() {
  tls_background = true;  // whether or not the nice can change: the yields need no privilege
#if defined(__linux__)
  const int delta = NiceDelta();
  if (delta == 0) return;
  errno = 0;
  const int now = getpriority(PRIO_PROCESS, 0);
  if (errno != 0 || now >= 19 || !CanReturnToNice(now)) return;
  if (setpriority(PRIO_PROCESS, 0, now + delta < 19 ? now + delta : 19) == 0) {
    lowered_ = true;
    nice_ = now;
  }
#endif
}

ScopedRunNice::~ScopedRunNice() {
  tls_background = false;
#if defined(__linux__)
  if (lowered_) setpriority(PRIO_PROCESS, 0, nice_);
#endif
}

ThreadPool& ThreadPool::Global() {
  static ThreadPool* pool = new ThreadPool(std::thread::hardware_concurrency() ? std::thread::hardware_concurrency() : 1);
  return *pool;  // intentionally leaked: workers must outlive every addon instance at exit
}

ThreadPool::ThreadPool(size_t threads) {
  for (size_t i = 1; i < threads; i++) workers_.emplace_back([this, i] { WorkerLoop(i); });
  // The pool is ready once every worker runs at its priority (on a loaded machine a thread can
  // start well after it is created, and its first regions would run un-reniced).
  std::unique_lock<std::mutex> l(m_);
  cv_.wait(l, [&] { return started_ == workers_.size(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> l(m_);
    stop_.store(true);
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::Drain(Region* r, size_t index) {
  for (size_t i = 0; i < r->parts; i++) {
    Range& range = r->range[(index + i) % r->parts];
    for (;;) {
      const size_t t = range.next.fetch_add(1, std::memory_order_relaxed);
      if (t >= range.end) break;
      (*r->fn)(t, index);
      r->done.fetch_add(1, std::memory_order_release);
    }
  }
}

void ThreadPool::WorkerLoop(size_t index) {
  // Workers run PTQ_WORKER_NICE (default 5) nice levels below the nice they inherited: when runs
  // are in flight on every core, the JS thread that wakes for a timer or an I/O event gets a core
  // at once instead of after a time slice (64 queued runs held the event loop 3-10 ms; 2-4 now).
  // Idle machine: no difference. The price: when other busy processes share the cores, the
  // workers get less of them (PTQ_WORKER_NICE=0 turns this off). Linux applies it to this thread
  // only (elsewhere it would renice the process: not done there).
#if defined(__linux__)
  const int delta = NiceDelta();
  errno = 0;
  const int nice_now = getpriority(PRIO_PROCESS, 0);
  if (delta > 0 && errno == 0) setpriority(PRIO_PROCESS, 0, nice_now + delta < 19 ? nice_now + delta : 19);
#endif
  {
    std::lock_guard<std::mutex> l(m_);
    started_++;
  }
  cv_.notify_all();
  uint64_t seen = 0;
  for (;;) {
    uint64_t g = generation_.load(std::memory_order_acquire);
    for (int i = 0; i < kSpin && g == seen && !stop_.load(std::memory_order_relaxed); i++) {
      PTQ_PAUSE();
      g = generation_.load(std::memory_order_acquire);
    }
    if (g == seen) {
      std::unique_lock<std::mutex> l(m_);
      cv_.wait(l, [&] {
        g = generation_.load(std::memory_order_acquire);
        return stop_.load() || g != seen;
      });
    }
    if (stop_.load()) return;
    seen = g;
    busy_.fetch_add(1, std::memory_order_acq_rel);
    Region* r = region_.load(std::memory_order_acquire);
    bool background = false;
    // Only a region of this generation, and only if this worker is asked to help.
    if (r && generation_.load(std::memory_order_acquire) == g && index <= r->max_worker_index) {
      background = r->background;
      Drain(r, index);
    }
    busy_.fetch_sub(1, std::memory_order_acq_rel);  // r may be gone from here on
    if (background) YieldToJs();
  }
}

void ThreadPool::ParallelFor(size_t tasks, size_t max_threads, FunctionRef<void(size_t, size_t)> fn) {
  if (tasks == 0) return;
  if (max_threads <= 1 || tasks == 1 || workers_.empty()) {
    for (size_t t = 0; t < tasks; t++) fn(t, 0);
    if (tls_background) YieldToJs();
    return;
  }
  std::lock_guard<std::mutex> serialize(region_mu_);
  Region r;
  r.fn = &fn;
  r.tasks = tasks;
  r.background = tls_background;
  r.max_worker_index = max_threads - 1 < workers_.size() ? max_threads - 1 : workers_.size();
  if (r.max_worker_index >= kMaxParts) r.max_worker_index = kMaxParts - 1;
  r.parts = r.max_worker_index + 1 < tasks ? r.max_worker_index + 1 : tasks;
  for (size_t j = 0; j < r.parts; j++) {
    r.range[j].next.store(tasks * j / r.parts, std::memory_order_relaxed);
    r.range[j].end = tasks * (j + 1) / r.parts;
  }
  region_.store(&r, std::memory_order_release);
  {
    std::lock_guard<std::mutex> l(m_);  // sleepers check the generation under m_: no lost wake-up
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  cv_.notify_all();
  Drain(&r, 0);
  while (r.done.load(std::memory_order_acquire) < tasks) PTQ_PAUSE();
  region_.store(nullptr, std::memory_order_release);
  // A worker that picked up the pointer may still be inside Drain (finding no task): wait for it.
  while (busy_.load(std::memory_order_acquire) != 0) PTQ_PAUSE();
  if (tls_background) YieldToJs();
}

}  // namespace ptq
