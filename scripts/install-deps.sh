#!/usr/bin/env bash
# Installs the Debian packages datarax needs to build, test and run.
# Idempotent and quiet: when every package is present it prints nothing and touches nothing.
# Uses sudo when not root. Nothing is downloaded from anywhere but Debian's package registry.
set -euo pipefail

packages=(
  g++ cmake make pkg-config
  libgtest-dev libgmock-dev    # unit tests
  libcli11-dev                  # command-line tools
  openmpi-bin libopenmpi-dev    # MPI: bench/ compares against MPI_Allreduce; the MPI backend
  libopenblas-dev               # matrix products (CBLAS)
  libdnnl-dev                   # oneDNN: a bf16 matrix-product candidate (AMX tiles where the CPU has them)
  zlib1g-dev                    # gzip'd IDX data files
  libxxhash-dev                 # checkpoints' file checksums (XXH3-64)
  nlohmann-json3-dev            # safetensors headers, metrics
  dataset-fashion-mnist         # the default training data: /usr/share/datasets/fashion-mnist
  gnuplot-nox                   # datarax-train --plot
  fortunes                      # the GPT's default text corpus: /usr/share/games/fortunes
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2; rm -f "$log"
  echo "install-deps: apt-get failed for: ${missing[*]}" >&2
  exit 1
fi
rm -f "$log"
