#include "datarax/vmap.h"

#include <cstring>

#include "core/strings.h"
#include "datarax/error.h"

namespace datarax {

namespace {

Array example(const Array& batch, std::int64_t i) {
  std::vector<std::int64_t> rest(batch.shape().dims().begin() + 1, batch.shape().dims().end());
  return batch.slice(i, i + 1).reshape(Shape(std::move(rest)));
}

// Copies result i into row i of `stacked`, allocating it from the first result.
void stack_into(Array& stacked, const Array& result, std::int64_t i, std::int64_t batch, const std::string& what) {
  if (i == 0) {
    std::vector<std::int64_t> dims = result.shape().dims();
    dims.insert(dims.begin(), batch);
    stacked = Array::empty(Shape(std::move(dims)), result.dtype(), result.device());
  } else if (result.dtype() != stacked.dtype() || result.numel() != stacked.shape().row_numel() ||
             example(stacked, 0).shape() != result.shape()) {
    throw InvalidArgumentError("vmap: the result" + what + " for example " + std::to_string(i) + " is " +
                               std::string(to_string(result.dtype())) + result.shape().to_string() +
                               ", for example 0 it was " + std::string(to_string(stacked.dtype())) +
                               example(stacked, 0).shape().to_string() + "; every example must give the same");
  }
  if (result.nbytes() > 0)
    std::memcpy(static_cast<std::byte*>(stacked.raw()) + static_cast<std::size_t>(i) * result.nbytes(),
                result.raw(), result.nbytes());
}

std::int64_t batch_size(const Tree& batch) {
  std::int64_t b = -1;
  std::string first;
  for (const auto& [key, leaf] : batch) {
    if (leaf.rank() == 0)
      throw InvalidArgumentError("vmap: leaf " + detail::quoted(key) + " is 0-d; vmap maps over a leading axis");
    if (b < 0) {
      b = leaf.shape()[0];
      first = key;
    } else if (leaf.shape()[0] != b) {
      throw InvalidArgumentError("vmap: leaf " + detail::quoted(key) + " has leading size " +
                                 std::to_string(leaf.shape()[0]) + " but " + detail::quoted(first) +
                                 " has " + std::to_string(b) + "; all leaves must agree");
    }
  }
  return b < 0 ? 0 : b;
}

}  // namespace

std::function<Array(const Array&)> vmap(std::function<Array(const Array&)> fn) {
  return [fn = std::move(fn)](const Array& batch) {
    if (batch.rank() == 0) throw InvalidArgumentError("vmap: the input is 0-d; vmap maps over a leading axis");
    const std::int64_t b = batch.shape()[0];
    Array stacked;
    for (std::int64_t i = 0; i < b; ++i) stack_into(stacked, fn(example(batch, i)), i, b, "");
    return stacked;
  };
}

std::function<Tree(const Tree&)> vmap(std::function<Tree(const Tree&)> fn) {
  return [fn = std::move(fn)](const Tree& batch) {
    const std::int64_t b = batch_size(batch);
    Tree out;
    std::vector<std::string> keys;
    for (std::int64_t i = 0; i < b; ++i) {
      Tree ex = batch.map([&](const Array& leaf) { return example(leaf, i); });
      Tree result = fn(ex);
      if (i == 0) {
        keys = result.keys();
        for (const auto& key : keys) out.set(key, Array());
      } else if (result.keys() != keys) {
        throw InvalidArgumentError("vmap: the result for example " + std::to_string(i) + " has keys " +
                                   detail::join(result.keys(), ", ") + ", for example 0 it had " +
                                   detail::join(keys, ", "));
      }
      for (const auto& [key, leaf] : result) stack_into(out.at(key), leaf, i, b, " " + detail::quoted(key));
    }
    return out;
  };
}

}  // namespace datarax
