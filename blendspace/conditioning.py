"""Operations on ComfyUI CONDITIONING lists that the mixing nodes share (pure torch, no ComfyUI import).

A CONDITIONING is ``[[Tensor(B, T, C), {"pooled_output": Tensor(B, P)?, ...}], ...]``. Following core
``ConditioningAverage``, a two-input operation is applied to every entry of the first list with the
FIRST entry of the second; all other keys of each first-list entry are carried, and nothing is
mutated (new lists and dicts, new tensors).

Token lengths: prompts longer than 77 tokens are encoded in chunks of 77, so conditionings of one
model differ in length by multiples of 77. Two lengths are matched by tiling each tensor to their
least common multiple, as ComfyUI's own cond batching (``CONDCrossAttn``) does. Repeating every
key/value token k times leaves cross-attention unchanged (each softmax weight is split evenly over
the k copies of its token), so the tiled conditioning means exactly the same prompt, and the result
stays a multiple of 77 so cond/uncond batching survives.
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


def match_token_lengths(a: torch.Tensor, b: torch.Tensor,
                        names: tuple[str, str] = ("conditioning_a", "conditioning_b")) -> tuple[torch.Tensor, torch.Tensor]:
    """Tile ``a`` and ``b`` (``(B, T, C)``) along tokens to ``lcm(Ta, Tb)``; error on width mismatch."""
    na, nb = names
    if a.shape[-1] != b.shape[-1]:
        raise BlendspaceInputError(
            f"{na} has {width_hint(a.shape[-1])} but {nb} has {width_hint(b.shape[-1])}: encode both prompts "
            "with the CLIP of the same checkpoint.")
    ta, tb = a.shape[1], b.shape[1]
    if ta == tb:
        return a, b
    length = math.lcm(ta, tb)
    if length > MAX_TILE_FACTOR * min(ta, tb):
        raise BlendspaceInputError(
            f"{na} has {ta} tokens and {nb} has {tb}; they can only be matched by tiling to {length} tokens. "
            "Use prompts whose token counts are multiples of 77 (plain CLIP Text Encode does this).")
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
                          names: tuple[str, str] = ("conditioning_a", "conditioning_b")) -> list:
    """Apply ``mix_tokens`` to every entry of ``cond_a`` with the first entry of ``cond_b``
    (token lengths and batches matched first) and ``mix_pooled`` to their ``pooled_output``.

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
        ta, tb = match_token_lengths(ta_tokens, tb_tokens.to(ta_tokens.device), names)
        ta, tb = match_batch(ta, tb, names)
        mixed = mix_tokens(ta.contiguous(), tb.contiguous())
        extra = dict(a_extra)
        pooled_a = a_extra.get("pooled_output", None)
        if pooled_a is not None and pooled_b is not None:
            if pooled_a.shape[-1] != pooled_b.shape[-1]:
                raise BlendspaceInputError(
                    f"the pooled outputs differ in width ({pooled_a.shape[-1]} vs {pooled_b.shape[-1]}): "
                    "encode both prompts with the CLIP of the same checkpoint.")
            pa, pb = match_batch(pooled_a, pooled_b.to(pooled_a.device), names)
            extra["pooled_output"] = mix_pooled(pa.contiguous(), pb.contiguous())
        elif pooled_b is not None:
            extra["pooled_output"] = pooled_b
        out.append([mixed, extra])
    return out
