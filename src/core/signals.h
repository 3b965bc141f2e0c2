// The library's own threads (device workers, the trainer's device launch) block the asynchronous
// signals a user or a launcher sends — SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 — so that
// the kernel delivers them to the program's threads, where its handlers run, and never interrupts a
// wait, a collective or an MPI call inside a device's step (mpirun forwards SIGTERM to every
// process at once: each process's signal must land on its host thread, not on whichever device
// thread happens to run). Synchronous signals (SIGSEGV, ...) are not blocked.
#pragma once

#include <pthread.h>
#include <signal.h>

namespace datarax::detail {

inline void block_async_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) sigaddset(&set, s);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

}  // namespace datarax::detail
