"""What several node modules share: the CLIP image tower, the open_clip type, and common input declarations.

Node modules (``nodes_*.py``) never import each other; whatever two of them need lives here or in
``comfy_compat`` (the ComfyUI internals). ComfyUI modules are imported inside the functions, so
importing the pack has no side effects.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

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
