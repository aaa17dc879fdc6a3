// Intra-op thread pool (baseline code). One process-wide pool; parallel regions are serialized so
// that several runs in flight never use more threads than the pool has (no oversubscription).
// Each taking-part thread first runs its own contiguous range of tasks (claimed with an atomic
// counter), then helps with the others; idle workers spin briefly before sleeping, because a
// model runs dozens of short regions back to back and waking a sleeping thread costs more than
// most of them.
#ifndef PTQ_THREADPOOL_H_
#define PTQ_THREADPOOL_H_

#include <stddef.h>
#include <stdint.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "function_ref.h"

namespace ptq {

// How a GEMM's 16-column blocks are shared out when there are too few row tasks (fewer than
// 2 x threads) to keep the threads busy: in whole pairs of blocks (the kernels' widest tile is 32
// columns; a lone block runs the 16-wide tile at half speed), at most max_parts parts. parts == 1
// when the rows alone give enough tasks.
struct ColumnSplit {
  size_t blocks, pairs, parts;
  ColumnSplit(size_t nb, size_t row_tasks, size_t threads, size_t max_parts)
      : blocks(nb), pairs((nb + 1) / 2),
        parts(row_tasks < 2 * threads && pairs >= 2 ? (pairs < max_parts ? pairs : max_parts) : 1) {}
  size_t Begin(size_t part) const { return 2 * (pairs * part / parts); }
  size_t End(size_t part) const {
    const size_t e = 2 * (pairs * (part + 1) / parts);
    return e < blocks ? e : blocks;
  }
};

class ThreadPool {
 public:
  // The process-wide pool, created on first use with hardware_concurrency() threads.
  static ThreadPool& Global();
  explicit ThreadPool(size_t threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Runs fn(task, worker) for task in [0, tasks) on at most max_threads threads (the caller
  // included), returning when all tasks are done.
  void ParallelFor(size_t tasks, size_t max_threads, FunctionRef<void(size_t, size_t)> fn);
  size_t Size() const { return workers_.size() + 1; }

 private:
  // Tasks are split into one contiguous range per taking-part thread: thread j runs range j in
  // order, then helps with the others. Consecutive ops split the same way (pixel tiles), so each
  // core mostly reads what it wrote itself, from its own L2; stealing keeps a late thread from
  // stalling the region.
  static constexpr size_t kMaxParts = 64;
  struct alignas(64) Range {
    std::atomic<size_t> next{0};
    size_t end = 0;
  };
  struct Region {
    const FunctionRef<void(size_t, size_t)>* fn;
    size_t tasks;
    size_t max_worker_index;  // workers 1..max_worker_index take part
    size_t parts;             // max_worker_index + 1 ranges
    bool background;          // an async run's region: the threads yield to the JS thread after it
    Range range[kMaxParts];
    std::atomic<size_t> done{0};
  };
  void WorkerLoop(size_t index);
  static void Drain(Region* r, size_t index);

  std::vector<std::thread> workers_;
  std::mutex region_mu_;  // one parallel region at a time
  std::mutex m_;          // guards sleeping on cv_
  std::condition_variable cv_;
  std::atomic<Region*> region_{nullptr};
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> busy_{0};
  std::atomic<bool> stop_{false};
  size_t started_ = 0;  // workers past their start-up (renice), under m_
};

// While in scope, the calling thread runs PTQ_WORKER_NICE (default 5) nice levels lower, like the
// pool's workers, and the parallel regions it starts end with a yield to the JS thread (see
// YieldToJs in threadpool.cc): the libuv thread that drains a plan's queued runs had competed with
// the JS thread on equal terms (bursts of 64 runs in flight, A/B: the event loop was held over
// 5 ms in 7 % of 120 bursts with the renice, 14 % of 90 without).
// The renice is Linux only, and only where the thread may raise its priority back afterwards
// (CAP_SYS_NICE or RLIMIT_NICE): otherwise it does nothing, so no libuv thread stays lowered.
class ScopedRunNice {
 public:
  ScopedRunNice();
  ~ScopedRunNice();
  ScopedRunNice(const ScopedRunNice&) = delete;
  ScopedRunNice& operator=(const ScopedRunNice&) = delete;

 private:
  bool lowered_ = false;
  int nice_ = 0;
};

}  // namespace ptq

#endif  // PTQ_THREADPOOL_H_
