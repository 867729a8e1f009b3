"""Dual-style epsilon blend of dual-style-image-gen (docs/techniques.md, "Dual-style blending") as plain conditioning.

The source runs one U-Net call on four chunks ``[uc, uc, c_A, c_B]`` and blends the two CFG results
with a mask m (weight of A):

    ε = m·(ε_u + s(ε_A - ε_u)) + (1 - m)·(ε_u + s(ε_B - ε_u))          (source, 4 chunks)
      = ε_u + s·(m·ε_A + (1 - m)·ε_B - ε_u)                              (both unconds are the same)

ComfyUI computes exactly the second line from ordinary conditioning: when a cond list holds entries
with masks m_i, ``calc_cond_batch`` runs every entry full-frame (one batched U-Net call together with
the uncond when their token lengths are compatible) and returns, per pixel, ``Σ m_i·x0_i / Σ m_i``
(docs/techniques.md, "ComfyUI mechanics the pack relies on"). With the two entries ``(A, m)`` and
``(B, 1 - m)`` the weights sum to 1, so the positive prediction is ``m·x0_A + (1 - m)·x0_B``. Since
every entry sees the same x and σ, ``ε = (x - x0)/σ`` is affine in x0 and blending x0 IS blending ε;
CFG then gives the line above. Cost: 3 chunks per step (A, B, uncond) in one call, against the
source's 4.

Pure list/tensor code; the node passes the result to the stock KSampler or SamplerCustom.
"""

from __future__ import annotations

import torch

from .conditioning import check_conditioning
from .errors import BlendspaceInputError


def dual_style_conditioning(cond_a: list, cond_b: list, mask_a: torch.Tensor) -> list:
    """``cond_a`` masked by ``mask_a`` plus ``cond_b`` masked by ``1 - mask_a``, as one CONDITIONING.

    ``mask_a`` is ``(H, W)`` or ``(1, H, W)`` in [0, 1], any resolution (the sampler resizes it
    bilinearly to the latent; give it at latent resolution for an exact blend). Every entry keeps
    its other keys; entries that already carry a mask are refused (the blend would not sum to 1).
    """
    check_conditioning(cond_a, "positive_a")
    check_conditioning(cond_b, "positive_b")
    m = mask_a.float()
    if m.dim() == 2:
        m = m.unsqueeze(0)
    if m.dim() != 3 or m.shape[0] != 1:
        raise BlendspaceInputError(f"the blend mask must be (H, W) or (1, H, W), got {tuple(mask_a.shape)}")
    if float(m.min()) < 0.0 or float(m.max()) > 1.0:
        raise BlendspaceInputError("the blend mask must lie in [0, 1]")
    out = []
    for cond, weight, name in ((cond_a, m, "positive_a"), (cond_b, 1.0 - m, "positive_b")):
        for tokens, extra in ((e[0], e[1]) for e in cond):
            if "mask" in extra or "area" in extra:
                raise BlendspaceInputError(f"{name} already has a mask or area (e.g. from Conditioning (Set Mask)); the two "
                                 "styles' weights would no longer sum to 1. Connect the plain text encoding.")
            new = dict(extra)
            new.update({"mask": weight, "mask_strength": 1.0, "set_area_to_bounds": False})
            out.append([tokens, new])
    return out
