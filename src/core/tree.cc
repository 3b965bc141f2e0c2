#include "datarax/tree.h"

#include "core/strings.h"

namespace datarax {

void validate_key_path(std::string_view key, std::string_view op) {
  const char* problem = nullptr;
  if (key.empty())
    problem = "is empty";
  else if (key.front() == '/' || key.back() == '/')
    problem = "starts or ends with '/'";
  else if (key.find("//") != std::string_view::npos)
    problem = "has an empty segment";
  if (problem)
    throw InvalidArgumentError(std::string(op) + ": key path " + detail::quoted(key) + " " +
                               problem + "; key paths look like \"params/dense_0/kernel\"");
}

void detail::throw_no_key(std::string_view op, std::string_view key, const std::vector<std::string>& keys) {
  throw KeyError(std::string(op) + ": no key " + quoted(key) + "; the tree has " + list_or_none(keys));
}

Tree::Tree(std::initializer_list<std::pair<const std::string, Array>> leaves) {
  for (const auto& [key, value] : leaves) set(key, value);
}

void Tree::set(std::string key, Array value) {
  validate_key_path(key, "Tree::set");
  leaves_.insert_or_assign(std::move(key), std::move(value));
}

const Array& Tree::at(std::string_view key) const {
  auto it = leaves_.find(key);
  if (it == leaves_.end()) detail::throw_no_key("Tree::at", key, keys());
  return it->second;
}

Array& Tree::at(std::string_view key) {
  return const_cast<Array&>(static_cast<const Tree&>(*this).at(key));
}

void Tree::erase(std::string_view key) {
  auto it = leaves_.find(key);
  if (it == leaves_.end()) detail::throw_no_key("Tree::erase", key, keys());
  leaves_.erase(it);
}

std::vector<std::string> Tree::keys() const { return detail::keys_of(leaves_); }

Tree Tree::subtree(std::string_view prefix) const {
  const std::string p = std::string(prefix) + "/";
  Tree out;
  for (auto it = leaves_.lower_bound(p); it != leaves_.end() && it->first.starts_with(p); ++it)
    out.leaves_.emplace(it->first.substr(p.size()), it->second);
  return out;
}

Tree Tree::with_prefix(std::string_view prefix) const {
  Tree out;
  for (const auto& [key, leaf] : leaves_) out.set(std::string(prefix) + "/" + key, leaf);
  return out;
}

std::string Tree::to_string() const { return detail::leaves_to_string(leaves_); }

void check_same_keys(const Tree& a, const Tree& b, std::string_view op) {
  for (const auto& [key, leaf] : a)
    if (!b.contains(key))
      throw KeyError(std::string(op) + ": key " + detail::quoted(key) +
                     " is in the first tree but missing from the second");
  for (const auto& [key, leaf] : b)
    if (!a.contains(key))
      throw KeyError(std::string(op) + ": key " + detail::quoted(key) +
                     " is in the second tree but missing from the first");
}

std::vector<ZipEntry> zip(const Tree& a, const Tree& b) {
  check_same_keys(a, b, "zip");
  std::vector<ZipEntry> out;
  out.reserve(a.size());
  auto ib = b.begin();
  for (const auto& [key, leaf] : a) {
    out.push_back({key, leaf, ib->second});
    ++ib;
  }
  return out;
}

bool bitwise_equal(const Tree& a, const Tree& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [key, leaf] : a)
    if (!b.contains(key) || !bitwise_equal(leaf, b.at(key))) return false;
  return true;
}

}  // namespace datarax
