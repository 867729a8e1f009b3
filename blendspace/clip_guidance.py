"""CLIP-guided sampling toward a mixed image embedding (seed 000, SEEDS.md §1.4-§1.6, checklist items 2-3, 6).

Source (diffusers ``cond_fn``, DDIM-type schedulers), with x the DDPM latent, ᾱ = alphas_cumprod[t],
β = 1 - ᾱ and x̂0 from an extra conditional-only U-Net pass:

    s   = sqrt(β)·x̂0 + (1 - sqrt(β))·x                    (the blend it guides on, not x̂0 itself)
    img = clamp(VAE.decode(s)/2 + 1/2, 0, 1) → Resize(224) (no crop) → CLIP mean/std
    L   = scale · mean_batch( 2·arcsin(‖ê - ê*‖/2)² )      (ê, ê* unit CLIP image embeddings)
    ε  ← ε_cfg + sqrt(β)·∇_x L                             (LMS: x ← x - σ²·∇_x L, ε unchanged)

Derivation for ComfyUI's k-diffusion samplers (every sampler, every scheduler): the samplers see
``x_k = x / sqrt(ᾱ)`` at ``σ = sqrt(β/ᾱ)`` and the model returns the denoised D = x_k - σ·ε. So
``∇_x L = ∇_{x_k} L / sqrt(ᾱ)`` and the source's ε correction becomes

    D' = x_k - σ·(ε + sqrt(β)·∇_x L) = D - σ·sqrt(β)/sqrt(ᾱ)·∇_{x_k} L = D - σ²·∇_{x_k} L,

which is also what the LMS branch does (it moves x_k by -σ²·∇L and keeps ε). Guiding D is how a
ComfyUI post-CFG hook acts, for eps and v-prediction models alike (both return D). In k-space the
guided blend is ``s = sqrt(β)·x̂0 + (1 - sqrt(β))·sqrt(ᾱ)·x_k``.

Gradients: ``exact`` differentiates through the U-Net's x̂0 (as the source); ``fast`` treats x̂0 as
moving one-for-one with x_k (∂x̂0/∂x_k ≈ I), so only the decoder and CLIP are differentiated:
``∇_{x_k} L ≈ (sqrt(β) + (1 - sqrt(β))·sqrt(ᾱ))·∇_s L``.

Cutouts (the upstream text-target pipeline, item 6): ``num_cutouts`` random square crops of sizes
``rand^cut_power·(max - min) + min`` pooled to 224, loss ``sum over batch of mean over cutouts``.
Pure torch; the model calls are passed in by the node.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def spherical_dist_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """2·arcsin(‖x̂ - ŷ‖/2)² per row (θ²/2 for the angle θ between x and y)."""
    x = F.normalize(x, dim=-1)
    y = F.normalize(y, dim=-1)
    return (x - y).norm(dim=-1).div(2).arcsin().pow(2).mul(2)


def alpha_bar(sigma: torch.Tensor) -> torch.Tensor:
    """ᾱ for a k-diffusion σ: σ² = (1 - ᾱ)/ᾱ."""
    return 1.0 / (1.0 + sigma.double() ** 2)


def guided_blend(x0: torch.Tensor, x_k: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The source's guidance point ``sqrt(β)·x̂0 + (1 - sqrt(β))·x_t`` with x_t = sqrt(ᾱ)·x_k."""
    ab = alpha_bar(sigma).view(-1, *([1] * (x_k.dim() - 1)))
    fac = torch.sqrt(1.0 - ab)
    return (fac * x0 + (1.0 - fac) * torch.sqrt(ab) * x_k).to(x_k.dtype)


def fast_chain_factor(sigma: torch.Tensor, ndim: int) -> torch.Tensor:
    """∂s/∂x_k when x̂0 moves one-for-one with x_k: sqrt(β) + (1 - sqrt(β))·sqrt(ᾱ)."""
    ab = alpha_bar(sigma).view(-1, *([1] * (ndim - 1)))
    fac = torch.sqrt(1.0 - ab)
    return fac + (1.0 - fac) * torch.sqrt(ab)


def clip_pixels(img: torch.Tensor, size: int = 224, mean=OPENAI_MEAN, std=OPENAI_STD) -> torch.Tensor:
    """Differentiable CLIP preprocessing of (B, 3, H, W) images in [0, 1] as the source's cond_fn: resize the
    shorter side to ``size`` (bicubic, aspect kept, no crop, so only square images give size×size) and
    normalise. Unlike ComfyUI's ``encode_image`` nothing is rounded, so gradients flow."""
    h, w = img.shape[-2:]
    scale = size / min(h, w)
    out = F.interpolate(img, size=(max(size, round(h * scale)), max(size, round(w * scale))), mode="bicubic",
                        align_corners=False)
    m = torch.tensor(mean, dtype=out.dtype, device=out.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=out.dtype, device=out.device).view(1, 3, 1, 1)
    return (out - m) / s


def make_cutouts(img: torch.Tensor, cut_size: int, num_cutouts: int, cut_power: float = 1.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """``num_cutouts`` random square crops of (B, 3, H, W), each adaptive-avg-pooled to ``cut_size``;
    returns (num_cutouts·B, 3, cut_size, cut_size), cutout-major."""
    h, w = img.shape[-2:]
    max_size = min(h, w)
    min_size = min(h, w, cut_size)
    cuts = []
    for _ in range(num_cutouts):
        r = float(torch.rand((), generator=generator))
        size = int(r ** cut_power * (max_size - min_size) + min_size)
        ox = int(torch.randint(0, w - size + 1, (), generator=generator))
        oy = int(torch.randint(0, h - size + 1, (), generator=generator))
        cuts.append(F.adaptive_avg_pool2d(img[:, :, oy:oy + size, ox:ox + size], cut_size))
    return torch.cat(cuts)


def guidance_loss(embeds: torch.Tensor, target: torch.Tensor, scale: float, num_cutouts: int = 0) -> torch.Tensor:
    """The source's loss: ``scale·mean_batch(d)`` without cutouts; with cutouts (upstream pipeline)
    ``scale·Σ_batch mean_cutouts(d)`` for embeds laid out cutout-major."""
    if target.shape[0] == 1:
        target = target.expand(embeds.shape[0], -1)
    elif target.shape[0] != embeds.shape[0]:
        target = target.repeat(embeds.shape[0] // target.shape[0], 1)
    d = spherical_dist_loss(embeds, target)
    if num_cutouts:
        return d.view(num_cutouts, -1).mean(0).sum() * scale
    return d.mean() * scale
