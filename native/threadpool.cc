// Intra-op thread pool: workers sleep on a condition variable; a parallel region publishes a task
// counter that the caller and up to max_threads-1 workers drain.
#include "threadpool.h"

namespace ptq {

ThreadPool& ThreadPool::Global() {
  static ThreadPool* pool = new ThreadPool(std::thread::hardware_concurrency() ? std::thread::hardware_concurrency() : 1);
  return *pool;  // intentionally leaked: workers must outlive every addon instance at exit
}

ThreadPool::ThreadPool(size_t threads) {
  for (size_t i = 1; i < threads; i++) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> l(m_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::WorkerLoop(size_t index) {
  size_t seen = 0;
  for (;;) {
    std::unique_lock<std::mutex> l(m_);
    cv_.wait(l, [&] { return stop_ || (generation_ != seen && index < active_workers_ + 1); });
    if (stop_) return;
    seen = generation_;
    const auto* fn = fn_;
    busy_++;
    for (;;) {
      if (next_ >= tasks_) break;
      const size_t t = next_++;
      l.unlock();
      (*fn)(t, index);
      l.lock();
      finished_++;
    }
    busy_--;
    if (finished_ == tasks_ && busy_ == 0) done_cv_.notify_all();
  }
}

void ThreadPool::ParallelFor(size_t tasks, size_t max_threads, const std::function<void(size_t, size_t)>& fn) {
  if (tasks == 0) return;
  if (max_threads <= 1 || tasks == 1 || workers_.empty()) {
    for (size_t t = 0; t < tasks; t++) fn(t, 0);
    return;
  }
  std::lock_guard<std::mutex> region(region_);
  std::unique_lock<std::mutex> l(m_);
  fn_ = &fn;
  tasks_ = tasks;
  next_ = 0;
  finished_ = 0;
  active_workers_ = (max_threads - 1 < workers_.size() ? max_threads - 1 : workers_.size());
  generation_++;
  cv_.notify_all();
  for (;;) {
    if (next_ >= tasks_) break;
    const size_t t = next_++;
    l.unlock();
    fn(t, 0);
    l.lock();
    finished_++;
  }
  done_cv_.wait(l, [&] { return finished_ == tasks_ && busy_ == 0; });
  fn_ = nullptr;
  active_workers_ = 0;
}

}  // namespace ptq
