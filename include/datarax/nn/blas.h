// How many threads the BLAS (OpenBLAS) uses inside one matrix product.
//
// datarax runs one worker thread per device, and every worker calls BLAS on its own shard at the
// same time. If each of those calls also spread over every core, N devices would start N × cores
// threads that fight for the cores (and OpenBLAS's one thread pool would serialize them). So the
// parallelism comes from the devices and each BLAS call runs on its caller's thread alone:
// constructing the first nn::ValueAndGrad, or setting up a train::train() run, sets OpenBLAS to
// 1 thread, once per process (overriding OPENBLAS_NUM_THREADS from the environment): a program
// that trains through either has nothing to call.
//
// The setting is process-wide: OpenBLAS 0.3.21 (Debian 12) has no per-thread count, so a
// thread-local guard is not possible. An explicit set_blas_num_threads() wins over that default,
// whether called before or after the first ValueAndGrad or run (a single device evaluating alone
// may want more).
// Calls with 1 thread from many threads at once are safe in OpenBLAS's pthreads build.
#pragma once

namespace datarax::nn {

// The number of threads OpenBLAS uses for one call now.
int blas_num_threads();

// Sets it for the whole process (n >= 1, InvalidArgumentError otherwise). Do not call while other
// threads are inside BLAS.
void set_blas_num_threads(int n);

// Sets 1 thread unless set_blas_num_threads() was ever called; does it at most once per process.
// ValueAndGrad's constructor and the trainer's set-up call this; modules and ops never change
// the setting.
void use_single_threaded_blas_by_default();

}  // namespace datarax::nn
