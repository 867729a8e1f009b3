"""The spatial blend masks of dual-style-image-gen, "Seamless Dual-Style Image Generation"
(docs/techniques.md, "Dual-style blending").

A mask here is the WEIGHT OF STYLE A at every position (1 = all A, 0 = all B). With ``x`` the
normalised coordinate along the blend direction (0 on A's side, 1 on B's side, sampled as
``linspace(0, 1, n)`` over the n columns or rows of the map), centre ``c``:

- ``sigmoid`` (the source's ``gaussian`` fusion mode, a logistic):  m_A = sigmoid(k·(c - x));
  the source uses k = 20 for the epsilon blend over the LATENT width and k = 30 for the
  cross-attention blend over EACH attention map's width, both with c = 0.5. With c = 0.5 this is
  exactly the source's ``sigmoid(20·(u - 0.5))``, u = linspace(1, 0, W) (eps), and
  ``1 - sigmoid(30·(col - 0.5))``, col = linspace(0, 1, w) (cross-attention).
- ``linear`` (the source's ``linear`` mode): m_A = clamp((c - x)/w + 1/2, 0, 1) with ramp width w;
  c = 0.5, w = 1 is the source's full-width ``linspace(1, 0, W)``.

The source blends left (A) to right (B) only and assumes square maps; here the direction can be any
of the four and height and width are handled separately. Pure torch, no ComfyUI import.
"""

from __future__ import annotations

import torch

from .errors import BlendspaceInputError

DIRECTIONS = ("left-right", "right-left", "top-bottom", "bottom-top")
SHAPES = ("sigmoid", "linear")
EPS_SHARPNESS = 20.0
"""Sigmoid sharpness of the source's epsilon blend (branch ``epsilon_interpolation``)."""
CROSS_ATTN_SHARPNESS = 30.0
"""Sigmoid sharpness of the source's cross-attention blend (final commit of its branch)."""


def blend_profile(n: int, shape: str = "sigmoid", center: float = 0.5, sharpness: float = EPS_SHARPNESS,
                  ramp_width: float = 1.0, device=None) -> torch.Tensor:
    """Weight of A at ``n`` evenly spaced positions from A's side (index 0) to B's side."""
    if n < 1:
        raise BlendspaceInputError(f"a blend mask needs at least one column, got {n}")
    x = torch.linspace(0.0, 1.0, n, dtype=torch.float32, device=device)
    if shape == "sigmoid":
        return torch.sigmoid(sharpness * (center - x))
    if shape == "linear":
        if ramp_width <= 0:
            raise BlendspaceInputError(f"transition width must be positive for the linear shape, got {ramp_width}")
        return ((center - x) / ramp_width + 0.5).clamp(0.0, 1.0)
    raise BlendspaceInputError(f"shape must be one of {SHAPES}, got {shape!r}")


def style_mask(height: int, width: int, direction: str = "left-right", shape: str = "sigmoid", center: float = 0.5,
               sharpness: float = EPS_SHARPNESS, ramp_width: float = 1.0, device=None) -> torch.Tensor:
    """``(height, width)`` weight of style A: 1 on A's side, 0 on B's side, constant across the other axis."""
    if direction not in DIRECTIONS:
        raise BlendspaceInputError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    horizontal = direction in ("left-right", "right-left")
    n = width if horizontal else height
    profile = blend_profile(n, shape, center, sharpness, ramp_width, device)
    if direction in ("right-left", "bottom-top"):
        profile = profile.flip(0)
    if horizontal:
        return profile.view(1, width).expand(height, width).contiguous()
    return profile.view(height, 1).expand(height, width).contiguous()


def resize_mask(mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear resize of a ``(H, W)`` or ``(B, H, W)`` mask to ``(…, height, width)``; identity when
    the size already matches (as ComfyUI's own cond-mask resize)."""
    squeeze = mask.dim() == 2
    m = mask.unsqueeze(0) if squeeze else mask
    if tuple(m.shape[-2:]) != (height, width):
        m = torch.nn.functional.interpolate(m.unsqueeze(1).float(), size=(height, width), mode="bilinear",
                                            align_corners=False).squeeze(1)
    return m[0] if squeeze else m
