"""Spherical linear interpolation (slerp) of latents, embeddings and conditionings.

Source: the diffusers images-mixing pipeline, "CLIP Guided Images Mixing" (TheDenk/images_mixing,
``slerp``); StableFused uses the same formula. See docs/techniques.md, "Slerp".

For two tensors ``v0``, ``v1`` and a weight ``t`` (0 gives ``v0``, 1 gives ``v1``), each tensor is
treated as ONE flat vector:

    dot = Σ v0·v1 / (‖v0‖_F · ‖v1‖_F)
    if |dot| > DOT_THRESHOLD (0.9995):   v = (1 - t)·v0 + t·v1            (nearly (anti)parallel)
    else:  θ0 = arccos(dot),  θt = t·θ0
           v = sin(θ0 - θt)/sin θ0 · v0  +  sin θt / sin θ0 · v1

No re-normalisation: magnitudes mix as the formula gives. The source computes this in the
pipeline's dtype through numpy; here it is always computed in float32 on the input's device (the
source's float16 norm can overflow to ``inf``, which silently turns the slerp into
``cos(tπ/2)·v0 + sin(tπ/2)·v1``) and returned in ``v0``'s dtype.

Defined results where the formula has none: an all-zero vector has no direction, so it falls back
to the lerp like (anti)parallel vectors do; ``t == 0`` and ``t == 1`` return the endpoints exactly.

This module imports nothing from ComfyUI.
"""

from __future__ import annotations

import math

import torch

DOT_THRESHOLD = 0.9995
"""|cos θ| above which the source falls back to a plain lerp."""


def _as_float32(v: torch.Tensor) -> torch.Tensor:
    return v.to(torch.float32) if v.dtype != torch.float32 else v


def slerp_rows(v0: torch.Tensor, v1: torch.Tensor, t: float | torch.Tensor,
               dot_threshold: float = DOT_THRESHOLD) -> torch.Tensor:
    """Slerp of matching rows: ``v0`` and ``v1`` are ``(N, D)``; each row is one vector.

    ``t`` is a float or a tensor of shape ``(N,)`` (one weight per row). Returns float32 ``(N, D)``.
    Rows that are (anti)parallel beyond ``dot_threshold`` or have zero norm are lerped.
    """
    if v0.shape != v1.shape or v0.dim() != 2:
        raise ValueError(f"slerp_rows needs two (N, D) tensors of one shape, got {tuple(v0.shape)} "
                         f"and {tuple(v1.shape)}")
    a = _as_float32(v0)
    b = _as_float32(v1).to(a.device)
    tt = torch.as_tensor(t, dtype=torch.float32, device=a.device)
    if tt.dim() == 0:
        tt = tt.expand(a.shape[0])
    tt = tt.reshape(-1, 1)

    na = torch.linalg.vector_norm(a, dim=1, keepdim=True)
    nb = torch.linalg.vector_norm(b, dim=1, keepdim=True)
    degenerate = (na == 0) | (nb == 0)
    denom = torch.where(degenerate, torch.ones_like(na), na * nb)
    dot = (a * b).sum(dim=1, keepdim=True) / denom
    dot = torch.where(degenerate, torch.ones_like(dot), dot)
    use_lerp = dot.abs() > dot_threshold

    theta0 = torch.arccos(dot.clamp(-1.0, 1.0))
    sin0 = torch.sin(theta0)
    safe_sin0 = torch.where(use_lerp, torch.ones_like(sin0), sin0)
    s0 = torch.sin(theta0 - tt * theta0) / safe_sin0
    s1 = torch.sin(tt * theta0) / safe_sin0
    slerped = s0 * a + s1 * b
    lerped = (1.0 - tt) * a + tt * b
    return torch.where(use_lerp, lerped, slerped)


def slerp(v0: torch.Tensor, v1: torch.Tensor, t: float, per: str = "sample",
          dot_threshold: float = DOT_THRESHOLD) -> torch.Tensor:
    """Slerp two tensors of one shape with weight ``t`` (0 → ``v0``, 1 → ``v1``).

    ``per`` chooses what one vector is:

    - ``"tensor"``: the whole tensor, batch included (the source's behaviour);
    - ``"sample"``: each index of the first (batch) dimension separately;
    - ``"token"``: each vector along the last dimension (per token of a ``(B, T, C)`` embedding).

    The result has ``v0``'s dtype and device. ``t`` outside [0, 1] extrapolates along the arc.
    """
    if v0.shape != v1.shape:
        raise ValueError(f"slerp needs tensors of one shape, got {tuple(v0.shape)} and {tuple(v1.shape)}")
    if not math.isfinite(float(t)):
        raise ValueError(f"slerp weight t must be finite, got {t}")
    if t == 0:
        return v0.clone()
    if t == 1:
        return v1.to(device=v0.device, dtype=v0.dtype, copy=True)
    if v0.numel() == 0:
        return v0.clone()
    if per == "tensor":
        rows = (v0.reshape(1, -1), v1.reshape(1, -1))
    elif per == "sample":
        rows = (v0.reshape(v0.shape[0], -1), v1.reshape(v1.shape[0], -1))
    elif per == "token":
        rows = (v0.reshape(-1, v0.shape[-1]), v1.reshape(-1, v1.shape[-1]))
    else:
        raise ValueError(f"per must be 'tensor', 'sample' or 'token', got {per!r}")
    out = slerp_rows(rows[0], rows[1].to(v0.device), t, dot_threshold)
    return out.reshape(v0.shape).to(v0.dtype)


def lerp(v0: torch.Tensor, v1: torch.Tensor, t: float) -> torch.Tensor:
    """Plain linear interpolation ``(1 - t)·v0 + t·v1`` in float32, returned in ``v0``'s dtype."""
    if v0.shape != v1.shape:
        raise ValueError(f"lerp needs tensors of one shape, got {tuple(v0.shape)} and {tuple(v1.shape)}")
    if t == 0:
        return v0.clone()
    if t == 1:
        return v1.to(device=v0.device, dtype=v0.dtype, copy=True)
    a = _as_float32(v0)
    b = _as_float32(v1).to(a.device)
    return ((1.0 - t) * a + t * b).to(v0.dtype)


def interpolation_weights(frames: int) -> list[float]:
    """The ``frames`` weights of a walk from 0 to 1, both ends included (stablefused's
    ``linspace(0, 1, n)``). ``frames == 1`` gives ``[0.0]``."""
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    if frames == 1:
        return [0.0]
    return [i / (frames - 1) for i in range(frames)]
