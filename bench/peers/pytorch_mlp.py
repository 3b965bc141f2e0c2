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

    python3 bench/peers/pytorch_mlp.py --threads 2 [--precision f32|bf16] [--steps 200] [--warmup 10]
"""
import argparse
import contextlib
import os
import statistics
import sys
import time

import torch

from idx_file import read_idx


def load_idx(path):
    payload, shape = read_idx(path, "pytorch_mlp.py")
    return torch.frombuffer(bytearray(payload), dtype=torch.uint8).reshape(shape)


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
    torch.manual_seed(0)
    x = load_idx(os.path.join(a.data_dir, "train-images-idx3-ubyte.gz")).to(torch.float32) / 255
    y = load_idx(os.path.join(a.data_dir, "train-labels-idx1-ubyte.gz")).to(torch.int64)
    model = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512),
                                torch.nn.ReLU(), torch.nn.Linear(512, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    bf16 = a.precision == "bf16"
    # f32 runs with no autocast context at all, as before --precision existed.
    forward_ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    batch, per_epoch = 256, x.shape[0] // 256
    ends, order = [], torch.randperm(x.shape[0])
    for step in range(a.steps):
        if step % per_epoch == 0 and step > 0:
            order = torch.randperm(x.shape[0])
        idx = order[(step % per_epoch) * batch:(step % per_epoch + 1) * batch]
        xb, yb = x[idx], y[idx]
        opt.zero_grad(set_to_none=True)
        with forward_ctx():
            loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        ends.append(time.perf_counter())
    dts = [ends[i] - ends[i - 1] for i in range(a.warmup + 1, len(ends))]
    label = "bf16 autocast" if bf16 else "f32"
    print(f"pytorch {torch.__version__} {label} ({a.threads} thread{'s' if a.threads > 1 else ''}) "
          f"{batch / statistics.median(dts):.0f} samples/s, final loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
