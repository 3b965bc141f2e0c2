// The SPMD runtime: run one function on every device of a mesh, each on its own worker thread.
//
// Inside such a function (and only there) the collectives of collectives.h name mesh axes, and
// current_device() / current_mesh() say where the code runs. shard_map (shard_map.h) and pmap
// (pmap.h) are built on run_spmd.
//
// Failure: when the function throws on one device, the collectives of that launch are aborted, so
// devices waiting for it throw promptly instead of waiting; run_spmd then throws DeviceError for
// the first device that failed, carrying its original exception. Every collective wait has a
// deadline (SpmdOptions::timeout).
#pragma once

#include <chrono>
#include <exception>
#include <functional>
#include <optional>

#include "datarax/device.h"
#include "datarax/error.h"
#include "datarax/mesh.h"

namespace datarax {

struct SpmdOptions {
  // Deadline of every wait in a collective. Unset: DATARAX_COLLECTIVE_TIMEOUT_S, else 300 s.
  std::optional<std::chrono::milliseconds> timeout;
};

// Runs fn(device) once for every device of the mesh that belongs to this process, each on that
// device's worker thread, and returns when all have finished. Not reentrant: calling it from
// inside an SPMD function throws.
void run_spmd(const Mesh& mesh, const std::function<void(const Device&)>& fn,
              const SpmdOptions& options = {});

// Whether the calling thread is running an SPMD function, and on which device of which mesh.
bool in_spmd();
const Device& current_device();  // InvalidArgumentError outside SPMD
const Mesh& current_mesh();      // likewise

}  // namespace datarax
