"""CLIP image guidance cost: a guided sampling step over a plain one, and peak memory, for the three gradients.

Default (``--size small``): the mid-size random SD1.x-shaped U-Net, the tiny test VAE and CLIP vision model, 8
Euler steps on a 32x32 latent, every step guided. The tiny test VAE is smaller than a real tiny decoder, so
this size checks the plumbing and the U-Net's share (the exact gradient); the decoders' share needs ``--size
full``: random-weight SD1.5 (512², 64x64 latent) and SDXL (1024², 128x128) U-Nets with the full SD VAE and a
ViT-L/14 CLIP vision tower, 4 steps (per-step times are reported too; meant for ``--device cuda``; ``--image``
makes it fit a CPU's memory). The taesd gradient decodes through ComfyUI's TAESD class with a random tiny
decoder written to a temporary models/vae_approx folder. The grad-capable copies are made in every run, as
the sampler node makes them, so few steps weigh them more.

Every ratio compares runs with the same attention kernel for the plain and the guided steps: PyTorch's SDPA
everywhere (as on a GPU; the gradient passes use it anyway), and ComfyUI's own choice for the sampler (on a
CPU its sub-quadratic kernel). Beside each ratio: its FLOP limit, counted on the same modules, inputs and passes
(``flop_limits.py``: ``{gradient}_limit``), and the quotient measured / limit (``{gradient}_quotient``). Goals:
quotient <= 1.15 at ``--size full`` for every gradient (at the default size, where per-call overhead dominates,
reported only); peak memory fast and taesd <= 1.3x of plain at 256 and 512 px, exact reported. Prints one JSON
line per model and U-Net dtype (``--dtype fp16,bf16``). ``--smoke``: a seconds-long check that it runs (its ratios mean nothing).
The gradient passes checkpoint the decoder blocks and CLIP layers (``--checkpoint off`` measures without; the
limits count the recompute); on CUDA the fast and taesd gradients run under bf16/fp16 autocast (``--autocast``).
Run: ``python benchmarks/bench_clip_guidance.py [--device cuda] [--size full] [--models sd15] [--image 256]
[--paths taesd,fast] [--steps 1 --repeats 1]``; ``benchmarks/gpu.sh`` runs the GPU table.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_common as common  # noqa: E402
import flop_limits  # noqa: E402
from bench_common import FULL_VAE, PeakMemory, median_times  # noqa: E402

GRADIENTS = {"taesd": "taesd (tiny decoder)", "fast": "fast (decoder only)",
             "exact": "exact (through the U-Net, source)"}
MODEL_NAMES = {"small": "mid-size SD1.x U-Net", "tiny": "the tests' tiny SD1.x U-Net (smoke run)"}
MEMORY_GOALS = {"taesd": 1.3, "fast": 1.3}
"""Peak memory over plain at full size, 256 and 512 px (exact: reported)."""


def _options(parser) -> None:
    """This benchmark's own options: which gradients, checkpointing and autocast (``ClipGuidance``'s defaults)."""
    parser.add_argument("--paths", default=",".join(GRADIENTS), help="gradients to measure (comma-separated)")
    parser.add_argument("--checkpoint", choices=("on", "decoder", "off"), default="on",
                        help="gradient checkpointing in the gradient passes: decoder and CLIP tower (on), the "
                             "decoder only, or none")
    parser.add_argument("--tiny", action="store_true",
                        help="the test suite's tiny models (8x8 latent) instead of --size: a seconds-long smoke run "
                             "(benchmarks/gpu.sh --dry)")
    parser.add_argument("--autocast", choices=("auto", "off", "bf16", "fp16"), default="auto",
                        help="the fast and taesd gradients' autocast dtype (auto: bf16/fp16 on CUDA, none on a CPU)")


def _paths(args) -> list[str]:
    """The gradients ``--paths`` asks for, checked before anything is built."""
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    if not paths or any(p not in GRADIENTS for p in paths):
        sys.exit(f"--paths: choose from {list(GRADIENTS)}, got {args.paths!r}")
    return paths


def _configure(h, args) -> None:
    """Set the guidance's checkpointing and autocast for this run (``ClipGuidance``'s class defaults)."""
    guidance = h.pack.nodes.runtime.guidance_hooks.ClipGuidance
    guidance.checkpoint, guidance.autocast = args.checkpoint != "off", args.autocast
    guidance.checkpoint_tower = args.checkpoint == "on"


def _full_models(h, name: str, args, dtype: str = "auto") -> dict:
    """Full-size random models for ``name`` (sd15 / sdxl) on ComfyUI's device, the U-Net in ``dtype``."""
    import comfy.clip_vision
    import comfy.ldm.models.autoencoder
    import comfy.sd
    family, config, side, width = common.full_size(args, name)
    ae = comfy.ldm.models.autoencoder.AutoencoderKL(ddconfig=dict(FULL_VAE), embed_dim=4)
    h.tiny.randomize(ae, 2)
    vae = comfy.sd.VAE(sd=ae.state_dict(), config={"params": {"ddconfig": dict(FULL_VAE), "embed_dim": 4}})
    cv = comfy.clip_vision.ClipVisionModel(os.path.join(os.path.dirname(comfy.clip_vision.__file__),
                                                        "clip_vision_config_vitl.json"))
    h.tiny.randomize(cv.model, 3)
    return dict(model=common.unet_patcher(h, family, config, dtype=common.unet_dtype(args, dtype)), vae=vae, cv=cv,
                steps=4, image=8 * side,
                pos=common.conditioning(width, family, 1, 8 * side),
                neg=common.conditioning(width, family, 2, 8 * side),
                latent={"samples": torch.zeros(1, 4, side, side)})


def _small_models(h) -> dict:
    clip = h.tiny.tiny_clip(1)
    return dict(model=common.mid_unet(h), vae=h.tiny.tiny_vae(2), cv=h.tiny.tiny_clip_vision(3), steps=8, image=256,
                pos=h.tiny.encode_prompt(clip, "a cat"), neg=h.tiny.encode_prompt(clip, ""),
                latent={"samples": torch.zeros(1, 4, 32, 32)})


def _tiny_models(h) -> dict:
    clip = h.tiny.tiny_clip(1)
    return dict(model=h.tiny.tiny_unet(0), vae=h.tiny.tiny_vae(2), cv=h.tiny.tiny_clip_vision(3), steps=2, image=64,
                pos=h.tiny.encode_prompt(clip, "a cat"), neg=h.tiny.encode_prompt(clip, ""),
                latent={"samples": torch.zeros(1, 4, 8, 8)})


def _runs(h, m: dict, paths=tuple(GRADIENTS)) -> dict:
    """The plain sampler and the three guided ones, as callables."""
    g = torch.Generator().manual_seed(0)
    content, style = (torch.rand(1, 256, 256, 3, generator=g) for _ in range(2))
    target = h.node("BlendspaceSlerpClipImageEmbeds").mix(0.5, clip_vision=m["cv"], content_image=content,
                                                          style_image=style)[0]
    node = h.node("ClipImageGuidanceSampler")

    def run(scale, gradient):
        return lambda: node.sample(m["model"], 1, m["steps"], 7.0, "euler", "normal", m["pos"], m["neg"], m["latent"],
                                   1.0, strength_mode="comfyui denoise", vae=m["vae"], clip_vision=m["cv"],
                                   target=target, clip_guidance_scale=scale, gradient=gradient, use_cutouts=False,
                                   num_cutouts=4, start_percent=0.0, end_percent=1.0, every_n_steps=1)
    return {"plain": run(0.0, GRADIENTS["fast"]), **{k: run(100.0, GRADIENTS[k]) for k in paths}}


def _tiny_decoder_folder(h, model) -> str:
    """A vae_approx folder holding a random tiny decoder under the name ``model``'s latent format asks for (the
    file ComfyUI's previews load), inside the harness's work folder, which is removed when the run ends."""
    import folder_paths
    folder = tempfile.mkdtemp(prefix="vae_approx-", dir=h.session.work)
    folder_paths.add_model_folder_path("vae_approx", folder)
    h.tiny.write_tiny_taesd_decoder(folder, model.model.latent_format.taesd_decoder_name, h.tiny.tiny_taesd(11))
    return folder


def _measure(h, m: dict, memory: PeakMemory, repeats: int, paths=tuple(GRADIENTS)) -> dict:
    """Times with ComfyUI's kernel (peak memory on the untimed first runs) and with SDPA everywhere."""
    import comfy.ldm.modules.attention as attention
    runs = _runs(h, m, paths)
    chosen = attention.optimized_attention
    default = median_times(runs, repeats=repeats, first=memory)
    attention.optimized_attention = attention.attention_pytorch
    try:
        sdpa = median_times(runs, repeats=repeats)
    finally:
        attention.optimized_attention = chosen
    steps = m["steps"]
    report = {"attention_default": chosen.__name__}
    for k in paths:
        report[f"{k}_over_plain"] = round(sdpa[k] / sdpa["plain"], 3)
        report[f"{k}_over_plain_default_attention"] = round(default[k] / default["plain"], 3)
        report[f"{k}_peak_memory_over_plain"] = memory.over(k, "plain")
        if k in MEMORY_GOALS:
            report[f"{k}_peak_memory_goal"] = MEMORY_GOALS[k]
    report["seconds_per_step_sdpa"] = {k: round(v / steps, 4) for k, v in sdpa.items()}
    report["peak_memory_mib"] = {k: round(v / 2 ** 20, 1) for k, v in memory.peaks.items()}
    report["peak_memory_method"] = memory.method()
    if memory.absolute:
        report["peak_rss_gib"] = {k: round(v / 2 ** 30, 2) for k, v in memory.absolute.items()}
    report["grad_twins"] = ("the diffusion model (exact), the VAE (fast, exact) and the CLIP vision tower, weights "
                            "aliased, not copied (on the device the weights are on)")
    return report


def main() -> None:
    args = common.parse_args(__doc__.splitlines()[0], _options)
    paths = _paths(args)
    with torch.inference_mode():
        h = common.start(args)
        _configure(h, args)
        plan = [(n, d) for n in (["tiny"] if args.tiny else common.model_names(args)) for d in args.dtypes]
        for name, dtype in plan:  # the U-Net dtype applies at full size (the small and tiny models stay fp32)
            memory = PeakMemory(args.device)
            m = _tiny_models(h) if args.tiny else _small_models(h) if name == "small" else \
                _full_models(h, name, args, dtype)
            m["steps"] = args.steps or (1 if args.smoke else m["steps"])
            if args.smoke and not args.tiny:
                m.update(latent={"samples": torch.zeros(1, 4, common.SMOKE_LATENT, common.SMOKE_LATENT)},
                         image=8 * common.SMOKE_LATENT)
            _tiny_decoder_folder(h, m["model"])
            report = _measure(h, m, memory, 1 if args.smoke else args.repeats or 3, paths)
            flop_limits.clip_guidance_report(report, m, current=h.is_current, checkpointing=args.checkpoint != "off",
                                             paths=paths)
            print(json.dumps({
                "benchmark": "clip_guidance_over_plain_sampling", "model": MODEL_NAMES.get(name)
                or f"{name} full-size config, random weights", "image": m["image"], "steps": m["steps"],
                "device": common.device_name(args),
                "unet_dtype": str(next(m["model"].model.parameters()).dtype).removeprefix("torch."),
                "checkpoint": args.checkpoint, "autocast": args.autocast,
                **report, "comfyui": "current" if h.is_current else "2024"}), flush=True)
            del m


if __name__ == "__main__":
    main()
