"""Operations on ComfyUI CONDITIONING lists that the mixing nodes share (pure torch, no ComfyUI import).

A CONDITIONING is ``[[Tensor(B, T, C), {"pooled_output": Tensor(B, P)?, ...}], ...]``. Following core
``ConditioningAverage``, a two-input operation is applied to every entry of the first list with the
FIRST entry of the second; all other keys of each first-list entry are carried, and nothing is
mutated (new lists and dicts, new tensors).

Token lengths (``LENGTH_MODES``). SD1.x / SD2.x / SDXL prompts longer than 77 tokens are encoded in
chunks of 77, so their conditionings differ in length by multiples of 77. Those are matched by
**tiling** each tensor to their least common multiple, as ComfyUI's own cond batching
(``CONDCrossAttn``) does. Repeating every key/value token k times leaves cross-attention unchanged
(each softmax weight is split evenly over the k copies of its token), so the tiled conditioning
means exactly the same prompt, and the result stays a multiple of 77 so cond/uncond batching survives.

Flux and SD3 feed the prompt tokens into joint attention, where text tokens also attend to each
other and are updated block by block, so tiling changes the result. Their T5 tokenizers pad a
prompt with pad tokens up to a minimum length (Flux 256, SD3 77 after the 77 CLIP tokens) and never
beyond what the prompt needs. There the shorter tensor is **padded** with copies of its own last
token, which for a tokenizer-padded prompt is a pad token's encoding: the closest stand-in for what
the tokenizer would have produced had it padded that prompt to the longer length. Token i of one
prompt then meets token i of the other (for SD3: the 77 CLIP tokens first, then the T5 tokens), with
no block repeated. ``auto`` tiles when both lengths are multiples of 77 and the tokens are not
T5-wide (4096), and pads otherwise. At ``t = 0`` and ``t = 1`` the mixing nodes return the input's
own tokens unchanged, whatever the mode.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import torch

from .errors import BlendspaceInputError

log = logging.getLogger("blendspace")

MAX_TILE_FACTOR = 8
"""The largest repeat factor ``lcm(Ta, Tb) / min(Ta, Tb)`` accepted when matching token lengths."""

WIDTH_HINTS = {
    768: "SD1.x (CLIP-L)",
    1024: "SD2.x (OpenCLIP-H)",
    2048: "SDXL (CLIP-L + OpenCLIP-bigG)",
    1280: "SDXL refiner (OpenCLIP-bigG)",
    4096: "Flux / SD3 (T5)",
}


def width_hint(c: int) -> str:
    return f"{c}-d tokens, {WIDTH_HINTS[c]}" if c in WIDTH_HINTS else f"{c}-d tokens"


def check_conditioning(cond, name: str) -> None:
    if not isinstance(cond, (list, tuple)) or len(cond) == 0:
        raise BlendspaceInputError(f"{name} is empty or not a CONDITIONING: connect a CLIP Text Encode output.")
    for entry in cond:
        if (not isinstance(entry, (list, tuple)) or len(entry) < 2 or not isinstance(entry[0], torch.Tensor)
                or not isinstance(entry[1], dict)):
            raise BlendspaceInputError(f"{name} is not a CONDITIONING (entries must be [tensor, dict]).")
        if entry[0].dim() != 3:
            raise BlendspaceInputError(
                f"{name} holds a tensor of shape {tuple(entry[0].shape)}; expected (batch, tokens, width).")


LENGTH_MODES = ("auto", "tile (SD cross-attention)", "pad (T5 / joint attention)")
T5_WIDTH = 4096


def resolve_length_mode(mode: str, ta: int, tb: int, width: int) -> str:
    """``"tile"`` or ``"pad"`` for two token lengths (``auto``: tile CLIP chunks of 77, pad T5 / joint attention)."""
    if mode not in LENGTH_MODES:
        raise BlendspaceInputError(f"length_mismatch must be one of {LENGTH_MODES}, got {mode!r}.")
    if mode == LENGTH_MODES[0]:
        return "tile" if ta % 77 == 0 and tb % 77 == 0 and width != T5_WIDTH else "pad"
    return "tile" if mode == LENGTH_MODES[1] else "pad"


def pad_tokens(x: torch.Tensor, length: int) -> torch.Tensor:
    """``x`` (B, T, C) extended to ``length`` tokens with copies of its last token (a tokenizer's pad token)."""
    if x.shape[1] >= length:
        return x
    return torch.cat([x, x[:, -1:].expand(-1, length - x.shape[1], -1)], dim=1)


def match_token_lengths(a: torch.Tensor, b: torch.Tensor,
                        names: tuple[str, str] = ("conditioning_a", "conditioning_b"),
                        mode: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """Match ``a`` and ``b`` (``(B, T, C)``) along tokens, by tiling to ``lcm(Ta, Tb)`` or padding to
    ``max(Ta, Tb)`` (module docstring, ``mode``); error on width mismatch."""
    na, nb = names
    if a.shape[-1] != b.shape[-1]:
        raise BlendspaceInputError(
            f"{na} has {width_hint(a.shape[-1])} but {nb} has {width_hint(b.shape[-1])}: encode both prompts "
            "with the text encoder of the same checkpoint.")
    ta, tb = a.shape[1], b.shape[1]
    if ta == tb:
        return a, b
    if resolve_length_mode(mode, ta, tb, a.shape[-1]) == "pad":
        return pad_tokens(a, max(ta, tb)), pad_tokens(b, max(ta, tb))
    length = math.lcm(ta, tb)
    if length > MAX_TILE_FACTOR * min(ta, tb):
        raise BlendspaceInputError(
            f"{na} has {ta} tokens and {nb} has {tb}; tiling them would need {length} tokens. Set "
            "length_mismatch to 'pad (T5 / joint attention)', or use SD prompts of whole 77-token chunks.")
    return a.repeat(1, length // ta, 1), b.repeat(1, length // tb, 1)


def match_batch(a: torch.Tensor, b: torch.Tensor, names: tuple[str, str]) -> tuple[torch.Tensor, torch.Tensor]:
    if a.shape[0] == b.shape[0]:
        return a, b
    if b.shape[0] == 1:
        return a, b.expand(a.shape[0], *b.shape[1:])
    if a.shape[0] == 1:
        return a.expand(b.shape[0], *a.shape[1:]), b
    raise BlendspaceInputError(f"{names[0]} has a batch of {a.shape[0]} but {names[1]} has {b.shape[0]}: "
                               "use batches of the same size or a batch of 1 on one side.")


Mix = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def combine_conditionings(cond_a, cond_b, mix_tokens: Mix, mix_pooled: Mix,
                          names: tuple[str, str] = ("conditioning_a", "conditioning_b"), length_mode: str = "auto",
                          t: float | None = None) -> list:
    """Apply ``mix_tokens`` to every entry of ``cond_a`` with the first entry of ``cond_b``
    (token lengths matched by ``length_mode``, batches matched) and ``mix_pooled`` to their ``pooled_output``.
    With ``t`` 0 (or 1) the tokens are ``a``'s (or ``b``'s) own, unmatched.

    ``pooled_output``: mixed when both have one, taken from ``b`` when only ``b`` has one (as core
    ``ConditioningAverage``), kept when only ``a`` has one. Every other key of ``a`` is carried.
    """
    check_conditioning(cond_a, names[0])
    check_conditioning(cond_b, names[1])
    if len(cond_b) > 1:
        log.warning("Blendspace: %s has %d entries; only the first is used (as in core ConditioningAverage).",
                    names[1], len(cond_b))
    tb_tokens, b_extra = cond_b[0][0], cond_b[0][1]
    pooled_b = b_extra.get("pooled_output", None)
    out = []
    for ta_tokens, a_extra in ((e[0], e[1]) for e in cond_a):
        mixed = _mixed_tokens(ta_tokens, tb_tokens.to(ta_tokens.device), mix_tokens, names, length_mode, t)
        extra = dict(a_extra)
        pooled_a = a_extra.get("pooled_output", None)
        if pooled_a is not None and pooled_b is not None:
            if pooled_a.shape[-1] != pooled_b.shape[-1]:
                raise BlendspaceInputError(
                    f"the pooled outputs of {names[0]} and {names[1]} differ in width ({pooled_a.shape[-1]} vs "
                    f"{pooled_b.shape[-1]}): encode both prompts with the CLIP of the same checkpoint.")
            pa, pb = match_batch(pooled_a, pooled_b.to(pooled_a.device), names)
            extra["pooled_output"] = mix_pooled(pa.contiguous(), pb.contiguous())
        elif pooled_b is not None:
            extra["pooled_output"] = pooled_b
        out.append([mixed, extra])
    return out


def _mixed_tokens(a: torch.Tensor, b: torch.Tensor, mix: Mix, names: tuple[str, str], length_mode: str,
                  t: float | None) -> torch.Tensor:
    """The mixed tokens of one entry; the unmatched ends at ``t`` = 0 / 1."""
    if t == 0 or t == 1:
        if a.shape[-1] != b.shape[-1]:
            match_token_lengths(a, b, names, length_mode)  # the width error
        end_a, end_b = match_batch(a, b, names)
        return (end_a if t == 0 else end_b).clone()
    ta, tb = match_token_lengths(a, b, names, length_mode)
    ta, tb = match_batch(ta, tb, names)
    return mix(ta.contiguous(), tb.contiguous())
