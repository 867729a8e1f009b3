"""Dual-style sampling cost over plain single-prompt CFG, on a mid-size random SD1.x-shaped U-Net (CPU).

Prints one JSON line of ratios measured in this run: median sampling time with DualStyleEpsilonMix
(goal <= 1.5x; the source's 4-chunk batch is 2x) and with CrossAttnInterpolate (goal <= 1.15x) over
the same sampler with prompt A alone. The epsilon mix adds exactly one chunk to the one U-Net call
per step (3 chunks instead of 2), so its ratio is bounded by how this machine's U-Net scales from
batch 2 to batch 3; that scaling is measured in the same run and reported beside it
(``unet_batch3_over_batch2``; 1.5 where compute scales linearly, more on a memory-bound 2-core CPU).
Run: ``python benchmarks/bench_dual_style.py`` (boots the
ComfyUI the tests use: ``$COMFYUI_PATH`` or the cached 2024 copy).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from comfy_harness import boot  # noqa: E402

MID_UNET = dict(use_checkpoint=False, image_size=32, out_channels=4, use_spatial_transformer=True, legacy=False,
                adm_in_channels=None, in_channels=4, model_channels=96, num_res_blocks=[1, 1, 1],
                transformer_depth=[1, 1, 1], channel_mult=[1, 2, 4], transformer_depth_middle=1,
                transformer_depth_output=[1, 1, 1, 1, 1, 1], use_linear_in_transformer=False,
                context_dim=32, num_heads=8, use_temporal_attention=False, use_temporal_resblock=False)


def mid_unet(h):
    """The mid-size random SD1.x-shaped U-Net shared by the benchmarks, in a CPU ModelPatcher."""
    import comfy.model_patcher
    import comfy.supported_models
    model = comfy.supported_models.SD15(dict(MID_UNET)).get_model({})
    h.tiny.randomize(model.diffusion_model, 0)
    return comfy.model_patcher.ModelPatcher(model, load_device=torch.device("cpu"), offload_device=torch.device("cpu"))


def median_times(fns: dict, repeats: int = 7) -> dict:
    """Median time of each callable, run round-robin so drift in machine load hits all alike.
    ``BLENDSPACE_BENCH_REPEATS`` overrides ``repeats`` (the test that checks the benchmarks still run uses 1)."""
    repeats = int(os.environ.get("BLENDSPACE_BENCH_REPEATS", repeats))
    for fn in fns.values():
        fn()
    times: dict = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    with torch.inference_mode():
        h = boot()
        patcher = mid_unet(h)
        model = patcher.model
        clip = h.tiny.tiny_clip(1)
        a, b, neg = (h.tiny.encode_prompt(clip, t) for t in ("a minecraft bear", "a van gogh bear", ""))
        latent = {"samples": torch.zeros(1, 4, 48, 48)}
        ks = h.node("KSampler")

        def run(m, pos):
            return lambda: ks.sample(m, 1, 4, 7.0, "euler", "normal", pos, neg, latent, 1.0)

        mixed = h.node("DualStyleEpsilonMix").mix(a, b, 384, 384, "left-right", "sigmoid", 0.5, 20.0, 1.0,
                                                  latent=latent)[0]
        xattn = h.node("CrossAttnInterpolate").patch(patcher, b, "left-right", "sigmoid", 0.5, 30.0, 1.0, 1.0,
                                                     0.0, 1.0, "all")[0]
        unet = model.diffusion_model

        def forward(batch):
            x, ctx, ts = torch.randn(batch, 4, 48, 48), torch.randn(batch, 77, 32), torch.full((batch,), 500.0)
            return lambda: unet(x, ts, context=ctx)

        t = median_times({"plain": run(patcher, a), "eps": run(patcher, mixed), "cross": run(xattn, a),
                          "b2": forward(2), "b3": forward(3)})
        plain, eps, cross = t["plain"], t["eps"], t["cross"]
    print(json.dumps({
        "benchmark": "dual_style_over_plain_cfg_mid_unet_384px_4_steps",
        "epsilon_mix_over_plain": round(eps / plain, 3),
        "epsilon_mix_goal": 1.5,
        "unet_batch3_over_batch2": round(t["b3"] / t["b2"], 3),
        "cross_attention_over_plain": round(cross / plain, 3),
        "cross_attention_goal": 1.15,
        "comfyui": "current" if h.is_current else "2024",
    }))


if __name__ == "__main__":
    main()
