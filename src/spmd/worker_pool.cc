#include "spmd/worker_pool.h"

#include "core/signals.h"
#include "datarax/device_discovery.h"

namespace datarax::detail {

namespace {
thread_local bool t_on_worker = false;
constexpr auto kForever = std::chrono::hours(24 * 365);
}  // namespace

struct WorkerPool::Worker {
  WaitWord ready;                          // bumped when a task is posted (or on shutdown)
  const std::function<void(int)>* task = nullptr;
  int arg = 0;
  std::exception_ptr error;
  bool stop = false;
  std::thread thread;
};

WorkerPool& WorkerPool::instance() {
  // Leaked on purpose: worker threads must not be joined from a static destructor after main.
  static WorkerPool* pool = new WorkerPool(local_device_count());
  return *pool;
}

WorkerPool::WorkerPool(int num_workers) {
  for (int i = 0; i < num_workers; ++i) workers_.push_back(std::make_unique<Worker>());
  for (auto& w : workers_)
    w->thread = std::thread([this, raw = w.get()] {
      block_async_signals();  // core/signals.h: a user's or launcher's signal goes to the program's threads
      loop(*raw);
    });
}

WorkerPool::~WorkerPool() {
  for (auto& w : workers_) {
    w->stop = true;
    w->ready.bump();
  }
  for (auto& w : workers_) w->thread.join();
}

bool WorkerPool::on_worker_thread() { return t_on_worker; }

void WorkerPool::loop(Worker& w) {
  t_on_worker = true;
  std::uint32_t seen = 0;  // the initial value: a task posted before this thread got here still counts
  while (true) {
    // Spinning here would burn the cores between launches: workers sleep until posted.
    while (w.ready.load() == seen) w.ready.wait_while(seen, Clock::now() + kForever, false);
    seen = w.ready.load();
    if (w.stop) return;
    try {
      (*w.task)(w.arg);
    } catch (...) {
      w.error = std::current_exception();
    }
    if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) done_.bump();
  }
}

std::vector<std::exception_ptr> WorkerPool::run(const std::vector<int>& workers,
                                                const std::function<void(int)>& task) {
  std::lock_guard lock(launch_mu_);
  const std::uint32_t seen = done_.load();
  remaining_.store(static_cast<int>(workers.size()), std::memory_order_release);
  for (std::size_t i = 0; i < workers.size(); ++i) {
    Worker& w = *workers_.at(static_cast<std::size_t>(workers[i]));
    w.task = &task;
    w.arg = static_cast<int>(i);
    w.error = nullptr;
    w.ready.bump();
  }
  if (!workers.empty())
    while (done_.load() == seen) done_.wait_while(seen, Clock::now() + kForever, true);
  std::vector<std::exception_ptr> errors;
  for (int idx : workers) errors.push_back(workers_[static_cast<std::size_t>(idx)]->error);
  return errors;
}

}  // namespace datarax::detail
