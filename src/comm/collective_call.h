// What the backends share about one member's call: whether two calls match, and the message when
// they do not. Private to comm.
#pragma once

#include <string>
#include <string_view>

#include "datarax/communicator.h"
#include "datarax/device.h"

namespace datarax::detail {

// Whether two members' calls match: the same kind, dtype, count, root and permutation, and for
// reductions the same op.
bool same_call(const CollectiveDesc& a, const CollectiveDesc& b);

// The text of the MismatchError for two members' calls that are not the same_call, in the group
// over `group`.
std::string mismatch_message(std::string_view label, const std::string& group, const Device& a_device,
                             const CollectiveDesc& a, const Device& b_device, const CollectiveDesc& b);

}  // namespace datarax::detail
