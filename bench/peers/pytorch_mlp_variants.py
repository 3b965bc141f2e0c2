#!/usr/bin/python3
"""Variants of bench/peers/pytorch_mlp.py's training loop, interleaved in one process, to find what
makes the PyTorch peer slower or faster than a minimal script of the same recipe. Never part of the
tests or CI, and not run by run.sh: a tool for checking that the peer measures PyTorch at its best.

The recipe is fixed (MLP 784-512-512-10 ReLU, Adam lr 1e-3, batch 256, Fashion-MNIST pixels / 255,
a fresh shuffle per epoch, --precision bf16 = torch.autocast("cpu", bfloat16) around the forward
pass and the loss); each variant changes one way of running it:

    index         x[idx]: advanced indexing of the f32 dataset by the batch's indices (the old peer)
    index_select  torch.index_select(x, 0, idx) instead (row copies)
    preshuffled   once per epoch xs = x.index_select(0, order), then contiguous slices of xs (views)
    zero          opt.zero_grad(set_to_none=False) (zero the gradients in place; the rest as index)
    foreach       Adam(foreach=True)
    fused         Adam(fused=True) (PyTorch >= 2.4 on CPU)
    blasT         as index, OpenBLAS's own pool at --threads threads (openblas_set_num_threads; only
                  where torch loaded OpenBLAS, i.e. Debian's 1.13; the other variants leave that pool
                  at its default, one thread per core, as the old peer did)
    best          index_select + blasT + fused (2.x) + set_to_none=True: what pytorch_mlp.py now runs

For each variant, in each of --rounds rounds (variants interleaved: round 1 runs them all, then
round 2, ...), a fresh model (seed 0) runs --steps steps; four figures: 256 / median of the intervals
between consecutive steps' ends after --warmup ("median"), and 256 * steps / their wall time over the
same steps ("wall", what a minimal script's `time.time()` around 600 steps reads), and two for a
busy machine: "p10", 256 / the 10th percentile of the intervals, and "cpu", 256 * steps / this
process's CPU seconds (for 1 thread, the rate without the time other processes took). A run during
which other processes used over --quiet cores is run again (--retries times, after waiting up to
--max-wait seconds for a quiet machine); the last column says how many cores others used. Then the
medians over the rounds.

With --phases it instead times the pieces of a step (each batch fetch, both zero_grads, forward,
backward, and each Adam in turn), median microseconds per step.

    python3 bench/peers/pytorch_mlp_variants.py --threads 2 --precision bf16 [--steps 600] [--rounds 3]
        [--variants index,index_select,preshuffled,...] [--phases]
"""
import argparse
import os
import statistics
import sys
import time

import torch

from pytorch_mlp import forward_context, load_data, mlp, openblas, train_step


def cpu_ticks():
    """(the machine's busy seconds, this process's CPU seconds) so far."""
    with open("/proc/stat") as f:
        v = [int(q) for q in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    busy = (sum(v[:8]) - v[3] - v[4]) / hz  # all but idle and iowait
    t = os.times()
    return busy, t.user + t.system


def wait_quiet(limit, max_wait):
    """Waits (up to max_wait seconds) until other processes use under `limit` of a core over 0.5 s."""
    deadline = time.time() + max_wait
    while True:
        b0, o0 = cpu_ticks()
        time.sleep(0.5)
        b1, o1 = cpu_ticks()
        foreign = ((b1 - b0) - (o1 - o0)) / 0.5
        if foreign < limit or time.time() > deadline:
            return foreign


def run(variant, x, y, steps, warmup, threads, bf16, ob):
    torch.manual_seed(0)
    model = mlp()
    kw = {}
    fused = variant in ("fused", "best") and torch.__version__ >= "2"
    if fused:
        kw["fused"] = True
    if variant == "foreach":
        kw["foreach"] = True
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, **kw)
    loss_fn = torch.nn.CrossEntropyLoss()
    if ob is not None:
        ob.openblas_set_num_threads(threads if variant in ("blasT", "best") else os.cpu_count())
    ctx = forward_context(bf16)
    set_to_none = variant != "zero"
    batch, per_epoch = 256, x.shape[0] // 256
    pre = variant == "preshuffled"
    ends, cpu0 = [], 0.0
    for step in range(steps):
        i = step % per_epoch
        if i == 0:
            order = torch.randperm(x.shape[0])
            if pre:
                xs, ys = x.index_select(0, order), y.index_select(0, order)
        if pre:
            xb, yb = xs[i * batch:(i + 1) * batch], ys[i * batch:(i + 1) * batch]
        else:
            idx = order[i * batch:(i + 1) * batch]
            if variant in ("index_select", "best"):
                xb, yb = x.index_select(0, idx), y.index_select(0, idx)
            else:
                xb, yb = x[idx], y[idx]
        loss = train_step(model, opt, loss_fn, ctx, xb, yb, set_to_none)
        ends.append(time.perf_counter())
        if step == warmup:
            cpu0 = time.process_time()
    cpu = time.process_time() - cpu0
    dts = [ends[i] - ends[i - 1] for i in range(warmup + 1, len(ends))]
    p10 = sorted(dts)[len(dts) // 10]
    return {"median": batch / statistics.median(dts), "wall": batch * len(dts) / (ends[-1] - ends[warmup]),
            "p10": batch / p10, "cpu": batch * len(dts) / cpu}, loss.item()


def phases(x, y, steps, warmup, threads, bf16, ob):
    """Median microseconds per step of each piece of the old peer's step, and of the alternatives."""
    torch.manual_seed(0)
    model = mlp()
    opts = {"adam": torch.optim.Adam(model.parameters(), lr=1e-3),
            "adam foreach": torch.optim.Adam(model.parameters(), lr=1e-3, foreach=True)}
    if torch.__version__ >= "2":
        opts["adam fused"] = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    if ob is not None:
        ob.openblas_set_num_threads(threads)
    loss_fn = torch.nn.CrossEntropyLoss()
    ctx = forward_context(bf16)
    t = {k: [] for k in ("x[idx], y[idx]", "index_select", "slice of a preshuffled copy", "zero_grad(None)",
                         "zero_grad(zeros)", "forward+loss", "backward", *opts)}
    order = torch.randperm(x.shape[0])
    xs = x.index_select(0, order)
    clk = time.perf_counter
    for step in range(steps):
        i = step % (x.shape[0] // 256)
        idx = order[i * 256:(i + 1) * 256]
        t0 = clk(); xb, yb = x[idx], y[idx]
        t1 = clk(); xb2, yb2 = x.index_select(0, idx), y.index_select(0, idx)
        t2 = clk(); xb3 = xs[i * 256:(i + 1) * 256]
        t3 = clk(); opts["adam"].zero_grad(set_to_none=False)
        t4 = clk(); opts["adam"].zero_grad(set_to_none=True)
        t5 = clk()
        with ctx():
            loss = loss_fn(model(xb), yb)
        t6 = clk(); loss.backward()
        t7 = clk()
        stamps = [t0, t1, t2, t3, t4, t5, t6, t7]
        k = list(opts)[step % len(opts)]  # one optimizer per step, in turn
        opts[k].step()
        t8 = clk()
        if step >= warmup:
            for name, a, b in zip(list(t)[:7], stamps, stamps[1:]):
                t[name].append(b - a)
            t[k].append(t8 - t7)
    del xb2, yb2, xb3
    print(f"pytorch {torch.__version__} {'bf16' if bf16 else 'f32'} {threads} thread(s): median microseconds per step")
    for k, v in t.items():
        print(f"  {k:28s} {statistics.median(v) * 1e6:8.1f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precision", choices=["f32", "bf16"], default="f32")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--variants", default="index,index_select,preshuffled,zero,foreach,fused,blasT,best")
    p.add_argument("--quiet", type=float, default=0.1,
                   help="redo a run while other processes used more than this many cores during it")
    p.add_argument("--retries", type=int, default=5)
    p.add_argument("--max-wait", type=float, default=60, help="seconds to wait for a quiet machine")
    p.add_argument("--phases", action="store_true",
                   help="instead: the median time of each piece of a step (fetch, zero_grad, forward, backward, Adam)")
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    x, y = load_data(a.data_dir, "pytorch_mlp_variants.py")
    variants = a.variants.split(",")
    ob = openblas()
    if ob is None:
        variants = [v for v in variants if v not in ("blas1", "blasT")]
    if torch.__version__ < "2":
        variants = [v for v in variants if v != "fused"]
    keys = ("median", "wall", "p10", "cpu", "others")
    if a.phases:
        phases(x, y, a.steps, a.warmup, a.threads, a.precision == "bf16", ob)
        return
    res = {v: {k: [] for k in keys} for v in variants}
    for r in range(a.rounds):
        for v in variants:
            for attempt in range(a.retries + 1):
                wait_quiet(a.quiet, a.max_wait)
                b0, o0, t0 = *cpu_ticks(), time.perf_counter()
                rates, loss = run(v, x, y, a.steps, a.warmup, a.threads, a.precision == "bf16", ob)
                b1, o1, t1 = *cpu_ticks(), time.perf_counter()
                foreign = ((b1 - b0) - (o1 - o0)) / (t1 - t0)  # other processes' cores, on average
                if foreign < a.quiet:
                    break
            rates["others"] = foreign
            for k in keys:
                res[v][k].append(rates[k])
            print(f"  round {r + 1} {v}: " + ", ".join(f"{k} {rates[k]:.0f}" for k in keys[:4]) +
                  f" samples/s, loss {loss:.4f}"
                  f" (others used {foreign:.2f} cores, attempt {attempt + 1})", file=sys.stderr, flush=True)
    print(f"pytorch {torch.__version__} {a.precision} {a.threads} thread(s), {a.steps} steps, {a.rounds} rounds;"
          " samples/s, median over rounds [per round]")
    print("variant       | " + " | ".join(keys[:4]) + " | others' cores during the runs")
    for v in variants:
        print(f"{v:13s} | " + " | ".join(f"{statistics.median(res[v][k]):.0f} [{', '.join(f'{q:.0f}' for q in res[v][k])}]"
                                          for k in keys[:4]) +
              f" | {', '.join(f'{q:.2f}' for q in res[v]['others'])}")


if __name__ == "__main__":
    main()
