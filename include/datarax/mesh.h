// Mesh: an n-dimensional array of devices with named axes (JAX's jax.sharding.Mesh).
//
// Devices are laid out row-major over the axes in the order given: with axes (data=2, model=4)
// the device at coordinates (d, m) is devices()[d * 4 + m]. A collective "over axis model" spans
// the devices that differ only in their model coordinate; groups() lists those sets.
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "datarax/device.h"

namespace datarax {

// One named axis and its size, e.g. {"data", 2}.
using MeshAxis = std::pair<std::string, int>;

// The devices a mesh of `axes` needs: the product of their sizes, computed without overflow — a
// product above kMaxMeshDevices (far beyond any job) is kMaxMeshDevices + 1. Sizes below 1 count
// as 1 here; Mesh and DeviceMeshModule reject them.
inline constexpr long long kMaxMeshDevices = 1LL << 40;
long long devices_needed(const std::vector<MeshAxis>& axes);
// devices_needed as message text: "12", or "more than 1099511627776".
std::string devices_needed_text(const std::vector<MeshAxis>& axes);

class Mesh {
 public:
  // `devices` row-major over `axes`. Throws InvalidArgumentError for an empty axis list, an empty or
  // duplicate axis name, a size < 1, a device listed twice, or a device count that is not the
  // product of the axis sizes.
  Mesh(std::vector<Device> devices, std::vector<MeshAxis> axes);

  const std::vector<int>& shape() const { return shape_; }
  const std::vector<std::string>& axis_names() const { return axis_names_; }
  std::vector<MeshAxis> axes() const;
  int ndim() const { return static_cast<int>(shape_.size()); }
  // Size of a named axis; InvalidArgumentError listing the mesh's axes for an unknown name.
  int axis_size(std::string_view name) const;
  // Position of a named axis in axis_names(); same error for an unknown name.
  int axis_position(std::string_view name) const;
  bool has_axis(std::string_view name) const;
  int size() const { return static_cast<int>(devices_.size()); }
  const std::vector<Device>& devices() const { return devices_; }
  // Whether devices of other processes than this one are in the mesh (JAX's is_multi_process):
  // then placing, gathering and SPMD code over it are collective across those processes.
  bool spans_processes() const;

  // Coordinates of a device of the mesh, one per axis; InvalidArgumentError if it is not in it.
  std::vector<int> coords(const Device& device) const;
  // The device at coordinates (one per axis, each in range).
  const Device& device_at(const std::vector<int>& coords) const;
  bool contains(const Device& device) const;

  // The device groups a collective over `axes` spans: every set of devices whose coordinates agree
  // on all other axes. Within a group, devices are ordered row-major over `axes` in the order given
  // (that order is the group rank); groups are ordered row-major over the remaining axes.
  // Empty `axes`: every device is its own group.
  std::vector<std::vector<Device>> groups(const std::vector<std::string>& axes) const;
  // The group of `device` over `axes`, and its rank in it.
  std::vector<Device> group_of(const Device& device, const std::vector<std::string>& axes) const;
  int rank_in_group(const Device& device, const std::vector<std::string>& axes) const;
  // Product of the sizes of `axes`.
  int group_size(const std::vector<std::string>& axes) const;

  // "Mesh(data=2, model=4; cpu:0..7)".
  std::string to_string() const;
  // Axis list as "data=2, model=4".
  std::string axes_string() const;

  friend bool operator==(const Mesh&, const Mesh&) = default;

 private:
  int flat_index(const std::vector<int>& coords) const;
  std::vector<int> validated_positions(const std::vector<std::string>& axes,
                                       const char* op) const;

  std::vector<Device> devices_;
  std::vector<int> shape_;
  std::vector<std::string> axis_names_;
};

std::ostream& operator<<(std::ostream& os, const Mesh& mesh);

}  // namespace datarax
