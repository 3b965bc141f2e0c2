// Runs one function per member of a ThreadsGroup, each on its own thread, like Gloo's tests do.
#pragma once

#include <exception>
#include <functional>
#include <thread>
#include <vector>

#include "comm/threads/group_communicator.h"
#include "support/test_devices.h"

namespace datarax::test {

// fn(Communicator&) on n threads. Returns each member's exception (null if it returned normally).
inline std::vector<std::exception_ptr> run_group(
    int n, const std::function<void(Communicator&)>& fn,
    std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  detail::ThreadsGroup group(first_devices(n), "axis \"x\"");
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(n));
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&, r] {
      auto comm = group.communicator(r, timeout);
      try {
        fn(*comm);
      } catch (...) {
        errors[static_cast<std::size_t>(r)] = std::current_exception();
        group.abort("member " + std::to_string(r) + " failed");
      }
    });
  for (auto& t : threads) t.join();
  return errors;
}

inline void rethrow_first(const std::vector<std::exception_ptr>& errors) {
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace datarax::test
