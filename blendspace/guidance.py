"""Classifier-free guidance at any scale, zero and negative included (StableFused;
docs/techniques.md, "StableFused: any-scale guidance, latent walks, denoising replay").

    ε = ε_u + s·(ε_c - ε_u)                        (s = 0: the unconditional / negative prediction;
                                                     s < 0: pushed away from the prompt)
    optional guidance rescale φ (Lin et al., arXiv 2305.08891, Sec. 3.4; StableFused's default φ = 0.7):
    ε ← (1 - φ)·ε + φ·ε·std(ε_c)/std(ε)            (std over every axis but the batch)

StableFused applies the rescale everywhere, also for s ≤ 0. Pure torch.
"""

from __future__ import annotations

import torch


def guided_epsilon(eps_cond: torch.Tensor, eps_uncond: torch.Tensor, scale: float, rescale: float = 0.0) -> torch.Tensor:
    eps = eps_uncond + scale * (eps_cond - eps_uncond)
    if rescale > 0:
        dims = tuple(range(1, eps.dim()))
        std_c = eps_cond.std(dim=dims, keepdim=True)
        std = eps.std(dim=dims, keepdim=True).clamp_min(1e-12)
        eps = (1.0 - rescale) * eps + rescale * eps * (std_c / std)
    return eps
