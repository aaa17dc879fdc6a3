// Intra-op thread pool (baseline code). One process-wide pool; parallel regions are serialized so
// that several runs in flight never use more threads than the pool has (no oversubscription).
#ifndef PTQ_THREADPOOL_H_
#define PTQ_THREADPOOL_H_

#include <stddef.h>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ptq {

class ThreadPool {
 public:
  // The process-wide pool, created on first use with hardware_concurrency() threads.
  static ThreadPool& Global();
  explicit ThreadPool(size_t threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Runs fn(task, worker) for task in [0, tasks) on at most max_threads threads (the caller
  // included), returning when all tasks are done. Tasks are handed out dynamically.
  void ParallelFor(size_t tasks, size_t max_threads, const std::function<void(size_t, size_t)>& fn);
  size_t Size() const { return workers_.size() + 1; }

 private:
  void WorkerLoop(size_t index);
  std::vector<std::thread> workers_;
  std::mutex region_;  // one parallel region at a time
  std::mutex m_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(size_t, size_t)>* fn_ = nullptr;
  size_t tasks_ = 0, next_ = 0, finished_ = 0, active_workers_ = 0, generation_ = 0, busy_ = 0;
  bool stop_ = false;
};

}  // namespace ptq

#endif  // PTQ_THREADPOOL_H_
