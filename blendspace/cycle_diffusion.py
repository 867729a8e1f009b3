"""CycleDiffusion, the image-to-image backbone of dual-style-image-gen (docs/techniques.md, "CycleDiffusion").

CycleDiffusion (Wu & De la Torre, arXiv 2210.05559) inverts an image with a STOCHASTIC DDIM pass that
records the noise it would take to land on each forward-noised latent, then decodes with another
prompt while replaying those noises, so the result keeps the photo's structure.

DDIM schedule (LDM ``make_ddim_timesteps('uniform', S, 1000)``): c = 1000 // S, timesteps
τ_i = c·i + 1 for i < S (S = 99 gives 1, 11, …, 981); ᾱ_i = ᾱ[τ_i], ᾱ_prev,i = ᾱ[τ_{i-1}] and
ᾱ_prev,0 = ᾱ[0]; σ_i = η·sqrt((1 - ᾱ_prev)/(1 - ᾱ)·(1 - ᾱ/ᾱ_prev)). Skipping k steps starts at
index S - 1 - k (99, skip 10: index 88, t = 881) and runs down to 0.

Encode (prompt c_enc, CFG usually 1), with x0 the clean latent and z ~ N(0, I):

    x = sqrt(ᾱ_start)·x0 + sqrt(1 - ᾱ_start)·z;   noises = [x]
    for i = start … 0:
        x_prev = x0 if i == 0 else sqrt(ᾱ_prev)·x0 + sqrt(1 - ᾱ_prev - σ²)·(x - sqrt(ᾱ)·x0)/sqrt(1 - ᾱ) + σ·N(0, I)
        ε = ε_θ(x, τ_i);  x̂0 = (x - sqrt(1 - ᾱ)·ε)/sqrt(ᾱ)
        noises.append( (x_prev - sqrt(ᾱ_prev)·x̂0 - sqrt(1 - ᾱ_prev - σ²)·ε) / σ );  x = x_prev

Decode (any prompt, CFG s_dec), replaying the noises:

    x = noises[0]
    for j, i = start … 0:  ε = ε_θ(x, τ_i) (guided);  x̂0 = (x - sqrt(1 - ᾱ)·ε)/sqrt(ᾱ)
                            x = sqrt(ᾱ_prev)·x̂0 + sqrt(1 - ᾱ_prev - σ²)·ε + σ·noises[j + 1]

With the encoder's prompt and CFG the decode reproduces x0 exactly. Latents here are in DDPM space
(``x = sqrt(ᾱ)·x0 + sqrt(1-ᾱ)·ε``); ComfyUI's k-diffusion models take ``x_k = x / sqrt(ᾱ)`` at
``σ = sqrt((1-ᾱ)/ᾱ)`` and return x̂0, so ``ε = (x_k - x̂0)/σ`` for eps and v-prediction models alike.
Pure torch; the ComfyUI sampler adapter lives in the node module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .errors import BlendspaceInputError

Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``denoise(x_k, sigma) -> x̂0``: the (guided) model in k-diffusion space."""


@dataclass
class DDIMSchedule:
    timesteps: list[int]
    alphas: torch.Tensor        # ᾱ_i, float64, one per DDIM step
    alphas_prev: torch.Tensor   # ᾱ_prev,i
    etas_sigma: torch.Tensor    # σ_i for the chosen η
    start: int                  # first index of the loop (it runs start … 0)

    def k_sigma(self, i: int) -> float:
        a = float(self.alphas[i])
        return ((1 - a) / a) ** 0.5


def ddim_schedule(alphas_cumprod: torch.Tensor, steps: int = 99, skip_steps: int = 10, eta: float = 0.1) -> DDIMSchedule:
    """The LDM 'uniform' DDIM schedule with CycleDiffusion's skip, from the model's ᾱ table."""
    total = int(alphas_cumprod.shape[0])
    if not 1 <= steps <= total:
        raise BlendspaceInputError(f"steps must be between 1 and {total}, got {steps}")
    if not 0 <= skip_steps < steps:
        raise BlendspaceInputError(f"skip_steps must be between 0 and steps - 1 ({steps - 1}), got {skip_steps}")
    if eta <= 0:
        raise BlendspaceInputError("eta must be > 0: CycleDiffusion records the noise of a stochastic DDIM step "
                                   "(the source uses 0.1); with eta 0 there is no noise to record.")
    c = total // steps
    timesteps = [c * i + 1 for i in range(steps)]
    if timesteps[-1] >= total:
        raise BlendspaceInputError(f"{steps} DDIM steps do not fit a {total}-step model schedule")
    ac = alphas_cumprod.to(torch.float64)
    alphas = ac[timesteps]
    alphas_prev = torch.cat([ac[:1], ac[timesteps[:-1]]])
    sig = eta * torch.sqrt((1 - alphas_prev) / (1 - alphas) * (1 - alphas / alphas_prev))
    return DDIMSchedule(timesteps, alphas, alphas_prev, sig, steps - 1 - skip_steps)


def _eps(denoise: Denoise, x: torch.Tensor, sched: DDIMSchedule, i: int) -> tuple[torch.Tensor, torch.Tensor]:
    a = float(sched.alphas[i])
    sigma = sched.k_sigma(i)
    x_k = x / a ** 0.5
    s = torch.full((x.shape[0],), sigma, dtype=x.dtype, device=x.device)
    x0 = denoise(x_k, s)
    eps = (x_k - x0) / sigma
    x0_hat = (x - (1 - a) ** 0.5 * eps) / a ** 0.5
    return eps, x0_hat


@dataclass
class CycleNoises:
    """What the inversion records: the start latent and one noise per step, with the schedule."""

    schedule: DDIMSchedule
    noises: list[torch.Tensor] = field(default_factory=list)

    def check_latent(self, shape) -> None:
        if tuple(self.noises[0].shape) != tuple(shape):
            raise BlendspaceInputError(f"these CycleDiffusion noises were recorded for a latent of shape "
                                       f"{tuple(self.noises[0].shape)}, not {tuple(shape)}: invert the same image.")


def encode(denoise: Denoise, x0: torch.Tensor, sched: DDIMSchedule, generator: torch.Generator,
           step_callback: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None) -> CycleNoises:
    """Stochastic DDIM inversion of the clean latent ``x0`` (DDPM space); see the module docstring."""
    def randn():
        return torch.randn(x0.shape, generator=generator, dtype=torch.float32).to(device=x0.device, dtype=x0.dtype)

    a0 = float(sched.alphas[sched.start])
    x = a0 ** 0.5 * x0 + (1 - a0) ** 0.5 * randn()
    out = CycleNoises(sched, [x])
    for n, i in enumerate(range(sched.start, -1, -1)):
        a, ap, s = float(sched.alphas[i]), float(sched.alphas_prev[i]), float(sched.etas_sigma[i])
        if i == 0:
            x_prev = x0
        else:
            x_prev = ap ** 0.5 * x0 + (1 - ap - s * s) ** 0.5 * (x - a ** 0.5 * x0) / (1 - a) ** 0.5 + s * randn()
        eps, x0_hat = _eps(denoise, x, sched, i)
        out.noises.append((x_prev - ap ** 0.5 * x0_hat - (1 - ap - s * s) ** 0.5 * eps) / s)
        x = x_prev
        if step_callback is not None:
            step_callback(n, x0_hat, x)
    return out


def decode(denoise: Denoise, noises: CycleNoises,
           step_callback: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None) -> torch.Tensor:
    """Replay the recorded noises with another (guided) model; returns the final DDPM-space latent."""
    sched = noises.schedule
    x = noises.noises[0]
    for j, i in enumerate(range(sched.start, -1, -1)):
        ap, s = float(sched.alphas_prev[i]), float(sched.etas_sigma[i])
        eps, x0_hat = _eps(denoise, x, sched, i)
        x = ap ** 0.5 * x0_hat + (1 - ap - s * s) ** 0.5 * eps + s * noises.noises[j + 1].to(x)
        if step_callback is not None:
            step_callback(j, x0_hat, x)
    return x
