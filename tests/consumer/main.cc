// A program outside datarax's build that uses the installed library: the consumer_find_package test
// builds it against an install prefix and checks what it prints.
#include <iostream>

#include <datarax/datarax.h>

int main() {
  datarax::initialize({.num_cpu_devices = 8});
  datarax::distributed::DeviceMeshModule mesh_module;
  const datarax::Mesh mesh = mesh_module.create_hybrid_mesh(2, 4);
  std::cout << "consumer: datarax " << datarax::kVersionString << ", " << mesh << "\n"
            << "consumer: " << mesh_module.get_mesh_info(mesh) << "\n";
  return 0;
}
