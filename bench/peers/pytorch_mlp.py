#!/usr/bin/python3
"""The recipe of bench/train_throughput's default model in PyTorch, timed the same way.

MLP 784-512-512-10 (ReLU), Adam (lr 1e-3), global batch 256, Fashion-MNIST from Debian's
dataset-fashion-mnist, pixels scaled to [0, 1], a fresh shuffle per epoch. The figure is
256 / (median time between the ends of consecutive steps after the warm-up), as
bench/train_throughput measures its own. `--precision bf16` is PyTorch's CPU mixed-precision recipe:
the forward pass and the loss under torch.autocast("cpu", dtype=torch.bfloat16) (bf16 matmuls; the
master weights, Adam and the gradients' accumulation stay f32), the backward pass and the optimizer
step outside it. Works with Debian's PyTorch 1.13 and with PyTorch 2.x. Never part of the tests or
CI: bench/peers/run.sh runs it.

It runs the recipe the fastest way each PyTorch offers, so the peer is not slower than a minimal
script of the same recipe (bench/peers/pytorch_mlp_variants.py measures each choice):
- each batch is torch.index_select of the batch's 256 rows of the shuffled order (whole-row copies);
  advanced indexing x[idx] makes the same copy element by element and took 2-4x as long (on a Xeon
  model 207: 130-400 us a step against 50-140 us);
- Adam is fused=True where this PyTorch has a CPU fused Adam (2.4 and later: the same update in one
  kernel per parameter); there the default per-tensor loop took about 3x as long (1.7-3.5 ms a step
  against 0.55-1.1 ms); 1.13 has none, and its foreach=True was no faster than its default;
- --threads sizes OpenBLAS's own pool too (Debian's 1.13 does its f32 GEMMs in OpenBLAS's pthreads
  build, which torch.set_num_threads leaves at one thread per core, so "1 thread" used every core
  in its f32 GEMMs). On a CPU that OpenBLAS 0.3.21 does not know (that Xeon) it runs its SSE3
  kernel (Prescott) unless OPENBLAS_CORETYPE says otherwise, and run.sh unsets that variable;
- zero_grad(set_to_none=True), PyTorch 2's default, stays: zeroing in place was no faster per step;
- the timing is not what held the peer back: the median of the step intervals is never below a
  wall-clock rate over the same steps (it leaves out slow steps: on a quiet machine 0-16% above it
  in bf16 and in PyTorch 2's f32, 35-60% above it in Debian 1.13's f32 with 2 threads).

    python3 bench/peers/pytorch_mlp.py --threads 2 [--precision f32|bf16] [--steps 200] [--warmup 10]
"""
import argparse
import contextlib
import ctypes
import ctypes.util
import os
import statistics
import sys
import time

import torch

from idx_file import read_idx


def load_data(data_dir, who="pytorch_mlp.py"):
    """Fashion-MNIST's training images (f32, pixels / 255, [60000, 28, 28]) and labels (int64)."""
    def load(name):
        payload, shape = read_idx(os.path.join(data_dir, name), who)
        return torch.frombuffer(bytearray(payload), dtype=torch.uint8).reshape(shape)
    return load("train-images-idx3-ubyte.gz").to(torch.float32) / 255, load("train-labels-idx1-ubyte.gz").to(torch.int64)


def mlp():
    """The default model: MLP 784-512-512-10 with ReLU."""
    return torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512),
                               torch.nn.ReLU(), torch.nn.Linear(512, 10))


def forward_context(bf16):
    """The context of the forward pass and the loss: bf16 autocast, or (f32) none at all."""
    return (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext


def train_step(model, opt, loss_fn, ctx, xb, yb, set_to_none=True):
    """One step of the recipe; returns the loss."""
    opt.zero_grad(set_to_none=set_to_none)
    with ctx():
        loss = loss_fn(model(xb), yb)
    loss.backward()
    opt.step()
    return loss


def openblas():
    """OpenBLAS if torch loaded it (Debian's 1.13 does, the pthreads build, whose pool
    torch.set_num_threads does not size), else None."""
    for name in ("libopenblas.so.0", ctypes.util.find_library("openblas")):
        if not name:
            continue
        try:
            return ctypes.CDLL(name, mode=os.RTLD_NOLOAD)
        except OSError:
            pass
    return None


def size_openblas_pool(threads):
    """Debian's PyTorch 1.13 does its f32 matrix products in OpenBLAS's pthreads build, whose own pool
    (one thread per core by default) torch.set_num_threads does not size: without this, "1 thread"
    used every core for its f32 GEMMs, and "2 threads" ran OpenBLAS's pool beside the OpenMP pool.
    A no-op where OpenBLAS is not loaded (PyPI's PyTorch 2.x uses MKL, which set_num_threads sizes)."""
    lib = openblas()
    if lib is not None:
        lib.openblas_set_num_threads(threads)


def adam(params):
    """Adam (lr 1e-3) at PyTorch's fastest CPU implementation that this PyTorch has: fused=True where
    there is one (PyTorch >= 2.4 on CPU: one kernel over each parameter, the same update), else the
    default (the per-tensor loop; 1.13 has no CPU fused Adam)."""
    try:
        return torch.optim.Adam(params, lr=1e-3, fused=True), "fused"
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=1e-3), "default"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precision", choices=["f32", "bf16"], default="f32")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    a = p.parse_args()
    if a.threads < 1 or a.steps < a.warmup + 3:
        sys.exit("pytorch_mlp: --threads >= 1 and --steps >= --warmup + 3")
    torch.set_num_threads(a.threads)
    size_openblas_pool(a.threads)
    torch.manual_seed(0)
    x, y = load_data(a.data_dir)
    model = mlp()
    opt, _ = adam(list(model.parameters()))
    loss_fn = torch.nn.CrossEntropyLoss()
    bf16 = a.precision == "bf16"
    forward_ctx = forward_context(bf16)
    batch, per_epoch = 256, x.shape[0] // 256
    ends, order = [], torch.randperm(x.shape[0])
    for step in range(a.steps):
        if step % per_epoch == 0 and step > 0:
            order = torch.randperm(x.shape[0])
        idx = order[(step % per_epoch) * batch:(step % per_epoch + 1) * batch]
        # index_select copies the 256 rows whole; x[idx] (advanced indexing) computes every
        # element's offset and was 3-4x slower for the same copy.
        xb, yb = x.index_select(0, idx), y.index_select(0, idx)
        loss = train_step(model, opt, loss_fn, forward_ctx, xb, yb)
        ends.append(time.perf_counter())
    dts = [ends[i] - ends[i - 1] for i in range(a.warmup + 1, len(ends))]
    label = "bf16 autocast" if bf16 else "f32"
    print(f"pytorch {torch.__version__} {label} ({a.threads} thread{'s' if a.threads > 1 else ''}) "
          f"{batch / statistics.median(dts):.0f} samples/s, final loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
