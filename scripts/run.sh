#!/usr/bin/env bash
# The main job: installs what is needed, builds, and trains the default model (MLP 784-512-512-10,
# Adam 1e-3, global batch 256, data-parallel over every local CPU device, 10 epochs) on
# Fashion-MNIST from Debian's dataset-fashion-mnist package. Extra arguments go to datarax-train.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/build.sh"
exec "${DATARAX_BUILD_DIR:-$root/build}/tools/datarax-train" "$@"
