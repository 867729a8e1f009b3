"""The reference dial: one weight between two reference images of a multi-reference edit model (Flux Kontext,
Qwen-Image-Edit), see docs/techniques.md, "Reference mixing on edit models".

Edit models append each reference image's latent tokens to the image tokens; every attention of the model then
reads them as keys. The dial keeps both references and gives each one's key block a per-key attention bias:

    m_a = min(1, 2·(1 − w))·s_a        m_b = min(1, 2·w)·s_b        bias = log m on that block's keys

A bias log m on a block of keys multiplies its share of every softmax by m before renormalising: the block is
read as if its tokens were there m times (m = 0: not at all). w = 0 gives (s_a, 0), w = ½ gives (s_a, s_b) and
w = 1 gives (0, s_b); with both strengths 1 these are "A alone", "both, as core samples them" and "B alone".
A multiplier of 0 is never applied as −inf: the reference is left out of the conditioning, which is what core
samples without it, bit for bit.

Positions: a reference's position ids depend on the references before it (Flux's ``offset`` and ``uxo`` layouts
accumulate, ``index`` counts; Qwen-Image's likewise). When A fades out, the references after it move, in
proportion, from their place beside A to the place they have without it: with presences p = min(1, m),

    ids_r = Σ_S  Π_{x∈S} p_x · Π_{x∉S} (1 − p_x) · layout(S)_r   /   (same sum of weights)

over the sets S of the two dialled references that are kept (only sets holding r when r is one of them);
layout(S) is the model's own rule applied to the references without those left out. RoPE takes fractional
positions, so the move is continuous and the ends equal core's layouts exactly.

A second mode mixes the two reference latents themselves (slerp, B resized to A's size) into one reference in
A's place; its strength is the lerp of the two strengths.

Pure torch and Python; the runtime (``nodes/runtime/reference_mix.py``) applies it through ComfyUI's hooks.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from .errors import BlendspaceInputError
from .slerp import slerp

MODES = ("attention dial", "latent slerp")
"""How the two references mix: per-key attention biases on both references' tokens (default), or one
reference made by slerping the two latents."""

FLUX_METHODS = ("offset", "index", "uxo")
"""Flux's reference layouts (``reference_latents_method``; core's "uxo/uno" label is stored as "uxo")."""


def dial_factors(weight: float) -> tuple[float, float]:
    """The dial's share of each reference at weight w: ``(min(1, 2(1 − w)), min(1, 2w))``; (1, 0) at w = 0, (1, 1)
    at w = ½, (0, 1) at w = 1, each piece linear."""
    w = float(weight)
    if not 0.0 <= w <= 1.0:
        raise BlendspaceInputError(f"weight is {w}: enter a weight between 0 (reference A) and 1 (reference B).")
    return min(1.0, 2.0 * (1.0 - w)), min(1.0, 2.0 * w)


def reference_multipliers(weight: float, strength_a: float, strength_b: float) -> tuple[float, float]:
    """The key multipliers ``(m_a, m_b)`` of the two references: the dial's shares times the strengths."""
    fa, fb = dial_factors(weight)
    for name, s in (("strength_a", strength_a), ("strength_b", strength_b)):
        if not (math.isfinite(float(s)) and float(s) >= 0.0):
            raise BlendspaceInputError(f"{name} is {s}: enter a strength of 0 (absent) or more (1 = as the dial "
                                       "alone gives).")
    return fa * float(strength_a), fb * float(strength_b)


def slerp_multiplier(weight: float, strength_a: float, strength_b: float) -> float:
    """The key multiplier of the slerped reference: ``(1 − w)·s_a + w·s_b``."""
    w = float(weight)
    return (1.0 - w) * float(strength_a) + w * float(strength_b)


def log_multiplier(m: float) -> float:
    """The per-key bias ``log m`` of a multiplier (``-inf`` for 0)."""
    return math.log(m) if m > 0 else -math.inf


def presence(m: float) -> float:
    """How present a reference is for the position rule: ``min(1, m)`` (a boost beyond 1 moves nothing)."""
    return min(1.0, max(0.0, float(m)))


# ----------------------------------------------------------------------------------------------- positions

Placement = tuple[int, int, int]
"""(index, row offset, column offset) of one reference, the offsets in latent pixels, as the model computes."""


def flux_placements(shapes: Sequence[tuple[int, int]], method: str, image_hw: tuple[int, int],
                    patch: int = 2) -> list[Placement]:
    """Flux's rule (``comfy/ldm/flux/model.py``, ``_forward``) for references of latent sizes ``shapes`` behind an
    image of ``image_hw`` tokens: ``index`` counts 1, 2, ...; ``uxo`` puts them at index 0 below-right of the
    image, each after the previous; ``offset`` (also any other value) at index 1, each beside the previous ones
    along the axis that keeps the running extent smaller."""
    out, h, w, index = [], 0, 0, 0
    for rh, rw in shapes:
        if method == "index":
            index += 1
            out.append((index, 0, 0))
        elif method == "uxo":
            out.append((0, image_hw[0] * patch + h, image_hw[1] * patch + w))
            h, w = h + rh, w + rw
        else:
            out.append(_offset_step(rh, rw, h, w))
            h, w = max(h, rh + out[-1][1]), max(w, rw + out[-1][2])
    return out


def qwen_placements(shapes: Sequence[tuple[int, int]], method: str, image_hw: tuple[int, int],
                    patch: int = 2) -> list[Placement]:
    """Qwen-Image's rule (``comfy/ldm/qwen_image/model.py``): ``index`` (the default) counts 1, 2, ...; any other
    value gives Flux's ``offset`` layout."""
    if method == "index":
        return [(i + 1, 0, 0) for i in range(len(shapes))]
    return flux_placements(shapes, "offset", image_hw, patch)


def _offset_step(rh: int, rw: int, h: int, w: int) -> Placement:
    if rh + h > rw + w:
        return (1, 0, w)
    return (1, h, 0)


def tokens_of(shape_hw: tuple[int, int], patch: int = 2) -> tuple[int, int]:
    """Token rows and columns of a latent of ``shape_hw`` (padded to whole patches, as the models do)."""
    return (shape_hw[0] + patch // 2) // patch, (shape_hw[1] + patch // 2) // patch


def token_ids(shape_hw: tuple[int, int], placement: Placement, patch: int = 2, centred: bool = False) -> torch.Tensor:
    """The ``(tokens, 3)`` float32 position ids ``(index, row, column)`` of one latent at ``placement``, row-major
    as the models patchify; ``centred`` (Qwen-Image) subtracts half the latent's own token rows and columns."""
    rows, cols = tokens_of(shape_hw, patch)
    index, h_off, w_off = placement
    h_off, w_off = (h_off + patch // 2) // patch, (w_off + patch // 2) // patch
    r = torch.arange(rows, dtype=torch.float32) + h_off - (rows // 2 if centred else 0)
    c = torch.arange(cols, dtype=torch.float32) + w_off - (cols // 2 if centred else 0)
    ids = torch.zeros(rows, cols, 3)
    ids[..., 0] = float(index)
    ids[..., 1] = r.unsqueeze(1)
    ids[..., 2] = c.unsqueeze(0)
    return ids.reshape(-1, 3)


Layout = Callable[[Sequence[tuple[int, int]]], list[Placement]]


def blended_reference_ids(shapes: Sequence[tuple[int, int]], layout: Layout, presences: dict[int, float],
                          patch: int = 2, centred: bool = False) -> list[torch.Tensor]:
    """Position ids of every reference (``shapes`` in order) when the references ``presences`` names are only
    partly there: the presence-weighted mean of the ids each reference has in the layouts with and without them
    (module docstring). Presences of 1 give ``layout(shapes)`` exactly."""
    dialled = sorted(presences)
    acc = [torch.zeros(tokens_of(s, patch)[0] * tokens_of(s, patch)[1], 3, dtype=torch.float64) for s in shapes]
    total = [0.0] * len(shapes)
    for kept in itertools.product((True, False), repeat=len(dialled)):
        weight = math.prod(presences[i] if keep else 1.0 - presences[i] for i, keep in zip(dialled, kept, strict=True))
        if weight == 0.0:
            continue
        dropped = {i for i, keep in zip(dialled, kept, strict=True) if not keep}
        order = [i for i in range(len(shapes)) if i not in dropped]
        for i, place in zip(order, layout([shapes[i] for i in order]), strict=True):
            acc[i] += weight * token_ids(shapes[i], place, patch, centred).double()
            total[i] += weight
    return [(a / t).float() if t > 0 else token_ids(s, p, patch, centred)
            for a, t, s, p in zip(acc, total, shapes, layout(shapes), strict=True)]


# ----------------------------------------------------------------------------------------------- prompts

PROMPTS = ("a_only", "both", "b_only")
"""The encodings of one Qwen-Image-Edit prompt: with only image A, with both (the conditioning itself), with only B."""


def prompt_weights(p_a: float, p_b: float, has_a_only: bool, has_b_only: bool) -> dict[str, float]:
    """Key weights of the prompt encodings (they sum to 1): the bilinear weights of the corners A only, both and
    B only at the presences relative to the larger one, ``q = p / max(p_a, p_b)`` (one of them is 1, so the
    corner "neither", which has no encoding, never counts; both absent gives the prompt as given). A tamed
    reference keeps its picture in the text as long as it is the stronger one. A missing encoding counts as
    "both", the prompt as given."""
    top = max(p_a, p_b)
    if top <= 0.0:
        return {"a_only": 0.0, "both": 1.0, "b_only": 0.0}
    q_a, q_b = p_a / top, p_b / top
    a_only = q_a * (1.0 - q_b) if has_a_only else 0.0
    b_only = (1.0 - q_a) * q_b if has_b_only else 0.0
    return {"a_only": a_only, "both": 1.0 - a_only - b_only, "b_only": b_only}


def slerp_prompt_weights(weight: float, has_a_only: bool, has_b_only: bool) -> dict[str, float]:
    """The latent-slerp mode's prompt weights: A-only ``1 − w`` and B-only ``w`` when both encodings are given,
    else the prompt as given."""
    if has_a_only and has_b_only:
        return {"a_only": 1.0 - float(weight), "both": 0.0, "b_only": float(weight)}
    return {"a_only": 0.0, "both": 1.0, "b_only": 0.0}


# ----------------------------------------------------------------------------------------------- biases and slerp

def key_bias(length: int, blocks: Sequence[tuple[int, int, float]]) -> torch.Tensor:
    """A float32 ``(length,)`` per-key bias: 0 everywhere but ``bias`` on each ``(start, count, bias)`` block."""
    out = torch.zeros(length)
    for start, count, bias in blocks:
        if bias != 0.0:
            out[start:start + count] = bias
    return out


def slerp_references(a: torch.Tensor, b: torch.Tensor, weight: float) -> torch.Tensor:
    """One reference latent between ``a`` and ``b``: slerp per sample (``blendspace.slerp``), ``b`` resized
    (bilinear, antialiased) to ``a``'s size first when they differ. 0 gives ``a``, 1 gives ``b`` resized."""
    if b.shape[-2:] != a.shape[-2:]:
        planes = F.interpolate(b.reshape(1, -1, *b.shape[-2:]).float(), size=tuple(a.shape[-2:]), mode="bilinear",
                               antialias=True, align_corners=False)
        b = planes.reshape(*b.shape[:-2], *a.shape[-2:]).to(b.dtype)
    if b.shape[0] != a.shape[0]:
        b = b.expand(a.shape[0], *b.shape[1:]) if b.shape[0] == 1 else b[: a.shape[0]]
    return slerp(a, b, float(weight), per="sample")
