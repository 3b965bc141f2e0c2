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
// - An op object belongs to one graph and one thread.
#pragma once

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
};

}  // namespace datarax::nn
