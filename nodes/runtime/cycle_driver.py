"""CycleDiffusion (the dual-style-image-gen backbone) run as a ComfyUI sampler.

The inversion and the replay (math: ``blendspace/cycle_diffusion.py``) are wrapped in a ``KSAMPLER`` and run by
``comfy.sample.sample_custom``, ComfyUI's own custom-sampler path, so conditioning tricks and model patches
(Dual-Style Epsilon Mix, Cross-Attention Interpolate, LoRAs, ControlNets) apply as with any sampler, with
KSampler's progress bar, previews and Cancel."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ...blendspace.cycle_diffusion import CycleNoises, DDIMSchedule, ddim_schedule, decode, encode
from .model_facts import discrete_alphas_cumprod, require_prediction
from .sampling import check_interrupted, intermediate_device, preview_callback

WHAT = "CycleDiffusion (a DDPM/DDIM inversion, which does not apply to rectified-flow sampling)"


def schedule(model, steps: int, skip_steps: int, eta: float) -> DDIMSchedule:
    """The DDIM schedule of ``model``'s own ᾱ (eps and v models with a discrete DDPM schedule only)."""
    require_prediction(model, ("eps", "v"), WHAT)
    return ddim_schedule(discrete_alphas_cumprod(model, "CycleDiffusion"), steps, skip_steps, eta)


def _k_sigmas(sched: DDIMSchedule, device) -> torch.Tensor:
    """The k-diffusion sigmas of the steps start … 0, then of the final ᾱ_prev (for ComfyUI's bookkeeping)."""
    values = [sched.k_sigma(i) for i in range(sched.start, -1, -1)]
    a_last = float(sched.alphas_prev[0])
    values.append(((1 - a_last) / a_last) ** 0.5)
    return torch.tensor(values, dtype=torch.float32, device=device)


def _run(model, positive, negative, cfg: float, sched: DDIMSchedule, walk: Callable, latent_samples, seed: int):
    """Run ``walk(denoise, x, step)`` (encode or decode) as ComfyUI's sampler over ``sched``'s steps."""
    import comfy.sample
    import comfy.samplers

    sigmas = _k_sigmas(sched, "cpu")
    callback = preview_callback(model, sched.start + 1)

    def fn(model_k, x, sigmas_in, extra_args=None, callback=None, disable=None):
        extra_args = extra_args or {}

        def denoise(x_k, sigma):
            check_interrupted()
            return model_k(x_k, sigma, **extra_args)

        def step(i, x0_hat, x_now):
            if callback is not None:
                s = sigmas_in[min(i, len(sigmas_in) - 1)]
                callback({"x": x_now, "i": i, "sigma": s, "sigma_hat": s, "denoised": x0_hat})

        return walk(denoise, x, step)

    noise = torch.zeros_like(latent_samples, device="cpu")
    return comfy.sample.sample_custom(model, noise, cfg, comfy.samplers.KSAMPLER(fn), sigmas, positive, negative,
                                      latent_samples, callback=callback, disable_pbar=False, seed=seed)


def invert(model, positive, negative, cfg: float, samples: torch.Tensor, sched: DDIMSchedule, seed: int) -> CycleNoises:
    """CycleDiffusion's inversion of ``samples``: the start latent and every step's noise (``encode``)."""
    recorded: list[CycleNoises] = []

    def walk(denoise, x, step):
        g = torch.Generator(device="cpu").manual_seed(int(seed))
        recorded.append(encode(denoise, x, sched, g, step))
        return x

    _run(model, positive, negative, cfg, sched, walk, samples, seed)
    return recorded[-1]


def replay(model, positive, negative, cfg: float, cycle: CycleNoises) -> torch.Tensor:
    """The latent that replaying ``cycle``'s noises with these prompts gives (``decode``)."""
    require_prediction(model, ("eps", "v"), WHAT)

    def walk(denoise, x, step):
        cycle.check_latent(x.shape)
        return decode(denoise, cycle, step)

    template = torch.zeros(cycle.noises[0].shape, device=intermediate_device())
    return _run(model, positive, negative, cfg, cycle.schedule, walk, template, 0)
