// PartitionSpec: how each dimension of an array is split over mesh axes (JAX's PartitionSpec).
//
// One entry per array dimension, outermost first: a mesh axis name, several axis names (the
// dimension is split over their product, the first axis major), or std::nullopt (replicated).
// Dimensions past the last entry are replicated; PartitionSpec{} replicates everything.
//
//   PartitionSpec{"data"}                 // dim 0 split over "data"
//   PartitionSpec{std::nullopt, "model"}  // dim 1 split over "model"
//   PartitionSpec{{"data", "model"}}      // dim 0 split over data x model
#pragma once

#include <initializer_list>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace datarax {

class PartitionSpec {
 public:
  // One dimension's entry. Empty axes: replicated.
  class Entry {
   public:
    Entry(std::nullopt_t) {}                                   // NOLINT: implicit by design
    Entry(const char* axis) : axes_{axis} {}                   // NOLINT
    Entry(std::string axis) : axes_{std::move(axis)} {}        // NOLINT
    Entry(std::initializer_list<std::string> axes) : axes_(axes) {}
    explicit Entry(std::vector<std::string> axes) : axes_(std::move(axes)) {}

    const std::vector<std::string>& axes() const { return axes_; }
    bool replicated() const { return axes_.empty(); }
    friend bool operator==(const Entry&, const Entry&) = default;

   private:
    std::vector<std::string> axes_;
  };

  PartitionSpec() = default;
  PartitionSpec(std::initializer_list<Entry> entries) : entries_(entries) {}
  explicit PartitionSpec(std::vector<Entry> entries) : entries_(std::move(entries)) {}

  // Number of entries (dimensions with an explicit entry).
  int size() const { return static_cast<int>(entries_.size()); }
  const std::vector<Entry>& entries() const { return entries_; }
  // Axes of dimension `dim`; empty (replicated) past the last entry.
  const std::vector<std::string>& axes_of(int dim) const;
  // Every axis the spec names, in order of appearance.
  std::vector<std::string> mesh_axes() const;

  // "PartitionSpec(None, model, (data, model))".
  std::string to_string() const;
  friend bool operator==(const PartitionSpec&, const PartitionSpec&) = default;

 private:
  std::vector<Entry> entries_;
};

std::ostream& operator<<(std::ostream& os, const PartitionSpec& spec);

}  // namespace datarax
