"""CLIP image guidance cost: time per guided sampling step over time per plain step (CPU, one run).

Mid-size random SD1.x-shaped U-Net (the dual-style benchmark's), the tiny test VAE and CLIP vision
model, 8 Euler steps on a 32x32 latent, every step guided. Prints one JSON line of ratios for the
exact gradient (through the U-Net, as the source; goal <= 3x) and the fast one (decoder and CLIP
only; goal <= 1.5x), and the exact ratio again with PyTorch's SDPA attention for the plain steps too
(the guided U-Net pass always uses it; ComfyUI uses its slower sub-quadratic kernel on a CPU). The
A1111 proof of concept ran 11x. Run: ``python benchmarks/bench_clip_guidance.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from bench_dual_style import median_times, mid_unet  # noqa: E402
from comfy_harness import boot  # noqa: E402


def main() -> None:
    with torch.inference_mode():
        h = boot()
        patcher = mid_unet(h)
        clip, vae, cv = h.tiny.tiny_clip(1), h.tiny.tiny_vae(2), h.tiny.tiny_clip_vision(3)
        pos, neg = h.tiny.encode_prompt(clip, "a cat"), h.tiny.encode_prompt(clip, "")
        g = torch.Generator().manual_seed(0)
        content, style = torch.rand(1, 256, 256, 3, generator=g), torch.rand(1, 256, 256, 3, generator=g)
        target = h.node("BlendspaceSlerpClipImageEmbeds").mix(0.5, clip_vision=cv, content_image=content, style_image=style)[0]
        latent = {"samples": torch.zeros(1, 4, 32, 32)}
        node = h.node("ClipImageGuidanceSampler")

        def run(scale, gradient):
            return lambda: node.sample(patcher, 1, 8, 7.0, "euler", "normal", pos, neg, latent, 1.0,
                                       strength_mode="comfyui denoise", vae=vae, clip_vision=cv, target=target,
                                       clip_guidance_scale=scale, gradient=gradient, use_cutouts=False, num_cutouts=4,
                                       start_percent=0.0, end_percent=1.0, every_n_steps=1)

        t = median_times({"plain": run(0.0, "fast (decoder only)"),
                          "exact": run(100.0, "exact (through the U-Net, source)"),
                          "fast": run(100.0, "fast (decoder only)")}, repeats=3)
        # The exact gradient's U-Net pass always runs attention through PyTorch's SDPA. ComfyUI picks its
        # sub-quadratic kernel on a CPU (SDPA on most GPUs): measure again with SDPA for the plain steps too.
        import comfy.ldm.modules.attention as attention
        chosen = attention.optimized_attention
        attention.optimized_attention = attention.attention_pytorch
        try:
            same = median_times({"plain": run(0.0, "fast (decoder only)"),
                                 "exact": run(100.0, "exact (through the U-Net, source)")}, repeats=3)
        finally:
            attention.optimized_attention = chosen
    print(json.dumps({
        "benchmark": "clip_guidance_step_over_plain_step_mid_unet_256px",
        "attention": chosen.__name__,
        "exact_over_plain": round(t["exact"] / t["plain"], 3), "exact_goal": 3.0,
        "fast_over_plain": round(t["fast"] / t["plain"], 3), "fast_goal": 1.5,
        "exact_over_plain_both_sdpa": round(same["exact"] / same["plain"], 3),
        "comfyui": "current" if h.is_current else "2024",
    }))


if __name__ == "__main__":
    main()
