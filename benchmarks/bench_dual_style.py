"""Dual-style sampling cost over plain single-prompt CFG, on a mid-size random SD1.x-shaped U-Net (CPU).

Prints one JSON line of ratios measured in this run: median sampling time with DualStyleEpsilonMix
(the source's 4-chunk batch is 2x) and with CrossAttnInterpolate over the same sampler with prompt A
alone. The epsilon mix adds exactly one chunk to the one U-Net call per step (3 chunks instead of 2), so
its ratio is bounded by how this machine's U-Net scales from batch 2 to batch 3; that scaling is measured
in the same run and reported beside it (``unet_batch3_over_batch2``; 1.5 where compute scales linearly,
less on a GPU that is not yet saturated) with the quotient of the two (``epsilon_mix_over_unet_scaling``).
Beside every ratio: its FLOP limit from a count of the same U-Net and inputs (``flop_limits.py``:
``{name}_limit``; cross-attention interpolation adds prompt B's keys, values and attention in every attn2)
and the quotient measured / limit (``{name}_quotient``). Goal: quotient <= 1.15 at ``--size full``
(reported only at the default size). ``--smoke``: a seconds-long check that it runs.
``--device cuda`` runs on ComfyUI's GPU; ``--size full`` uses random-weight SD1.5 (512²) and SDXL (1024²)
U-Nets and prints one line each. Run: ``python benchmarks/bench_dual_style.py [--device cuda] [--size full]``
(boots the ComfyUI the tests use: ``$COMFYUI_PATH`` or the cached 2024 copy).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_common as common  # noqa: E402
import flop_limits  # noqa: E402
from bench_common import median_times, mid_unet  # noqa: E402


def _setup(h, name: str, args) -> dict:
    if name == "small":
        clip = h.tiny.tiny_clip(1)
        a, b, neg = (h.tiny.encode_prompt(clip, t) for t in ("a minecraft bear", "a van gogh bear", ""))
        return dict(patcher=mid_unet(h), a=a, b=b, neg=neg, side=48, steps=4, width=32, family="SD15")
    family, config, side, width = common.full_size(args, name)
    a, b, neg = (common.conditioning(width, family, seed, 8 * side) for seed in (1, 2, 3))
    return dict(patcher=common.unet_patcher(h, family, config), a=a, b=b, neg=neg, side=side, steps=4, width=width,
                family=family)


def _forward(s: dict, batch: int):
    """One bare U-Net call at ``batch`` (the sampler's CFG batch is 2, the epsilon mix's 3)."""
    import comfy.model_management as mm
    mm.load_models_gpu([s["patcher"]])
    model = s["patcher"].model
    dev, side = mm.get_torch_device(), s["side"]
    x, ctx = torch.randn(batch, 4, side, side, device=dev), torch.randn(batch, 77, s["width"], device=dev)
    ts = torch.full((batch,), 500.0, device=dev)
    y = torch.randn(batch, 2816, device=dev) if s["family"] == "SDXL" else None
    return lambda: model.diffusion_model(x, ts, context=ctx, y=y)


def _measure(h, s: dict, repeats: int) -> dict:
    latent = {"samples": torch.zeros(1, 4, s["side"], s["side"])}
    ks = h.node("KSampler")

    def run(m, pos):
        return lambda: ks.sample(m, 1, s["steps"], 7.0, "euler", "normal", pos, s["neg"], latent, 1.0)

    px = 8 * s["side"]
    mixed = h.node("DualStyleEpsilonMix").mix(s["a"], s["b"], px, px, "left-right", "sigmoid", 0.5, 20.0, 1.0,
                                              latent=latent)[0]
    xattn = h.node("CrossAttnInterpolate").patch(s["patcher"], s["b"], "left-right", "sigmoid", 0.5, 30.0, 1.0, 1.0,
                                                 0.0, 1.0, "all")[0]
    t = median_times({"plain": run(s["patcher"], s["a"]), "eps": run(s["patcher"], mixed), "cross": run(xattn, s["a"]),
                      "b2": _forward(s, 2), "b3": _forward(s, 3)}, repeats)
    eps, scaling = t["eps"] / t["plain"], t["b3"] / t["b2"]
    return {"epsilon_mix_over_plain": round(eps, 3), "unet_batch3_over_batch2": round(scaling, 3),
            "epsilon_mix_over_unet_scaling": round(eps / scaling, 3),
            "cross_attention_over_plain": round(t["cross"] / t["plain"], 3),
            "seconds_per_step": {k: round(t[k] / s["steps"], 4) for k in ("plain", "eps", "cross")}}


def main() -> None:
    args = common.parse_args(__doc__.splitlines()[0])
    with torch.inference_mode():
        h = common.start(args)
        for name in common.model_names(args):
            s = _setup(h, name, args)
            if args.smoke:
                s["side"] = common.SMOKE_LATENT
            s["steps"] = args.steps or (1 if args.smoke else s["steps"])
            report = _measure(h, s, 1 if args.smoke else args.repeats or 7)
            flop_limits.with_limits(report, flop_limits.dual_style_limits(
                s["patcher"], s["side"], s["a"][0][0].shape, s["b"][0][0].shape[1]))
            report["goal"] = flop_limits.GOAL_TEXT
            print(json.dumps({
                "benchmark": f"dual_style_over_plain_cfg_{name}_{8 * s['side']}px_{s['steps']}_steps",
                "device": common.device_name(args), **report,
                "comfyui": "current" if h.is_current else "2024",
            }), flush=True)
            del s


if __name__ == "__main__":
    main()
