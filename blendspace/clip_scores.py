"""Measuring a mix (dual-style-image-gen's evaluation; docs/techniques.md, "Evaluation and CLIP scores"): CLIP similarities
per image and per region, directional CLIP, and the seam's total variation.

- CLIP score: ``cos(f(a), f(b))`` of two CLIP embeddings (image-image here; dual-style-image-gen used image-text).
- directional CLIP: ``cos(norm(f_result - f_source), norm(f_to - f_from))``, the change the edit made
  against the change asked for (dual-style-image-gen: from the encoder text to the decoder text).
- left / right (or top / bottom) variants: the same scores on each half of the image.
- seam smoothness: total variation of the central vertical strip, columns
  ``[int(W/2 - 0.1W), int(W/2 + 0.1W))``: ``Σ sqrt(Δx² + 1e-6) + Σ sqrt(Δy² + 1e-6)`` over channels.

"CLIPEnergy" is named in dual-style-image-gen's run command but never computed there, so it is not offered.
Pure torch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SPLITS = ("whole", "left/right", "top/bottom")


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine similarity of (N, D) embeddings (b may be one row)."""
    return F.cosine_similarity(a.float(), b.float().expand_as(a), dim=-1)


def directional(result: torch.Tensor, source: torch.Tensor, frm: torch.Tensor, to: torch.Tensor) -> torch.Tensor:
    return cosine(F.normalize(result.float() - source.float(), dim=-1), F.normalize(to.float() - frm.float(), dim=-1))


def halves(images: torch.Tensor, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(first, second) halves of an IMAGE batch (B, H, W, C): left/right or top/bottom."""
    if split == "left/right":
        w = images.shape[2]
        return images[:, :, : w // 2], images[:, :, w - w // 2:]
    if split == "top/bottom":
        h = images.shape[1]
        return images[:, : h // 2], images[:, h - h // 2:]
    raise ValueError(f"split must be 'left/right' or 'top/bottom', got {split!r}")


def centre_strip_tv(images: torch.Tensor) -> torch.Tensor:
    """dual-style-image-gen's seam smoothness per image of an IMAGE batch (B, H, W, C) in [0, 1]."""
    w = images.shape[2]
    lo, hi = int(w / 2 - 0.1 * w), int(w / 2 + 0.1 * w)
    strip = images[:, :, lo:hi].float()
    dx = strip[:, :, 1:] - strip[:, :, :-1]
    dy = strip[:, 1:] - strip[:, :-1]
    return torch.sqrt(dx ** 2 + 1e-6).flatten(1).sum(1) + torch.sqrt(dy ** 2 + 1e-6).flatten(1).sum(1)
