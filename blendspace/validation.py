"""Checks of the values a graph hands to a node, each raising :class:`BlendspaceInputError` that names the input.

Every node checks its inputs here before it does any work (``nodes/checks.py`` calls these by the socket
type and the min/max or choice list each input declares), so bad input gets a clear message instead of a
torch shape error from deep inside, or a NaN image after minutes of sampling. ComfyUI's own validation
only runs for prompts it validates (and lets NaN through every min/max check); an API prompt, a script or
another pack's node reaches the node directly. Each check takes the input's name and says what was
expected, what came, and what to connect or change instead. Where a user would expect a conversion, it is
made on a new tensor (an 8-bit IMAGE scaled from 0-255 to 0-1, an fp16 IMAGE taken as float32), never in
place. Pure torch: the facts about the connected model (its latent channels, its context width) are passed
in by the caller.
"""

from __future__ import annotations

import math
import numbers

import torch

from .conditioning import width_hint
from .errors import BlendspaceInputError

IMAGE_CHANNELS = 3


def _real(value, name: str, expected: str):
    """``value`` when it is a real number (Python or numpy; a bool is not a number), else an error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise BlendspaceInputError(f"{name}: expected {expected}, got {type(value).__name__} {_shown(value)}: "
                                   f"enter {expected}.")
    return value


def _as_finite_float(value, name: str) -> float:
    try:
        out = float(value)
    except OverflowError:  # an int too large for a float
        out = math.inf if value > 0 else -math.inf
    if not math.isfinite(out):
        raise BlendspaceInputError(f"{name} is {_shown(value)}: enter a finite number.")
    return out


def finite_float(value, name: str) -> float:
    """``value`` as a float; NaN, infinity or a non-number is refused (ComfyUI's min/max check lets NaN through)."""
    return _as_finite_float(_real(value, name, "a number"), name)


def whole_number(value, name: str) -> int:
    """``value`` as an int; a float with a fraction, NaN or a non-number is refused."""
    value = _real(value, name, "a whole number")
    if isinstance(value, numbers.Integral):
        return int(value)
    out = _as_finite_float(value, name)
    if not out.is_integer():
        raise BlendspaceInputError(f"{name} is {_shown(value)}: enter a whole number.")
    return int(out)


def _shown(value) -> str:
    """A value as a message shows it: short texts quoted, long ones cut."""
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def in_range(value: float, name: str, lo: float | None, hi: float | None) -> None:
    """Refuse ``value`` outside ``[lo, hi]`` (either end may be open), naming the input and the range."""
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        low = "" if lo is None else f"{lo:g}" if isinstance(lo, float) else str(lo)
        high = "" if hi is None else f"{hi:g}" if isinstance(hi, float) else str(hi)
        span = f"from {low} to {high}" if lo is not None and hi is not None else \
            f"at least {low}" if lo is not None else f"at most {high}"
        raise BlendspaceInputError(f"{name} is {_shown(value)}, outside its range: enter a number {span}.")


def number(value, name: str, kind: str, lo=None, hi=None) -> float | int:
    """An INT (``kind`` "INT": a whole number) or FLOAT input as a number within its declared ``[lo, hi]``;
    NaN, infinity, booleans and non-numbers are refused."""
    out = whole_number(value, name) if kind == "INT" else finite_float(value, name)
    in_range(out, name, lo, hi)
    return out


def boolean(value, name: str) -> bool:
    """A BOOLEAN input: ``True``/``False`` (0 and 1 are taken as such); anything else is refused."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise BlendspaceInputError(f"{name}: expected true or false, got {type(value).__name__} {_shown(value)}.")


def text(value, name: str) -> str:
    """A STRING input: a ``str``; anything else is refused."""
    if not isinstance(value, str):
        raise BlendspaceInputError(f"{name}: expected text, got {type(value).__name__} {_shown(value)}.")
    return value


MAX_SHOWN_CHOICES = 12


def choice(value, name: str, choices) -> object:
    """A combo input: one of its declared ``choices``; else an error naming the input and the choices."""
    if not isinstance(value, bool) and isinstance(value, (str, int, float)) and value in choices:
        return value
    listed = ", ".join(repr(c) for c in list(choices)[:MAX_SHOWN_CHOICES])
    more = f" and {len(choices) - MAX_SHOWN_CHOICES} more" if len(choices) > MAX_SHOWN_CHOICES else ""
    raise BlendspaceInputError(f"{name} is {_shown(value)}, not one of its choices: choose one of {listed}{more}."
                               if choices else f"{name} is {_shown(value)}, but it has no choices to pick from.")


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


MIN_LATENT_SIDE = 2
"""The smallest latent height and width: ComfyUI's Empty Latent Image makes at least 16 px (2 latent pixels);
below it a model's normalisation layers can be left with a single value to normalise."""

MAX_BATCH_INDEX = 16384
"""The largest ``batch_index`` entry a LATENT may carry: ComfyUI draws the seed's noise for every index up to
the largest, one after another, so a huge index would keep a sampler busy for hours."""


def _check_batch_index(index, batch: int, name: str) -> None:
    """A LATENT's ``batch_index`` (core Latent From Batch / Repeat Latent Batch): one whole number per sample,
    each from 0 to ``MAX_BATCH_INDEX``; ComfyUI draws each sample's noise by it."""
    if not isinstance(index, (list, tuple)) or not all(isinstance(i, int) and not isinstance(i, bool)
                                                       for i in index):
        raise BlendspaceInputError(f"{name}'s batch_index is {_shown(index)}: expected a list of whole numbers, one "
                                   "per sample (as Latent From Batch makes it).")
    if len(index) != batch:
        raise BlendspaceInputError(f"{name}'s batch_index has {len(index)} entries but its batch has {batch} samples: "
                                   "expected one entry per sample (rebuild the latent with core latent batch nodes).")
    if index and (min(index) < 0 or max(index) > MAX_BATCH_INDEX):
        raise BlendspaceInputError(f"{name}'s batch_index runs from {min(index)} to {max(index)}: expected entries from "
                                   f"0 to {MAX_BATCH_INDEX}.")


def check_latent(latent, name: str, channels: int | None = None, family: str = "the model", video: bool = False) -> dict:
    """A LATENT dict: ``samples`` 4-D ``(batch, channels, height, width)`` (or, with ``video``, for a model that
    reads video-format latents such as Qwen-Image's, also 5-D ``(batch, channels, frames, height, width)``, as
    its VAE Encode makes them) floating point, non-empty, finite, with
    ``channels`` channels when given (an all-zero latent is accepted: ComfyUI widens empty latents), at least
    ``MIN_LATENT_SIDE`` wide and high; a ``batch_index`` with one entry per sample; a finite ``noise_mask`` of 2
    to 4 dimensions. Returns the latent, a new dict with a float32 ``noise_mask`` where the given one was boolean
    or integer."""
    if not isinstance(latent, dict) or "samples" not in latent:
        raise BlendspaceInputError(f"{name}: expected a LATENT (a dict with 'samples'), got {type(latent).__name__}: "
                                   "connect a latent, e.g. from VAE Encode or Empty Latent Image.")
    samples = latent["samples"]
    if isinstance(samples, torch.Tensor) and samples.dim() == 5 and not video:
        raise BlendspaceInputError(f"{name} is a 5-D (video) latent {tuple(samples.shape)}: connect an image latent "
                                   "(batch, channels, height, width), e.g. from VAE Encode or Empty Latent Image.")
    samples = tensor_of_rank(samples, f"{name}", (4, 5) if video else (4,), "(batch, channels, height, width) latent")
    if min(samples.shape[-2:]) < MIN_LATENT_SIDE:
        raise BlendspaceInputError(f"{name} is {samples.shape[-1]}x{samples.shape[-2]} (latent pixels): expected at least "
                                   f"{MIN_LATENT_SIDE}x{MIN_LATENT_SIDE} (16x16 image pixels, the smallest Empty Latent "
                                   "Image); connect a larger latent.")
    if not samples.is_floating_point():
        raise BlendspaceInputError(f"{name}'s samples are {samples.dtype}: a latent holds floating-point values; "
                                   "connect a latent from VAE Encode or Empty Latent Image.")
    if channels is not None and samples.shape[1] != channels and bool(samples.any()):
        raise BlendspaceInputError(
            f"{name} has {samples.shape[1]} channels but {family} works on {channels}-channel latents: connect a "
            f"latent made by this model's VAE (VAE Encode) or an Empty Latent Image, not one of another model family.")
    if latent.get("batch_index") is not None:
        _check_batch_index(latent["batch_index"], int(samples.shape[0]), name)
    if latent.get("noise_mask") is not None:
        mask = tensor_of_rank(latent["noise_mask"], f"{name}'s noise_mask", (2, 3, 4), "(batch, height, width) mask")
        if not mask.is_floating_point():
            latent = {**latent, "noise_mask": _as_float(mask, f"{name}'s noise_mask", "mask")}
    return latent


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
        if not tokens.is_floating_point():
            raise BlendspaceInputError(f"{where}'s tokens are {tokens.dtype}: a CONDITIONING holds floating-point "
                                       "token embeddings; connect a CLIP Text Encode output.")
        for key, value in entry[1].items():
            if isinstance(value, torch.Tensor):
                finite_tensor(value, f"{where}'s {key}")
        pooled = entry[1].get("pooled_output")
        if pooled is not None and (not isinstance(pooled, torch.Tensor) or pooled.dim() != 2 or pooled.numel() == 0):
            shown = tuple(pooled.shape) if isinstance(pooled, torch.Tensor) else type(pooled).__name__
            raise BlendspaceInputError(f"{where}'s pooled_output is {shown}: expected a (batch, width) tensor, as "
                                       "CLIP Text Encode makes it.")
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


def pooled_fits(cond, name: str, width: int, family: str = "the model") -> None:
    """Every pooled vector of a (checked) conditioning is ``width`` wide, the width the model reads."""
    for i, entry in enumerate(cond):
        pooled = entry[1].get("pooled_output")
        if isinstance(pooled, torch.Tensor) and pooled.shape[-1] != width:
            where = name if len(cond) == 1 else f"{name} (entry {i})"
            raise BlendspaceInputError(
                f"{where}'s pooled_output is {pooled.shape[-1]} wide but {family} reads a {width}-wide pooled "
                "vector: encode the prompt with this model's text encoders (the CLIP loaded for it).")


IMAGE_SLACK = 0.5
"""How far an IMAGE's float pixels may stray outside [0, 1] (rounding and sharpening overshoot) before the
image is refused as holding another range (0-255, or -1 to 1)."""


def _as_float(x: torch.Tensor, name: str, what: str) -> torch.Tensor:
    """``x`` as float32 (a new tensor unless it already is): booleans as 0 and 1; integer values, 8-bit pixels
    from 0 to 255, scaled to 0-1 (other integer values are refused); fp16, bf16 and float64 converted, so that
    every resize and model downstream runs in float32."""
    if x.is_complex():
        raise BlendspaceInputError(f"{name} is a complex tensor: expected a real-valued {what}.")
    if x.dtype == torch.bool:
        return x.float()
    if not x.is_floating_point():
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi > 255:
            raise BlendspaceInputError(f"{name} is a {str(x.dtype).removeprefix('torch.')} tensor with values from {lo} "
                                       f"to {hi}: an integer {what} must hold 8-bit values 0 to 255 (they are scaled "
                                       "to 0-1); convert it to floats from 0 to 1.")
        return x.float() / 255.0
    return x if x.dtype == torch.float32 else x.float()


def check_image(image, name: str) -> torch.Tensor:
    """An IMAGE ``(batch, height, width, channels)``, non-empty and finite, as float32 RGB with pixels in [0, 1]
    (up to ``IMAGE_SLACK`` outside): an 8-bit (integer) image is scaled from 0-255 to 0-1, fp16/bf16/float64
    become float32, an RGBA image loses its alpha channel, a gray (1-channel) image is repeated to RGB; other
    channel counts, and float pixels in another range, are refused. Never in place."""
    image = tensor_of_rank(image, name, (4,), "(batch, height, width, channels) IMAGE")
    c = int(image.shape[-1])
    if c not in (1, IMAGE_CHANNELS, 4):
        raise BlendspaceInputError(f"{name} has {c} channels {tuple(image.shape)}: connect an RGB image (batch, height, "
                                   "width, channels); gray and RGBA are converted, e.g. from Load Image.")
    image = _as_float(image, name, "IMAGE")
    lo, hi = float(image.min()), float(image.max())
    if lo < -IMAGE_SLACK or hi > 1.0 + IMAGE_SLACK:
        hint = "divide it by 255" if lo >= -IMAGE_SLACK else "map it with (x + 1) / 2" if lo >= -1.0 - IMAGE_SLACK \
            else "rescale it"
        raise BlendspaceInputError(f"{name} has pixel values from {lo:.4g} to {hi:.4g}, but an IMAGE holds 0 to 1: "
                                   f"{hint} (or check the node that made it).")
    if c == 4:
        return image[..., :3].contiguous()
    if c == 1:
        return image.repeat(1, 1, 1, 3)
    return image


def check_mask(mask, name: str) -> torch.Tensor:
    """A MASK ``(height, width)`` or ``(batch, height, width)``, non-empty and finite, as float32 (boolean and
    8-bit integer masks converted as images are)."""
    mask = tensor_of_rank(mask, name, (2, 3), "(batch, height, width) MASK")
    return _as_float(mask, name, "MASK")
