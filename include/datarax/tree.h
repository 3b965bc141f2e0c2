// Tree: an ordered map from key path ("params/dense_0/kernel") to Array.
//
// The library's pytree: batches, parameters, gradients, optimizer states and metrics are Trees.
// Keys are kept sorted, so two trees with the same keys iterate in the same order everywhere (on
// every device and every process), which is what lets collectives walk trees leaf by leaf.
// Like Array, a Tree holds handles: copying a Tree shares the leaves' buffers.
#pragma once

#include <functional>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "datarax/array.h"

namespace datarax {

class Tree {
 public:
  using Map = std::map<std::string, Array, std::less<>>;

  Tree() = default;
  Tree(std::initializer_list<std::pair<const std::string, Array>> leaves);

  // Adds or replaces a leaf. A key path is one or more non-empty segments joined by '/'.
  void set(std::string key, Array value);
  // The leaf at `key`; KeyError naming the key and the tree's keys if absent.
  const Array& at(std::string_view key) const;
  Array& at(std::string_view key);
  bool contains(std::string_view key) const { return leaves_.find(key) != leaves_.end(); }
  void erase(std::string_view key);

  std::size_t size() const { return leaves_.size(); }
  bool empty() const { return leaves_.empty(); }
  std::vector<std::string> keys() const;
  Map::const_iterator begin() const { return leaves_.begin(); }
  Map::const_iterator end() const { return leaves_.end(); }
  Map::iterator begin() { return leaves_.begin(); }
  Map::iterator end() { return leaves_.end(); }

  // The leaves under "prefix/", with the prefix removed; empty if none.
  Tree subtree(std::string_view prefix) const;
  // Every key with "prefix/" in front.
  Tree with_prefix(std::string_view prefix) const;

  // A tree with the same keys and fn applied to every leaf: fn(const Array&) or
  // fn(const std::string& key, const Array&), returning an Array.
  template <class Fn>
  Tree map(Fn&& fn) const;

  // "{a: f32[2] on cpu:0, b: ...}"
  std::string to_string() const;

 private:
  Map leaves_;
};

// Checks that `key` is a key path (non-empty segments joined by '/'); InvalidArgumentError naming
// `op` and the key otherwise.
void validate_key_path(std::string_view key, std::string_view op);

// Throws KeyError naming the first key that one tree has and the other lacks. `op` names the
// calling operation in the message.
void check_same_keys(const Tree& a, const Tree& b, std::string_view op);

struct ZipEntry {
  const std::string& key;
  const Array& a;
  const Array& b;
};
// The leaves of two trees with the same keys, side by side in key order.
std::vector<ZipEntry> zip(const Tree& a, const Tree& b);

// A tree with fn(a_leaf, b_leaf) (or fn(key, a_leaf, b_leaf)) at every key of a and b, which must
// have the same keys.
template <class Fn>
Tree map2(const Tree& a, const Tree& b, Fn&& fn);

// Same keys, and every leaf bitwise_equal.
bool bitwise_equal(const Tree& a, const Tree& b);

namespace detail {
// What Tree and ShardedTree share: both are sorted maps from key path to a leaf with to_string().
template <class Map>
std::vector<std::string> keys_of(const Map& leaves) {
  std::vector<std::string> out;
  out.reserve(leaves.size());
  for (const auto& kv : leaves) out.push_back(kv.first);
  return out;
}
// "{key: leaf, ...}".
template <class Map>
std::string leaves_to_string(const Map& leaves) {
  std::string out = "{";
  for (const auto& kv : leaves) out += (out.size() > 1 ? ", " : "") + kv.first + ": " + kv.second.to_string();
  return out + "}";
}
// KeyError "<op>: no key "<key>"; the tree has <its keys, or (none)>".
[[noreturn]] void throw_no_key(std::string_view op, std::string_view key, const std::vector<std::string>& keys);
}  // namespace detail

template <class Fn>
Tree Tree::map(Fn&& fn) const {
  Tree out;
  for (const auto& [key, leaf] : leaves_) {
    if constexpr (std::is_invocable_v<Fn&, const std::string&, const Array&>)
      out.leaves_.emplace(key, fn(key, leaf));
    else
      out.leaves_.emplace(key, fn(leaf));
  }
  return out;
}

template <class Fn>
Tree map2(const Tree& a, const Tree& b, Fn&& fn) {
  Tree out;
  for (const ZipEntry& e : zip(a, b)) {
    if constexpr (std::is_invocable_v<Fn&, const std::string&, const Array&, const Array&>)
      out.set(e.key, fn(e.key, e.a, e.b));
    else
      out.set(e.key, fn(e.a, e.b));
  }
  return out;
}

}  // namespace datarax
