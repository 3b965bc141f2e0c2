#!/usr/bin/env bash
# The main job: installs what is needed, builds, and describes an 8-device hybrid mesh.
# (The trainer replaces this with a training run on Fashion-MNIST once it exists.)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/build.sh"
exec "${DATARAX_BUILD_DIR:-$root/build}/tools/datarax-info" --devices 8 --hybrid 2x4 "$@"
