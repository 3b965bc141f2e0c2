#!/usr/bin/env python3
"""The recipe of bench/train_throughput's default model in JAX, timed the same way.

MLP 784-512-512-10 (ReLU), Adam (optax, lr 1e-3), global batch 256, Fashion-MNIST from Debian's
dataset-fashion-mnist, pixels scaled to [0, 1], a fresh shuffle per epoch. `--mode jit`: one
device, the whole step under jax.jit. `--mode pmap`: `--devices N` CPU devices
(--xla_force_host_platform_device_count), the batch split over them, gradients averaged with
lax.pmean. The figure is 256 / (median time between the ends of consecutive steps after the
warm-up; each step waits for its parameters), as bench/train_throughput measures its own. Never
part of the tests or CI: bench/peers/run.sh --jax runs it from a virtual environment.

    python bench/peers/jax_mlp.py --mode pmap --devices 2 [--steps 200] [--warmup 10]
"""
import argparse
import os
import statistics
import sys
import time


def parse():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=["jit", "pmap"], default="jit")
    p.add_argument("--devices", type=int, default=2)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    a = p.parse_args()
    if a.devices < 1 or 256 % a.devices or a.steps < a.warmup + 3:
        sys.exit("jax_mlp: --devices must divide 256, and --steps >= --warmup + 3")
    return a


a = parse()
if a.mode == "pmap":  # before jax is imported
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               f" --xla_force_host_platform_device_count={a.devices}").strip()
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from idx_file import read_idx  # noqa: E402


def load_idx(path):
    payload, shape = read_idx(path, "jax_mlp.py")
    return np.frombuffer(payload, dtype=np.uint8).reshape(shape)


def init(key, sizes=(784, 512, 512, 10)):
    params = []
    for i, o in zip(sizes[:-1], sizes[1:]):
        key, k = jax.random.split(key)
        params.append((jax.random.normal(k, (i, o), jnp.float32) * np.sqrt(2.0 / i), jnp.zeros((o,), jnp.float32)))
    return params


def loss_fn(params, x, y):
    for w, b in params[:-1]:
        x = jax.nn.relu(x @ w + b)
    w, b = params[-1]
    logits = x @ w + b
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


opt = optax.adam(1e-3)


def step(params, state, x, y, axis=None):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    if axis is not None:
        grads = jax.lax.pmean(grads, axis)
        loss = jax.lax.pmean(loss, axis)
    updates, state = opt.update(grads, state, params)
    return optax.apply_updates(params, updates), state, loss


def main():
    x = load_idx(os.path.join(a.data_dir, "train-images-idx3-ubyte.gz")).astype(np.float32) / 255
    y = load_idx(os.path.join(a.data_dir, "train-labels-idx1-ubyte.gz")).astype(np.int32)
    params = init(jax.random.PRNGKey(0))
    state = opt.init(params)
    n = a.devices if a.mode == "pmap" else 1
    if a.mode == "pmap":
        run = jax.pmap(lambda p, s, xb, yb: step(p, s, xb, yb, "d"), axis_name="d")
        replicate = lambda tree: jax.tree_util.tree_map(lambda v: jnp.stack([v] * n), tree)  # noqa: E731
        params, state = replicate(params), replicate(state)
    else:
        run = jax.jit(step)
    rng = np.random.default_rng(0)
    batch, per_epoch = 256, x.shape[0] // 256
    order, ends = rng.permutation(x.shape[0]), []
    for s in range(a.steps):
        if s % per_epoch == 0 and s > 0:
            order = rng.permutation(x.shape[0])
        idx = order[(s % per_epoch) * batch:(s % per_epoch + 1) * batch]
        xb, yb = x[idx], y[idx]
        if n > 1:
            xb, yb = xb.reshape(n, batch // n, -1), yb.reshape(n, batch // n)
        params, state, loss = run(params, state, xb, yb)
        jax.block_until_ready(params)
        ends.append(time.perf_counter())
    dts = [ends[i] - ends[i - 1] for i in range(a.warmup + 1, len(ends))]
    what = f"pmap {n} devices" if a.mode == "pmap" else "jit 1 device"
    print(f"jax {jax.__version__} ({what}) {batch / statistics.median(dts):.0f} samples/s, "
          f"final loss {float(np.asarray(loss).reshape(-1)[0]):.4f}")


if __name__ == "__main__":
    main()
