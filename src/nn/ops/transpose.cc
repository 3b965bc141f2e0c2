// transpose op (ops/transpose.h): a walk over the output in row-major order, reading x with the
// permuted strides; the backward walks the same way and adds into dx.
#include "datarax/nn/ops/transpose.h"

#include <algorithm>
#include <memory>
#include <string>

#include "nn/ops/dispatch.h"

namespace datarax::nn {

namespace {

using detail::with_float;

class Transpose final : public Op {
 public:
  // out_dims: the output's extents; strides[k]: x's stride along output axis k.
  Transpose(std::vector<std::int64_t> out_dims, std::vector<std::int64_t> strides)
      : dims_(std::move(out_dims)), strides_(std::move(strides)), idx_(dims_.size(), 0) {}
  std::string_view name() const override { return "transpose"; }

  void forward(std::span<const Array> in, Array& out) override {
    with_float(out.dtype(), name(), [&]<class T>(T) {
      const T* x = in[0].data<T>().data();
      T* y = out.data<T>().data();
      walk([&](std::int64_t o, std::int64_t off, std::int64_t st, std::int64_t len) {
        for (std::int64_t j = 0; j < len; ++j) y[o + j] = x[off + j * st];
      });
    });
  }

  void backward(std::span<const Array>, const Array&, const Array& dout, std::span<Array* const> din) override {
    if (din[0] == nullptr) return;
    with_float(dout.dtype(), name(), [&]<class T>(T) {
      const T* g = dout.data<T>().data();
      T* dx = din[0]->data<T>().data();
      walk([&](std::int64_t o, std::int64_t off, std::int64_t st, std::int64_t len) {
        for (std::int64_t j = 0; j < len; ++j) dx[off + j * st] += g[o + j];
      });
    });
  }

 private:
  // Calls fn(output offset, input offset, input stride, length) for each row of the output's last
  // axis, in row-major order.
  template <class Fn>
  void walk(Fn&& fn) {
    const int r = static_cast<int>(dims_.size());
    if (r == 0) return fn(0, 0, 1, 1);
    for (std::int64_t d : dims_)
      if (d == 0) return;
    std::fill(idx_.begin(), idx_.end(), 0);
    const std::int64_t len = dims_[r - 1], st = strides_[r - 1];
    std::int64_t off = 0;
    for (std::int64_t o = 0;; o += len) {
      fn(o, off, st, len);
      int k = r - 2;  // odometer over the leading output axes, keeping off in step
      for (; k >= 0; --k) {
        off += strides_[k];
        if (++idx_[k] < dims_[k]) break;
        off -= strides_[k] * dims_[k];
        idx_[k] = 0;
      }
      if (k < 0) return;
    }
  }

  std::vector<std::int64_t> dims_, strides_, idx_;
};

std::string to_text(const std::vector<int>& perm) {
  std::string s = "[";
  for (std::size_t i = 0; i < perm.size(); ++i) s += (i ? ", " : "") + std::to_string(perm[i]);
  return s + "]";
}

}  // namespace

Var transpose(Var x, std::vector<int> perm) {
  constexpr std::string_view what = "transpose";
  Graph& g = check_operands(what, {x});
  const Shape& s = x.shape();
  const int r = s.rank();
  if (static_cast<int>(perm.size()) != r)
    detail::fail(what, "permutation " + to_text(perm) + " has " + std::to_string(perm.size()) +
                           " axes; the input " + s.to_string() + " has " + std::to_string(r));
  std::vector<bool> seen(static_cast<std::size_t>(r), false);
  for (int p : perm) {
    if (p < 0 || p >= r)
      detail::fail(what, "permutation " + to_text(perm) + " names axis " + std::to_string(p) + "; valid: 0.." +
                             std::to_string(r - 1) + ", each once");
    if (seen[static_cast<std::size_t>(p)])
      detail::fail(what, "permutation " + to_text(perm) + " names axis " + std::to_string(p) +
                             " twice; valid: each of 0.." + std::to_string(r - 1) + " once");
    seen[static_cast<std::size_t>(p)] = true;
  }
  std::vector<std::int64_t> in_strides(static_cast<std::size_t>(r), 1);
  for (int d = r - 2; d >= 0; --d) in_strides[d] = in_strides[d + 1] * s[d + 1];
  std::vector<std::int64_t> dims(static_cast<std::size_t>(r)), strides(static_cast<std::size_t>(r));
  for (int k = 0; k < r; ++k) {
    dims[k] = s[perm[k]];
    strides[k] = in_strides[perm[k]];
  }
  Shape out(dims);
  return g.apply(std::make_unique<Transpose>(std::move(dims), std::move(strides)), {x}, std::move(out), x.dtype());
}

}  // namespace datarax::nn
