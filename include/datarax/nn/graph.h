// Graph and Var: a recorded computation, the tape of nn's automatic gradients.
//
// A Var is a value in one Graph (a handle: graph + node index; copying it copies the handle). Ops
// (nn/ops/*.h) take Vars and return a Var; each call appends a node to the Var's graph and computes
// its value at once, so a function written with ops runs eagerly the first time. The graph keeps
// every node's op, inputs and output buffer, so the same computation can then be REPLAYED
// (forward()) on new leaf values of the same shapes without calling the user's function again, and
// differentiated in reverse (backward()). This is what value_and_grad (value_and_grad.h) does:
// record once, like jax.jit traces once, and replay with the buffers planned at recording — no
// allocation per step after the first.
//
// Buffers: every node's output is allocated when the node is recorded; the gradients of the nodes
// that need one (those that depend on a parameter) when the recording ends (finish()). Replays
// overwrite them. A Graph is used by one thread at a time; Var handles do not outlive their Graph.
//
// Leaves: an input (data: no gradient), a parameter (gets a gradient), a constant (recorded with
// its value; never rebound). bind() replaces a leaf's value with another array of the same dtype
// and shape, without copying (the leaf holds the caller's buffer until the next bind).
#pragma once

#include <cstdint>
#include <deque>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "datarax/array.h"
#include "datarax/nn/op.h"

namespace datarax::nn {

class Graph;

// Calls a Graph makes around chosen nodes during forward() and backward() replays (not while
// recording): the place to gather a parameter just before its first use and to reduce its
// gradient as soon as it is complete — what ZeRO-3/FSDP does (train/'s Step uses it).
class GraphHooks {
 public:
  static constexpr std::uint8_t kBeforeForward = 1, kBeforeBackward = 2, kAfterBackward = 4;
  virtual ~GraphHooks() = default;
  virtual void before_forward(int /*node*/) {}
  virtual void before_backward(int /*node*/) {}
  virtual void after_backward(int /*node*/) {}
};

class Var {
 public:
  Var() = default;  // refers to no graph; using it throws InvalidArgumentError

  bool valid() const { return graph_ != nullptr; }
  Graph& graph() const;
  int id() const { return id_; }
  const Shape& shape() const;
  DType dtype() const;
  int rank() const { return shape().rank(); }
  // The value computed by the last forward pass (or at recording).
  const Array& value() const;

 private:
  friend class Graph;
  Var(Graph* graph, int id) : graph_(graph), id_(id) {}
  Graph* graph_ = nullptr;
  int id_ = -1;
};

class Graph {
 public:
  Graph() = default;
  // eager false: apply() records an op without running it (its output holds no values until the
  // first forward()). For a caller that replays at once anyway — the trainer records on a batch
  // of the right shapes only — and must not run collectives while recording. The recorded
  // function must then not read values (Var::value()) while it runs.
  explicit Graph(bool eager) : eager_(eager) {}
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  // Leaves. `name` is for messages and check_gradients' report.
  Var input(std::string name, const Array& value);
  Var parameter(std::string name, const Array& value);
  Var constant(const Array& value);

  // Records op applied to inputs (all of this graph) with an output of `shape` and `dtype`,
  // allocates the output and runs op.forward once. Throws what the op's forward throws.
  Var apply(std::unique_ptr<Op> op, std::initializer_list<Var> inputs, Shape shape, DType dtype);
  Var apply(std::unique_ptr<Op> op, std::span<const Var> inputs, Shape shape, DType dtype);

  // Ends the recording: allocates the gradient buffers. Ops may no longer be applied.
  void finish();
  bool finished() const { return finished_; }

  // Replaces a leaf's value (input or parameter; same dtype and shape, else InvalidArgumentError).
  void bind(Var leaf, const Array& value);
  // After finish(): the buffer that parameter `leaf`'s gradient is written to in each backward
  // (same dtype and shape; the graph's own is released). Lets a caller place gradients in its
  // own memory (one flat buffer for a collective) instead of copying them there.
  void bind_grad(Var leaf, const Array& buffer);
  // Hooks called around the nodes whose bits in `at` (one byte per node, GraphHooks::k*) are
  // set, during every later forward() and backward(); null removes them. The caller keeps
  // `hooks` alive while set.
  void set_hooks(GraphHooks* hooks, std::vector<std::uint8_t> at);
  // Runs every op node's forward again, in recording order, on the leaves' current values.
  void forward();
  // Reverse mode: d(loss)/d(node) for every node that depends on a parameter. loss must have one
  // element. Each gradient buffer is written by its first contributor (in reverse order) and
  // added to by the others; a parameter that the loss does not use gets zeros. A loss other than
  // the one of the last backward plans the writers again.
  void backward(Var loss);
  // The gradient of `v` (of the last backward()); v must depend on a parameter.
  const Array& grad(Var v) const;
  bool needs_grad(Var v) const;

  // Names a value the caller wants after each replay (logits for an accuracy, say): value_and_grad
  // returns the exposed values as a Tree. A name exposed twice is refused.
  void expose(std::string name, Var v);
  const std::vector<std::pair<std::string, int>>& exposed() const { return exposed_; }

  std::size_t size() const { return nodes_.size(); }
  // The structure, for planners (by node id): whether a node is an op, a parameter, and the
  // ids of its inputs.
  bool is_op(int id) const { return nodes_.at(static_cast<std::size_t>(id)).kind == Kind::op; }
  bool is_parameter(int id) const { return nodes_.at(static_cast<std::size_t>(id)).kind == Kind::parameter; }
  const std::vector<int>& inputs_of(int id) const { return nodes_.at(static_cast<std::size_t>(id)).inputs; }
  // The op's name (Op::name) of an op node; "" for a leaf.
  std::string_view op_name(int id) const;
  const std::string& name(Var v) const;
  Var var(int id);

  // For messages: "relu (node 7)" or "parameter dense_0/kernel (node 1)".
  std::string describe(int id) const;

  // Per-op timing, for benchmarks (off by default; when off it costs one branch per node): while
  // on, forward() and backward() add the calling thread's CPU time in each op node's forward and
  // backward to that node's totals (CPU time, not wall time: on a shared machine it leaves out the
  // time the thread waited for a core). time_ops(true) clears the totals.
  struct OpTime {
    int id;
    std::string_view op;  // Op::name()
    double forward_s, backward_s;
  };
  void time_ops(bool on);
  // Every op node's totals, in recording order (allocates: read it outside the timed steps).
  std::vector<OpTime> op_times() const;

 private:
  friend class Var;
  enum class Kind : std::uint8_t { input, parameter, constant, op };
  struct Node {
    Kind kind;
    std::string name;
    std::unique_ptr<Op> op;
    std::vector<int> inputs;
    std::vector<Array> input_values;  // refreshed from the inputs' values before each forward
    std::vector<Array*> input_grads;  // nullptr where an input needs no gradient
    // By input: whether this op is the first to write that input's gradient in a backward pass
    // (Op::backward_fresh). A std::vector<bool> would not give a span.
    std::unique_ptr<bool[]> fresh;
    Array value;
    Array grad;
    bool needs_grad = false;
    double forward_s = 0, backward_s = 0;  // time_ops' totals
  };
  Var add_leaf(Kind kind, std::string name, const Array& value);
  const Node& node(Var v, std::string_view op) const;
  void run_forward(Node& n);
  void plan_backward(int loss);

  // A deque: a node never moves once recorded, so the references that Var::shape() and
  // Var::value() hand out stay valid while the graph grows.
  std::deque<Node> nodes_;
  std::vector<std::pair<std::string, int>> exposed_;
  std::vector<int> unwritten_;  // nodes needing a gradient that no op writes: zeroed each backward
  bool eager_ = true;
  GraphHooks* hooks_ = nullptr;
  std::vector<std::uint8_t> hooks_at_;
  bool finished_ = false;
  bool time_ops_ = false;
  int planned_loss_ = -1;
};

// `what`: "add", "matmul": every input Var valid, of one graph, of one float dtype (f32 or f64);
// InvalidArgumentError / DTypeError naming `what` otherwise. Returns that graph.
Graph& check_operands(std::string_view what, std::initializer_list<Var> vars);

}  // namespace datarax::nn
