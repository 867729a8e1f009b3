"""Dual-style cross-attention interpolation of dual-style-image-gen (docs/techniques.md, "Dual-style blending").

In every text cross-attention layer (attn2) the source computes the attention output once with
prompt A's keys/values and once with prompt B's (shared q, k, v projections) and blends the two
OUTPUTS per query position, before ``to_out``:

    out = (1 - m)·softmax(q·K_Aᵀ/√d)·V_A + m·softmax(q·K_Bᵀ/√d)·V_B

with m the weight of B at each position of that layer's attention map (source: ``sigmoid(30·(x -
0.5))`` over the map's normalised column, recomputed at every resolution; see ``dual_style_mask``),
for the conditional pass only (the unconditional pass and self-attention are untouched), at every
step. Here ``out = out_A + strength·m·(out_B - out_A)`` (the source's strength is 1), optionally only
on chosen blocks and within a step window.

Mechanics in ComfyUI (docs/techniques.md, "ComfyUI mechanics the pack relies on"): an ``attn2_patch``
appends B's context after the current context along the token axis for the positive chunks (it pads
the others) and records the split in the per-block ``extra_options``; an ``attn2_replace`` on each
cross-attention block splits k and v there, runs A's attention for every chunk and B's for the
positive chunks only, and blends.
A replace patch already registered on a block (e.g. by an IP-Adapter) is wrapped, not overwritten:
it is called for the A half and for the B half, so an additive contribution it makes survives the
blend unchanged (``(1-m)(a+c) + m(b+c) = (1-m)a + mb + c``).

This module holds the math and the patch objects; the attention kernel is injected by the node, so
nothing here imports ComfyUI.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from .errors import BlendspaceInputError

SPLIT_KEY = "blendspace_xattn_split"
Attention = Callable[..., torch.Tensor]


def attention_map_size(latent_h: int, latent_w: int, tokens: int) -> tuple[int, int]:
    """(h, w) of a U-Net attention map with ``tokens`` positions for a latent of ``latent_h×latent_w``
    (each down-sampling halves the size, rounding up)."""
    h, w = latent_h, latent_w
    for _ in range(12):
        if h * w == tokens:
            return h, w
        h, w = math.ceil(h / 2), math.ceil(w / 2)
    raise BlendspaceInputError(f"cannot place {tokens} attention tokens on a {latent_w}x{latent_h} latent")


def positive_rows(cond_or_uncond: Sequence[int], batch: int) -> list[int]:
    """Batch rows that belong to positive chunks (cond-list index 0)."""
    per = batch // max(len(cond_or_uncond), 1)
    return [i * per + j for i, kind in enumerate(cond_or_uncond) if kind == 0 for j in range(per)]


class CrossAttnInterpolation:
    """The two patch functions of one CrossAttnInterpolate node.

    ``context_b``: prompt B's cross-attention context ``(1 or B, T_b, C)``. ``mask_a_at(h, w, device)``:
    weight of A on an ``h×w`` map. ``active(sigma, block)``: whether to blend at this step and block.
    ``attention(q, k, v, heads)``: the attention kernel (ComfyUI's ``optimized_attention``).
    """

    def __init__(self, context_b: torch.Tensor, mask_a_at: Callable[[int, int, torch.device], torch.Tensor],
                 strength: float, active: Callable[[torch.Tensor | None, tuple | None], bool], attention: Attention):
        self.context_b = context_b
        self.mask_a_at = mask_a_at
        self.strength = float(strength)
        self.active = active
        self.attention = attention
        self._mask_cache: dict = {}

    # -- attn2_patch: runs before to_k / to_v of every cross-attention layer
    def attn2_patch(self, n: torch.Tensor, context: torch.Tensor, value: torch.Tensor, extra_options: dict):
        extra_options[SPLIT_KEY] = None
        cu = extra_options.get("cond_or_uncond") or [0]
        if 0 not in cu or not self.active(extra_options.get("sigmas"), extra_options.get("block")):
            return n, context, value
        per = context.shape[0] // len(cu)
        b = self.context_b.to(device=context.device, dtype=context.dtype)
        if b.shape[0] != per:
            if b.shape[0] != 1:
                raise BlendspaceInputError(f"conditioning_b (prompt B) has a batch of {b.shape[0]} but the sampler "
                                           f"runs {per} images; encode prompt B once (batch 1).")
            b = b.expand(per, -1, -1)
        pad = torch.zeros_like(b)
        tail = torch.cat([b if kind == 0 else pad for kind in cu], dim=0)
        extra_options[SPLIT_KEY] = context.shape[1]
        context = torch.cat([context, tail], dim=1)
        value = context if value is None else torch.cat([value, tail], dim=1)
        return n, context, value

    def mask_b(self, tokens: int, extra_options: dict, device) -> torch.Tensor:
        shape = extra_options.get("original_shape")
        h, w = attention_map_size(int(shape[-2]), int(shape[-1]), tokens)
        key = (h, w, str(device))
        if key not in self._mask_cache:
            self._mask_cache[key] = (1.0 - self.mask_a_at(h, w, device)).reshape(1, h * w, 1)
        return self._mask_cache[key]

    # -- attn2_replace: runs instead of the attention kernel, after to_q / to_k / to_v
    def make_replace(self, previous: Callable | None = None) -> Callable:
        def attend(q, k, v, extra_options):
            if previous is not None:
                return previous(q, k, v, extra_options)
            return self.attention(q, k, v, extra_options["n_heads"])

        def replace(q, k, v, extra_options):
            split = extra_options.get(SPLIT_KEY)
            if split is None:
                return attend(q, k, v, extra_options)
            out = attend(q, k[:, :split], v[:, :split], extra_options)
            cu = extra_options.get("cond_or_uncond") or [0]
            idx = torch.tensor(positive_rows(cu, q.shape[0]), device=q.device)
            sub_options = dict(extra_options, cond_or_uncond=[0] * cu.count(0))
            out_b = attend(q[idx], k[idx, split:], v[idx, split:], sub_options)
            m = self.mask_b(q.shape[1], extra_options, q.device).to(out.dtype)
            out = out.clone()
            out[idx] = out[idx] + (self.strength * m) * (out_b - out[idx])
            return out

        replace.blendspace_previous = previous
        return replace
