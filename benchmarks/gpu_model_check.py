"""GPU sanity check for the whole model (run on a CUDA machine; CI never has one).

1. Cluster-sparse attention equals dense attention with a same-cluster mask on CUDA
   (fp32 to 1e-4, bf16 to 6e-2), forward and q/k/v gradients, for every sparse backend.
2. Each variant trains a few steps with AMP (bf16 autocast) on synthetic paper-preset inputs
   (3 slices of 256x256x3, d = 512) and the loss goes down; prints step time per variant.

    PYTHONPATH=. python3 benchmarks/gpu_model_check.py [--json OUT.json]
    python3 benchmarks/gpu_model_check.py --smoke     # the same checks, tiny, on the CPU (tests)
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from smmt_core.batch import FeatureSchema, ModelInputs
from smmt_core.model.attention import cluster_sparse_attention, masked_cluster_attention
from smmt_core.model.config import ModelConfig
from smmt_core.model.smmt import build_model
from smmt_core.variants import VARIANT_NAMES as VARIANTS


def check_attention(device: str) -> list[dict]:
    rows = []
    g = torch.Generator(device="cpu").manual_seed(0)
    for dtype, tol in ((torch.float32, 1e-4), (torch.bfloat16, 6e-2)):
        for backend in ("grouped", "nested"):
            b, h, n, d, k = 2, 4, 1000, 64, 10
            q, kk, v = (torch.randn(b, h, n, d, generator=g).to(device, dtype).requires_grad_() for _ in range(3))
            ids = torch.randint(0, k, (b, n), generator=g).to(device)
            out = cluster_sparse_attention(q, kk, v, ids, n_clusters=k, backend=backend)
            ref = masked_cluster_attention(q.float(), kk.float(), v.float(), ids)
            grad = torch.randn_like(ref)
            gq, gk, gv = torch.autograd.grad(out.float(), (q, kk, v), grad)
            rq, rk, rv = torch.autograd.grad(ref, (q, kk, v), grad)
            err = max((out.float() - ref).abs().max().item(),
                      *((a.float() - r.float()).abs().max().item() for a, r in ((gq, rq), (gk, rk), (gv, rv))))
            rows.append({"dtype": str(dtype), "backend": backend, "max_abs_err": err, "ok": err < tol})
            print(f"attention {backend:8s} {str(dtype):15s} max|err| {err:.2e} {'OK' if err < tol else 'FAIL'}")
    return rows


def synthetic_batch(schema: FeatureSchema, batch: int, device: str, labels_from_signal: bool = True):
    s, c, hh, ww = schema.mri_shape
    y = torch.randint(0, 2, (batch,), device=device)
    mri = torch.rand(batch, s, c, hh, ww, device=device) * 0.5 + y.view(-1, 1, 1, 1, 1) * 0.2
    numeric = torch.randn(batch, len(schema.numeric), device=device) + y.view(-1, 1).float()
    inputs = ModelInputs(
        mri=mri, numeric=numeric,
        numeric_missing=torch.zeros_like(numeric, dtype=torch.bool),
        categorical=torch.randint(1, 3, (batch, len(schema.categorical)), device=device),
        present=torch.ones(batch, 3, dtype=torch.bool, device=device),
    )
    return inputs, y


def check_training(device: str, steps: int) -> list[dict]:
    """Each variant trains a few steps with bf16 AMP at the paper's size (CUDA), or a tiny size (CPU)."""
    cuda = device.startswith("cuda")
    schema = FeatureSchema(numeric=["MMSE", "CDGLOBAL", "FAQ", "AGE"],
                           categorical={"PTGENDER": ["Female", "Male"], "APOE4": ["0", "1", "2"]},
                           mri_shape=(3, 3, 256, 256) if cuda else (2, 1, 32, 32), classes=["CN", "AD"])
    size = dict(d_model=512, n_heads=8) if cuda else dict(d_model=32, n_heads=4)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    rows = []
    for variant in VARIANTS:
        torch.manual_seed(0)
        model = build_model(ModelConfig(variant=variant, **size), schema).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4 if cuda else 1e-3)
        inputs, y = synthetic_batch(schema, 8, device)
        losses = []
        sync()
        start = time.perf_counter()
        for _step in range(steps):
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                loss = torch.nn.functional.cross_entropy(model(inputs), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        sync()
        per_step = (time.perf_counter() - start) / steps * 1000
        ok = all(map(lambda v: v == v, losses)) and losses[-1] < losses[0]
        rows.append({"variant": variant, "first_loss": losses[0], "last_loss": losses[-1],
                     "ms_per_step": per_step, "ok": ok})
        print(f"train {variant:15s} loss {losses[0]:.3f} -> {losses[-1]:.3f}  {per_step:.1f} ms/step "
              f"{'OK' if ok else 'FAIL'}")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--smoke", action="store_true",
                        help="the same checks on the CPU with 2 training steps (the tests run this; no GPU needed)")
    args = parser.parse_args(argv)
    device = "cpu" if args.smoke else "cuda"
    if args.smoke:
        args.steps = 8
        torch.set_num_threads(1)
    elif not torch.cuda.is_available():
        print("no CUDA device")
        return 2
    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    print("device", name, "torch", torch.__version__)
    result = {"device": name, "torch": torch.__version__,
              "attention": check_attention(device), "training": check_training(device, args.steps)}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    ok = all(r["ok"] for r in result["attention"] + result["training"])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
