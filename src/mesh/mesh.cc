#include "datarax/mesh.h"

#include <algorithm>
#include <set>

#include "core/strings.h"
#include "datarax/error.h"
#include "device/process_group.h"

namespace datarax {

namespace {

std::string axes_list(const std::vector<std::string>& names) {
  return "(" + detail::join(names, ", ") + ")";
}

}  // namespace

long long devices_needed(const std::vector<MeshAxis>& axes) {
  long long product = 1;
  for (const auto& [name, size] : axes) {
    const long long s = std::max(size, 1);
    product = product > kMaxMeshDevices / s ? kMaxMeshDevices + 1 : product * s;
  }
  return product;
}

std::string devices_needed_text(const std::vector<MeshAxis>& axes) {
  const long long n = devices_needed(axes);
  return n > kMaxMeshDevices ? "more than " + std::to_string(kMaxMeshDevices) : std::to_string(n);
}

Mesh::Mesh(std::vector<Device> devices, std::vector<MeshAxis> axes) : devices_(std::move(devices)) {
  if (axes.empty()) throw InvalidArgumentError("Mesh: at least one axis is required");
  for (const auto& [name, size] : axes) {
    if (name.empty()) throw InvalidArgumentError("Mesh: axis names must not be empty");
    if (std::find(axis_names_.begin(), axis_names_.end(), name) != axis_names_.end())
      throw InvalidArgumentError("Mesh: axis name " + detail::quoted(name) +
                                 " is used twice; axis names must be distinct");
    if (size < 1)
      throw InvalidArgumentError("Mesh: axis " + detail::quoted(name) + " has size " +
                                 std::to_string(size) + "; sizes must be >= 1");
    axis_names_.push_back(name);
    shape_.push_back(size);
  }
  if (devices_needed(axes) != static_cast<long long>(devices_.size()))
    throw InvalidArgumentError("Mesh: axes " + axes_string() + " need " + devices_needed_text(axes) +
                               " devices, but " + std::to_string(devices_.size()) +
                               " were given");
  std::set<Device> seen;
  for (const Device& d : devices_)
    if (!seen.insert(d).second)
      throw InvalidArgumentError("Mesh: device " + d.to_string() +
                                 " is listed twice; each device may appear once");
}

std::vector<MeshAxis> Mesh::axes() const {
  std::vector<MeshAxis> out;
  for (std::size_t i = 0; i < shape_.size(); ++i) out.emplace_back(axis_names_[i], shape_[i]);
  return out;
}

bool Mesh::has_axis(std::string_view name) const {
  return std::find(axis_names_.begin(), axis_names_.end(), name) != axis_names_.end();
}

int Mesh::axis_position(std::string_view name) const {
  auto it = std::find(axis_names_.begin(), axis_names_.end(), name);
  if (it == axis_names_.end())
    throw InvalidArgumentError("Mesh: unknown axis " + detail::quoted(name) +
                               "; the mesh has axes " + axes_list(axis_names_));
  return static_cast<int>(it - axis_names_.begin());
}

int Mesh::axis_size(std::string_view name) const {
  return shape_[static_cast<std::size_t>(axis_position(name))];
}

bool Mesh::contains(const Device& device) const {
  return std::find(devices_.begin(), devices_.end(), device) != devices_.end();
}

std::vector<int> Mesh::coords(const Device& device) const {
  auto it = std::find(devices_.begin(), devices_.end(), device);
  if (it == devices_.end())
    throw InvalidArgumentError("Mesh::coords: device " + device.to_string() + " is not in " +
                               to_string());
  int flat = static_cast<int>(it - devices_.begin());
  std::vector<int> c(shape_.size());
  for (int i = ndim() - 1; i >= 0; --i) {
    c[static_cast<std::size_t>(i)] = flat % shape_[static_cast<std::size_t>(i)];
    flat /= shape_[static_cast<std::size_t>(i)];
  }
  return c;
}

int Mesh::flat_index(const std::vector<int>& coords) const {
  if (coords.size() != shape_.size())
    throw InvalidArgumentError("Mesh::device_at: " + std::to_string(coords.size()) +
                               " coordinates given for a mesh with " + std::to_string(ndim()) +
                               " axes " + axes_list(axis_names_));
  int flat = 0;
  for (std::size_t i = 0; i < shape_.size(); ++i) {
    if (coords[i] < 0 || coords[i] >= shape_[i])
      throw InvalidArgumentError("Mesh::device_at: coordinate " + std::to_string(coords[i]) +
                                 " on axis " + detail::quoted(axis_names_[i]) +
                                 " is out of range 0.." + std::to_string(shape_[i] - 1));
    flat = flat * shape_[i] + coords[i];
  }
  return flat;
}

const Device& Mesh::device_at(const std::vector<int>& coords) const {
  return devices_[static_cast<std::size_t>(flat_index(coords))];
}

std::vector<int> Mesh::validated_positions(const std::vector<std::string>& axes,
                                           const char* op) const {
  std::vector<int> pos;
  for (const std::string& a : axes) {
    if (!has_axis(a))
      throw InvalidArgumentError(std::string(op) + ": unknown axis " + detail::quoted(a) +
                                 "; the mesh has axes " + axes_list(axis_names_));
    const int p = axis_position(a);
    if (std::find(pos.begin(), pos.end(), p) != pos.end())
      throw InvalidArgumentError(std::string(op) + ": axis " + detail::quoted(a) +
                                 " is named twice in " + axes_list(axes));
    pos.push_back(p);
  }
  return pos;
}

int Mesh::group_size(const std::vector<std::string>& axes) const {
  int n = 1;
  for (int p : validated_positions(axes, "Mesh::group_size")) n *= shape_[static_cast<std::size_t>(p)];
  return n;
}

std::vector<std::vector<Device>> Mesh::groups(const std::vector<std::string>& axes) const {
  const std::vector<int> in = validated_positions(axes, "Mesh::groups");
  std::vector<int> rest;
  for (int i = 0; i < ndim(); ++i)
    if (std::find(in.begin(), in.end(), i) == in.end()) rest.push_back(i);

  // Odometer over a list of axis positions, row-major (last position fastest).
  auto count = [&](const std::vector<int>& positions) {
    int n = 1;
    for (int p : positions) n *= shape_[static_cast<std::size_t>(p)];
    return n;
  };
  auto assign = [&](const std::vector<int>& positions, int linear, std::vector<int>& c) {
    for (int k = static_cast<int>(positions.size()) - 1; k >= 0; --k) {
      const auto p = static_cast<std::size_t>(positions[static_cast<std::size_t>(k)]);
      c[p] = linear % shape_[p];
      linear /= shape_[p];
    }
  };

  std::vector<std::vector<Device>> out;
  std::vector<int> c(shape_.size(), 0);
  for (int g = 0, ng = count(rest); g < ng; ++g) {
    assign(rest, g, c);
    std::vector<Device> group;
    for (int r = 0, nr = count(in); r < nr; ++r) {
      assign(in, r, c);
      group.push_back(devices_[static_cast<std::size_t>(flat_index(c))]);
    }
    out.push_back(std::move(group));
  }
  return out;
}

std::vector<Device> Mesh::group_of(const Device& device, const std::vector<std::string>& axes) const {
  coords(device);  // throws if the device is not in the mesh
  for (auto& group : groups(axes))
    if (std::find(group.begin(), group.end(), device) != group.end()) return group;
  return {};  // unreachable: every device is in exactly one group
}

int Mesh::rank_in_group(const Device& device, const std::vector<std::string>& axes) const {
  const std::vector<int> in = validated_positions(axes, "Mesh::rank_in_group");
  const std::vector<int> c = coords(device);
  int rank = 0;
  for (int p : in) rank = rank * shape_[static_cast<std::size_t>(p)] + c[static_cast<std::size_t>(p)];
  return rank;
}

std::string Mesh::axes_string() const {
  std::string out;
  for (std::size_t i = 0; i < shape_.size(); ++i)
    out += (i ? ", " : "") + axis_names_[i] + "=" + std::to_string(shape_[i]);
  return out;
}

std::string Mesh::to_string() const {
  // Consecutive ids of one kind print as a range: cpu:0..7.
  std::string devs;
  std::size_t i = 0;
  while (i < devices_.size()) {
    std::size_t j = i;
    while (j + 1 < devices_.size() && devices_[j + 1].kind == devices_[i].kind &&
           devices_[j + 1].id == devices_[j].id + 1)
      ++j;
    if (!devs.empty()) devs += ", ";
    devs += devices_[i].to_string();
    if (j > i) devs += ".." + std::to_string(devices_[j].id);
    i = j + 1;
  }
  return "Mesh(" + axes_string() + "; " + devs + ")";
}

std::ostream& operator<<(std::ostream& os, const Mesh& mesh) { return os << mesh.to_string(); }

bool Mesh::spans_processes() const { return detail::spans_processes(devices_); }

}  // namespace datarax
