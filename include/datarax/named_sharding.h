// NamedSharding: a PartitionSpec bound to a Mesh — which part of an array each device holds.
//
// For a dimension split over axes (a1, a2, ...), the device at mesh coordinates c holds block
// number c[a1] * size(a2) * ... + c[a2] * ... + ... (first axis major) of that dimension; the
// block length is the dimension's size over the product n of the axis sizes, which must divide it
// — unless the sharding pads: then every block is ceil(size / n) long, the last ones end in zero
// padding (or hold padding alone, when n exceeds the size), and index_of gives the part of the
// dimension a block holds (possibly shorter than the block, possibly empty). Mesh axes the spec
// does not name replicate: devices differing only along them hold equal blocks.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "datarax/device.h"
#include "datarax/mesh.h"
#include "datarax/partition_spec.h"
#include "datarax/shape.h"

namespace datarax {

// Half-open index range [start, stop) of one dimension.
struct IndexRange {
  std::int64_t start = 0;
  std::int64_t stop = 0;
  std::int64_t size() const { return stop - start; }
  friend bool operator==(const IndexRange&, const IndexRange&) = default;
};

// Whether a sharding pads dimensions its mesh axes do not divide (fsdp_rules does), or refuses them.
enum class Padding : unsigned char { none, pad };

class NamedSharding {
 public:
  // Checks the spec against the mesh: every axis must exist in the mesh (the message lists the
  // mesh's axes) and no axis may appear twice.
  NamedSharding(Mesh mesh, PartitionSpec spec, Padding padding = Padding::none);

  const Mesh& mesh() const { return mesh_; }
  const PartitionSpec& spec() const { return spec_; }
  bool pads() const { return padding_ == Padding::pad; }

  // Checks that the spec fits an array of `shape`: no more entries than dimensions, and (unless
  // padding) each split dimension divisible by the product of its axes. `op` and `key` (the key
  // path, may be empty) name the array in the message.
  void validate(const Shape& shape, std::string_view op = "NamedSharding",
                std::string_view key = {}) const;
  // Shape of every device's block, padding included (validates first).
  Shape shard_shape(const Shape& global_shape) const;
  // The part of the array `device`'s block holds: one range per dimension (validates first). With
  // padding it may be shorter than shard_shape, the rest of the block being padding.
  std::vector<IndexRange> index_of(const Device& device, const Shape& global_shape) const;
  // Number of distinct blocks along each dimension.
  std::vector<int> num_shards(int rank) const;
  // How many devices hold each block: the product of the mesh axes the spec does not use.
  int replication_factor() const;
  bool is_fully_replicated() const { return replication_factor() == mesh_.size(); }

  // "NamedSharding(Mesh(data=2; cpu:0..1), PartitionSpec(data))"
  std::string to_string() const;
  friend bool operator==(const NamedSharding&, const NamedSharding&) = default;

 private:
  Mesh mesh_;
  PartitionSpec spec_;
  Padding padding_ = Padding::none;
};

std::ostream& operator<<(std::ostream& os, const NamedSharding& sharding);

}  // namespace datarax
