// VarTree: the Vars of one recording, by key path — a model's parameters or a batch's leaves, as a
// loss function sees them (the Tree of Arrays it was given, each leaf now a Var of the graph).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "datarax/nn/graph.h"
#include "datarax/nn/param.h"

namespace datarax::nn {

class VarTree {
 public:
  void set(std::string key, Var v);
  // The Var at `key`; KeyError naming the key and the keys there are.
  Var operator[](std::string_view key) const;
  // A model's parameter: the Var at param.key().
  Var operator[](const Param& param) const { return (*this)[param.key()]; }
  bool contains(std::string_view key) const { return vars_.find(key) != vars_.end(); }
  std::vector<std::string> keys() const;
  std::size_t size() const { return vars_.size(); }
  auto begin() const { return vars_.begin(); }
  auto end() const { return vars_.end(); }

 private:
  std::map<std::string, Var, std::less<>> vars_;
};

}  // namespace datarax::nn
