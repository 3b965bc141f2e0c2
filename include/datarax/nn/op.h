// Op: one differentiable operation, its forward and its backward side by side (llm.c style).
//
// To add an op: derive from Op, compute the output's shape in a free function that takes Vars
// (checking its arguments and naming itself in every error), and record it with Graph::apply:
//
//   class Square final : public Op {
//    public:
//     std::string_view name() const override { return "square"; }
//     void forward(std::span<const Array> in, Array& out) override { ... out = in[0]² ... }
//     void backward(std::span<const Array> in, const Array& out, const Array& dout,
//                   std::span<Array* const> din) override {
//       if (din[0]) { ... din[0] += 2 · in[0] · dout ... }
//     }
//   };
//   Var square(Var x) { return check_operands("square", {x}).apply(std::make_unique<Square>(), {x}, x.shape(), x.dtype()); }
//
// and check it with check_gradients (check_gradients.h) in f64. docs/models.md walks through it.
//
// Contract:
// - forward OVERWRITES out (allocated with the shape and dtype given to apply). It is called once
//   when recorded and again at every replay, on new input values of the same shapes, so anything
//   it saves for backward lives in the op object, allocated in its constructor or at the first
//   forward (never per call: replays allocate nothing).
// - backward ACCUMULATES (+=) into din[i] for every i where din[i] is not null (that input depends
//   on a parameter); null entries are inputs that need no gradient: skip their work. dout is the
//   gradient of the loss w.r.t. out; in and out are the values of the last forward.
// - backward_fresh is backward with one more fact: fresh[i] says din[i] has not been written yet in
//   this backward pass (this op is its first contributor), so the op may WRITE it (=) instead of
//   adding. Its default zeroes the fresh buffers and calls backward: an op need not know of it.
//   Ops whose gradients are products or copies override it and save the graph a pass of zeroes and
//   a pass of reads (a matrix product with beta 0 instead of 1). When one input is used twice by
//   an op, only its first slot is fresh.
// - An op object belongs to one graph and one thread.
#pragma once

#include <cstring>
#include <span>
#include <string_view>

#include "datarax/array.h"

namespace datarax::nn {

class Op {
 public:
  virtual ~Op() = default;
  virtual std::string_view name() const = 0;
  virtual void forward(std::span<const Array> in, Array& out) = 0;
  virtual void backward(std::span<const Array> in, const Array& out, const Array& dout,
                        std::span<Array* const> din) = 0;
  virtual void backward_fresh(std::span<const Array> in, const Array& out, const Array& dout,
                              std::span<Array* const> din, std::span<const bool> fresh);
};

// The base of an op that implements backward_fresh (at most kMaxInputs inputs): its backward is
// backward_fresh with nothing fresh, written once here.
class FreshOp : public Op {
 public:
  static constexpr std::size_t kMaxInputs = 8;
  void backward(std::span<const Array> in, const Array& out, const Array& dout, std::span<Array* const> din) final {
    static constexpr bool kNone[kMaxInputs] = {};
    backward_fresh(in, out, dout, din, std::span<const bool>(kNone, din.size()));
  }
};

inline void Op::backward_fresh(std::span<const Array> in, const Array& out, const Array& dout,
                               std::span<Array* const> din, std::span<const bool> fresh) {
  for (std::size_t i = 0; i < din.size(); ++i)
    if (din[i] != nullptr && fresh[i]) std::memset(din[i]->raw(), 0, din[i]->nbytes());
  backward(in, out, dout, din);
}

}  // namespace datarax::nn
