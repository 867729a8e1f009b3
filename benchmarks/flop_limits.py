"""FLOP limits of the model benchmarks' ratios: what a guided (or blended) step must compute over a plain one.

Every count is of forward (and backward) passes of the modules a benchmark path runs, on the meta device: the
modules are rebuilt there (``torch.device("meta")``) or twinned there with their parameters replaced by meta
tensors (:func:`meta_twin`, no weight memory), run on meta inputs under ``torch.utils.flop_counter.FlopCounterMode``:
no memory, no time. The counter knows matrix products and convolutions (forward and backward, 2 FLOPs per
multiply-add); :data:`EXTRA_FORMULAS` adds the ops it counts as 0:

- scaled-dot-product attention on a CPU (``_scaled_dot_product_flash_attention_for_cpu``): ``4·B·H·Lq·Lk·D``
  forward (scores and values), its backward as torch counts the flash backward (``10·B·H·Lq·Lk·D``, the
  scores recomputed). On the meta device SDPA runs as its math decomposition, whose products the counter sees
  (backward ``8·B·H·Lq·Lk·D``);
- GroupNorm: 8 FLOPs per element forward (mean, centring, square and sum, scaling, affine), 16 backward;
- SiLU: 4 per element forward (exp, add, divide, multiply), 6 backward;
- resizes (``upsample_*``): per output element 1 (nearest), 8 (bilinear: 4 taps, a multiply and an add each),
  32 (bicubic: 16 taps); the backward the same as the forward.

Still left out: elementwise adds and multiplies (residuals, scales, the guidance's blend and loss), softmax
outside SDPA, LayerNorm and RMSNorm, GELU and other activations, clamps, casts and copies. They scale with the
activations, not with the weights, and are a few per cent of a U-Net's or a ViT's count.

Backward: counted, not assumed. The gradient paths freeze every weight (``requires_grad=False``), so autograd
computes input gradients only: one product per linear layer or convolution, the same size as its forward,
so a backward costs about one forward (attention about two), not the two forwards of training.

Limits (:func:`guidance_limits`; the passes read from ``nodes/runtime/guidance_hooks.py`` and
``blendspace/clip_guidance.py``), with U the diffusion model's forward per row, ``rows`` the rows of the
plain step (2 with CFG, 1 at cfg 1: Flux dev), D / T the full / tiny decoder and C the bilinear resize to the
tower's size plus the CLIP vision tower, f / b forward / backward:

    plain = rows·U_f
    taesd = plain + T_f + T_b + C_f + C_b  (+ T_f + C_f with gradient checkpointing: one recompute)
    fast  = plain + D_f + D_b + C_f + C_b  (+ D_f + C_f with checkpointing)
    exact = fast + U_b                     (current ComfyUI: the sampler's own conditional pass is
                                            differentiated; + U_f on the 2024 ComfyUI: the source's extra pass)

and each limit is that over ``plain``. Run ``python benchmarks/flop_limits.py --table`` for the predicted ratios
of real model families (needs a current ComfyUI for SD3.5 and Flux).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

sys.path.insert(0, str(Path(__file__).resolve().parent))

aten = torch.ops.aten


def _numel(shape) -> int:
    return math.prod(shape)


def _per_element(fwd: int, of_output: bool = False):
    """A formula of ``fwd`` FLOPs per element of the first argument (or of the output)."""
    def formula(*args, out_shape=None, **kwargs) -> int:
        shape = out_shape if of_output else args[0]
        while isinstance(shape, (tuple, list)) and shape and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        return fwd * _numel(shape)
    return formula


def _cpu_sdpa(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_sdpa_backward(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def _extra_formulas() -> dict:
    """The ops ``FlopCounterMode`` counts as 0, with the counts of the module docstring: keyed by overload packet,
    as the counter looks formulas up, and by each overload, which the counter would otherwise decompose into
    ops it counts as 0 (the resizes)."""
    taps = {"nearest": 1, "nearest_exact": 1, "bilinear": 8, "bicubic": 32}
    out = {aten.native_group_norm: _per_element(8), aten.native_group_norm_backward: _per_element(16),
           aten.silu: _per_element(4), aten.silu_backward: _per_element(6),
           aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa,
           aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_sdpa_backward}
    for mode, n in taps.items():
        for name in (f"upsample_{mode}2d", f"_upsample_{mode}2d"):
            if hasattr(aten, name):
                out[getattr(aten, name)] = _per_element(n, of_output=True)
            if hasattr(aten, f"{name}_backward"):  # grad_output's size is the forward's output size
                out[getattr(aten, f"{name}_backward")] = _per_element(n)
    for packet in list(out):  # each overload too: the counter decomposes an overload it has no formula for
        for overload in packet.overloads():
            out[getattr(packet, overload)] = out[packet]
    return out


EXTRA_FORMULAS = _extra_formulas()


def counter() -> FlopCounterMode:
    """A silent ``FlopCounterMode`` that also counts SDPA on a CPU, GroupNorm, SiLU and resizes."""
    return FlopCounterMode(display=False, custom_mapping=EXTRA_FORMULAS)


def count_flops(fn, *args, **kwargs) -> int:
    """FLOPs of ``fn(*args, **kwargs)`` as :func:`counter` counts them."""
    with counter() as mode:
        fn(*args, **kwargs)
    return mode.get_total_flops()


@dataclass(frozen=True)
class Pass:
    """FLOPs of one module's pass: forward, and backward to its input (weights frozen)."""

    forward: float
    backward: float = 0.0


def meta_twin(module: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``module`` whose parameters and buffers are meta tensors of the same shapes (nothing copied,
    frozen): for counting the FLOPs of a module already built with real weights."""
    with torch.inference_mode(False):
        memo = {id(p): torch.nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=False)
                for p in module.parameters()}
        memo.update({id(b): torch.empty_like(b, device="meta") for b in module.buffers()})
        return copy.deepcopy(module, memo)


@contextlib.contextmanager
def sdpa_everywhere():
    """ComfyUI's attention functions replaced by its SDPA one in every loaded ``comfy`` module that bound them
    (the sub-quadratic kernel asks the device for free memory, which the meta device has not)."""
    try:
        import comfy.ldm.modules.attention as attention
    except ImportError:  # no ComfyUI loaded: nothing to replace
        yield
        return
    sdpa = attention.attention_pytorch
    chosen = {getattr(attention, n) for n in ("optimized_attention", "optimized_attention_masked") if hasattr(attention, n)}
    saved = []
    for mod in [m for name, m in list(sys.modules.items()) if name.startswith("comfy") and m is not None]:
        for name in ("optimized_attention", "optimized_attention_masked"):
            if getattr(mod, name, None) in chosen:
                saved.append((mod, name, getattr(mod, name)))
                setattr(mod, name, sdpa)
    try:
        yield
    finally:
        for mod, name, fn in saved:
            setattr(mod, name, fn)


def module_pass(fn, x_shape, backward: bool = True, **inputs) -> Pass:
    """Counted forward of ``fn(x, **inputs)`` on a meta ``x`` of ``x_shape`` and, with ``backward``, the backward
    of its (first) output to ``x``. Saved tensors are cloned (free on meta) so in-place residual adds of the
    DiT blocks do not stop autograd, as the guidance's own passes do."""
    with torch.inference_mode(False), torch.enable_grad(), sdpa_everywhere():
        x = torch.empty(x_shape, device="meta").requires_grad_(backward)
        with torch.autograd.graph.saved_tensors_hooks(lambda t: t.clone(), lambda t: t), counter() as fwd:
            out = fn(x, **inputs)
        out = out[0] if isinstance(out, (tuple, list)) else out
        if not backward:
            return Pass(float(fwd.get_total_flops()))
        with counter() as bwd:
            torch.autograd.grad(out, x, grad_outputs=torch.empty_like(out))
    return Pass(float(fwd.get_total_flops()), float(bwd.get_total_flops()))


def meta_inputs(**shapes) -> dict:
    """Meta tensors of the given shapes (``None`` stays ``None``)."""
    with torch.inference_mode(False):
        return {k: None if s is None else torch.empty(s, device="meta") for k, s in shapes.items()}


def diffusion_pass(net, latent_shape, backward: bool = True, **shapes) -> Pass:
    """One call of a diffusion model (U-Net, MMDiT, Flux) on a latent batch of ``latent_shape``, with meta
    inputs of ``shapes`` (context, y, guidance...) and the timestep; backward to the latent."""
    inputs = meta_inputs(**shapes)
    with torch.inference_mode(False):
        t = torch.empty(latent_shape[0], device="meta")
    return module_pass(lambda x, **kw: net(x, t, **kw), latent_shape, backward, **inputs)


def decoder_pass(autoencoder, latent_shape) -> Pass:
    """A VAE's (``first_stage_model``'s) or a tiny autoencoder's ``decode`` of one latent, forward and backward.
    The VAE's attention blocks count with SDPA (their own choice on a CPU, sliced attention, asks the device for
    free memory; the products are the same)."""
    from comfy.ldm.modules.diffusionmodules import model as vae_blocks
    for block in autoencoder.modules():
        if callable(getattr(block, "optimized_attention", None)):
            block.optimized_attention = vae_blocks.pytorch_attention
    return module_pass(lambda z: autoencoder.decode(z), latent_shape)


def clip_pass(tower, image_side: int, size: int = 224) -> Pass:
    """The guidance's embedding of one decoded image: bilinear resize of the ``image_side`` image to ``size``
    (``shortest_side_pixels``) and the CLIP vision tower (``clip_image_embeds``), forward and backward to the
    image."""
    from blendspace.clip_guidance import clip_image_embeds
    from blendspace.clip_preprocess import shortest_side_pixels
    return module_pass(lambda img: clip_image_embeds(tower, shortest_side_pixels(img, size, mode="bilinear")),
                       (1, 3, image_side, image_side))


@dataclass(frozen=True)
class GuidanceCounts:
    """The passes of a CLIP-guided step: the diffusion model per row, the rows of the plain step, the full and
    tiny decoders on the guided latent and the resize + CLIP tower."""

    unet: Pass
    rows: int
    decoder: Pass
    tiny: Pass
    clip: Pass


def guidance_flops(g: GuidanceCounts, checkpointing: bool = False, extra_pass: bool = False) -> dict[str, float]:
    """FLOPs of one step of each path (module docstring). ``checkpointing``: one more forward of the decoder and
    the CLIP tower (recomputed in the backward); ``extra_pass``: the 2024 ComfyUI's extra conditional pass."""
    plain = g.rows * g.unet.forward
    again = 1.0 if checkpointing else 0.0
    clip = g.clip.forward * (1 + again) + g.clip.backward
    fast = plain + g.decoder.forward * (1 + again) + g.decoder.backward + clip
    return {"plain": plain, "taesd": plain + g.tiny.forward * (1 + again) + g.tiny.backward + clip, "fast": fast,
            "exact": fast + g.unet.backward + (g.unet.forward if extra_pass else 0.0)}


def guidance_limits(g: GuidanceCounts, checkpointing: bool = False, extra_pass: bool = False) -> dict[str, float]:
    """Each path's FLOPs over the plain step's: ``{"taesd": ..., "fast": ..., "exact": ...}``."""
    f = guidance_flops(g, checkpointing, extra_pass)
    return {k: round(v / f["plain"], 3) for k, v in f.items() if k != "plain"}


def _adm_width(net) -> int | None:
    """The width of a U-Net's class/ADM input (SDXL's pooled vector and size embeddings), or None."""
    label = getattr(net, "label_emb", None)
    return label[0][0].in_features if isinstance(label, torch.nn.Sequential) else None


def bench_guidance_counts(model, vae, clip_vision, latent_shape, context_shape, rows: int = 2) -> GuidanceCounts:
    """The passes of bench_clip_guidance.py's guided step, counted on meta twins of the very modules it runs:
    ``model`` (a ModelPatcher), ``vae`` (a ``comfy.sd.VAE``), ``clip_vision``, with ComfyUI's TAESD for the tiny
    decoder (the bench writes a random one of that architecture), on a latent of ``latent_shape``."""
    net = meta_twin(model.model.diffusion_model)
    y = None if _adm_width(net) is None else (1, _adm_width(net))
    one = (1, *latent_shape[1:])
    unet = diffusion_pass(net, one, context=(1, *context_shape[1:]), y=y)
    channels = int(getattr(model.model.latent_format, "latent_channels", 4))
    tower = meta_twin(clip_vision.model)
    clip = clip_pass(tower, 8 * latent_shape[-1], int(getattr(clip_vision, "image_size", 224)))
    return GuidanceCounts(unet=unet, rows=rows, decoder=decoder_pass(meta_twin(vae.first_stage_model), one),
                          tiny=decoder_pass(meta_taesd(channels), one), clip=clip)


def with_limits(report: dict, limits: dict[str, tuple[str, float]]) -> dict:
    """``report`` with ``{name}_limit`` and ``{name}_quotient`` (measured / limit, rounded) for each
    ``ratio key: (name, limit)`` of ``limits`` whose ratio it holds."""
    for key, (name, limit) in limits.items():
        report[f"{name}_limit"] = round(limit, 3)
        if isinstance(report.get(key), (int, float)):
            report[f"{name}_quotient"] = round(report[key] / limit, 3)
    return report


def clip_guidance_report(report: dict, m: dict, current: bool, checkpointing: bool = False,
                         paths: tuple[str, ...] | list[str] | None = None) -> dict:
    """bench_clip_guidance.py's report with each measured gradient's (``paths``, default all) FLOP limit and
    quotients (SDPA ratio and ComfyUI's attention), counted on its models ``m``; ``current``: a ComfyUI with the
    calc-cond-batch hook (else the exact path makes the source's extra pass); ``checkpointing``: the gradient
    passes recompute the decoder's and CLIP's forwards."""
    latent = m["latent"]["samples"].shape
    g = bench_guidance_counts(m["model"], m["vae"], m["cv"], latent, m["pos"][0][0].shape)
    limits = {k: v for k, v in guidance_limits(g, checkpointing, extra_pass=not current).items()
              if paths is None or k in paths}
    with_limits(report, {f"{k}_over_plain": (k, v) for k, v in limits.items()})
    for k, v in limits.items():
        report[f"{k}_quotient_default_attention"] = round(report[f"{k}_over_plain_default_attention"] / v, 3)
    report["flops_per_step_tflop"] = {k: round(v / 1e12, 4) for k, v in
                                      guidance_flops(g, checkpointing, not current).items()}
    report["limits_checkpointing"] = checkpointing
    report["goal"] = GOAL_TEXT
    return report


def unet_row(net, latent_side: int, context_shape, y_dim: int | None = None, channels: int = 4) -> Pass:
    """One forward row of a (meta twin of a) U-Net at ``latent_side``, no backward."""
    return diffusion_pass(net, (1, channels, latent_side, latent_side), backward=False,
                          context=(1, *context_shape[1:]), y=None if y_dim is None else (1, y_dim))


def cross_attention_extra(net, latent_side: int, context_shape, tokens_b: int, y_dim: int | None = None) -> float:
    """FLOPs CrossAttnInterpolate adds to one conditional row of a U-Net: in every text cross-attention (``attn2``)
    prompt B's keys and values (two projections of its ``tokens_b`` tokens) and B's attention product
    (``4·Lq·L_B·inner``); the blend itself is elementwise (left out). Lq and the widths are read from the
    U-Net's own ``attn2`` calls in a meta forward."""
    calls = []

    def hook(module, args, kwargs, _out):
        calls.append((args[0].shape[1], module.to_k.in_features, module.to_k.out_features))
    handles = [m.register_forward_hook(hook, with_kwargs=True) for name, m in net.named_modules()
               if name.endswith("attn2")]
    try:
        unet_row(net, latent_side, context_shape, y_dim)
    finally:
        for handle in handles:
            handle.remove()
    return float(sum(2 * 2 * tokens_b * width * inner + 4 * lq * tokens_b * inner for lq, width, inner in calls))


def dual_style_limits(model, latent_side: int, context_shape, tokens_b: int) -> dict[str, tuple[str, float]]:
    """bench_dual_style.py's ratio keys with their names and FLOP limits: the epsilon mix runs 3 U-Net rows a step
    instead of 2 (so does the bare batch-3 call over batch 2; the mix over that scaling: 1); cross-attention
    interpolation adds :func:`cross_attention_extra` to the 2 rows."""
    net = meta_twin(model.model.diffusion_model)
    y = _adm_width(net)
    row = unet_row(net, latent_side, context_shape, y).forward
    eps = 3 * row / (2 * row)
    xattn = (2 * row + cross_attention_extra(net, latent_side, context_shape, tokens_b, y)) / (2 * row)
    return {"epsilon_mix_over_plain": ("epsilon_mix", eps), "unet_batch3_over_batch2": ("unet_batch3", eps),
            "epsilon_mix_over_unet_scaling": ("epsilon_mix_over_unet_scaling", 1.0),
            "cross_attention_over_plain": ("cross_attention", xattn)}


GOAL_TEXT = ("quotient (measured ratio / FLOP limit) <= 1.15 at --size full for every path; at the default small "
             "size, where per-call overhead dominates, reported only")


SD35_MEDIUM = {"in_channels": 16, "out_channels": 16, "patch_size": 2, "depth": 24, "input_size": None,
               "adm_in_channels": 2048, "pos_embed_max_size": 384, "num_patches": 384 ** 2, "qk_norm": "rms",
               "pos_embed_scaling_factor": None, "x_block_self_attn_layers": list(range(13)),
               "context_embedder_config": {"target": "torch.nn.Linear",
                                           "params": {"in_features": 4096, "out_features": 1536}}}
"""SD3.5 Medium's MMDiT-X as ComfyUI's ``model_detection`` reads it from the checkpoint (2.5B parameters)."""
SD35_LARGE = dict(SD35_MEDIUM, depth=38, pos_embed_max_size=192, num_patches=192 ** 2, x_block_self_attn_layers=[],
                  context_embedder_config={"target": "torch.nn.Linear",
                                           "params": {"in_features": 4096, "out_features": 2432}})
"""SD3.5 Large's MMDiT (8.1B parameters)."""
FLUX_DEV = {"image_model": "flux", "guidance_embed": True, "in_channels": 16, "out_channels": 16, "vec_in_dim": 768,
            "context_in_dim": 4096, "hidden_size": 3072, "mlp_ratio": 4.0, "num_heads": 24, "depth": 19,
            "depth_single_blocks": 38, "axes_dim": [16, 56, 56], "theta": 10000, "patch_size": 2, "qkv_bias": True}
"""Flux dev's transformer (12B parameters)."""


@dataclass(frozen=True)
class Family:
    """One row of the predicted table: ComfyUI's model class and configuration, the image side, the latent
    channels, the model's inputs per row besides the latent (shapes) and the rows of a plain step."""

    name: str
    model_class: str
    config: dict
    image: int
    channels: int
    inputs: dict
    rows: int


def families() -> list[Family]:
    from bench_common import SD15_FULL, SDXL_FULL
    return [Family("SD1.5", "SD15", SD15_FULL, 512, 4, {"context": (1, 77, 768)}, 2),
            Family("SDXL", "SDXL", SDXL_FULL, 1024, 4, {"context": (1, 77, 2048), "y": (1, 2816)}, 2),
            Family("SD3.5 Medium", "SD3", SD35_MEDIUM, 1024, 16, {"context": (1, 154, 4096), "y": (1, 2048)}, 2),
            Family("SD3.5 Large", "SD3", SD35_LARGE, 1024, 16, {"context": (1, 154, 4096), "y": (1, 2048)}, 2),
            Family("Flux dev", "Flux", FLUX_DEV, 1024, 16,
                   {"context": (1, 256, 4096), "y": (1, 768), "guidance": (1,)}, 1)]


def meta_diffusion_model(model_class: str, config: dict):
    """ComfyUI's diffusion model of ``config`` built on the meta device (no memory)."""
    import comfy.supported_models
    with torch.inference_mode(False), torch.device("meta"):
        return getattr(comfy.supported_models, model_class)(dict(config)).get_model({}).diffusion_model


def meta_vae_model(channels: int):
    """The SD / SDXL VAE (``FULL_VAE``) with ``channels`` latent channels (16: the SD3 / Flux VAE's shape; its
    quant convolutions, 1x1, are kept) on the meta device."""
    import comfy.ldm.models.autoencoder
    from bench_common import FULL_VAE
    with torch.inference_mode(False), torch.device("meta"):
        return comfy.ldm.models.autoencoder.AutoencoderKL(ddconfig=dict(FULL_VAE, z_channels=channels),
                                                         embed_dim=channels)


def meta_taesd(channels: int):
    """ComfyUI's TAESD (decoder: 64 wide, the real tiny decoders' architecture) on the meta device."""
    import inspect

    from comfy.taesd.taesd import TAESD
    extra = {"latent_channels": channels} if "latent_channels" in inspect.signature(TAESD.__init__).parameters else {}
    with torch.inference_mode(False), torch.device("meta"):
        return TAESD(**extra)


def meta_clip_vision(config: str = "clip_vision_config_vitl.json"):
    """ComfyUI's CLIP vision tower of one of its own configurations (ViT-L/14 at 224 px) on the meta device."""
    import json
    import os

    import comfy.clip_model
    import comfy.ops
    with open(os.path.join(os.path.dirname(comfy.clip_model.__file__), config)) as f:
        cfg = json.load(f)
    with torch.inference_mode(False), torch.device("meta"):
        return comfy.clip_model.CLIPVisionModelProjection(cfg, torch.float32, "meta", comfy.ops.manual_cast), cfg


def family_counts(f: Family, clip: Pass) -> GuidanceCounts:
    """The counted passes of ``f``'s guided step at its image size (``clip``: the tower's pass, the same for
    every family at its 224 px input)."""
    side = f.image // 8
    latent = (1, f.channels, side, side)
    unet = diffusion_pass(meta_diffusion_model(f.model_class, f.config), latent, **f.inputs)
    return GuidanceCounts(unet=unet, rows=f.rows, decoder=decoder_pass(meta_vae_model(f.channels), latent),
                          tiny=decoder_pass(meta_taesd(f.channels), latent), clip=clip)


TABLE_HEADER = """Predicted guided step over plain step, from FLOPs counted on the meta device (flop_limits.py):
- the diffusion model at ComfyUI's own configuration, per row; the plain step runs 2 rows (CFG) except Flux dev
  (guidance-distilled, cfg 1: 1 row); prompts of 77 tokens (SD1.5, SDXL), 77 CLIP + 77 T5 (SD3.5), 256 T5 (Flux);
- the full VAE decoder (SD VAE's architecture; 16 latent channels for SD3.5 and Flux), ComfyUI's TAESD decoder
  (the real tiny decoders' architecture), and the bilinear resize to 224 px with CLIP ViT-L/14 at 224 px;
- backward passes counted with frozen weights (input gradients only); exact = fast + the diffusion model's
  backward on the conditional row (current ComfyUI: the sampler's own conditional pass is differentiated);
- 'ckpt': with gradient checkpointing of the decoder and the CLIP tower (one more forward of each);
- left out: elementwise ops, softmax, LayerNorm/RMSNorm, GELU (a few per cent). TFLOP: forward / backward."""


def _tf(p: Pass) -> str:
    return f"{p.forward / 1e12:.3f} / {p.backward / 1e12:.3f}"


def table_rows() -> list[str]:
    """The markdown table of :data:`TABLE_HEADER`, one row per family this ComfyUI has."""
    import comfy.supported_models
    tower, cfg = meta_clip_vision()
    rows = ["| family, image | rows | diffusion model per row (TFLOP) | VAE decoder | TAESD decoder | resize + ViT-L/14 "
            "| taesd | fast | exact | taesd, fast (ckpt) |", "|---|---|---|---|---|---|---|---|---|---|"]
    clip = None
    for f in families():
        if not hasattr(comfy.supported_models, f.model_class):
            rows.append(f"| {f.name}, {f.image} px | not in this ComfyUI (needs a current one) |||||||||")
            continue
        clip = clip or clip_pass(tower, f.image, cfg["image_size"])
        g = family_counts(f, clip)
        lim, ck = guidance_limits(g), guidance_limits(g, checkpointing=True)
        rows.append(f"| {f.name}, {f.image} px | {f.rows} | {_tf(g.unet)} | {_tf(g.decoder)} | {_tf(g.tiny)} | "
                    f"{_tf(g.clip)} | {lim['taesd']:.2f}× | {lim['fast']:.2f}× | {lim['exact']:.2f}× | "
                    f"{ck['taesd']:.2f}×, {ck['fast']:.2f}× |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", action="store_true", help="print the predicted ratios per family (meta device)")
    args = parser.parse_args()
    if not args.table:
        parser.error("nothing to do: pass --table")
    import bench_common as common
    h = common.boot(cpu=True)
    print(TABLE_HEADER)
    print(f"ComfyUI: {'current' if h.is_current else '2024 (no SD3.5 / Flux rows: set COMFYUI_PATH to a current one)'}")
    print("\n".join(table_rows()), flush=True)


if __name__ == "__main__":
    main()
