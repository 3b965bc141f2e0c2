#!/usr/bin/env python3
"""The PyTorch side of the GPT comparison: GPT-2's architecture as nanoGPT has it (written here
from the architecture, not copied), trained for N steps from a GPT-2-format safetensors file on
the blocks of a text file, printing each step's loss as bench/gpt_steps does.

  nanogpt_reference.py --init gpt.safetensors --text corpus.txt --batch 8 --steps 60 \
      --opt adam --lr 1e-3 [--perturb 1e-7] [--dtype float32|float64]
  nanogpt_reference.py --init baby.safetensors --text corpus.txt --batch 8 --steps 13 --time \
      [--threads 2] [--autocast]

With --time it prints no losses but the median step time after 3 warm-up steps as tokens/s, the
peer row of bench/peers/run.sh --gpt; --autocast runs forward and loss under
torch.autocast("cpu", dtype=torch.bfloat16), as nanoGPT's bf16 training does. Attention is
F.scaled_dot_product_attention(is_causal=True) where PyTorch has it (2.x, as nanoGPT uses it), the
explicit masked softmax otherwise (1.13).

Data: the file's bytes are the tokens; the first int(0.9 n) form the training split; block j has
inputs s[jT : jT+T] and targets s[jT+1 : jT+T+1]; batch k holds blocks kB .. kB+B-1 (no
shuffle). The loss is the mean cross-entropy over the B·T positions. --perturb adds uniform noise
of that size (relative) to every initial parameter: the check that the trajectory is not chaotic.
Needs torch and numpy (Debian: python3-torch); reads safetensors with json + numpy itself.
"""
import argparse
import json
import math
import statistics
import struct
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    tensors = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        tensors[name] = np.frombuffer(data[b:end], dtype=DTYPES[e["dtype"]]).reshape(e["shape"]).copy()
    return tensors, meta


class SelfAttention(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.H = H
        self.c_attn = nn.Linear(C, 3 * C)
        self.c_proj = nn.Linear(C, C)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        heads = lambda t: t.view(B, T, self.H, C // self.H).transpose(1, 2)  # [B, H, T, D]
        q, k, v = heads(q), heads(k), heads(v)
        if hasattr(F, "scaled_dot_product_attention"):
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
            causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
            y = F.softmax(att.masked_fill(~causal, float("-inf")), dim=-1) @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class Block(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.ln_1 = nn.LayerNorm(C, eps=1e-5)
        self.attn = SelfAttention(C, H)
        self.ln_2 = nn.LayerNorm(C, eps=1e-5)
        self.c_fc = nn.Linear(C, 4 * C)
        self.mlp_proj = nn.Linear(4 * C, C)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))  # exact (erf) GELU


class Gpt(nn.Module):
    def __init__(self, V, T, L, H, C):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(T, C)
        self.h = nn.ModuleList([Block(C, H) for _ in range(L)])
        self.ln_f = nn.LayerNorm(C, eps=1e-5)

    def forward(self, idx):
        T = idx.size(1)
        x = self.wte(idx) + self.wpe(torch.arange(T))
        for b in self.h:
            x = b(x)
        return self.ln_f(x) @ self.wte.weight.t()  # the head tied to the token embedding

    def load_hf(self, t):
        """GPT-2's Conv1D weights are [in, out]; nn.Linear's are [out, in]."""
        s = lambda a: torch.from_numpy(np.ascontiguousarray(a))
        with torch.no_grad():
            self.wte.weight.copy_(s(t["wte.weight"]))
            self.wpe.weight.copy_(s(t["wpe.weight"]))
            for i, b in enumerate(self.h):
                p = f"h.{i}."
                for ln in ("ln_1", "ln_2"):
                    getattr(b, ln).weight.copy_(s(t[p + ln + ".weight"]))
                    getattr(b, ln).bias.copy_(s(t[p + ln + ".bias"]))
                for lin, name in ((b.attn.c_attn, "attn.c_attn"), (b.attn.c_proj, "attn.c_proj"),
                                  (b.c_fc, "mlp.c_fc"), (b.mlp_proj, "mlp.c_proj")):
                    lin.weight.copy_(s(t[p + name + ".weight"].T))
                    lin.bias.copy_(s(t[p + name + ".bias"]))
            self.ln_f.weight.copy_(s(t["ln_f.weight"]))
            self.ln_f.bias.copy_(s(t["ln_f.bias"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--init", required=True)
    ap.add_argument("--text", required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--opt", choices=["sgd", "adam"], default="adam")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--perturb", type=float, default=0.0)
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--time", action="store_true")
    ap.add_argument("--autocast", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    tensors, meta = read_safetensors(a.init)
    L, H, C = int(meta["n_layer"]), int(meta["n_head"]), int(meta["n_embd"])
    T, V = int(meta["block_size"]), int(meta["vocab_size"])
    model = Gpt(V, T, L, H, C)
    model.load_hf(tensors)
    model = model.to(getattr(torch, a.dtype))
    if a.perturb:
        g = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1 + a.perturb * (2 * torch.rand(p.shape, generator=g, dtype=p.dtype) - 1))
    data = np.frombuffer(open(a.text, "rb").read(), dtype=np.uint8).astype(np.int64)
    train = data[: int(len(data) * 0.9)]
    nblocks = (len(train) - 1) // T
    opt = (torch.optim.SGD(model.parameters(), lr=a.lr) if a.opt == "sgd"
           else torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=1e-8))
    ends = []
    for k in range(a.steps):
        js = [(k * a.batch + r) % nblocks for r in range(a.batch)]
        x = torch.from_numpy(np.stack([train[j * T: j * T + T] for j in js]))
        y = torch.from_numpy(np.stack([train[j * T + 1: j * T + T + 1] for j in js]))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.autocast):
            logits = model(x)
            loss = F.cross_entropy(logits.view(-1, V), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if a.time:
            ends.append(time.perf_counter())
        else:
            print(f"step {k} loss {loss.item():.9g}")
    if a.time:
        dts = [ends[i] - ends[i - 1] for i in range(3, len(ends))]
        what = "bf16 autocast" if a.autocast else "f32"
        print(f"pytorch {torch.__version__} gpt {what} ({a.threads} thread{'s' if a.threads > 1 else ''}) "
              f"{a.batch * T / statistics.median(dts):.0f} tokens/s, final loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
