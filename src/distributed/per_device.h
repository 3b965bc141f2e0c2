// Host-side work on per-device values: one Tree per device, outside SPMD.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "datarax/error.h"
#include "datarax/reduce_op.h"
#include "datarax/sharded_tree.h"
#include "datarax/tree.h"

namespace datarax::detail {

// One Tree per device of the tree's mesh, in mesh order: this process's devices, or, when the mesh
// spans processes, every process's (collective then: every process must call it). A leaf whose
// leading axis is split into one-element blocks (a stacked pmap output) loses that axis.
std::vector<Tree> per_device_trees(const ShardedTree& tree);

// Checks that there is at least one device and that every device has the same keys, dtypes and
// shapes; `op` names the caller in messages.
void check_per_device(const std::vector<Tree>& per_device, std::string_view op);

// Combines each leaf across devices in device order with the op of its key, using the same
// arithmetic as the collectives (so results match those computed inside SPMD). Integer means are
// computed in f64.
Tree reduce_per_device(const std::vector<Tree>& per_device, const std::map<std::string, ReduceOp>& ops,
                       std::string_view op);

// Each leaf stacked over devices: [n, ...].
Tree stack_per_device(const std::vector<Tree>& per_device, std::string_view op);

// Resolves a per-key op map of names ("mean", ...) against the metrics' keys: unlisted keys get
// `fallback`; unknown ops and keys throw naming them.
std::map<std::string, ReduceOp> resolve_ops(const std::vector<std::string>& keys,
                                            const std::map<std::string, std::string>& names,
                                            ReduceOp fallback, std::string_view op);

// Runs fn, a module method's collective; an InvalidArgumentError from underneath (a pmean with an
// axis the function lacks, say) is thrown again naming `op`, the call the user made:
//   "reduce_mean: pmean: no axis ..." instead of "pmean: no axis ...".
// Other errors (a device's failure, a timeout) pass unchanged.
template <class Fn>
decltype(auto) as_call(std::string_view op, Fn&& fn) {
  try {
    return fn();
  } catch (const InvalidArgumentError& e) {
    throw InvalidArgumentError(std::string(op) + ": " + e.what());
  }
}

}  // namespace datarax::detail
