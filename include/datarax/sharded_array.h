// ShardedArray: a global array laid out over a mesh by a NamedSharding.
//
// It knows the global shape and dtype and holds the shards of this process's devices (one Shard per
// local device of the mesh, in mesh order). For CPU devices, a shard that is a run of whole rows of
// the source (a split along the leading axis only) is a view of the source's buffer: no copy, and
// writes to the source show through. Other shards are copies. Placement::copy copies every shard,
// giving each device a buffer of its own (how model state is placed, so that devices can update
// their replica in place without racing).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "datarax/array.h"
#include "datarax/named_sharding.h"

namespace datarax {

struct Shard {
  Device device;
  Array data;                      // the block, on `device`
  std::vector<IndexRange> index;   // where the block sits in the global array
};

enum class Placement : unsigned char {
  view_if_possible,  // leading-axis blocks of CPU arrays are views of the source
  copy,              // every shard gets its own buffer
};
std::string_view to_string(Placement placement);

struct ShardOptions {
  Placement placement = Placement::view_if_possible;
  std::string_view op = "shard";   // names the operation in error messages
  std::string_view key = {};       // names the array (its key path) in error messages
};

class ShardedArray {
 public:
  // Splits a host array by `sharding` onto this process's devices of the mesh.
  static ShardedArray shard(const Array& global, const NamedSharding& sharding,
                            const ShardOptions& options = {});
  // Like JAX's make_array_from_process_local_data: `local` is this process's part of the global
  // array, as a data loader gives it — the rows of the leading axis that this process's devices
  // hold (every process passes the same shape). The global leading extent is local's times the
  // number of row blocks over the number this process holds; the other dimensions are global. In a
  // single process (or a mesh inside this process) it is shard(local, ...). Throws when this
  // process's devices do not hold one contiguous run of row blocks.
  static ShardedArray from_process_local(const Array& local, const NamedSharding& sharding,
                                         const ShardOptions& options = {});
  // Assembles from shards the caller made: one per local mesh device, each with the block shape the
  // sharding gives and the array's dtype (InvalidArgumentError otherwise).
  ShardedArray(Shape global_shape, DType dtype, NamedSharding sharding, std::vector<Shard> shards);

  const Shape& shape() const { return shape_; }
  DType dtype() const { return dtype_; }
  const NamedSharding& sharding() const { return sharding_; }
  const std::vector<Shard>& shards() const { return shards_; }
  // The block held by `device`; InvalidArgumentError if that device holds none here.
  const Array& shard_for(const Device& device) const;

  // The global array on one host buffer (on the first local mesh device), assembled from the
  // shards. When the mesh spans processes this is collective: every process of the job must call
  // it (in the same order as its other cross-process calls), and every process gets the whole array.
  Array gather() const;
  // Every device's shard, in mesh order, whichever process holds it (JAX's global_shards). When the
  // mesh spans processes this is collective, like gather(), and the blocks of other processes'
  // devices are copies in this process's memory (their `data` on this process's first mesh device);
  // otherwise it is shards().
  std::vector<Shard> global_shards() const;
  // The same global array under another sharding (of the same mesh devices or others).
  ShardedArray reshard(const NamedSharding& sharding,
                       Placement placement = Placement::view_if_possible) const;

  std::string to_string() const;

 private:
  Shape shape_;
  DType dtype_;
  NamedSharding sharding_;
  std::vector<Shard> shards_;
};

}  // namespace datarax
