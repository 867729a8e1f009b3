"""The CLIP image towers as the techniques call them: core CLIP vision models and Blendspace's open_clip models,
moved to ComfyUI's compute device while they run, and FlexDiffuse's guide tokens (all ViT tokens through the
vision model's own post-layernorm and projection, which core CLIP Vision Encode does not expose)."""

from __future__ import annotations

import logging
from contextlib import contextmanager

import torch

from ...blendspace.clip_guidance import clip_image_embeds
from ...blendspace.clip_preprocess import OPENAI_MEAN, OPENAI_STD, centre_square_pixels, source_resize_512
from ...blendspace.errors import BlendspaceInputError
from ...blendspace.vision_output import tensor_fields

log = logging.getLogger("blendspace")


@contextmanager
def on_compute_device(ocm):
    """Run an open_clip model on ComfyUI's compute device, then move it back to the offload device."""
    import comfy.model_management as mm
    ocm.model.to(mm.get_torch_device())
    try:
        yield ocm
    finally:
        ocm.model.to(offload_device())


def require_open_clip(value, what: str = "open_clip"):
    """``value`` if it is a model from Load open_clip Model, else a clear error naming ``what``."""
    if not all(hasattr(value, a) for a in ("model", "image_features", "encode_texts")):
        raise BlendspaceInputError(f"{what} must come from Load open_clip Model.")
    return value



def offload_device():
    """Where ComfyUI keeps text and image encoders while they are not running."""
    import comfy.model_management as mm
    return mm.text_encoder_offload_device()


class ImageTower:
    """The CLIP image model that guidance, targets and scores use: core CLIP_VISION or a Blendspace open_clip
    model (exactly one), with its input size, normalisation and embedding width."""

    def __init__(self, clip_vision=None, open_clip=None):
        if (clip_vision is None) == (open_clip is None):
            raise BlendspaceInputError("connect exactly one CLIP image model: clip_vision (Load CLIP Vision) or "
                                       "open_clip (Load open_clip Model, the images-mixing pipeline's LAION ViT-B-32).")
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


def _hidden_state(clip_vision_output, model) -> torch.Tensor:
    """The first image's ``last_hidden_state`` (1, tokens, width) of a core CLIP Vision Encode output, when it has
    one of the width of ``model`` (the CLIP vision model its tokens go through); else a clear error."""
    hidden = tensor_fields(clip_vision_output).get("last_hidden_state")
    if hidden is None or hidden.dim() != 3 or hidden.numel() == 0:
        raise BlendspaceInputError("clip_vision_output has no last_hidden_state (batch, tokens, width): connect core "
                                   "CLIP Vision Encode's output, or connect the image instead.")
    norm = getattr(getattr(model, "vision_model", None), "post_layernorm", None)
    width = getattr(norm, "normalized_shape", (None,))[-1]
    if width is not None and hidden.shape[-1] != width:
        raise BlendspaceInputError(f"clip_vision_output holds {hidden.shape[-1]}-wide tokens but the connected "
                                   f"clip_vision model is {width} wide: encode the image with this CLIP vision model "
                                   "(or connect the image instead).")
    return hidden[:1]


def image_tokens(clip_vision, clip_vision_output=None, image=None, faithful: bool = False) -> torch.Tensor:
    """(257, proj) projected tokens of the first guide image."""
    import comfy.model_management
    model = clip_vision.model
    if faithful or clip_vision_output is None:
        if image is None:
            raise BlendspaceInputError("connect the guide IMAGE: the faithful [-1,1] preprocessing (or a missing "
                                       "clip_vision_output) needs the picture itself.")
        if image.shape[0] > 1:
            log.warning("Blendspace: %d guide images given; FlexDiffuse guides with one, the first is used.",
                        image.shape[0])
        comfy.model_management.load_model_gpu(clip_vision.patcher)
        device = getattr(clip_vision, "load_device", comfy.model_management.get_torch_device())
        size = int(getattr(clip_vision, "image_size", 224))
        picture = source_resize_512(image[:1]) if faithful else image[:1]  # the source's long-side-512 resize
        px = centre_square_pixels(picture.to(device), size, faithful, getattr(clip_vision, "image_mean", OPENAI_MEAN),
                                  getattr(clip_vision, "image_std", OPENAI_STD))
        hidden = model(pixel_values=px, intermediate_output=-2)[0]
    else:
        hidden = _hidden_state(clip_vision_output, model)
        comfy.model_management.load_model_gpu(clip_vision.patcher)
    device = next(model.parameters()).device
    with torch.no_grad():
        tokens = model.visual_projection(model.vision_model.post_layernorm(hidden.to(device)))
    return tokens[0].float().cpu()
