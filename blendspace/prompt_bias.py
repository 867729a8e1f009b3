"""Prompt mixing by attention weight: Slerp Conditioning's "attention weight" mode
(docs/techniques.md, "Two prompts in joint attention").

Mixing two prompts token by token (slerp, lerp, core Conditioning Average) pairs token i of A with token i of
B. That is meaningful for CLIP prompts of one fixed length; on the T5 and LLM encoders of the joint-attention
models (Flux, Chroma, SD3, HiDream, Qwen-Image, Lumina 2) prompts have their own lengths and token i of one has
nothing to do with token i of the other. Here nothing is paired: the two prompts are concatenated, each one's
text attends to itself and the image only, and the image's attention gets the per-key bias

    log(1 − t) on A's tokens,   log t on B's tokens        (t = 0: A, t = 1: B)

so an image query spreads ``(1 − t)`` of what it gives A alone and ``t`` of what it gives B alone over the two
prompts (``blendspace/joint_attention.py``, :func:`prompt_bias_attention`).

How the bias reaches the model. Flux and Chroma read an additive attention bias from the conditioning
(``attention_mask``, made for ``[text, image]`` with the image as an ``attention_mask_img_shape`` grid that
the model stretches over its own token grid; core's Apply Style Model writes it for Redux). This module writes
that dense bias (text rows kept apart with ``-inf``, image rows with the two log weights), so on Flux and Chroma
the mixed conditioning works alone. The other families read no bias from the conditioning; there the
conditioning carries :data:`MARKER` (the split and ``t``) and the model patch "Prompt Mix Attention Patch"
applies the same weights through the attention override. A conditioning that carries reference latents (Flux
Kontext) gets no dense bias (core's bias does not cover reference tokens): it needs the patch too.

Ends: ``t = 0`` returns A's entries unchanged, ``t = 1`` B's tokens with B's text keys (its token mask, its
Llama states, its own bias) and every other key of A; pooled outputs are mixed as the mode's other settings
say, guidance values linearly. Pure torch.
"""

from __future__ import annotations

import torch

from .conditioning import check_conditioning, match_batch, width_hint
from .errors import BlendspaceInputError

MARKER = "blendspace_prompt_mix"
"""Conditioning key of a mixed prompt: ``{"t", "tokens": (La, Lb), "llama": (La, Lb) or None, "dense_bias"}``."""
TEXT_KEYS = ("attention_mask", "attention_mask_img_shape", "conditioning_llama3")
"""Keys of a conditioning entry that belong to its text (taken from B at t = 1, rebuilt when mixing)."""


def is_token_mask(mask) -> bool:
    """A ``(batch, tokens)`` token mask (Lumina 2, OmniGen2), not a ``(batch, q, k)`` attention bias."""
    return torch.is_tensor(mask) and mask.dim() == 2


def real_tokens(tokens: torch.Tensor, extra: dict) -> tuple[torch.Tensor, int]:
    """``tokens`` without the trailing padding a token mask marks, and their count."""
    mask = extra.get("attention_mask")
    if not is_token_mask(mask):
        return tokens, tokens.shape[1]
    counts = {int(c) for c in mask.sum(dim=1).tolist()}
    if len(counts) != 1:
        raise BlendspaceInputError("the prompts of a batch have different token counts: encode one prompt per "
                                   "conditioning to mix by attention weight.")
    n = max(1, counts.pop())
    return tokens[:, :n], n


def dense_prompt_bias(a_extra: dict, b_extra: dict, la: int, lb: int, batch: int, t: float) -> tuple:
    """The ``(attention_mask, attention_mask_img_shape)`` pair Flux and Chroma read, for ``[A, B, image]``: each
    prompt's own bias (from Apply Style Model) kept, text rows of one prompt at ``-inf`` on the other's keys,
    image rows ``+ log(1 − t)`` on A's keys and ``+ log t`` on B's."""
    shape_a, shape_b = a_extra.get("attention_mask_img_shape"), b_extra.get("attention_mask_img_shape")
    if shape_a is not None and shape_b is not None and tuple(shape_a) != tuple(shape_b):
        raise BlendspaceInputError(f"conditioning_a's attention bias is for an image grid {tuple(shape_a)} and "
                                   f"conditioning_b's for {tuple(shape_b)}: apply the style models alike.")
    img_shape = tuple(shape_a or shape_b or (1, 1))
    p = img_shape[0] * img_shape[1]
    n = la + lb + p
    out = torch.zeros(batch, n, n)
    a_rows, b_rows, img = slice(0, la), slice(la, la + lb), slice(la + lb, n)
    _place(out, b_extra.get("attention_mask"), b_rows, img, lb, batch)
    _place(out, a_extra.get("attention_mask"), a_rows, img, la, batch)
    out[:, a_rows, b_rows] = float("-inf")
    out[:, b_rows, a_rows] = float("-inf")
    out[:, img, a_rows] += torch.log1p(torch.tensor(-float(t)))
    out[:, img, b_rows] += torch.log(torch.tensor(float(t)))
    return out, img_shape


def _place(out: torch.Tensor, mask, text: slice, img: slice, n_text: int, batch: int) -> None:
    """Copy one prompt's own ``[text, image]`` bias into its quadrants of ``out``."""
    if mask is None:
        return
    mask = torch.log(mask.float()) if mask.dtype == torch.bool else mask.float()
    if mask.shape[0] != batch:
        mask = mask.expand(batch, -1, -1)
    if mask.shape[-1] != n_text + (img.stop - img.start):
        raise BlendspaceInputError(f"an attention bias of shape {tuple(mask.shape)} does not fit its prompt of "
                                   f"{n_text} tokens: apply Apply Style Model after the prompt is encoded.")
    own = slice(0, n_text)
    rest = slice(n_text, mask.shape[-1])
    out[:, text, text] = mask[:, own, own]
    out[:, text, img] = mask[:, own, rest]
    out[:, img, text] = mask[:, rest, own]
    out[:, img, img] = mask[:, rest, rest]


CLIP_WIDTHS = {768: "SD1.x", 1024: "SD2.x", 2048: "SDXL"}
"""Token widths of the U-Net models' CLIP prompts, which come in chunks of 77 tokens."""


def _check_pair(a: torch.Tensor, b: torch.Tensor, a_extra: dict | None = None) -> None:
    width = a.shape[-1]
    if (width in CLIP_WIDTHS and a.shape[1] % 77 == 0 and b.shape[1] % 77 == 0
            and not is_token_mask((a_extra or {}).get("attention_mask"))):
        raise BlendspaceInputError(f"conditioning_a looks like an {CLIP_WIDTHS[width]} CLIP prompt ({width}-d tokens in "
                                   "chunks of 77): mode 'attention weight (joint attention)' is for the joint-attention "
                                   "models (Flux, Chroma, SD3, HiDream, Qwen-Image, Lumina 2). U-Net models read the "
                                   "prompt in cross-attention: use 'whole tensor (source)' or 'per token'.")
    if a.shape[-1] != b.shape[-1]:
        raise BlendspaceInputError(f"conditioning_a has {width_hint(a.shape[-1])} but conditioning_b has "
                                   f"{width_hint(b.shape[-1])}: encode both prompts with the text encoder of the "
                                   "same checkpoint.")


def _llama(a_extra: dict, b_extra: dict) -> tuple[torch.Tensor | None, tuple[int, int] | None]:
    """HiDream's Llama hidden states ``(B, layers, tokens, width)`` of both prompts, concatenated on tokens."""
    la, lb = a_extra.get("conditioning_llama3"), b_extra.get("conditioning_llama3")
    if la is None and lb is None:
        return None, None
    if la is None or lb is None or la.shape[1] != lb.shape[1] or la.shape[-1] != lb.shape[-1]:
        raise BlendspaceInputError("only one of the prompts carries HiDream's Llama states (conditioning_llama3), or "
                                   "they differ in layers: encode both prompts with the same HiDream text encoders.")
    la, lb = match_batch(la, lb.to(la.device), ("conditioning_a", "conditioning_b"))
    return torch.cat([la, lb], dim=2), (la.shape[2], lb.shape[2])


def _mixed_entry(a_tokens: torch.Tensor, a_extra: dict, b_tokens: torch.Tensor, b_extra: dict, t: float,
                 mix_pooled) -> list:
    _check_pair(a_tokens, b_tokens, a_extra)
    a_real, na = real_tokens(a_tokens, a_extra)
    b_real, nb = real_tokens(b_tokens.to(a_tokens.device), b_extra)
    a_real, b_real = match_batch(a_real, b_real, ("conditioning_a", "conditioning_b"))
    extra = {k: v for k, v in a_extra.items() if k not in TEXT_KEYS}
    tokens = torch.cat([a_real, b_real], dim=1)
    llama, llama_lengths = _llama(a_extra, b_extra)
    if llama is not None:
        extra["conditioning_llama3"] = llama
    token_masks = is_token_mask(a_extra.get("attention_mask")) or is_token_mask(b_extra.get("attention_mask"))
    dense = not token_masks and a_extra.get("reference_latents") is None
    if token_masks:
        extra["attention_mask"] = torch.ones(tokens.shape[0], na + nb, dtype=a_extra.get(
            "attention_mask", b_extra.get("attention_mask")).dtype, device=tokens.device)
    elif dense:
        bias, shape = dense_prompt_bias(a_extra, b_extra, na, nb, tokens.shape[0], t)
        extra["attention_mask"], extra["attention_mask_img_shape"] = bias.to(tokens.device), shape
    _mix_globals(extra, a_extra, b_extra, t, mix_pooled)
    extra[MARKER] = {"t": float(t), "tokens": (na, nb), "llama": llama_lengths, "dense_bias": dense}
    return [tokens, extra]


def _mix_globals(extra: dict, a_extra: dict, b_extra: dict, t: float, mix_pooled) -> None:
    """Pooled output mixed (or B's when only B has one, as core Conditioning Average), guidance lerped."""
    pa, pb = a_extra.get("pooled_output"), b_extra.get("pooled_output")
    if pa is not None and pb is not None:
        if pa.shape[-1] != pb.shape[-1]:
            raise BlendspaceInputError(f"the pooled outputs differ in width ({pa.shape[-1]} vs {pb.shape[-1]}): encode "
                                       "both prompts with the text encoders of the same checkpoint.")
        pa, pb = match_batch(pa, pb.to(pa.device), ("conditioning_a", "conditioning_b"))
        extra["pooled_output"] = mix_pooled(pa.contiguous(), pb.contiguous())
    elif pb is not None:
        extra["pooled_output"] = pb
    ga, gb = a_extra.get("guidance"), b_extra.get("guidance")
    if ga is not None and gb is not None:
        extra["guidance"] = ga if t == 0 else gb if t == 1 else (1.0 - t) * ga + t * gb


def _b_end(a_tokens: torch.Tensor, a_extra: dict, b_tokens: torch.Tensor, b_extra: dict, mix_pooled) -> list:
    """t = 1: B's tokens and text keys, B's pooled output and guidance, A's other keys."""
    _check_pair(a_tokens, b_tokens, a_extra)
    a_tokens, b_tokens = match_batch(a_tokens, b_tokens.to(a_tokens.device), ("conditioning_a", "conditioning_b"))
    extra = {k: v for k, v in a_extra.items() if k not in TEXT_KEYS}
    extra.update({k: b_extra[k] for k in TEXT_KEYS if k in b_extra})
    _mix_globals(extra, a_extra, b_extra, 1.0, mix_pooled)
    return [b_tokens.clone(), extra]


def attention_weight_mix(cond_a, cond_b, t: float, mix_pooled) -> list:
    """Every entry of ``cond_a`` mixed with the first entry of ``cond_b`` by attention weight ``t`` (module
    docstring); ``mix_pooled(a, b)`` mixes the pooled outputs. Nothing is mutated."""
    check_conditioning(cond_a, "conditioning_a")
    check_conditioning(cond_b, "conditioning_b")
    t = float(t)
    if not 0.0 <= t <= 1.0:
        raise BlendspaceInputError(f"t must be between 0 and 1, got {t}.")
    b_tokens, b_extra = cond_b[0][0], cond_b[0][1]
    if MARKER in b_extra:
        raise BlendspaceInputError("conditioning_b is already a mix by attention weight: mix two plain prompts.")
    out = []
    for a_tokens, a_extra in ((e[0], e[1]) for e in cond_a):
        if MARKER in a_extra:
            raise BlendspaceInputError("conditioning_a is already a mix by attention weight: mix two plain prompts.")
        if t == 0.0:
            _check_pair(a_tokens, b_tokens, a_extra)
            out.append([a_tokens.clone(), dict(a_extra)])
        elif t == 1.0:
            out.append(_b_end(a_tokens, a_extra, b_tokens, b_extra, mix_pooled))
        else:
            out.append(_mixed_entry(a_tokens, a_extra, b_tokens, b_extra, t, mix_pooled))
    return out
