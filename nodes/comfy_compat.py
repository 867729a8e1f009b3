"""The few ComfyUI internals the nodes touch, in one place, working on the 2024 and current ComfyUI.

ComfyUI modules are imported inside the functions, so importing the pack has no side effects.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from ..blendspace.errors import BlendspaceInputError

BLOCK_NAMES = ("input", "middle", "output")


def attention(q, k, v, heads):
    """ComfyUI's attention kernel for ``(batch, tokens, heads·dim)`` inputs (same call in both versions)."""
    from comfy.ldm.modules.attention import optimized_attention
    return optimized_attention(q, k, v, heads)


def diffusion_model(model):
    return model.model.diffusion_model


def transformer_blocks(unet) -> list[tuple[str, int]]:
    """``(name, index)`` of the blocks of a U-Net (``diffusion_model``) that hold a SpatialTransformer."""
    parts = (("input", getattr(unet, "input_blocks", [])), ("middle", [getattr(unet, "middle_block", None)]),
             ("output", getattr(unet, "output_blocks", [])))
    keys = []
    for name, blocks in parts:
        for i, block in enumerate(blocks):
            if block is not None and any(type(m).__name__ == "SpatialTransformer" for m in block.modules()):
                keys.append((name, i))
    return keys


def cross_attention_blocks(model) -> list[tuple[str, int]]:
    """The U-Net blocks holding a SpatialTransformer, as ComfyUI's replace-patch keys ``(name, index)``."""
    keys = transformer_blocks(diffusion_model(model))
    if not keys:
        raise BlendspaceInputError(f"this model ({family_name(model)}) has no U-Net cross-attention blocks (SD1.x, "
                                   "SD2.x and SDXL have them; Flux and SD3 mix text and image tokens in joint "
                                   "attention instead): use DualStyleEpsilonMix instead.")
    return keys


def parse_blocks(spec: str, available: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """'all', or a comma list of block names ('input') and single blocks ('input 4')."""
    text = (spec or "").strip().lower()
    if text in ("", "all"):
        return list(available)
    chosen: list[tuple[str, int]] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        words = part.replace(":", " ").split()
        if words[0] not in BLOCK_NAMES or len(words) > 2:
            raise BlendspaceInputError(f"blocks: cannot read '{part}'. Use 'all', or names like 'input', 'middle', "
                                       "'output', 'input 4'.")
        if len(words) == 1:
            keys = [k for k in available if k[0] == words[0]]
        else:
            try:
                keys = [(words[0], int(words[1]))]
            except ValueError as err:
                raise BlendspaceInputError(f"blocks: '{part}' needs a block number, e.g. 'input 4'.") from err
            if keys[0] not in available:
                names = ", ".join(f"{n} {i}" for n, i in available)
                raise BlendspaceInputError(f"blocks: this model has no cross-attention in '{part}'. It has: {names}.")
        chosen.extend(k for k in keys if k not in chosen)
    return chosen


def model_sampling(model):
    if hasattr(model, "get_model_object"):
        return model.get_model_object("model_sampling")
    return model.model.model_sampling


def percent_sigmas(model, start_percent: float, end_percent: float) -> tuple[float, float]:
    """Sigmas bounding a step window given as fractions of the schedule (0 = first step)."""
    ms = model_sampling(model)
    return float(ms.percent_to_sigma(start_percent)), float(ms.percent_to_sigma(end_percent))


def chain_attn2_replace(model, blocks: list[tuple[str, int]], make_replace: Callable[[Callable | None], Callable]) -> None:
    """Register ``make_replace(previous)`` on every block, wrapping the replace patch already there (both
    ``(name, i)`` and ``(name, i, transformer_index)`` keys) instead of overwriting it."""
    existing = dict(model.model_options.get("transformer_options", {}).get("patches_replace", {}).get("attn2", {}))
    for name, index in blocks:
        for key, previous in existing.items():
            if len(key) == 3 and key[0] == name and key[1] == index:
                model.set_model_attn2_replace(make_replace(previous), name, index, key[2])
        model.set_model_attn2_replace(make_replace(existing.get((name, index))), name, index)


def sdpa_attention(q, k, v, extra_options):
    """An attn1/attn2 replace patch computing plain attention with PyTorch's SDPA kernel."""
    import torch.nn.functional as F
    heads = extra_options["n_heads"]
    b, _, inner = q.shape
    q, k, v = (t.reshape(b, -1, heads, inner // heads).transpose(1, 2) for t in (q, k, v))
    return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, -1, inner)


def attention_is_sdpa() -> bool:
    """Whether ComfyUI's attention kernel is PyTorch's SDPA (``attention_pytorch``, its choice on most GPUs)."""
    import comfy.ldm.modules.attention as attention
    return attention.optimized_attention is getattr(attention, "attention_pytorch", None)


def grad_attention_options(model_options: dict, blocks: list[tuple[str, int]]) -> dict:
    """``model_options`` for a forward pass that will be differentiated: attention through PyTorch's SDPA, whose
    backward is far cheaper than the CPU sub-quadratic kernel's (:func:`with_sdpa_attention`); unchanged where
    ComfyUI's kernel already is SDPA (most GPUs), where the patch would only add a Python call per attention."""
    return model_options if attention_is_sdpa() else with_sdpa_attention(model_options, blocks)


def with_sdpa_attention(model_options: dict, blocks: list[tuple[str, int]]) -> dict:
    """A copy of ``model_options`` whose self- and cross-attention use :func:`sdpa_attention` in every
    transformer block of ``blocks`` (from :func:`transformer_blocks`) that has no replace patch of its own
    (those are kept as they are)."""
    to = dict(model_options.get("transformer_options", {}))
    replace = {k: dict(v) for k, v in to.get("patches_replace", {}).items()}
    for attn in ("attn1", "attn2"):
        patches = replace.setdefault(attn, {})
        taken = {key[:2] for key in patches}
        for block in blocks:
            if block not in taken:
                patches[block] = sdpa_attention
    to["patches_replace"] = replace
    return {**model_options, "transformer_options": to}


def sampler_names() -> list[str]:
    import comfy.samplers
    return list(comfy.samplers.KSampler.SAMPLERS)


def scheduler_names() -> list[str]:
    import comfy.samplers
    return list(comfy.samplers.KSampler.SCHEDULERS)


def prepare_noise(model, latent: dict, seed: int):
    """The latent (empty-channel fix as core applies it) and KSampler's noise for ``seed``."""
    import comfy.sample
    samples = latent["samples"]
    if hasattr(comfy.sample, "fix_empty_latent_channels"):
        samples = comfy.sample.fix_empty_latent_channels(model, samples)
    return samples, comfy.sample.prepare_noise(samples, seed, latent.get("batch_index"))


def ksample(model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent: dict, denoise=1.0,
            start_step=None, last_step=None, force_full_denoise=False, callback=None, noise=None):
    """Core ``common_ksampler`` (KSampler / KSampler Advanced with noise) with our own callback; returns samples.

    ``callback(step, x0, x, total_steps)`` as ComfyUI's; ``noise`` replaces the seed's noise. ``denoise`` 0
    returns the latent unchanged on both ComfyUIs (the 2024 one divides by it)."""
    import comfy.sample
    samples, seed_noise = prepare_noise(model, latent, seed)
    if denoise is not None and denoise <= 0.0:  # nothing to sample: the latent itself, as current ComfyUI returns
        return samples.clone()
    return comfy.sample.sample(model, seed_noise if noise is None else noise, steps, cfg, sampler_name, scheduler,
                               positive, negative, samples, denoise=denoise, start_step=start_step, last_step=last_step,
                               force_full_denoise=force_full_denoise, noise_mask=latent.get("noise_mask"),
                               callback=callback, disable_pbar=True, seed=seed)


class Progress:
    """One progress bar over several sampler runs, with an interruption check on every update."""

    def __init__(self, total: int):
        import comfy.utils
        self.total = max(1, int(total))
        self.bar = comfy.utils.ProgressBar(self.total)
        self.done = 0

    def check(self) -> None:
        import comfy.model_management
        comfy.model_management.throw_exception_if_processing_interrupted()

    def step_callback(self, offset: int):
        def cb(step, x0, x, total_steps):
            self.check()
            self.bar.update_absolute(min(self.total, offset + step + 1), self.total)
        return cb

    def advance(self, n: int) -> None:
        self.done += n
        self.check()
        self.bar.update_absolute(min(self.total, self.done), self.total)


def schedule_sigmas(model, scheduler: str, steps: int, denoise: float = 1.0):
    """The sigmas KSampler runs for ``steps`` and ``denoise`` (its ``set_steps`` rule), in both versions."""
    import comfy.samplers
    import torch

    def full(n):
        if hasattr(comfy.samplers, "calculate_sigmas"):
            return comfy.samplers.calculate_sigmas(model_sampling(model), scheduler, n)
        return comfy.samplers.calculate_sigmas_scheduler(model.model, scheduler, n)

    if denoise is None or denoise > 0.9999:
        return full(steps)
    if denoise <= 0.0:
        return torch.FloatTensor([])
    return full(int(steps / denoise))[-(steps + 1):]


# ------------------------------------------------------------------------------------ gradients through loaded models

def _alias(t):
    """A normal (non-inference) tensor on the same memory as ``t`` (a DLPack round trip, outside inference
    mode); a clone where DLPack cannot carry ``t`` (some tensor subclasses and quantised kinds)."""
    import torch
    t = t.detach()
    try:
        return torch.utils.dlpack.from_dlpack(torch.utils.dlpack.to_dlpack(t))
    except (BufferError, RuntimeError, TypeError, ValueError):
        return t.clone()


def grad_capable_twin(module, device):
    """A frozen twin of ``module`` that autograd can differentiate through (gradients for inputs, none for
    weights), on ``device``.

    ComfyUI loads models and runs nodes under ``torch.inference_mode()``: their weights are inference tensors,
    which autograd refuses to save for a backward pass. The twin's parameters and buffers are not copies: each
    is a normal tensor on the same memory as the original's, so the twin costs no weight memory on the
    module's own device (a twin on another device is a copy there). Everything else is deep-copied, so the
    twin's structure can be used apart from the original's; its weights must not be written to."""
    import torch
    with torch.inference_mode(False):
        memo = {id(p): torch.nn.Parameter(_alias(p), requires_grad=False) for p in module.parameters()}
        memo.update({id(b): _alias(b) for b in module.buffers()})
        twin = copy.deepcopy(module, memo).to(device)
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin

# ------------------------------------------------------------------------------------ model families

PREDICTIONS = {"EPS": "eps", "V_PREDICTION": "v", "CONST": "flow", "EDM": "edm", "X0": "x0", "IMG_TO_IMG": "x0",
               "COSMOS_RFLOW": "cosmos flow"}
"""ComfyUI's prediction mix-in classes (in ``model_sampling``'s class hierarchy) → Blendspace's names."""

FAMILY_NAMES = {"SD15": "SD1.x", "SD20": "SD2.x", "SD21UnclipL": "SD2.x unCLIP", "SD21UnclipH": "SD2.x unCLIP",
                "SDXL": "SDXL", "SDXLRefiner": "SDXL refiner", "SSD1B": "SDXL (SSD-1B)", "Segmind_Vega": "SDXL (Vega)",
                "SD3": "SD3 / SD3.5", "Flux": "Flux", "FluxSchnell": "Flux schnell"}


def prediction_kind(model) -> str:
    """What the model predicts, from its ``model_sampling`` class hierarchy (most derived mix-in first):
    ``"eps"``, ``"v"``, ``"flow"`` (CONST: ``x = (1 - σ)·x0 + σ·noise``), ``"edm"``, ``"x0"``, or the class name."""
    ms = model_sampling(model)
    for cls in type(ms).__mro__:
        if cls.__name__ in PREDICTIONS:
            return PREDICTIONS[cls.__name__]
    return type(ms).__name__


def family_name(model) -> str:
    """The model family as users know it, from the class name of the model's config (``supported_models``)."""
    inner = getattr(model, "model", model)
    config = getattr(inner, "model_config", None)
    name = type(config).__name__ if config is not None else type(inner).__name__
    return FAMILY_NAMES.get(name, name)


def require_prediction(model, allowed: tuple[str, ...], what: str) -> str:
    """The model's prediction kind when it is one of ``allowed``, else a clear error naming the family."""
    kind = prediction_kind(model)
    if kind not in allowed:
        names = {"eps": "eps (SD1.x, SDXL)", "v": "v-prediction (SD2.x-v)", "flow": "flow (Flux, SD3/SD3.5)"}
        ok = ", ".join(names.get(k, k) for k in allowed)
        raise BlendspaceInputError(f"{what} does not support this model: {family_name(model)} ({kind} prediction). "
                                   f"It works with {ok} models.")
    return kind


def noise_latent(model, sigma: float, noise, latent):
    """``latent`` noised to ``sigma`` as the model's own sampling does (``model_sampling.noise_scaling``):
    ``latent + σ·noise`` for eps/v models, ``(1 - σ)·latent + σ·noise`` for flow models. Both tensors in
    the sampler's (``process_latent_in``) space."""
    import torch
    ms = model_sampling(model)
    if hasattr(ms, "noise_scaling"):
        return ms.noise_scaling(torch.tensor(float(sigma)), noise.clone(), latent.clone())
    return latent + float(sigma) * noise  # very old ComfyUI: eps/v models only


def sampler_start(model, sigma: float, start):
    """A ``(latent, noise)`` pair that the sampler's own noise scaling at ``sigma`` turns into exactly ``start``
    (an already noised latent in ``process_latent_in`` space): ``(start, 0)`` for eps/v models (``latent +
    σ·0``), ``(0, start/σ)`` for flow models (``(1 - σ)·0 + σ·start/σ``; valid at σ = 1 too)."""
    import torch
    if prediction_kind(model) == "flow":
        return torch.zeros_like(start), start / float(sigma)
    return start, torch.zeros_like(start)

# ------------------------------------------------------------------------------------ facts about a MODEL

def model_family(model) -> str:
    """'the connected <family> model' (e.g. SD1.x, SDXL, Flux; see :func:`family_name`), for error messages."""
    config = getattr(getattr(model, "model", None), "model_config", None)
    return f"the connected {family_name(model)} model" if config is not None else "the connected model"


def latent_channels(model) -> int | None:
    """Channels of the latents ``model`` samples (its latent format), or None when it cannot be told.

    Current ComfyUI declares ``latent_channels``; the 2024 one does not, but its formats list one RGB preview
    factor row per channel."""
    base = getattr(model, "model", None)
    fmt = getattr(base, "latent_format", None)
    if hasattr(model, "get_model_object"):
        try:
            fmt = model.get_model_object("latent_format")
        except (AttributeError, KeyError):
            pass
    if fmt is None:
        return None
    channels = getattr(fmt, "latent_channels", None)
    if channels is None and getattr(fmt, "latent_rgb_factors", None) is not None:
        channels = len(fmt.latent_rgb_factors)
    return int(channels) if channels else None


def context_width(model) -> int | None:
    """Token width of the prompt conditioning ``model`` cross-attends to (its config's context dim), or None."""
    config = getattr(getattr(model, "model", None), "model_config", None)
    unet_config = getattr(config, "unet_config", None) or {}
    width = unet_config.get("context_dim") or unet_config.get("context_in_dim")
    return int(width) if isinstance(width, int) else None

# ------------------------------------------------------------------------------------ tiny autoencoders

TINY_DECODER_FAMILIES = {"taesd_decoder": "SD1.x / SD2.x", "taesdxl_decoder": "SDXL", "taesd3_decoder": "SD3",
                         "taef1_decoder": "Flux"}
"""The tiny decoder files ComfyUI's latent formats name (``taesd_decoder_name``) and the families they decode."""


def tiny_decoder_path(model) -> str:
    """The file in ``models/vae_approx`` holding the tiny autoencoder decoder (TAESD, TAESDXL, TAESD3, TAEF1) for
    ``model``'s latent format (a ``BaseModel``), found as ComfyUI's previews find it; else a clear error naming
    the folders searched and the file expected."""
    import folder_paths
    name = getattr(getattr(model, "latent_format", None), "taesd_decoder_name", None)
    if name is None:
        raise BlendspaceInputError(f"there is no tiny autoencoder (TAESD) decoder for this model's latents "
                                   f"({family_name(model)}): choose the fast or exact gradient.")
    for filename in folder_paths.get_filename_list("vae_approx"):
        if filename.startswith(name):
            return folder_paths.get_full_path("vae_approx", filename)
    folders = ", ".join(folder_paths.get_folder_paths("vae_approx")) or "(none registered)"
    raise BlendspaceInputError(f"the taesd gradient needs the tiny decoder for {family_name(model)} latents: "
                               f"{name}.safetensors (or .pth) in models/vae_approx. Searched: {folders}. It is "
                               "the file ComfyUI's TAESD previews use (github.com/madebyollin/taesd); or choose the "
                               "fast gradient.")


def tiny_decoder(model, device):
    """ComfyUI's own ``TAESD`` class with ``model``'s tiny decoder loaded (no encoder), made outside inference
    mode with frozen weights so that autograd can run through it. Its ``decode`` takes the sampler's
    (``process_latent_in``) latents and returns images in [-1, 1]."""
    import inspect

    import torch
    from comfy.taesd.taesd import TAESD
    path = tiny_decoder_path(model)
    channels = int(getattr(model.latent_format, "latent_channels", 4))
    kwargs = {"latent_channels": channels} if "latent_channels" in inspect.signature(TAESD.__init__).parameters else {}
    try:
        with torch.inference_mode(False):
            taesd = TAESD(None, path, **kwargs).to(device)
    except RuntimeError as err:  # a decoder for other latents (channel count) does not load
        raise BlendspaceInputError(f"{path} is not a tiny decoder for {family_name(model)} latents ({channels} "
                                   f"channels): {str(err).splitlines()[0]}") from err
    for p in taesd.parameters():
        p.requires_grad_(False)
    return taesd
