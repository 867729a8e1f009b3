"""Checks of the values a graph hands to a node, each raising :class:`BlendspaceInputError` that names the input.

Every node checks its inputs here before it does any work (``nodes/shared.py`` calls these by the socket
type each input declares), so bad input gets a clear message instead of a torch shape error from deep
inside, or a NaN image after minutes of sampling. Each check takes the input's name and says what to
connect or change instead. Pure torch: the facts about the connected model (its latent channels, its
context width) are passed in by the caller.
"""

from __future__ import annotations

import math

import torch

from .conditioning import width_hint
from .errors import BlendspaceInputError

IMAGE_CHANNELS = 3


def finite_float(value, name: str) -> float:
    """``value`` as a float; NaN, infinity or a non-number is refused (ComfyUI's min/max check lets NaN through)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BlendspaceInputError(f"{name}: expected a number, got {type(value).__name__}: enter a number.")
    if not math.isfinite(float(value)):
        raise BlendspaceInputError(f"{name} is {value}: enter a finite number.")
    return float(value)


def whole_number(value, name: str) -> int:
    """``value`` as an int; a float with a fraction, NaN or a non-number is refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BlendspaceInputError(f"{name}: expected a whole number, got {type(value).__name__}: enter a whole number.")
    if not math.isfinite(float(value)) or float(value) != int(value):
        raise BlendspaceInputError(f"{name} is {value}: enter a whole number.")
    return int(value)


def finite_tensor(x: torch.Tensor, name: str) -> torch.Tensor:
    """``x`` unchanged, when it has no NaN or infinity."""
    if x.is_floating_point() or x.is_complex():
        if not bool(torch.isfinite(x).all()):
            bad = "NaN" if bool(torch.isnan(x).any()) else "infinite values"
            raise BlendspaceInputError(f"{name} contains {bad}: connect a finite tensor (check the node that made "
                                       "it, e.g. a VAE or sampler in fp16 that overflowed).")
    return x


def tensor_of_rank(x, name: str, ranks: tuple[int, ...], layout: str) -> torch.Tensor:
    """``x`` when it is a non-empty, finite tensor of one of ``ranks`` dimensions (``layout`` names them)."""
    if not isinstance(x, torch.Tensor):
        raise BlendspaceInputError(f"{name}: expected a tensor {layout}, got {type(x).__name__}.")
    if x.dim() not in ranks:
        raise BlendspaceInputError(f"{name} has {x.dim()} dimensions {tuple(x.shape)}; this node takes {layout}.")
    if x.numel() == 0:
        raise BlendspaceInputError(f"{name} is empty {tuple(x.shape)}: connect a batch of at least one {layout}.")
    return finite_tensor(x, name)


def check_latent(latent, name: str, channels: int | None = None, family: str = "the model") -> torch.Tensor:
    """A LATENT dict's ``samples``: 4-D ``(batch, channels, height, width)``, non-empty, finite, with
    ``channels`` channels when given (an all-zero latent is accepted: ComfyUI widens empty latents)."""
    if not isinstance(latent, dict) or "samples" not in latent:
        raise BlendspaceInputError(f"{name}: expected a LATENT (a dict with 'samples'): connect a latent, e.g. from "
                                   "VAE Encode or Empty Latent Image.")
    samples = latent["samples"]
    if isinstance(samples, torch.Tensor) and samples.dim() == 5:
        raise BlendspaceInputError(f"{name} is a 5-D (video) latent {tuple(samples.shape)}: connect an image latent "
                                   "(batch, channels, height, width), e.g. from VAE Encode or Empty Latent Image.")
    samples = tensor_of_rank(samples, f"{name}", (4,), "(batch, channels, height, width) latent")
    if channels is not None and samples.shape[1] != channels and bool(samples.any()):
        raise BlendspaceInputError(
            f"{name} has {samples.shape[1]} channels but {family} works on {channels}-channel latents: connect a "
            f"latent made by this model's VAE (VAE Encode) or an Empty Latent Image, not one of another model family.")
    if "noise_mask" in latent and isinstance(latent["noise_mask"], torch.Tensor):
        finite_tensor(latent["noise_mask"], f"{name}'s noise_mask")
    return samples


def check_conditioning(cond, name: str) -> int:
    """A CONDITIONING list: non-empty, every entry ``[tokens (batch, tokens, width), dict]`` finite, one width;
    returns the width."""
    if not isinstance(cond, (list, tuple)) or len(cond) == 0:
        raise BlendspaceInputError(f"{name} is empty: connect a prompt, e.g. CLIP Text Encode.")
    widths = set()
    for i, entry in enumerate(cond):
        where = name if len(cond) == 1 else f"{name} (entry {i})"
        if not isinstance(entry, (list, tuple)) or len(entry) < 2 or not isinstance(entry[1], dict):
            raise BlendspaceInputError(f"{where}: not a CONDITIONING entry: connect a CLIP Text Encode output.")
        tokens = tensor_of_rank(entry[0], where, (3,), "(batch, tokens, width) prompt conditioning")
        widths.add(int(tokens.shape[-1]))
        for key, value in entry[1].items():
            if isinstance(value, torch.Tensor):
                finite_tensor(value, f"{where}'s {key}")
    if len(widths) > 1:
        raise BlendspaceInputError(f"{name} mixes token widths {sorted(widths)}: encode every prompt with one CLIP.")
    return widths.pop()


def same_width(widths: dict[str, int], context_dim: int | None = None, family: str = "the model") -> None:
    """Conditionings mixed or sampled together share one token width, the model's ``context_dim`` when known."""
    if context_dim is not None:
        for name, width in widths.items():
            if width != context_dim:
                raise BlendspaceInputError(
                    f"{name} has {width_hint(width)} but {family} expects {width_hint(context_dim)}: encode the prompt with "
                    "this model's CLIP (the one loaded with the checkpoint), not another model family's.")
    if len(set(widths.values())) > 1:
        listed = "; ".join(f"{n}: {width_hint(w)}" for n, w in widths.items())
        raise BlendspaceInputError(f"the prompts have different token widths ({listed}): encode them all with the same "
                                   "CLIP (one model family).")


def check_image(image, name: str) -> torch.Tensor:
    """An IMAGE ``(batch, height, width, channels)``, non-empty and finite, as RGB: an RGBA image loses its alpha
    channel, a gray (1-channel) image is repeated to RGB, other channel counts are refused. Never in place."""
    image = tensor_of_rank(image, name, (4,), "(batch, height, width, channels) IMAGE")
    c = int(image.shape[-1])
    if c == IMAGE_CHANNELS:
        return image
    if c == 4:
        return image[..., :3].contiguous()
    if c == 1:
        return image.repeat(1, 1, 1, 3)
    raise BlendspaceInputError(f"{name} has {c} channels {tuple(image.shape)}: connect an RGB image (gray and RGBA "
                               "are converted), e.g. from Load Image.")


def check_mask(mask, name: str) -> torch.Tensor:
    """A MASK ``(height, width)`` or ``(batch, height, width)``, non-empty and finite."""
    return tensor_of_rank(mask, name, (2, 3), "(batch, height, width) MASK")
