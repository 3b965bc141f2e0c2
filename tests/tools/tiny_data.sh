# Sourced by test scripts: tiny_data DIR TRAIN TEST [FLIP] writes an MNIST-format data set of the
# first TRAIN training and TEST test examples of Debian's Fashion-MNIST into DIR (uncompressed
# IDX files), so that a run of a few steps starts in a fraction of a second. With FLIP, the first
# training label is changed: the same size, other contents.
tiny_data() {
  local dir=$1 train=$2 test=$3 flip=${4:-}
  local src=/usr/share/datasets/fashion-mnist
  mkdir -p "$dir"
  local split n
  for split in train t10k; do
    n=$([[ $split == train ]] && echo "$train" || echo "$test")
    local count
    count=$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((n >> 24 & 255)) $((n >> 16 & 255)) $((n >> 8 & 255)) $((n & 255)))
    { printf '\x00\x00\x08\x03'; printf "$count"; printf '\x00\x00\x00\x1c\x00\x00\x00\x1c'
      zcat "$src/$split-images-idx3-ubyte.gz" | tail -c +17 | head -c $((n * 784)); } >"$dir/$split-images-idx3-ubyte"
    { printf '\x00\x00\x08\x01'; printf "$count"
      zcat "$src/$split-labels-idx1-ubyte.gz" | tail -c +9 | head -c "$n"; } >"$dir/$split-labels-idx1-ubyte"
  done
  if [[ -n $flip ]]; then
    local first
    first=$(od -An -tu1 -j8 -N1 "$dir/train-labels-idx1-ubyte" | tr -d ' ')
    printf "\\x0$(( (first + 1) % 10 ))" | dd of="$dir/train-labels-idx1-ubyte" bs=1 seek=8 conv=notrunc status=none
  fi
}
