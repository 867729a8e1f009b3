"""Facts about a MODEL that the nodes and the other runtime modules ask: its family as users know it, what it
predicts, its latent format and prompt width, and its sampling schedule (sigmas, noise scaling)."""

from __future__ import annotations

from ...blendspace.errors import BlendspaceInputError


def diffusion_model(model):
    """The network inside a MODEL (a U-Net or a DiT: ``BaseModel.diffusion_model``)."""
    return model.model.diffusion_model


def model_sampling(model):
    """The MODEL's ``model_sampling`` object (sigmas, noise scaling, prediction type), patches included."""
    if hasattr(model, "get_model_object"):
        return model.get_model_object("model_sampling")
    return model.model.model_sampling


def percent_sigmas(model, start_percent: float, end_percent: float) -> tuple[float, float]:
    """Sigmas bounding a step window given as fractions of the schedule (0 = first step)."""
    ms = model_sampling(model)
    return float(ms.percent_to_sigma(start_percent)), float(ms.percent_to_sigma(end_percent))


PREDICTIONS = {"EPS": "eps", "V_PREDICTION": "v", "CONST": "flow", "EDM": "edm", "X0": "x0", "IMG_TO_IMG": "x0",
               "COSMOS_RFLOW": "cosmos flow"}
"""ComfyUI's prediction mix-in classes (in ``model_sampling``'s class hierarchy) → Blendspace's names."""

FAMILY_NAMES = {"SD15": "SD1.x", "SD20": "SD2.x", "SD21UnclipL": "SD2.x unCLIP", "SD21UnclipH": "SD2.x unCLIP",
                "SDXL": "SDXL", "SDXLRefiner": "SDXL refiner", "SSD1B": "SDXL (SSD-1B)", "Segmind_Vega": "SDXL (Vega)",
                "SD3": "SD3 / SD3.5", "Flux": "Flux", "FluxSchnell": "Flux schnell", "FluxInpaint": "Flux Fill",
                "Chroma": "Chroma", "ChromaRadiance": "Chroma Radiance", "HiDream": "HiDream", "QwenImage": "Qwen-Image",
                "Lumina2": "Lumina 2", "Omnigen2": "OmniGen2", "AuraFlow": "AuraFlow", "WAN21_T2V": "Wan 2.1",
                "WAN21_I2V": "Wan 2.1 image-to-video", "WAN22_T2V": "Wan 2.2", "HunyuanImage21": "HunyuanImage 2.1",
                "HunyuanVideo": "HunyuanVideo", "PixArtSigma": "PixArt-Σ", "Stable_Cascade_C": "Stable Cascade"}


def prediction_kind(model) -> str:
    """What the model predicts, from its ``model_sampling`` class hierarchy (most derived mix-in first):
    ``"eps"``, ``"v"``, ``"flow"`` (CONST: ``x = (1 - σ)·x0 + σ·noise``), ``"edm"``, ``"x0"``, or the class name."""
    ms = model_sampling(model)
    for cls in type(ms).__mro__:
        if cls.__name__ in PREDICTIONS:
            return PREDICTIONS[cls.__name__]
    return type(ms).__name__


def family_id(model) -> str:
    """The class name of the model's config in ComfyUI's ``supported_models`` (``"Flux"``, ``"QwenImage"`` ...),
    or of the model itself when it has no config: the key the techniques' support tables use."""
    inner = getattr(model, "model", model)
    config = getattr(inner, "model_config", None)
    return type(config).__name__ if config is not None else type(inner).__name__


def family_name(model) -> str:
    """The model family as users know it, from the class name of the model's config (``supported_models``)."""
    name = family_id(model)
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


def model_family(model) -> str:
    """'the connected <family> model' (e.g. SD1.x, SDXL, Flux; see :func:`family_name`), for error messages."""
    config = getattr(getattr(model, "model", None), "model_config", None)
    return f"the connected {family_name(model)} model" if config is not None else "the connected model"


def _latent_format(model):
    """The latent format ``model`` samples in (a patched one first), or None."""
    fmt = getattr(getattr(model, "model", None), "latent_format", None)
    if hasattr(model, "get_model_object"):
        try:
            fmt = model.get_model_object("latent_format")
        except (AttributeError, KeyError):
            pass
    return fmt


def _unet_config(model) -> dict:
    """The diffusion model's configuration as ComfyUI detected it (``model_config.unet_config``), or {}."""
    config = getattr(getattr(model, "model", None), "model_config", None)
    return getattr(config, "unet_config", None) or {}


def latent_channels(model) -> int | None:
    """Channels of the latents ``model`` samples (its latent format), or None when it cannot be told.

    Current ComfyUI declares ``latent_channels``; the 2024 one does not, but its formats list one RGB preview
    factor row per channel."""
    fmt = _latent_format(model)
    if fmt is None:
        return None
    channels = getattr(fmt, "latent_channels", None)
    if channels is None and getattr(fmt, "latent_rgb_factors", None) is not None:
        channels = len(fmt.latent_rgb_factors)
    return int(channels) if channels else None


def context_width(model) -> int | None:
    """Token width of the prompt conditioning ``model`` cross-attends to (its config's context dim), or None."""
    unet_config = _unet_config(model)
    width = unet_config.get("context_dim") or unet_config.get("context_in_dim")
    return int(width) if isinstance(width, int) else None


def latent_dimensions(model) -> int:
    """How many dimensions a latent of ``model`` spans besides batch and channels: 2 for image models, 3 for
    those that read video-format latents (Qwen-Image's Wan-style latents, Wan), from its latent format."""
    dims = getattr(_latent_format(model), "latent_dimensions", 2)
    return int(dims) if isinstance(dims, int) else 2


def pooled_width(model) -> int | None:
    """Width of the pooled text vector the model reads as it is, or None where it reads none or mixes it with
    other inputs first: Flux's ``vec_in_dim``; SD3's ``adm_in_channels`` (SDXL's ADM input also carries its
    size embeddings, so it gives None)."""
    unet_config = _unet_config(model)
    width = unet_config.get("vec_in_dim")
    if width is None and family_id(model) in ("SD3",):
        width = unet_config.get("adm_in_channels")
    return int(width) if isinstance(width, int) else None


def discrete_alphas_cumprod(model, what: str):
    """ᾱ_t of the model's discrete DDPM schedule (float64, CPU), from its sigmas (ᾱ = 1 / (1 + σ²)); a clear
    error naming ``what`` for models without one (flow and EDM models)."""
    import torch
    ms = model_sampling(model)
    sigmas = getattr(ms, "sigmas", None)
    if sigmas is None or sigmas.dim() != 1 or sigmas.shape[0] < 10:
        raise BlendspaceInputError(f"{what} needs a model with a discrete DDPM schedule (SD1.x, SD2.x, SDXL); this "
                                   f"model ({family_name(model)}) has none (flow or EDM models are not supported).")
    return 1.0 / (1.0 + sigmas.detach().to("cpu", torch.float64) ** 2)
