// One persistent worker thread per local device, created on first use.
//
// run() hands a task to the workers of some devices, then blocks until all of them have finished
// it; the calling thread never runs device code. One launch at a time: concurrent callers queue on
// a mutex. A task's exception is caught on its worker and reported through run()'s result, so a
// worker never dies.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/wait_word.h"

namespace datarax::detail {

class WorkerPool {
 public:
  // The pool of this process's devices (local indices 0..local_device_count()-1).
  static WorkerPool& instance();

  explicit WorkerPool(int num_workers);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()); }

  // Runs task(i) on worker workers[i] for every i, and waits for all. Returns each task's exception
  // (null when it returned normally), indexed like `workers`.
  std::vector<std::exception_ptr> run(const std::vector<int>& workers,
                                      const std::function<void(int)>& task);

  // True on a worker thread (inside device code).
  static bool on_worker_thread();

 private:
  struct Worker;
  void loop(Worker& w);

  std::vector<std::unique_ptr<Worker>> workers_;
  std::mutex launch_mu_;
  std::atomic<int> remaining_{0};
  WaitWord done_;
};

}  // namespace datarax::detail
