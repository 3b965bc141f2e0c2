// Parsing of the mesh arguments the command-line tools share: "data=2,model=4" and "2x4".
// Errors are datarax::InvalidArgumentError with a message that says what is valid.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "datarax/mesh.h"

namespace datarax::tools {

// "data=2,model=4" -> {{"data", 2}, {"model", 4}}.
std::vector<MeshAxis> parse_mesh_axes(const std::string& text, const std::string& flag);
// "2x4" -> {2, 4}.
std::pair<int, int> parse_hybrid(const std::string& text, const std::string& flag);

}  // namespace datarax::tools
