#include "train/step.h"

#include <algorithm>
#include <cmath>

#include "datarax/collectives.h"
#include "datarax/error.h"
#include "datarax/optim/clip.h"

namespace datarax::train::detail {

namespace {

// A parameter's group: the top-level submodule it belongs to ("dense_0" of "dense_0/kernel").
std::vector<int> groups_of(const std::vector<std::string>& keys, int& count) {
  std::vector<std::string> names;
  std::vector<int> out;
  for (const std::string& key : keys) {
    const std::string top = key.substr(0, key.find('/'));
    auto it = std::find(names.begin(), names.end(), top);
    if (it == names.end()) it = names.insert(names.end(), top);
    out.push_back(static_cast<int>(it - names.begin()));
  }
  count = static_cast<int>(names.size());
  return out;
}

// The phase an op's time counts in (time_phases): matrix products, the loss, collectives, or
// the rest (elementwise work).
Phase phase_of(std::string_view op, bool backward) {
  if (op == "matmul" || op == "linear" || op == "linear_relu" || op == "conv2d" || op == "causal_attention")
    return backward ? Phase::backward_gemm : Phase::forward_gemm;
  if (op == "softmax_cross_entropy") return Phase::loss;
  if (op == "copy_to_axis" || op == "sum_over_axis") return Phase::collectives;
  return backward ? Phase::backward_elementwise : Phase::forward_elementwise;
}

// Whether the backward of `op` reads the value of its input `k` (a parameter): the products and
// the affine ops read a weight only to pass a gradient to the operand it multiplies, and an
// addition never; any other op is taken to read all its inputs.
bool backward_reads(std::string_view op, std::size_t k, const std::vector<bool>& needs_grad) {
  if (op == "add" || op == "sub" || op == "embedding") return false;
  if (op == "matmul" || op == "mul") return k < 2 && needs_grad[1 - k];
  if (op == "linear" || op == "linear_relu" || op == "conv2d" || op == "layer_norm") return k == 1 && needs_grad[0];
  return true;
}

std::vector<std::string> keys_of(const Tree& t) {
  std::vector<std::string> keys;
  for (const auto& kv : t) keys.push_back(kv.first);
  return keys;
}

std::vector<bool> split_flags(const std::vector<std::string>& keys, const std::vector<std::string>& split) {
  std::vector<bool> out;
  for (const std::string& k : keys) out.push_back(std::find(split.begin(), split.end(), k) != split.end());
  return out;
}

int count_groups(const Tree& params) {
  int count = 0;
  groups_of(keys_of(params), count);
  return count;
}

}  // namespace

Step::Step(const Model& model, const Tree& params, const std::vector<std::string>& split, const StepSettings& settings,
           int rank, int n, const Tree* opt_state)
    : model_(model),
      settings_(settings),
      n_(n),
      keys_(keys_of(params)),
      shapes_([&] {
        std::vector<Shape> v;
        for (const auto& kv : params) v.push_back(kv.second.shape());
        return v;
      }()),
      group_([&] {
        int count = 0;
        return groups_of(keys_, count);
      }()),
      units_(params, split_flags(keys_, split), group_, count_groups(params), settings.units, rank, n),
      // The clip norm's sums: one of everything, or (with a model axis) the split blocks' apart.
      norm_(Array::zeros({settings.model_size > 1 ? 2 : 1}, DType::f64)) {
  if (settings_.time_phases) timer_ = &timer_storage_;
  opt_state_ = settings_.optimizer->init(units_.owned_params());
  if (opt_state != nullptr) load_optimizer_state(*opt_state);
}

Step::~Step() {
  if (train_.graph) train_.graph->set_hooks(nullptr, {});
  if (eval_.graph) eval_.graph->set_hooks(nullptr, {});
}

// The first batch: the loss function runs once on Vars (its forward computed eagerly), and the
// recording is planned — which groups each node needs, the slots they live in — and bound to the
// units' buffers, so that every later step only replays it.
void Step::record(const Tree& batch) {
  // Recorded without computing (no op runs, no collective): the parameters are bound to their
  // buffers once the plan has them, and run() replays at once.
  Recording train = record_loss(model_.loss, batch, /*trained=*/true, "loss");
  nn::Graph& graph = *train.graph;
  const nn::Var loss = train.loss;
  if (!graph.needs_grad(loss)) throw InvalidArgumentError("train: the model's loss does not depend on any parameter");

  // Which groups each op reads, and which parameters nothing reads.
  const int nodes = static_cast<int>(graph.size());
  const std::vector<int> key_of = param_keys(train);
  std::vector<GroupUse> uses(static_cast<std::size_t>(units_.groups()));
  unused_.assign(keys_.size(), true);
  std::vector<bool> needs;
  for (int id = 0; id < nodes; ++id) {
    if (!graph.is_op(id)) continue;
    const std::vector<int>& inputs = graph.inputs_of(id);
    needs.clear();
    for (int in : inputs) needs.push_back(graph.needs_grad(graph.var(in)));
    for (std::size_t slot = 0; slot < inputs.size(); ++slot) {
      const int in = inputs[slot];
      const int k = key_of[static_cast<std::size_t>(in)];
      if (k < 0) continue;
      if (id > loss.id())
        throw InvalidArgumentError("train: " + graph.describe(id) + " reads parameter \"" + keys_[static_cast<std::size_t>(k)] +
                                   "\" after the loss was computed; the loss must be the last op that uses parameters");
      unused_[static_cast<std::size_t>(k)] = false;
      GroupUse& u = uses[static_cast<std::size_t>(group_[static_cast<std::size_t>(k)])];
      if (u.first < 0) u.first = id;
      u.last = id;
      if (id <= loss.id() && backward_reads(graph.op_name(id), slot, needs)) {
        if (u.backward_first < 0) u.backward_first = id;
        u.backward_last = id;
      }
    }
  }
  // The evaluation loss, when the model has its own: its own recording, forward only, reading
  // the same parameter buffers — at stage 3 the same slots, planned with its uses too.
  Recording eval;
  int eval_nodes = 0;
  if (model_.eval_loss) {
    eval = record_loss(model_.eval_loss, batch, /*trained=*/false, "evaluation loss");
    eval_nodes = static_cast<int>(eval.graph->size());
    const std::vector<int> eval_key_of = param_keys(eval);
    for (int id = 0; id < eval_nodes; ++id) {
      if (!eval.graph->is_op(id)) continue;
      for (int in : eval.graph->inputs_of(id)) {
        const int k = eval_key_of[static_cast<std::size_t>(in)];
        if (k < 0) continue;
        GroupUse& u = uses[static_cast<std::size_t>(group_[static_cast<std::size_t>(k)])];
        if (u.eval_first < 0) u.eval_first = id;
        u.eval_last = id;
      }
    }
  }
  units_.plan_slots(uses, nodes, eval_nodes);
  for (std::size_t k = 0; k < keys_.size(); ++k) {
    graph.bind(train.params[k], units_.param_view(keys_[k]));
    graph.bind_grad(train.params[k], units_.grad_view(keys_[k]));
    if (eval.graph) eval.graph->bind(eval.params[k], units_.param_view(keys_[k]));
  }
  // The hooks: stage 3 gathers a group before its first forward op and before its first backward
  // op (and before its first op of the evaluation recording); stages 2-3 reduce-scatter its
  // gradients after its last backward op.
  gather_fwd_.assign(static_cast<std::size_t>(nodes), {});
  gather_bwd_.assign(static_cast<std::size_t>(nodes), {});
  done_bwd_.assign(static_cast<std::size_t>(nodes), {});
  eval_hooks_.units = &units_;
  eval_hooks_.gather.assign(static_cast<std::size_t>(eval_nodes), {});
  std::vector<std::uint8_t> at(static_cast<std::size_t>(nodes), 0), eval_at(static_cast<std::size_t>(eval_nodes), 0);
  for (int g = 0; g < units_.groups(); ++g) {
    const GroupUse& u = uses[static_cast<std::size_t>(g)];
    if (units_.zero_stage() == 3 && u.eval_first >= 0) {
      eval_hooks_.gather[static_cast<std::size_t>(u.eval_first)].push_back(g);
      eval_at[static_cast<std::size_t>(u.eval_first)] |= kBeforeForward;
    }
    if (u.first < 0) continue;
    if (units_.zero_stage() == 3) {
      gather_fwd_[static_cast<std::size_t>(u.first)].push_back(g);
      at[static_cast<std::size_t>(u.first)] |= kBeforeForward;
      if (u.backward_last >= 0) {
        gather_bwd_[static_cast<std::size_t>(u.backward_last)].push_back(g);
        at[static_cast<std::size_t>(u.backward_last)] |= kBeforeBackward;
      }
    }
    if (units_.zero_stage() >= 2) {
      done_bwd_[static_cast<std::size_t>(u.first)].push_back(g);
      at[static_cast<std::size_t>(u.first)] |= kAfterBackward;
    }
  }
  if (timer_ != nullptr) {
    fwd_phase_.assign(static_cast<std::size_t>(nodes), Phase::other);
    bwd_phase_.assign(static_cast<std::size_t>(nodes), Phase::other);
    for (int id = 0; id < nodes; ++id) {
      if (!graph.is_op(id)) continue;
      fwd_phase_[static_cast<std::size_t>(id)] = phase_of(graph.op_name(id), false);
      bwd_phase_[static_cast<std::size_t>(id)] = phase_of(graph.op_name(id), true);
      at[static_cast<std::size_t>(id)] |= kBeforeForward | kBeforeBackward;
    }
  }
  if (units_.zero_stage() >= 2 || timer_ != nullptr) graph.set_hooks(this, std::move(at));
  if (eval.graph && units_.zero_stage() == 3) eval.graph->set_hooks(&eval_hooks_, std::move(eval_at));
  train_ = std::move(train);
  eval_ = std::move(eval);
}

Step::Recording Step::record_loss(const nn::LossFn& fn, const Tree& batch, bool trained, const char* what) {
  Recording r;
  r.graph = std::make_unique<nn::Graph>(/*eager=*/false);
  nn::Graph& graph = *r.graph;
  nn::VarTree pv, bv;
  for (std::size_t k = 0; k < keys_.size(); ++k) {
    const Array placeholder = units_.zero_stage() == 3 ? Array::empty(shapes_[k], DType::f32) : units_.param_view(keys_[k]);
    r.params.push_back(trained ? graph.parameter(keys_[k], placeholder) : graph.input(keys_[k], placeholder));
    pv.set(keys_[k], r.params.back());
  }
  batch_keys_.clear();
  for (const auto& [key, a] : batch) {
    r.batch.push_back(graph.input(key, a));
    batch_keys_.push_back(key);
    bv.set(key, r.batch.back());
  }
  r.loss = fn(pv, bv);
  if (!r.loss.valid() || &r.loss.graph() != &graph)
    throw InvalidArgumentError(std::string("train: the model's ") + what + " function returned a Var that is not of its recording");
  if (r.loss.shape().numel() != 1)
    throw InvalidArgumentError(std::string("train: the model's ") + what + " function returned shape " +
                               r.loss.shape().to_string() + "; a loss has one element (reduce it with sum or mean)");
  graph.finish();
  for (const auto& [name, id] : graph.exposed()) r.outputs.set(name, graph.var(id).value());
  return r;
}

std::vector<int> Step::param_keys(const Recording& r) const {
  std::vector<int> key_of(r.graph->size(), -1);
  for (std::size_t k = 0; k < r.params.size(); ++k) key_of[static_cast<std::size_t>(r.params[k].id())] = static_cast<int>(k);
  return key_of;
}

void Step::EvalHooks::before_forward(int node) {
  for (int g : gather[static_cast<std::size_t>(node)]) units->gather_group(g, false);
}

void Step::before_forward(int node) {
  const auto at = static_cast<std::size_t>(node);
  if (!gather_fwd_[at].empty()) {
    mark(timer_, Phase::collectives);
    for (int g : gather_fwd_[at]) units_.gather_group(g, false);
  }
  if (timer_ != nullptr) timer_->enter(fwd_phase_[at]);
}
void Step::before_backward(int node) {
  const auto at = static_cast<std::size_t>(node);
  if (!gather_bwd_[at].empty()) {
    mark(timer_, Phase::collectives);
    for (int g : gather_bwd_[at]) units_.gather_group(g, true);
  }
  if (timer_ != nullptr) timer_->enter(bwd_phase_[at]);
}
void Step::after_backward(int node) {
  const auto at = static_cast<std::size_t>(node);
  if (done_bwd_[at].empty()) return;
  mark(timer_, Phase::collectives);
  for (int g : done_bwd_[at]) units_.group_gradients_done(g, unused_);
}

void Step::bind_batch(Recording& r, const Tree& batch) {
  if (batch.size() != batch_keys_.size())
    throw InvalidArgumentError("train: a batch has " + std::to_string(batch.size()) + " leaves; the recorded one had " +
                               std::to_string(batch_keys_.size()));
  std::size_t i = 0;
  for (const auto& kv : batch) {
    if (kv.first != batch_keys_[i])
      throw InvalidArgumentError("train: a batch has leaf \"" + kv.first + "\" where the recorded one had \"" + batch_keys_[i] + "\"");
    r.graph->bind(r.batch[i++], kv.second);
  }
}

Step::Result Step::run(const Tree& batch) {
  const nn::MatmulPrecisionScope precision(settings_.precision);
  if (!train_.graph) record(batch);
  bind_batch(train_, batch);
  mark(timer_, Phase::forward_gemm);
  train_.graph->forward();
  mark(timer_, Phase::backward_gemm);
  train_.graph->backward(train_.loss);
  mark(timer_, Phase::collectives);
  units_.reduce_gradients();
  mark(timer_, Phase::optimizer);
  if (settings_.clip_norm) clip(*settings_.clip_norm);
  settings_.optimizer->update_and_apply(units_.owned_grads(), opt_state_, units_.owned_params());
  mark(timer_, Phase::collectives);
  units_.gather_updated();
  mark(timer_, Phase::metrics);
  const double correct = model_.correct ? model_.correct(train_.outputs, batch) : 0.0;
  return {static_cast<double>(train_.loss.value().item<float>()), correct};
}

void Step::prepare(const Tree& batch) {
  if (train_.graph) return;
  const nn::MatmulPrecisionScope precision(settings_.precision);
  record(batch);
}

EvalTotals Step::evaluate(const std::vector<Tree>& batches) {
  const nn::MatmulPrecisionScope precision(settings_.precision);
  EvalTotals t;
  for (const Tree& batch : batches) {
    if (!train_.graph) record(batch);
    Recording& r = eval_.graph ? eval_ : train_;
    bind_batch(r, batch);
    r.graph->forward();
    t.loss_sum += static_cast<double>(r.loss.value().item<float>());
    if (model_.correct) t.correct += model_.correct(r.outputs, batch);
    for (float m : batch.at("mask").data<float>()) t.count += m;
  }
  return t;
}

void Step::clip(double max_norm) {
  // Σ x² over the whole model: the slices' sums add over "data"; a block tensor parallelism splits
  // adds over "model", a block every model device holds whole counts once.
  const auto [split, whole] = units_.owned_squares();
  const std::span<double> sums = norm_.data<double>();
  double total = split + whole;
  if (settings_.model_size > 1) {
    sums[0] = split;
    sums[1] = whole;
    all_reduce_in_place(norm_, ReduceOp::sum, units_.zero_stage() >= 1
                                                  ? AxisNames{settings_.units.data_axis, settings_.units.model_axis}
                                                  : AxisNames{settings_.units.model_axis});
    total = sums[0] + sums[1] / settings_.model_size;  // the whole blocks came once from each model device
  } else if (units_.zero_stage() >= 1) {
    sums[0] = total;
    all_reduce_in_place(norm_, ReduceOp::sum, settings_.units.data_axis);
    total = sums[0];
  }
  optim::clip_by_global_norm(units_.owned_grads(), max_norm, std::sqrt(total));
}

std::vector<std::string> Step::state_buffers() const {
  std::vector<std::string> prefixes;
  for (const auto& [key, leaf] : opt_state_)
    if (const auto slash = key.find('/'); slash != std::string::npos &&
        std::find(prefixes.begin(), prefixes.end(), key.substr(0, slash)) == prefixes.end())
      prefixes.push_back(key.substr(0, slash));
  return prefixes;
}

Tree Step::local_optimizer_state() {
  Tree out;
  out.set("count", opt_state_.at("count").copy());
  // Every state buffer ("mu/unit000", ...): its owned leaves laid out as the parameters' blocks.
  for (const std::string& prefix : state_buffers())
    for (const auto& [key, leaf] : units_.local_view_of(opt_state_.subtree(prefix))) out.set(prefix + "/" + key, leaf);
  return out;
}

void Step::load_optimizer_state(const Tree& local) {
  opt_state_.at("count").copy_from(local.at("count"));
  for (const std::string& prefix : state_buffers()) {
    Tree owned;
    for (const auto& [key, leaf] : opt_state_)
      if (key.rfind(prefix + "/", 0) == 0) owned.set(key.substr(prefix.size() + 1), leaf);  // views: written in place
    units_.owned_from_local(local.subtree(prefix), owned);
  }
}

DeviceBytes Step::held_bytes() const {
  DeviceBytes b = units_.held_bytes();
  for (const auto& [key, leaf] : opt_state_) b.optimizer += static_cast<std::int64_t>(leaf.nbytes());
  return b;
}

}  // namespace datarax::train::detail
