"""Two prompts in joint attention: the cost of CrossAttnInterpolate's blend on a Flux-shaped random model over plain
sampling with prompt A, beside its limit from a FLOP count, and how close Slerp Conditioning's attention-weight mix
comes to its ends at t = 0.01 and 0.99 on the tiny model of every covered family.

Cost. Prompt B's text tokens pass through every projection and MLP of every block: the yardstick,
``flop_limit_extra_tokens``, is the FLOP ratio of the same model run with the extra tokens, counted here by hand
(this file's own minimal count, :func:`flux_flops`: the projections, MLPs and attention products of every block,
2 FLOPs per multiply-add, embedders included, modulation and norms left out, as they scale with neither token
count). The two-stream blend runs two attention products per joint call (``[A, image]`` and ``[B, image]``
instead of one over everything): ``blend_flops_over_plain`` is its own count, above the yardstick when image
tokens dominate (N² > 2·L_A·L_B: Flux at 1024²) and below it otherwise. ``blend_over_plain`` is the measured
time ratio (median of round-robin runs, cfg 1 as Flux samples). Beside each measured ratio: its limit, the count's
FLOPs of that path over plain (``blend_limit``; ``attention_weight_mix_limit``: both prompts in one sequence, each
text stream attending to itself and the image), and the quotient measured / limit (``{name}_quotient``; goal
<= 1.15 at ``--size full``, reported only at the default size). ``--smoke``: a seconds-long check.
Run: ``python benchmarks/bench_joint_attention.py [--device cuda] [--size full]`` (``full``: Flux dev's own sizes
at 1024², for a GPU; boots ``$COMFYUI_PATH``, a current ComfyUI).

Gaps (the first line printed with ``--size small``; the cost line comes last): per family,
``max|x(t) − x(end)| / max|x(A) − x(B)|`` after 4 Euler steps, t = 0.01 against prompt A and t = 0.99 against
prompt B, with Prompt Mix Attention Patch where the family needs it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_common as common  # noqa: E402
import flop_limits  # noqa: E402
from bench_common import median_times  # noqa: E402

SMALL = {"image_model": "flux", "guidance_embed": True, "in_channels": 16, "out_channels": 16, "vec_in_dim": 768,
         "context_in_dim": 64, "hidden_size": 512, "mlp_ratio": 4.0, "num_heads": 8, "depth": 2,
         "depth_single_blocks": 4, "axes_dim": [16, 24, 24], "theta": 10000, "patch_size": 2, "qkv_bias": True}
"""A mid-size Flux (hidden 512, 2 double + 4 single blocks), run at a 32×32 latent (256 image tokens)."""
FULL = dict(SMALL, context_in_dim=4096, hidden_size=3072, num_heads=24, depth=19, depth_single_blocks=38,
            axes_dim=[16, 56, 56])
"""Flux dev's own sizes (12B parameters), run at 1024² (4096 image tokens)."""
TEXT_A, TEXT_B = 256, 256
"""T5 prompts as Flux pads them (256 tokens each)."""


def flux_flops(config: dict, text: int, image: int, attention_pairs: list[tuple[int, int]] | None = None) -> float:
    """FLOPs of one Flux forward for one image: per token the projections and MLP of every block (double: both
    streams' qkv, output and MLP; single: linear1 and linear2), the text and image embedders and the final layer,
    plus per block the attention products ``2·Lq·Lk·D`` twice (scores and values). ``attention_pairs`` gives the
    (Lq, Lk) products of one joint call (default: one call over all ``text + image`` tokens)."""
    d, r = config["hidden_size"], config["mlp_ratio"]
    blocks = config["depth"] + config["depth_single_blocks"]
    tokens = text + image
    per_token = blocks * (4 + 2 * r) * d * d
    embed = text * config["context_in_dim"] * d + image * (2 * config["in_channels"] * 4 * d)
    pairs = attention_pairs or [(tokens, tokens)]
    attention = blocks * sum(4 * lq * lk * d for lq, lk in pairs)
    return 2.0 * (tokens * per_token + embed) + attention


def cost_report(config: dict, image: int) -> dict:
    """The yardstick and each measured ratio's limit: the blend's two attention calls per joint call, and the
    attention-weight mix's one sequence of both prompts (each text stream attends to itself and the image, the
    image to every token; its per-key bias is an elementwise add, left out)."""
    plain = flux_flops(config, TEXT_A, image)
    limit = flux_flops(config, TEXT_A + TEXT_B, image) / plain
    blend = flux_flops(config, TEXT_A + TEXT_B, image,
                       [(TEXT_A + image, TEXT_A + image), (TEXT_B + image, TEXT_B + image)]) / plain
    mix = flux_flops(config, TEXT_A + TEXT_B, image,
                     [(TEXT_A, TEXT_A + image), (TEXT_B, TEXT_B + image), (image, TEXT_A + TEXT_B + image)]) / plain
    return {"flop_limit_extra_tokens": round(limit, 3), "blend_flops_over_plain": round(blend, 3),
            "limits": {"blend_over_plain": ("blend", blend), "attention_weight_mix_over_plain": ("attention_weight_mix",
                                                                                                 mix)}}


def _flux(h, config: dict):
    import comfy.model_management as mm
    import comfy.model_patcher
    import comfy.supported_models
    model_config = comfy.supported_models.Flux(dict(config))
    dtype = torch.float32 if mm.get_torch_device().type == "cpu" else torch.bfloat16
    model_config.set_inference_dtype(dtype, None)
    model = model_config.get_model({})
    h.tiny._norm_scales_near_one(h.tiny.randomize(model.diffusion_model, 0), 0)
    return comfy.model_patcher.ModelPatcher(model, load_device=mm.get_torch_device(),
                                            offload_device=mm.unet_offload_device())


def _measure(h, config: dict, side: int, steps: int, repeats: int) -> dict:
    import comfy.sample as sample
    model = _flux(h, config)
    g = torch.Generator().manual_seed(1)
    prompts = [[[torch.randn(1, n, config["context_in_dim"], generator=g),
                 {"pooled_output": torch.randn(1, 768, generator=g), "guidance": 3.5}]] for n in (TEXT_A, TEXT_B)]
    a, b = prompts
    latent = torch.zeros(1, 16, side, side)
    noise = sample.prepare_noise(latent, 1)
    blended = h.node("CrossAttnInterpolate").patch(model, b, "left-right", "sigmoid", 0.5, 30.0, 1.0, 1.0, 0.0, 1.0,
                                                   "all")[0]
    mixed = h.node("SlerpConditioning").mix(a, b, 0.5, mode="attention weight (joint attention)")[0]

    def run(m, positive):
        return lambda: sample.sample(m, noise, steps, 1.0, "euler", "simple", positive, positive, latent, seed=1,
                                     disable_pbar=True)
    t = median_times({"plain": run(model, a), "blend": run(blended, a), "mix": run(model, mixed)}, repeats)
    image = (side // 2) ** 2
    cost = cost_report(config, image)
    limits = cost.pop("limits")
    report = {"blend_over_plain": round(t["blend"] / t["plain"], 3), **cost,
              "attention_weight_mix_over_plain": round(t["mix"] / t["plain"], 3),
              "image_tokens": image, "text_tokens": [TEXT_A, TEXT_B],
              "seconds_per_step": {k: round(v / steps, 4) for k, v in t.items()}}
    return flop_limits.with_limits(report, limits)


GAP_FAMILIES = {  # name: (builder, conditioning maker, latent shape, prompt B's arguments, references on both)
    "Flux dev": ("tiny_flux_kontext", "flux_conditioning", (1, 16, 8, 16), {"tokens": 300}, False),
    "Flux Kontext": ("tiny_flux_kontext", "kontext_conditioning", (1, 16, 8, 16), {}, True),
    "Chroma": ("tiny_chroma", "chroma_conditioning", (1, 16, 8, 16), {"tokens": 17}, False),
    "SD3.5 Large": ("tiny_sd35_large", "sd3_conditioning", (1, 16, 8, 16), {"tokens": 231}, False),
    "HiDream": ("tiny_hidream", "hidream_conditioning", (1, 16, 8, 16), {"tokens": 20, "llama_tokens": 30}, False),
    "Qwen-Image": ("tiny_qwen_image", "qwen_image_conditioning", (1, 16, 1, 8, 16), {"tokens": 17}, False),
    "Lumina 2": ("tiny_lumina2", "lumina2_conditioning", (1, 16, 8, 16), {"tokens": 17}, False),
}


def _gap(h, name: str) -> dict:
    import comfy.sample as sample
    build, make, shape, b_args, refs = GAP_FAMILIES[name]
    model = getattr(h.tiny, build)(0)
    a, b = getattr(h.tiny, make)(1), getattr(h.tiny, make)(2, **b_args)
    if refs:
        ref = [h.tiny.random_latent((*shape[:-2], 8, 12), 5)]
        a, b = (h.tiny.with_reference_latents(c, ref) for c in (a, b))
    patched = h.node("BlendspacePromptMixAttentionPatch").patch(model)[0]
    latent = torch.zeros(shape)
    noise = sample.prepare_noise(latent, 3)

    def run(positive):
        return sample.sample(patched, noise, 4, 1.0, "euler", "simple", positive, positive, latent, seed=3,
                             disable_pbar=True)
    mix = h.node("SlerpConditioning").mix
    ends = {0.0: run(a), 1.0: run(b)}
    scale = (ends[0.0] - ends[1.0]).abs().max().item()
    gap = {t: (run(mix(a, b, t, mode="attention weight (joint attention)")[0]) - ends[round(t)]).abs().max().item()
           for t in (0.01, 0.99)}
    return {"gap_t0.01_over_a_minus_b": round(gap[0.01] / scale, 4), "gap_t0.99_over_a_minus_b": round(gap[0.99] / scale, 4)}


def main() -> None:
    args = common.parse_args(__doc__.splitlines()[0])
    with torch.inference_mode():
        h = common.start(args)
        if not h.is_current:
            raise SystemExit("bench_joint_attention needs a current ComfyUI: set COMFYUI_PATH")
        config, side = (FULL, 128) if args.size == "full" else (SMALL, args.image // 8 if args.image else 32)
        side = common.SMOKE_LATENT if args.smoke else side
        steps = args.steps or (1 if args.smoke else 4)
        repeats = 1 if args.smoke else args.repeats or 5
        report = _measure(h, config, side, steps, repeats)  # first: timings after the tiny runs wander
        if args.size == "small":
            print(json.dumps({"benchmark": "attention_weight_mix_gaps_tiny_models",
                              "families": {name: _gap(h, name) for name in list(GAP_FAMILIES)[:1 if args.smoke else None]}}),
                  flush=True)
        print(json.dumps({"benchmark": f"joint_attention_blend_over_plain_flux_{args.size}_{8 * side}px_{steps}_steps",
                          "device": common.device_name(args), **report, "goal": flop_limits.GOAL_TEXT}), flush=True)


if __name__ == "__main__":
    main()
