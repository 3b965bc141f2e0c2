#!/usr/bin/python3
"""The CNN of datarax's --model cnn (nn/models/cnn.h) in PyTorch, trained the way pytorch_mlp.py trains the MLP.

conv 3x3 1->32 SAME + ReLU + max pool 2x2, conv 3x3 32->64 SAME + ReLU + max pool 2x2, flatten
3136, dense 128 + ReLU, dense 10; Adam (lr 1e-3), global batch 256, Fashion-MNIST from Debian's
dataset-fashion-mnist, pixels scaled to [0, 1], a fresh shuffle per epoch. The figure is
256 / (median time between the ends of consecutive steps after the warm-up), as
bench/train_throughput measures its own. PyTorch's layout is NCHW (what nn.Conv2d takes by default);
`--channels-last` runs the model and the images in torch.channels_last (NHWC in memory: oneDNN's
preferred layout on CPUs) instead, so that the peer's best layout can be taken. Works with
Debian's PyTorch 1.13 and with PyTorch 2.x. Never part of the tests or CI: bench/peers/run.sh --cnn
runs it.

    python3 bench/peers/pytorch_cnn.py --threads 2 [--channels-last] [--steps 60] [--warmup 5]
"""
import argparse
import os
import statistics
import sys
import time

import torch

from idx_file import read_idx


def load_idx(path):
    payload, shape = read_idx(path, "pytorch_cnn.py")
    return torch.frombuffer(bytearray(payload), dtype=torch.uint8).reshape(shape)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    a = p.parse_args()
    if a.threads < 1 or a.steps < a.warmup + 3:
        sys.exit("pytorch_cnn: --threads >= 1 and --steps >= --warmup + 3")
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x = load_idx(os.path.join(a.data_dir, "train-images-idx3-ubyte.gz")).to(torch.float32) / 255
    x = x.reshape(-1, 1, 28, 28)
    y = load_idx(os.path.join(a.data_dir, "train-labels-idx1-ubyte.gz")).to(torch.int64)
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
                          nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
                          nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    batch, per_epoch = 256, x.shape[0] // 256
    ends, order = [], torch.randperm(x.shape[0])
    for step in range(a.steps):
        if step % per_epoch == 0 and step > 0:
            order = torch.randperm(x.shape[0])
        idx = order[(step % per_epoch) * batch:(step % per_epoch + 1) * batch]
        xb, yb = x[idx].contiguous(memory_format=fmt), y[idx]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        ends.append(time.perf_counter())
    dts = [ends[i] - ends[i - 1] for i in range(a.warmup + 1, len(ends))]
    layout = "channels_last" if a.channels_last else "NCHW"
    print(f"pytorch {torch.__version__} cnn {layout} ({a.threads} thread{'s' if a.threads > 1 else ''}) "
          f"{batch / statistics.median(dts):.0f} samples/s, final loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
