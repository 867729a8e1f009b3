"""What several node modules share: the CLIP image tower, the open_clip type, and common input declarations.

Node modules (``nodes_*.py``) never import each other; whatever two of them need lives here or in
``comfy_compat`` (the ComfyUI internals). ComfyUI modules are imported inside the functions, so
importing the pack has no side effects.
"""

from __future__ import annotations

import functools
import inspect
from contextlib import contextmanager

import torch

from ..blendspace import validation
from ..blendspace.clip_guidance import clip_image_embeds
from ..blendspace.clip_preprocess import OPENAI_MEAN, OPENAI_STD
from ..blendspace.errors import BlendspaceInputError
from . import comfy_compat

OPEN_CLIP_TYPE = "BLENDSPACE_OPEN_CLIP"
MAX_SEED = 0xFFFFFFFFFFFFFFFF


@contextmanager
def on_compute_device(ocm):
    """Run an open_clip model on ComfyUI's compute device, then move it back to the offload device."""
    import comfy.model_management as mm
    ocm.model.to(mm.get_torch_device())
    try:
        yield ocm
    finally:
        ocm.model.to(mm.text_encoder_offload_device())


def require_open_clip(value, what: str = "open_clip"):
    """``value`` if it is a model from Load open_clip Model, else a clear error naming ``what``."""
    if not all(hasattr(value, a) for a in ("model", "image_features", "encode_texts")):
        raise BlendspaceInputError(f"{what} must come from Load open_clip Model.")
    return value


class ImageTower:
    """The CLIP image model that guidance, targets and scores use: core CLIP_VISION or a Blendspace open_clip
    model (exactly one), with its input size, normalisation and embedding width."""

    def __init__(self, clip_vision=None, open_clip=None):
        if (clip_vision is None) == (open_clip is None):
            raise BlendspaceInputError("connect exactly one CLIP image model: clip_vision (Load CLIP Vision) or "
                                       "open_clip (Load open_clip Model, the seed's LAION ViT-B-32).")
        self.clip_vision = clip_vision
        self.open_clip = require_open_clip(open_clip) if open_clip is not None else None
        if self.open_clip is not None:
            oc = self.open_clip
            self.module, self.size, self.mean, self.std, self.dim = oc.model, oc.image_size, oc.mean, oc.std, oc.embed_dim
        else:
            self.module = clip_vision.model
            self.size = int(getattr(clip_vision, "image_size", 224))
            self.mean = getattr(clip_vision, "image_mean", OPENAI_MEAN)
            self.std = getattr(clip_vision, "image_std", OPENAI_STD)
            proj = getattr(self.module, "visual_projection", None)
            self.dim = getattr(proj, "out_features", None)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Projected embeddings of an IMAGE batch, preprocessed as CLIP expects (resize, centre crop)."""
        if self.open_clip is not None:
            with on_compute_device(self.open_clip):
                return self.open_clip.encode_images(images)
        return self.clip_vision.encode_image(images)["image_embeds"].float()

    def embed(self, module, pixels: torch.Tensor) -> torch.Tensor:
        """Differentiable embeddings of preprocessed pixels through ``module`` (a grad-capable copy)."""
        if self.open_clip is not None:
            return module.encode_image(pixels.to(next(module.parameters()).dtype), normalize=False).float()
        return clip_image_embeds(module, pixels).float()


# ------------------------------------------------------------------------------------ input declarations

def sampler_inputs(steps: int, cfg: float, seed_name: str = "seed", seed_default: int = 0,
                   seed_tip: str = "Seed of the starting noise (one fixed seed for every frame).",
                   steps_tip: str = "Number of sampling steps (of the full schedule).",
                   cfg_tip: str = "Classifier-free guidance scale (CFG), as in KSampler.") -> dict:
    """seed, steps, cfg, sampler_name and scheduler, as KSampler declares them, with the given defaults."""
    return {
        seed_name: ("INT", {"default": seed_default, "min": 0, "max": MAX_SEED, "tooltip": seed_tip}),
        "steps": ("INT", {"default": steps, "min": 1, "max": 10000, "tooltip": steps_tip}),
        "cfg": ("FLOAT", {"default": cfg, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01, "tooltip": cfg_tip}),
        "sampler_name": (comfy_compat.sampler_names(), {"default": "euler", "tooltip": "Sampling algorithm, as in KSampler."}),
        "scheduler": (comfy_compat.scheduler_names(), {"default": "normal", "tooltip": "Noise schedule, as in KSampler."}),
    }


def percent_inputs(what: str, step: float = 0.01, source: bool = False) -> dict:
    """start_percent / end_percent: the window of the schedule (0 = first step, 1 = last) where ``what`` acts."""
    note = (" Source: 0 (every step).", " Source: 1.") if source else ("", "")
    return {
        "start_percent": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": step,
                                    "tooltip": f"First step (as a fraction of the schedule) where {what}.{note[0]}"}),
        "end_percent": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": step,
                                  "tooltip": f"Last step (fraction of the schedule) where {what}.{note[1]}"}),
    }


def tower_inputs(role: str) -> dict:
    """The two ways to connect a CLIP image model (exactly one is used): core CLIP vision or open_clip."""
    return {
        "clip_vision": ("CLIP_VISION", {"tooltip": f"The CLIP vision model that {role} (Load CLIP Vision); or connect "
                                                   "open_clip instead."}),
        "open_clip": (OPEN_CLIP_TYPE, {"tooltip": f"The open_clip model that {role} (the seed's LAION ViT-B-32); or "
                                                  "connect clip_vision instead."}),
    }


def model_input(role: str = "The model to sample with.") -> dict:
    return {"model": ("MODEL", {"tooltip": role})}


# ------------------------------------------------------------------------------------ entry checks

def declared_types(cls) -> dict[str, str]:
    """``{input name: socket type}`` of a node class (combo inputs, declared as lists, are left out)."""
    spec = cls.INPUT_TYPES()
    return {name: decl[0] for part in ("required", "optional") for name, decl in spec.get(part, {}).items()
            if isinstance(decl, (tuple, list)) and decl and isinstance(decl[0], str)}


def _check_extras(value, name: str, kind: str) -> None:
    """Finite tensors inside CLIP_VISION_OUTPUT and CLIP target inputs; a MODEL input that is a model."""
    if kind == "MODEL" and not hasattr(value, "model"):
        raise BlendspaceInputError(f"{name}: expected a MODEL, got {type(value).__name__}: connect a checkpoint "
                                   "loader's MODEL output.")
    items = value.items() if isinstance(value, dict) else vars(value).items() if hasattr(value, "__dict__") else ()
    if kind in ("CLIP_VISION_OUTPUT", "BLENDSPACE_CLIP_TARGET"):
        for key, tensor in items:
            if isinstance(tensor, torch.Tensor):
                validation.finite_tensor(tensor, f"{name}'s {key}")


def check_inputs(types: dict[str, str], values: dict) -> dict:
    """Check every value of a node call by its declared socket type; returns the values to call the node with
    (IMAGE inputs as RGB, new tensors, never the caller's changed). Latents and conditionings are checked
    against the connected MODEL (its latent channels, its token width) and conditionings against each other."""
    out = dict(values)
    model = next((v for n, v in values.items() if types.get(n) == "MODEL" and v is not None), None)
    family = comfy_compat.model_family(model) if model is not None else "the model"
    channels = comfy_compat.latent_channels(model) if model is not None else None
    widths = {}
    for name, value in values.items():
        kind = types.get(name)
        if value is None or kind is None:
            continue
        if kind == "FLOAT":
            validation.finite_float(value, name)
        elif kind == "INT":
            validation.whole_number(value, name)
        elif kind == "LATENT":
            validation.check_latent(value, name, channels, family)
        elif kind == "CONDITIONING":
            widths[name] = validation.check_conditioning(value, name)
        elif kind == "IMAGE":
            out[name] = validation.check_image(value, name)
        elif kind == "MASK":
            validation.check_mask(value, name)
        else:
            _check_extras(value, name, kind)
    context = comfy_compat.context_width(model) if model is not None and widths else None
    validation.same_width(widths, context, family)
    return out


def checked(cls):
    """Wrap ``cls``'s FUNCTION so that every call first passes :func:`check_inputs` (same signature, same
    inputs and outputs); applied once to every node class when the pack is loaded."""
    fn = inspect.getattr_static(cls, cls.FUNCTION)
    if not inspect.isfunction(fn) or getattr(fn, "__blendspace_checked__", False):
        return cls
    signature = inspect.signature(fn)
    var_kw = next((p.name for p in signature.parameters.values() if p.kind is p.VAR_KEYWORD), None)
    types: dict[str, str] = {}

    @functools.wraps(fn)
    def entry(self, *args, **kwargs):
        if not types:
            types.update(declared_types(cls))
        bound = signature.bind(self, *args, **kwargs)
        extra = bound.arguments.get(var_kw, {}) if var_kw else {}
        given = {k: v for k, v in {**bound.arguments, **extra}.items() if k in types}
        for name, value in check_inputs(types, given).items():
            (extra if name in extra else bound.arguments)[name] = value
        return fn(*bound.args, **bound.kwargs)

    entry.__blendspace_checked__ = True
    setattr(cls, cls.FUNCTION, entry)
    return cls
