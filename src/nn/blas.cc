#include "datarax/nn/blas.h"

#include <cblas.h>

#include <mutex>
#include <string>

#include "datarax/error.h"

namespace datarax::nn {

namespace {
// Serializes the two setters, so that an explicit choice made at the same time as the default
// always wins; `chosen` is set once either has run.
std::mutex g_mutex;
bool g_chosen = false;
}  // namespace

int blas_num_threads() { return openblas_get_num_threads(); }

void set_blas_num_threads(int n) {
  if (n < 1)
    throw InvalidArgumentError("set_blas_num_threads: n = " + std::to_string(n) +
                               " is out of range; it must be >= 1");
  std::lock_guard lock(g_mutex);
  g_chosen = true;
  openblas_set_num_threads(n);
}

void use_single_threaded_blas_by_default() {
  std::lock_guard lock(g_mutex);
  if (g_chosen) return;
  g_chosen = true;
  openblas_set_num_threads(1);
}

}  // namespace datarax::nn
