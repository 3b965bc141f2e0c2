// datarax-info: prints the devices of this process and, on request, a mesh and its MeshInfo.
//
//   datarax-info --devices 8 --hybrid 2x4
//   datarax-info --mesh data=2,model=2,pipe=2
//
// Exit codes: 0 success, 2 bad arguments (including a mesh that needs more devices than exist).
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>

#include "cli_parse.h"
#include "datarax/datarax.h"
#include "datarax/nn/blas.h"
#include "datarax/nn/matmul_kernel.h"

namespace {

void print_mesh(std::ostream& out, const datarax::Mesh& mesh, const datarax::distributed::MeshInfo& info) {
  out << "mesh: " << mesh << "\n";
  out << "  total_devices: " << info.total_devices << "\n  axes:";
  for (const auto& [name, size] : info.axes) out << " " << name << "=" << size;
  out << "\n  device_kinds:";
  for (const auto& kind : info.device_kinds) out << " " << kind;
  out << "\n  process_count: " << info.process_count
            << "\n  devices_per_process: " << info.devices_per_process << "\n";
  // The layout, one line per index of the first axis (the last axis varies along a line).
  const int last = mesh.shape().back();
  out << "  layout (rows: leading axes, columns: " << mesh.axis_names().back() << "):\n";
  for (int i = 0; i < mesh.size(); i += last) {
    out << "   ";
    for (int j = 0; j < last; ++j) out << " " << mesh.devices()[static_cast<std::size_t>(i + j)];
    out << "\n";
  }
  out << info << "\n";
}

// The kernel each precision's matrix products use on this CPU, and why (nn/matmul_kernel.h).
void print_matmul_kernels() {
  namespace nn = datarax::nn;
  // Measured as a training run measures them: OpenBLAS on its caller's thread alone (nn/blas.h).
  // With OpenBLAS's default of a thread per core, its workers still spin after each call while
  // the next kernel is timed, and on this project's Xeon that read the avx512 kernel at 97-104
  // GFLOP/s instead of the 137 a training run's header shows.
  nn::use_single_threaded_blas_by_default();
  std::cout << "matmul f32: " << nn::matmul_kernel_choice(nn::Precision::f32).reason << "\n";
  if (nn::cpu_supports(nn::Precision::bf16))
    std::cout << "matmul bf16: " << nn::matmul_kernel_choice(nn::Precision::bf16).reason << "\n";
  else
    std::cout << "matmul bf16: not on this CPU (no AVX512_BF16); --precision bf16 is refused\n";
  std::cout << "onednn: " << nn::onednn_about() << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"datarax-info: the devices of this process and the meshes they form"};
  std::string devices_text, mesh_text, hybrid_text;
  app.add_option("--devices", devices_text, "number of logical CPU devices (1..1024)");
  auto* mesh_opt = app.add_option("--mesh", mesh_text, "a mesh to describe, e.g. data=2,model=4");
  app.add_option("--hybrid", hybrid_text, "a hybrid (data x model) mesh, e.g. 2x4")->excludes(mesh_opt);
  if (auto code = datarax::tools::parse_command_line(app, argc, argv)) return *code;

  return datarax::tools::run_tool("datarax-info", [&] {
    std::optional<int> num_devices;
    if (!devices_text.empty()) num_devices = datarax::parse_num_cpu_devices(devices_text, "--devices");
    datarax::initialize({.num_cpu_devices = num_devices});
    std::cout << "datarax " << datarax::kVersionString << ": process " << datarax::process_index()
              << " of " << datarax::process_count() << ", " << datarax::device_count()
              << " devices (" << datarax::local_device_count() << " local)\n";
    std::cout << "devices:";
    for (const auto& d : datarax::devices()) std::cout << " " << d;
    std::cout << "\n";
    print_matmul_kernels();

    datarax::distributed::DeviceMeshModule mesh_module;
    std::optional<datarax::Mesh> mesh;
    if (!hybrid_text.empty()) {
      auto [dp, mp] = datarax::tools::parse_hybrid(hybrid_text, "--hybrid");
      mesh = mesh_module.create_hybrid_mesh(dp, mp);
    } else if (!mesh_text.empty()) {
      mesh = mesh_module.create_device_mesh(datarax::tools::parse_mesh_axes(mesh_text, "--mesh"));
    }
    if (mesh) {
      // Axis names are the user's: printed with their control characters escaped.
      std::ostringstream text;
      print_mesh(text, *mesh, mesh_module.get_mesh_info(*mesh));
      std::cout << datarax::tools::printable(text.str(), true);
    }
  });
}
