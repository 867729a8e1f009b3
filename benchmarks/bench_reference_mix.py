"""The reference dial's cost (Mix Two References) over core's two-reference sampling, beside its limit.

Prints one JSON line per model of ratios measured in this run: the median sampling time with the dial over core's
sampling of the same two-reference conditioning, on a Kontext-style Flux and a Qwen-Image-style model with random
weights: at w = 0.25 (B's tokens biased) and w = 0.75 (A's tokens biased, B's positions moved), and on Qwen-Image
with the one-image encodings blended in (w = 0.25: two prompt encodings in attention). Beside each, its limit from
counted FLOPs: the dial adds no pass and no token, only one addition per attention score (the per-key bias), so

    limit = 1 + heads·L² / (2·L·P + 4·L²·hidden)          (P: the blocks' parameters, L: joint tokens)

and with two prompt encodings the FLOP ratio of the longer sequence. Also the attention kernel alone with and
without a ``(batch, 1, keys)`` bias (``attention_bias_over_plain``): on CUDA a float mask rules out the flash
kernel, the one cost the FLOP count does not see; its limit is ``1 + heads/(4·hidden)`` (one add per score over
the two attention products). Every ratio has its ``{name}_limit`` and the quotient measured / limit
(``{name}_quotient``; goal <= 1.15 at ``--size full``, reported only at the default size).
``--smoke``: a seconds-long check that it runs (16x16 latents, 16 text tokens, 1 step, 1 repeat).

``--size small`` (default): mid-size models (hidden 128) at a 32x32 latent with two 32x32 references, seconds on a
CPU. ``--size full`` (a GPU): Flux dev's and Qwen-Image's widths (hidden 3072, 24 heads) at 1024² with two 1024²
references (12 800 joint tokens with a 512-token prompt), depth cut to 2 double + 4 single blocks (Flux) and 4
blocks (Qwen-Image): every block costs the same, so the ratios hold for the full depth. Needs a current ComfyUI.
Run: ``COMFYUI_PATH=... python benchmarks/bench_reference_mix.py [--device cuda] [--size full]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_common as common  # noqa: E402
import flop_limits  # noqa: E402

SMALL = {"flux": {"image_model": "flux", "guidance_embed": True, "in_channels": 16, "out_channels": 16,
                  "vec_in_dim": 768, "context_in_dim": 32, "hidden_size": 128, "mlp_ratio": 4.0, "num_heads": 4,
                  "depth": 2, "depth_single_blocks": 2, "axes_dim": [8, 12, 12], "theta": 10000, "patch_size": 2,
                  "qkv_bias": True},
         "qwen": {"image_model": "qwen_image", "patch_size": 2, "in_channels": 64, "out_channels": 16, "num_layers": 4,
                  "attention_head_dim": 32, "num_attention_heads": 4, "joint_attention_dim": 32,
                  "axes_dims_rope": [8, 12, 12]}}
FULL = {"flux": dict(SMALL["flux"], context_in_dim=4096, hidden_size=3072, num_heads=24, axes_dim=[16, 56, 56],
                     depth=2, depth_single_blocks=4),
        "qwen": dict(SMALL["qwen"], num_layers=4, attention_head_dim=128, num_attention_heads=24,
                     joint_attention_dim=3584, axes_dims_rope=[16, 56, 56])}
SIZES = {"small": {"side": 32, "text": 64, "steps": 3}, "full": {"side": 128, "text": 512, "steps": 2},
         "smoke": {"side": 16, "text": 16, "steps": 1}}
CLASSES = {"flux": "Flux", "qwen": "QwenImage"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--size", choices=tuple(SIZES), default="small")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per variant (median)")
    common.add_smoke(parser)
    args = parser.parse_args()
    if args.smoke:
        args.size, args.repeats = "smoke", 1
    return args


def flop_limit(net, hidden: int, heads: int, tokens: int, more_tokens: int = 0) -> float:
    """The FLOP ratio of the dial over core for one forward: the bias's one addition per score, and ``more_tokens``
    extra joint tokens (a second prompt encoding). Linear layers 2·L·P, attention 4·L²·hidden (QKᵀ and AV)."""
    params = sum(p.numel() for name, p in net.named_parameters() if "blocks" in name)

    def flops(n: int, bias: bool) -> float:
        return 2.0 * n * params + 4.0 * n * n * hidden + (heads * n * n if bias else 0.0)
    return round(flops(tokens + more_tokens, True) / flops(tokens, False), 4)


def _model(h, kind: str, config: dict, device: str):
    """A random-weight model of ``config`` in the model dtype ComfyUI loads it in (bf16 on CUDA)."""
    import comfy.model_management as mm
    import comfy.model_patcher
    import comfy.supported_models
    model_config = getattr(comfy.supported_models, CLASSES[kind])(dict(config))
    model_config.set_inference_dtype(torch.bfloat16 if device != "cpu" else torch.float32, None)
    model = model_config.get_model({})
    h.tiny.randomize(model.diffusion_model, 0)
    return comfy.model_patcher.ModelPatcher(model, load_device=mm.get_torch_device(),
                                            offload_device=mm.unet_offload_device())


def _conditionings(kind: str, width: int, size: dict) -> dict:
    g = torch.Generator().manual_seed(0)
    lat = (1, 16, 1) if kind == "qwen" else (1, 16)
    refs = [torch.randn(*lat, size["side"], size["side"], generator=g) for _ in range(2)]
    extra = {"pooled_output": torch.randn(1, 768, generator=g), "guidance": 2.5} if kind == "flux" else {}

    def prompt(tokens, references):
        return [[torch.randn(1, tokens, width, generator=g), dict(extra, reference_latents=list(references))]]
    return {"both": prompt(size["text"], refs), "negative": prompt(size["text"], []),
            "a_only": prompt(size["text"] * 3 // 4, refs[:1]), "b_only": prompt(size["text"] * 3 // 4, refs[1:]),
            "latent": {"samples": torch.zeros(*lat, size["side"], size["side"])}}


def _variants(h, kind: str, patcher, conds: dict, size: dict) -> dict:
    """Sampler runs to time: core's two-reference sampling and the dial at a few settings."""
    mix, ks = h.node("BlendspaceReferenceMix"), h.node("KSampler")

    def run(weight=None, **only):
        if weight is None:
            m, pos, neg = patcher, conds["both"], conds["negative"]
        else:
            m, pos, neg = mix.mix(patcher, conds["both"], conds["negative"], weight, 1.0, 1.0, "attention dial", 0.0,
                                  1.0, **only)
        return lambda: ks.sample(m, 1, size["steps"], 1.0, "euler", "simple", pos, neg, conds["latent"], 1.0)
    out = {"core": run(), "dial_w025": run(0.25), "dial_w075": run(0.75)}
    if kind == "qwen":
        out["dial_prompts_w025"] = run(0.25, conditioning_a_only=conds["a_only"], conditioning_b_only=conds["b_only"])
    return out


def _attention_ratio(hidden: int, heads: int, tokens: int, device: str, repeats: int) -> float:
    """ComfyUI's attention kernel over ``tokens`` with a per-key bias over the same kernel without one."""
    from comfy.ldm.modules.attention import optimized_attention
    dtype = torch.bfloat16 if device != "cpu" else torch.float32
    q, k, v = (torch.randn(1, heads, tokens, hidden // heads, device=device, dtype=dtype) for _ in range(3))
    bias = torch.zeros(1, 1, tokens, device=device, dtype=dtype)
    bias[..., tokens // 2:] = -0.7
    times = common.median_times({
        "plain": lambda: optimized_attention(q, k, v, heads, skip_reshape=True),
        "bias": lambda: optimized_attention(q, k, v, heads, skip_reshape=True, mask=bias)}, repeats)
    return round(times["bias"] / times["plain"], 3)


def _measure(h, kind: str, args) -> dict:
    size = SIZES[args.size]
    config = (FULL if args.size == "full" else SMALL)[kind]
    hidden = config.get("hidden_size") or config["attention_head_dim"] * config["num_attention_heads"]
    heads = config.get("num_heads") or config["num_attention_heads"]
    width = config.get("context_in_dim") or config["joint_attention_dim"]
    patcher = _model(h, kind, config, args.device)
    conds = _conditionings(kind, width, size)
    times = common.median_times(_variants(h, kind, patcher, conds, size), args.repeats)
    tokens = size["text"] + 3 * (size["side"] // 2) ** 2
    net = patcher.model.diffusion_model
    report = {"benchmark": f"reference_mix_{kind}_{args.size}", "device": common.device_name(args),
              "joint_tokens": tokens, "steps": size["steps"], "flop_limit": flop_limit(net, hidden, heads, tokens)}
    for name, t in times.items():
        if name != "core":
            report[f"{name}_over_core_two_refs"] = round(t / times["core"], 3)
    if kind == "qwen":
        report["prompts_flop_limit"] = flop_limit(net, hidden, heads, tokens, 2 * size["text"] * 3 // 4)
    report["attention_bias_over_plain"] = _attention_ratio(hidden, heads, tokens, args.device, args.repeats)
    limits = {f"{name}_over_core_two_refs": (name, report["prompts_flop_limit" if "prompts" in name else "flop_limit"])
              for name in times if name != "core"}
    limits["attention_bias_over_plain"] = ("attention_bias", 1 + heads / (4 * hidden))  # heads·L² adds over 4·L²·hidden
    flop_limits.with_limits(report, limits)
    report["goal"] = flop_limits.GOAL_TEXT
    return report


def main() -> None:
    args = parse_args()
    h = common.start(args)
    if not h.is_current:
        sys.exit("bench_reference_mix.py needs a current ComfyUI (edit models with reference latents): set "
                 "COMFYUI_PATH to one.")
    with torch.inference_mode():
        for kind in ("flux", "qwen"):
            print(json.dumps(_measure(h, kind, args)), flush=True)


if __name__ == "__main__":
    main()
