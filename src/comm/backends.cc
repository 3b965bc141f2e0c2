#include "comm/backends.h"

#include <algorithm>

#include "comm/threads/group_communicator.h"
#include "core/strings.h"
#include "datarax/error.h"

#if DATARAX_HAVE_MPI
#include "comm/mpi/group_communicator.h"
#endif

namespace datarax::detail {

namespace {

using Accepts = bool (*)(const std::vector<Device>&);
using Make = std::unique_ptr<Group> (*)(const std::vector<Device>&, const std::string& name, const std::string& key,
                                        std::chrono::milliseconds);
using Knows = bool (*)(const std::exception_ptr&);

// What every backend folder provides (in its group_communicator.h, namespace detail::<backend>).
struct Backend {
  const char* name;
  Accepts accepts;     // whether it serves a group of these devices
  Make make;           // the group's communicators for this process's members
  Knows every_process_knows;  // whether a failure it threw was thrown on every process of the group
};

// In order of preference: the first backend that accepts a group's devices serves it.
constexpr Backend kBackends[] = {
    {"threads", threads::accepts, threads::make_group, threads::every_process_knows},
#if DATARAX_HAVE_MPI
    {"mpi", mpi::accepts, mpi::make_group, mpi::every_process_knows},
#endif
};

}  // namespace

std::unique_ptr<Group> make_group(const std::vector<Device>& devices, const std::string& name, const std::string& key,
                                  std::chrono::milliseconds timeout) {
  for (const Backend& b : kBackends)
    if (b.accepts(devices)) return b.make(devices, name, key, timeout);
  throw Error("collectives over " + name + ": no backend of this build serves devices " +
              join(devices, ", ", [](const Device& d) { return d.to_string(); }) + " (backends: " +
              join(kBackends, ", ", [](const Backend& b) { return std::string(b.name); }) +
              "); a group that spans processes needs a build with MPI");
}

bool every_process_knows(const std::exception_ptr& failure) {
  return std::any_of(std::begin(kBackends), std::end(kBackends),
                     [&](const Backend& b) { return b.every_process_knows(failure); });
}

}  // namespace datarax::detail
