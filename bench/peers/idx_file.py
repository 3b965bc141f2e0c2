"""The IDX files of Debian's dataset-fashion-mnist (gzipped), for the peers' scripts: each turns the
bytes into its own framework's array."""
import gzip
import struct
import sys


def read_idx(path, prog):
    """(the uint8 payload as bytes, its shape): images (count, rows * cols), labels (count,).
    Exits naming `prog` and the path when the file cannot be read or is not IDX."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        sys.exit(f"{prog}: cannot read {path}: {e} (Debian's dataset-fashion-mnist has it)")
    magic, count = struct.unpack(">II", data[:8])
    if magic == 2051:  # images: count, rows, cols
        rows, cols = struct.unpack(">II", data[8:16])
        return data[16:], (count, rows * cols)
    if magic == 2049:  # labels
        return data[8:], (count,)
    sys.exit(f"{prog}: {path}: not an IDX file (magic {magic})")
