// Graph: recording, replay and reverse mode (graph.h).
#include "datarax/nn/graph.h"

#include <time.h>

#include <cstring>
#include <utility>

#include "datarax/error.h"

namespace datarax::nn {

namespace {
bool is_float(DType d) { return d == DType::f32 || d == DType::f64; }
}  // namespace

Graph& Var::graph() const {
  if (graph_ == nullptr)
    throw InvalidArgumentError("Var: this Var refers to no graph (default-constructed); make it with an op or a leaf");
  return *graph_;
}
const Shape& Var::shape() const { return value().shape(); }
DType Var::dtype() const { return value().dtype(); }
const Array& Var::value() const { return graph().node(*this, "Var::value").value; }

Graph& check_operands(std::string_view what, std::initializer_list<Var> vars) {
  Graph* g = nullptr;
  DType dtype = DType::f32;
  int i = 0;
  for (const Var& v : vars) {
    if (!v.valid())
      throw InvalidArgumentError(std::string(what) + ": operand " + std::to_string(i) +
                                 " is an empty Var (default-constructed)");
    if (g == nullptr) {
      g = &v.graph();
      dtype = v.dtype();
      if (!is_float(dtype))
        throw DTypeError(std::string(what) + ": operand 0 has dtype " + std::string(to_string(dtype)) +
                         "; valid: f32, f64");
    } else if (&v.graph() != g) {
      throw InvalidArgumentError(std::string(what) + ": operand " + std::to_string(i) +
                                 " belongs to another graph (a Var from another recording)");
    } else if (v.dtype() != dtype) {
      throw DTypeError(std::string(what) + ": operand " + std::to_string(i) + " has dtype " +
                       std::string(to_string(v.dtype())) + ", operand 0 " + std::string(to_string(dtype)) +
                       "; all operands need the same dtype");
    }
    ++i;
  }
  if (g == nullptr) throw InvalidArgumentError(std::string(what) + ": no operands");
  return *g;
}

Var Graph::add_leaf(Kind kind, std::string name, const Array& value) {
  if (finished_)
    throw InvalidArgumentError("Graph: the recording has ended (finish()); leaf \"" + name + "\" cannot be added");
  Node n{.kind = kind, .name = std::move(name), .op = nullptr, .inputs = {}, .input_values = {},
         .input_grads = {}, .fresh = nullptr, .value = value, .grad = {}, .needs_grad = kind == Kind::parameter};
  nodes_.push_back(std::move(n));
  return Var(this, static_cast<int>(nodes_.size()) - 1);
}

Var Graph::input(std::string name, const Array& value) { return add_leaf(Kind::input, std::move(name), value); }
Var Graph::parameter(std::string name, const Array& value) {
  if (!is_float(value.dtype()))
    throw DTypeError("Graph::parameter: \"" + name + "\" has dtype " + std::string(to_string(value.dtype())) +
                     "; a parameter needs f32 or f64 (a gradient)");
  return add_leaf(Kind::parameter, std::move(name), value);
}
Var Graph::constant(const Array& value) { return add_leaf(Kind::constant, "constant", value); }

Var Graph::apply(std::unique_ptr<Op> op, std::initializer_list<Var> inputs, Shape shape, DType dtype) {
  return apply(std::move(op), std::span<const Var>(inputs.begin(), inputs.size()), std::move(shape), dtype);
}

Var Graph::apply(std::unique_ptr<Op> op, std::span<const Var> inputs, Shape shape, DType dtype) {
  if (!op) throw InvalidArgumentError("Graph::apply: null op");
  if (finished_)
    throw InvalidArgumentError("Graph::apply: the recording has ended (finish()); op " + std::string(op->name()) +
                               " cannot be added");
  Node n;
  n.kind = Kind::op;
  n.name = std::string(op->name());
  for (const Var& v : inputs) {
    if (v.graph_ != this)
      throw InvalidArgumentError("Graph::apply: an input of " + n.name + " belongs to another graph");
    n.inputs.push_back(v.id_);
    n.needs_grad = n.needs_grad || nodes_[static_cast<std::size_t>(v.id_)].needs_grad;
  }
  n.input_values.resize(n.inputs.size());
  n.input_grads.assign(n.inputs.size(), nullptr);
  n.value = Array::empty(std::move(shape), dtype);
  n.op = std::move(op);
  nodes_.push_back(std::move(n));
  if (!eager_) return Var(this, static_cast<int>(nodes_.size()) - 1);
  try {
    run_forward(nodes_.back());
  } catch (...) {
    nodes_.pop_back();  // a failed op leaves no trace: the graph stays replayable
    throw;
  }
  return Var(this, static_cast<int>(nodes_.size()) - 1);
}

namespace {
double thread_cpu_s() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}
}  // namespace

void Graph::run_forward(Node& n) {
  for (std::size_t k = 0; k < n.inputs.size(); ++k)
    n.input_values[k] = nodes_[static_cast<std::size_t>(n.inputs[k])].value;
  const double t0 = time_ops_ ? thread_cpu_s() : 0;
  n.op->forward(n.input_values, n.value);
  if (time_ops_) n.forward_s += thread_cpu_s() - t0;
}

void Graph::time_ops(bool on) {
  time_ops_ = on;
  if (on)
    for (Node& n : nodes_) n.forward_s = n.backward_s = 0;
}

std::vector<Graph::OpTime> Graph::op_times() const {
  std::vector<OpTime> times;
  for (std::size_t id = 0; id < nodes_.size(); ++id) {
    const Node& n = nodes_[id];
    if (n.kind == Kind::op) times.push_back({static_cast<int>(id), n.op->name(), n.forward_s, n.backward_s});
  }
  return times;
}

void Graph::finish() {
  if (finished_) return;
  for (Node& n : nodes_) {
    if (n.needs_grad) n.grad = Array::zeros(n.value.shape(), n.value.dtype());
  }
  for (Node& n : nodes_) {
    for (std::size_t k = 0; k < n.inputs.size(); ++k) {
      Node& in = nodes_[static_cast<std::size_t>(n.inputs[k])];
      n.input_grads[k] = in.needs_grad ? &in.grad : nullptr;
    }
  }
  finished_ = true;
}

const Graph::Node& Graph::node(Var v, std::string_view op) const {
  if (v.graph_ != this || v.id_ < 0 || static_cast<std::size_t>(v.id_) >= nodes_.size())
    throw InvalidArgumentError(std::string(op) + ": the Var does not belong to this graph");
  return nodes_[static_cast<std::size_t>(v.id_)];
}

Var Graph::var(int id) {
  if (id < 0 || static_cast<std::size_t>(id) >= nodes_.size())
    throw InvalidArgumentError("Graph::var: node " + std::to_string(id) + " is not in 0.." +
                               std::to_string(static_cast<long>(nodes_.size()) - 1));
  return Var(this, id);
}

const std::string& Graph::name(Var v) const { return node(v, "Graph::name").name; }

std::string Graph::describe(int id) const {
  const Node& n = nodes_.at(static_cast<std::size_t>(id));
  const char* kind = n.kind == Kind::input       ? "input "
                     : n.kind == Kind::parameter ? "parameter "
                     : n.kind == Kind::constant  ? "constant "
                                                 : "";
  return std::string(kind) + n.name + " (node " + std::to_string(id) + ")";
}

void Graph::bind(Var leaf, const Array& value) {
  const Node& cn = node(leaf, "Graph::bind");
  Node& n = nodes_[static_cast<std::size_t>(leaf.id_)];
  if (cn.kind != Kind::input && cn.kind != Kind::parameter)
    throw InvalidArgumentError("Graph::bind: " + describe(leaf.id_) + " is not an input or a parameter");
  if (value.dtype() != n.value.dtype() || value.shape() != n.value.shape())
    throw InvalidArgumentError("Graph::bind: " + describe(leaf.id_) + " was recorded as " +
                               std::string(to_string(n.value.dtype())) + n.value.shape().to_string() + ", not " +
                               std::string(to_string(value.dtype())) + value.shape().to_string() +
                               " (record again for other shapes)");
  n.value = value;
}

void Graph::bind_grad(Var leaf, const Array& buffer) {
  const Node& cn = node(leaf, "Graph::bind_grad");
  if (!finished_) throw InvalidArgumentError("Graph::bind_grad: the recording is not finished (call finish() first)");
  if (cn.kind != Kind::parameter)
    throw InvalidArgumentError("Graph::bind_grad: " + describe(leaf.id_) + " is not a parameter");
  if (buffer.dtype() != cn.value.dtype() || buffer.shape() != cn.value.shape())
    throw InvalidArgumentError("Graph::bind_grad: " + describe(leaf.id_) + " is " +
                               std::string(to_string(cn.value.dtype())) + cn.value.shape().to_string() +
                               "; the buffer is " + std::string(to_string(buffer.dtype())) + buffer.shape().to_string());
  nodes_[static_cast<std::size_t>(leaf.id_)].grad = buffer;  // the ops hold pointers to this Array: they follow
}

std::string_view Graph::op_name(int id) const {
  const Node& n = nodes_.at(static_cast<std::size_t>(id));
  return n.kind == Kind::op ? n.op->name() : std::string_view();
}

void Graph::set_hooks(GraphHooks* hooks, std::vector<std::uint8_t> at) {
  if (hooks != nullptr && at.size() != nodes_.size())
    throw InvalidArgumentError("Graph::set_hooks: " + std::to_string(at.size()) + " flags for " +
                               std::to_string(nodes_.size()) + " nodes");
  hooks_ = hooks;
  hooks_at_ = hooks != nullptr ? std::move(at) : std::vector<std::uint8_t>();
}

void Graph::forward() {
  for (std::size_t id = 0; id < nodes_.size(); ++id) {
    Node& n = nodes_[id];
    if (n.kind != Kind::op) continue;
    if (hooks_ != nullptr && (hooks_at_[id] & GraphHooks::kBeforeForward)) hooks_->before_forward(static_cast<int>(id));
    run_forward(n);
  }
}

// Which op writes each gradient first when the backward starts at `loss`: ops run from the loss
// down, so an input's first contributor is its consumer with the highest id (at or below the
// loss), and within that op its first slot.
void Graph::plan_backward(int loss) {
  std::vector<bool> written(nodes_.size(), false);
  written[static_cast<std::size_t>(loss)] = true;  // seeded with 1
  for (int id = loss; id >= 0; --id) {
    Node& n = nodes_[static_cast<std::size_t>(id)];
    if (n.kind != Kind::op) continue;
    if (!n.fresh) n.fresh = std::make_unique<bool[]>(n.inputs.size());
    for (std::size_t k = 0; k < n.inputs.size(); ++k) {
      const auto in = static_cast<std::size_t>(n.inputs[k]);
      n.fresh[k] = false;
      if (!n.needs_grad || n.input_grads[k] == nullptr || written[in]) continue;
      n.fresh[k] = true;
      written[in] = true;
    }
  }
  unwritten_.clear();
  for (int id = 0; id <= loss; ++id)
    if (nodes_[static_cast<std::size_t>(id)].needs_grad && !written[static_cast<std::size_t>(id)]) unwritten_.push_back(id);
  planned_loss_ = loss;
}

void Graph::backward(Var loss) {
  const Node& l = node(loss, "Graph::backward");
  if (!finished_) finish();
  if (l.value.numel() != 1)
    throw InvalidArgumentError("Graph::backward: the loss " + describe(loss.id_) + " has shape " +
                               l.value.shape().to_string() + "; it needs exactly one element");
  if (!l.needs_grad)
    throw InvalidArgumentError("Graph::backward: the loss " + describe(loss.id_) +
                               " does not depend on any parameter");
  if (planned_loss_ != loss.id_) plan_backward(loss.id_);
  for (int id : unwritten_) {
    Array& g = nodes_[static_cast<std::size_t>(id)].grad;
    std::memset(g.raw(), 0, g.nbytes());
  }
  nodes_[static_cast<std::size_t>(loss.id_)].grad.fill(1.0);
  for (int id = loss.id_; id >= 0; --id) {
    Node& n = nodes_[static_cast<std::size_t>(id)];
    if (n.kind != Kind::op || !n.needs_grad) continue;
    const std::uint8_t at = hooks_ != nullptr ? hooks_at_[static_cast<std::size_t>(id)] : 0;
    if (at & GraphHooks::kBeforeBackward) hooks_->before_backward(id);
    const double t0 = time_ops_ ? thread_cpu_s() : 0;
    n.op->backward_fresh(n.input_values, n.value, n.grad, n.input_grads,
                         std::span<const bool>(n.fresh.get(), n.inputs.size()));
    if (time_ops_) n.backward_s += thread_cpu_s() - t0;
    if (at & GraphHooks::kAfterBackward) hooks_->after_backward(id);
  }
}

const Array& Graph::grad(Var v) const {
  const Node& n = node(v, "Graph::grad");
  if (!n.needs_grad)
    throw InvalidArgumentError("Graph::grad: " + describe(v.id_) + " does not depend on a parameter; it has no gradient");
  return n.grad;
}

void Graph::expose(std::string name, Var v) {
  node(v, "Graph::expose");
  for (const auto& e : exposed_)
    if (e.first == name) throw InvalidArgumentError("Graph::expose: \"" + name + "\" is exposed twice");
  exposed_.emplace_back(std::move(name), v.id_);
}

bool Graph::needs_grad(Var v) const { return node(v, "Graph::needs_grad").needs_grad; }

}  // namespace datarax::nn
