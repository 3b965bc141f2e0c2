// pmap: JAX's pmap — map a function over devices along a named axis.
//
//   auto train_step = pmap([](const Tree& state, const Tree& batch) { ...; return new_state; },
//                          "batch", {.output = PmapOutput::replicated});
//   ShardedTree state = train_step(sharded_state, sharded_batch);
//
// The function runs once per device over a 1-D mesh whose single axis is `axis_name`, so inside it
// collectives name that axis (pmean(grads, "batch")). Each input is either
//  - a Tree, mapped over its leading axis: its leading extent must equal the device count, and
//    device i sees x[i] (the leading axis removed), or
//  - a ShardedTree (what shard_batch or shard_model_state returned, or a previous pmap): each
//    device sees its own shards as they are.
// The devices are those of the ShardedTree inputs' mesh (all the same), else every local device.
// Outputs are stacked (device i's result is block i of a new leading axis, the default) or
// replicated (every device's result must be bitwise equal; each device keeps its own copy), so a
// replicated state can be fed back into the next call.
#pragma once

#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "datarax/sharded_tree.h"
#include "datarax/spmd.h"
#include "datarax/tree.h"

namespace datarax {

enum class PmapOutput : unsigned char { stacked, replicated };
std::string_view to_string(PmapOutput output);

struct PmapOptions {
  PmapOutput output = PmapOutput::stacked;
  SpmdOptions spmd = {};
};

namespace detail {
using PmapInput = std::variant<const Tree*, const ShardedTree*>;
ShardedTree pmap_run(const std::string& axis_name, const PmapOptions& options,
                     const std::vector<PmapInput>& inputs,
                     const std::function<Tree(const std::vector<Tree>&)>& call);
}  // namespace detail

template <class Fn>
class Pmapped {
 public:
  Pmapped(Fn fn, std::string axis_name, PmapOptions options)
      : fn_(std::move(fn)), axis_(std::move(axis_name)), options_(options) {}

  // Each input a Tree or a ShardedTree; fn takes as many `const Tree&` and returns a Tree.
  template <class... Inputs>
  ShardedTree operator()(const Inputs&... inputs) const {
    static_assert(((std::is_same_v<Inputs, Tree> || std::is_same_v<Inputs, ShardedTree>) && ...),
                  "pmap inputs are Trees or ShardedTrees");
    const std::vector<detail::PmapInput> in{detail::PmapInput(&inputs)...};
    return detail::pmap_run(axis_, options_, in, [this](const std::vector<Tree>& local) {
      return call(local, std::index_sequence_for<Inputs...>{});
    });
  }

 private:
  template <std::size_t... I>
  Tree call(const std::vector<Tree>& local, std::index_sequence<I...>) const {
    return fn_(local[I]...);
  }

  Fn fn_;
  std::string axis_;
  PmapOptions options_;
};

template <class Fn>
Pmapped<Fn> pmap(Fn fn, std::string axis_name, PmapOptions options = {}) {
  return Pmapped<Fn>(std::move(fn), std::move(axis_name), options);
}

}  // namespace datarax
