// Train your own model: a model this program defines from the public headers alone — a LayerNorm,
// a residual block whose MLP uses an op written here (swish, with its backward), a classifier —
// written forward only, its gradients checked against central differences, trained data-parallel
// on 2 devices (pmap, value_and_grad, all_reduce_gradients, Adam), checkpointed to safetensors
// and resumed: the resumed run continues bit for bit. docs/models.md walks through it.
//
// Run: ./build/examples/custom_model   (checked by the CTest test example_custom_model)
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "datarax/datarax.h"

namespace {

using datarax::Array;
using datarax::Tree;
using namespace datarax::nn;

constexpr int kFeatures = 8, kWidth = 32, kClasses = 3, kBatch = 64;

void require(bool condition, const std::string& what) {
  if (condition) return;
  std::cerr << "custom_model: FAILED: " << what << "\n";
  std::exit(1);
}

// --- An op of our own: swish(x) = x · sigmoid(x), forward and backward side by side ---------------
class Swish final : public Op {
 public:
  std::string_view name() const override { return "swish"; }
  void forward(std::span<const Array> in, Array& out) override {
    if (out.dtype() == datarax::DType::f64) return run<double>(in[0], out);
    run<float>(in[0], out);
  }
  // d/dx x·σ(x) = σ(x) + x·σ(x)·(1 − σ(x)); the gradient is ADDED to din (op.h's contract).
  void backward(std::span<const Array> in, const Array&, const Array& dout, std::span<Array* const> din) override {
    if (din[0] == nullptr) return;  // the input needs no gradient
    if (dout.dtype() == datarax::DType::f64) return grad<double>(in[0], dout, *din[0]);
    grad<float>(in[0], dout, *din[0]);
  }

 private:
  template <class T>
  static void run(const Array& x, Array& y) {
    for (std::int64_t i = 0; i < x.numel(); ++i) {
      const T v = x.data<T>()[i];
      y.data<T>()[i] = v / (T(1) + std::exp(-v));
    }
  }
  template <class T>
  static void grad(const Array& x, const Array& dy, Array& dx) {
    for (std::int64_t i = 0; i < x.numel(); ++i) {
      const T v = x.data<T>()[i], s = T(1) / (T(1) + std::exp(-v));
      dx.data<T>()[i] += dy.data<T>()[i] * (s + v * s * (T(1) - s));
    }
  }
};

Var swish(Var x) {
  return check_operands("swish", {x}).apply(std::make_unique<Swish>(), {x}, x.shape(), x.dtype());
}

// --- The model: modules declare parameters; the call operator computes ---------------------------
// x + W2 · swish(W1 · LayerNorm(x)): a pre-norm residual MLP block, as in a transformer.
struct Block : Module {
  LayerNorm norm;
  Dense up, down;
  Block(Module& parent, std::string name, int width)
      : Module(parent, std::move(name)), norm(*this, "ln", width), up(*this, "up", width, 2 * width),
        down(*this, "down", 2 * width, width) {}
  Var operator()(const VarTree& p, Var x) const { return x + down(p, swish(up(p, norm(p, x)))); }
};

struct Classifier : Module {
  Dense embed{*this, "embed", kFeatures, kWidth};
  Block block_0{*this, "block_0", kWidth};
  Block block_1{*this, "block_1", kWidth};
  LayerNorm norm{*this, "ln_f", kWidth};
  Dense head{*this, "head", kWidth, kClasses};
  Var operator()(const VarTree& p, Var x) const { return head(p, norm(p, block_1(p, block_0(p, embed(p, x))))); }
};

// --- Data: 3 classes by a fixed nonlinear formula of 8 features; batch k made from k alone -------------------------------
Tree make_batch(int k, int rows = kBatch) {
  Array x = Array::empty({rows, kFeatures});
  Array y = Array::empty({rows}, datarax::DType::i32);
  for (int n = 0; n < rows; ++n) {
    float score[kClasses] = {};
    for (int f = 0; f < kFeatures; ++f) {
      // A uniform value in [-1, 1) from a 64-bit hash of (example, feature): no two examples alike.
      std::uint64_t h = (static_cast<std::uint64_t>(k) * rows + static_cast<std::uint64_t>(n)) * 0x9E3779B97F4A7C15ull + f;
      h = (h ^ (h >> 31)) * 0xBF58476D1CE4E5B9ull;
      const float v = static_cast<float>(h >> 40) / static_cast<float>(1 << 23) - 1.0F;
      x.at<float>({n, f}) = v;
      for (int c = 0; c < kClasses; ++c) score[c] += std::sin(2.0F * v + static_cast<float>(c)) * std::cos(static_cast<float>(c * kFeatures + f));
    }
    int best = 0;
    for (int c = 1; c < kClasses; ++c)
      if (score[c] > score[best]) best = c;
    y.at<std::int32_t>({n}) = best;
  }
  return Tree{{"x", x}, {"label", y}};
}

}  // namespace

int main() {
  datarax::initialize({.num_cpu_devices = 2});
  const Classifier model;  // declarations only: shared by both device threads
  std::cout << "parameters: " << model.num_params() << " in " << model.param_specs().size() << " tensors\n";

  // The loss, written forward only: logits, softmax cross-entropy over the local batch.
  auto loss_fn = [&](const VarTree& params, const VarTree& batch) {
    Var logits = model(params, batch["x"]);
    expose("logits", logits);
    return softmax_cross_entropy(logits, batch["label"]);
  };

  // Every op of the model, ours included, checked against central differences in f64.
  const GradientCheckReport check = check_gradients(model, loss_fn, make_batch(0, 6), /*seed=*/0);
  std::cout << check.to_string();
  require(check.passed, "the gradients match central differences");

  // Data-parallel training on 2 devices: the seed's pmap step, with nnx.grad's C++ form.
  datarax::distributed::DeviceMeshModule mesh_module;
  datarax::distributed::DataParallelModule dp;
  const datarax::Mesh mesh = mesh_module.create_data_parallel_mesh();
  const auto optimizer = datarax::optim::make_optimizer("adam", {.learning_rate = 3e-3});
  auto train_step = datarax::pmap(
      [&](const Tree& state, const Tree& batch) {
        const Tree params = state.subtree("params");
        thread_local ValueAndGrad grad_fn(loss_fn);  // one recording per device thread
        auto [loss, grads] = grad_fn(params, batch);
        const Tree mean_grads = dp.all_reduce_gradients(grads);  // over pmap's axis, "batch"
        auto [updates, opt] = optimizer->update_copy(mean_grads, state.subtree("opt"), params);
        Tree next = datarax::optim::apply_updates_copy(params, updates).with_prefix("params");
        for (const auto& [key, leaf] : opt.with_prefix("opt")) next.set(key, leaf);
        next.set("loss", dp.all_reduce_gradients(Tree{{"loss", Array::scalar<float>(static_cast<float>(loss))}}).at("loss"));
        return next;
      },
      "batch", {.output = datarax::PmapOutput::replicated});

  auto run = [&](Tree state, int from, int to, std::vector<float>& losses) {
    datarax::ShardedTree placed = dp.shard_model_state(state, mesh);
    for (int step = from; step < to; ++step) {
      placed = train_step(placed, dp.shard_batch(make_batch(step), dp.create_data_parallel_sharding(mesh)));
      losses.push_back(placed.at("loss").gather().item<float>());
      datarax::ShardedTree next;  // the loss is reported, not carried
      for (const auto& key : placed.keys())
        if (key != "loss") next.set(key, placed.at(key));
      placed = next;
    }
    return placed.gather();
  };

  const Tree params = model.init(/*seed=*/1);
  Tree state = params.with_prefix("params");
  for (const auto& [key, leaf] : optimizer->init(params).with_prefix("opt")) state.set(key, leaf);

  // 60 steps straight through; and 30 steps, a checkpoint, then the other 30 from the files.
  std::vector<float> straight, first, resumed;
  const Tree end = run(state, 0, 60, straight);
  const Tree middle = run(state, 0, 30, first);
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("custom_model-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  datarax::io::save_safetensors((dir / "params.safetensors").string(), middle.subtree("params"));
  datarax::io::save_safetensors((dir / "opt.safetensors").string(), middle.subtree("opt"));
  Tree loaded = datarax::io::load_safetensors((dir / "params.safetensors").string()).with_prefix("params");
  for (const auto& [key, leaf] : datarax::io::load_safetensors((dir / "opt.safetensors").string()).with_prefix("opt"))
    loaded.set(key, leaf);
  std::filesystem::remove_all(dir);
  const Tree resumed_end = run(loaded, 30, 60, resumed);

  std::cout << "loss: step 1 " << straight.front() << ", step 30 " << straight[29] << ", step 60 " << straight.back() << "\n";
  require(straight.back() < 0.5F * straight.front(), "the loss falls by half or more");
  for (int i = 0; i < 30; ++i) require(resumed[static_cast<std::size_t>(i)] == straight[static_cast<std::size_t>(30 + i)],
                                       "the resumed run's loss at step " + std::to_string(31 + i) + " is the straight run's");
  require(datarax::bitwise_equal(resumed_end, end), "the resumed run ends with the straight run's state, bit for bit");

  // Accuracy on a batch it never trained on, from the exposed logits.
  ValueAndGrad eval(loss_fn);
  const Tree test = make_batch(1000, 256);
  eval.value(end.subtree("params"), test);
  const Array& logits = eval.outputs().at("logits");
  int correct = 0;
  for (int n = 0; n < 256; ++n) {
    int best = 0;
    for (int c = 1; c < kClasses; ++c)
      if (logits.at<float>({n, c}) > logits.at<float>({n, best})) best = c;
    correct += best == test.at("label").at<std::int32_t>({n});
  }
  std::cout << "held-out accuracy: " << correct / 256.0 << "\n";
  require(correct > 0.8 * 256, "held-out accuracy above 0.8");
  std::cout << "custom_model: all checks passed\n";
  return 0;
}
