// Train your own model: a model this program defines from the public headers alone — a LayerNorm,
// a residual block whose MLP uses an op written here (swish, with its backward), a classifier —
// written forward only, its gradients checked against central differences, then trained by the
// trainer (train::train) on every layout of 2 devices — data parallel, ZeRO-1, FSDP, tensor
// parallel over "model" (its block's layers declare Megatron's column/row split) — to the losses
// of 1 device, and stopped, checkpointed and resumed bit for bit. docs/models.md walks through it.
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
      : Module(parent, std::move(name)), norm(*this, "ln", width), up(*this, "up", width, 2 * width, column_parallel()),
        down(*this, "down", 2 * width, width, row_parallel()) {}
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
  return Tree{{"inputs", x}, {"labels", y}};
}

// A data set of `batches` such batches, for the trainer.
datarax::data::ArrayDataset make_dataset(int first, int batches, std::string name) {
  Array x = Array::empty({batches * kBatch, kFeatures});
  Array y = Array::empty({batches * kBatch}, datarax::DType::i32);
  for (int k = 0; k < batches; ++k) {
    const Tree b = make_batch(first + k);
    x.slice(k * kBatch, (k + 1) * kBatch).copy_from(b.at("inputs"));
    y.slice(k * kBatch, (k + 1) * kBatch).copy_from(b.at("labels"));
  }
  return {x, y, std::move(name), kClasses};
}

double worst_difference(const datarax::train::TrainReport& a, const datarax::train::TrainReport& b) {
  double worst = 0;
  for (std::size_t s = 0; s < a.steps.size(); ++s)
    worst = std::max(worst, std::abs(a.steps[s].loss - b.steps[s].loss) / a.steps[s].loss);
  return worst;
}

}  // namespace

int main() {
  datarax::initialize({.num_cpu_devices = 2});
  const Classifier model;  // declarations only: shared by both device threads
  std::cout << "parameters: " << model.num_params() << " in " << model.param_specs().size() << " tensors\n";

  // The loss, written forward only: logits, softmax cross-entropy over the local batch.
  auto loss_fn = [&](const VarTree& params, const VarTree& batch) {
    Var logits = model(params, batch["inputs"]);
    expose("logits", logits);
    return softmax_cross_entropy(logits, batch["labels"]);
  };

  // Every op of the model, ours included, checked against central differences in f64.
  const GradientCheckReport check = check_gradients(model, loss_fn, make_batch(0, 6), /*seed=*/0);
  std::cout << check.to_string();
  require(check.passed, "the gradients match central differences");

  // The trainer takes it as it is: the module and its loss (a classifier: logits from "inputs",
  // softmax cross-entropy with "labels", accuracy from the logits).
  namespace train = datarax::train;
  const train::Model trainable =
      train::classifier(model, [&](const VarTree& p, Var x) { return model(p, x); }, "custom classifier");
  const datarax::data::ArrayDataset train_set = make_dataset(0, 64, "custom/train");
  const datarax::data::ArrayDataset test_set = make_dataset(1000, 8, "custom/test");
  train::TrainConfig config;
  config.devices = 2;
  config.batch_size = kBatch;
  config.epochs = 1;  // 64 steps
  config.schedule = "constant";
  config.lr = 1e-3;
  config.seed = 1;

  // One device, then every layout of two: the same losses.
  train::TrainConfig one = config;
  one.data_parallel = 1;
  const train::TrainReport reference = train::train(trainable, train_set, test_set, one);
  struct Layout {
    const char* name;
    int data, model, stage;
  };
  for (const Layout l : {Layout{"data 2", 2, 1, 0}, Layout{"data 2, ZeRO-1", 2, 1, 1}, Layout{"data 2, FSDP", 2, 1, 3},
                         Layout{"model 2", 1, 2, 0}}) {
    train::TrainConfig c = config;
    c.data_parallel = l.data;
    c.model_parallel = l.model;
    c.zero_stage = l.stage;
    const train::TrainReport r = train::train(trainable, train_set, test_set, c);
    const double worst = worst_difference(reference, r);
    std::cout << l.name << ": " << r.info.layout << "; largest relative loss difference to 1 device " << worst << "\n";
    require(r.steps.size() == reference.steps.size() && worst < 1e-5, std::string(l.name) + " computes the 1-device losses");
  }
  const train::EpochMetrics& e = reference.epochs.back();
  std::cout << "loss: step 1 " << reference.steps.front().loss << ", step 64 " << reference.steps.back().loss
            << "; held-out accuracy " << e.test_accuracy << "\n";
  require(reference.steps.back().loss < 0.5 * reference.steps.front().loss, "the loss falls by half or more");
  require(e.test_accuracy > 0.8, "held-out accuracy above 0.8");

  // Stopped at step 30 with a checkpoint, resumed from it: the rest of the run, bit for bit.
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("custom_model-" + std::to_string(getpid()));
  struct StopAt30 final : train::TrainObserver {
    train::StopToken* stop = nullptr;
    void on_step(const train::StepMetrics& m, int, std::int64_t) override {
      if (m.step == 30) stop->request_stop();
    }
  };
  train::StopToken stop;
  StopAt30 observer;
  observer.stop = &stop;
  const train::TrainReport whole = train::train(trainable, train_set, test_set, config);
  {
    train::CheckpointDir checkpoints(dir.string(), /*every=*/1000);
    train::train(trainable, train_set, test_set, config, {.observer = &observer, .checkpoint = &checkpoints, .stop = &stop});
  }
  const train::TrainState state = train::load_checkpoint(train::latest_checkpoint(dir.string()));
  const train::TrainReport rest = train::train(trainable, train_set, test_set, config, {.resume = &state});
  std::filesystem::remove_all(dir);
  std::cout << "stopped after step " << state.step << ", resumed to step " << rest.final_step << "\n";
  for (const train::StepMetrics& m : rest.steps)
    require(m.loss == whole.steps[static_cast<std::size_t>(m.step - 1)].loss,
            "the resumed run's loss at step " + std::to_string(m.step) + " is the uninterrupted run's");
  require(datarax::bitwise_equal(rest.params, whole.params), "the resumed run ends with the same parameters, bit for bit");
  std::cout << "custom_model: all checks passed\n";
  return 0;
}
