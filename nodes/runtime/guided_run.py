"""The shared sampler run of CLIP-guided image mixing: the sampler node runs it once, the grid search once per cell.

KSampler's own path (``sampling.ksample``) with the guidance patched into a clone of the model, the source's
step counting for img2img strength, and its start latent: content and style latents each noised at the first
kept step with their own noise, then slerped (math: ``blendspace/slerp.py``, ``blendspace/strength_sweep.py``).
"""

from __future__ import annotations

from ...blendspace.clip_guidance import HEUN_TYPE
from ...blendspace.latents import match_pair, samples_of
from ...blendspace.slerp import slerp
from ...blendspace.strength_sweep import diffusers_start_step
from . import model_facts, sampling
from .guidance_hooks import ClipGuidance, patched_model


class GuidedRun:
    """One sampler configuration that guided runs share (the sampler node runs once, the grid search per cell)."""

    def __init__(self, model, seed, steps, cfg, sampler_name, scheduler, negative, source_strength: bool):
        self.model, self.seed, self.steps, self.cfg = model, seed, steps, cfg
        self.sampler_name, self.scheduler, self.negative = sampler_name, scheduler, negative
        self.source_strength = source_strength

    def sample(self, guidance: ClipGuidance, positive, latent_image: dict, denoise: float, latent_style=None,
               style_strength: float = 0.8, callback=None) -> dict:
        """Sample with ``guidance`` patched in; ``callback`` replaces KSampler's progress bar and previews."""
        m = patched_model(self.model, guidance)
        if callback is None:
            callback = sampling.preview_callback(m, self.steps)  # progress bar and previews, as KSampler
        guidance.clock.start(self._schedule(denoise), self.sampler_name in HEUN_TYPE)
        span = dict(start_step=diffusers_start_step(self.steps, denoise), last_step=self.steps,
                    force_full_denoise=True) if self.source_strength else dict(denoise=denoise)
        latent, noise = latent_image, None
        if latent_style is not None:
            latent, noise = self._mixed_start(latent_image, latent_style, denoise, style_strength)
        try:
            out = sampling.ksample(m, self.seed, self.steps, self.cfg, self.sampler_name, self.scheduler, positive,
                                   self.negative, latent, callback=callback, noise=noise, **span)
        finally:
            guidance.release()  # free the grad-capable copies now, not when the graph cache drops the model
        result = dict(latent_image)
        result["samples"] = out
        return result

    def _schedule(self, denoise: float) -> list[float]:
        """The sigmas this run steps through (every_n_steps counts them)."""
        if self.source_strength:
            sigmas = sampling.schedule_sigmas(self.model, self.scheduler, self.steps, 1.0)
            return sigmas[diffusers_start_step(self.steps, denoise):].tolist()
        return sampling.schedule_sigmas(self.model, self.scheduler, self.steps, denoise).tolist()

    def _mixed_start(self, latent_content: dict, latent_style: dict, denoise: float, t: float):
        """The images-mixing pipeline's start latent: content and style latents each noised at the first kept step
        with their own noise (seed and seed + 1) by the model's own noise scaling (eps/v: z + σ·n, flow:
        (1 - σ)·z + σ·n), then slerped as one tensor; handed to the sampler as the (latent, noise) pair its noise
        scaling turns into exactly that start."""
        content = samples_of(latent_content, "latent_image")
        style = samples_of(latent_style, "latent_style")
        content, style = match_pair(content, style, names=("latent_image", "latent_style"))
        model = self.model
        model_facts.require_prediction(model, ("eps", "v", "flow"), "Mixing noised start latents")
        if self.source_strength:
            sigmas = sampling.schedule_sigmas(model, self.scheduler, self.steps, 1.0)
            first = diffusers_start_step(self.steps, denoise)
        else:
            sigmas, first = sampling.schedule_sigmas(model, self.scheduler, self.steps, denoise), 0
        if first >= len(sigmas) - 1:
            return latent_content, None
        sigma0 = float(sigmas[first])
        _, n_c = sampling.prepare_noise(model, {"samples": content.contiguous()}, self.seed)
        _, n_s = sampling.prepare_noise(model, {"samples": style.contiguous()}, self.seed + 1)
        inner = model.model
        c_in = inner.process_latent_in(content.float())
        s_in = inner.process_latent_in(style.float())
        start = slerp(model_facts.noise_latent(model, sigma0, n_c.to(c_in), c_in),
                      model_facts.noise_latent(model, sigma0, n_s.to(s_in), s_in), t, per="tensor")
        latent, noise = model_facts.sampler_start(model, sigma0, start)
        out = dict(latent_content)
        out["samples"] = inner.process_latent_out(latent).to(content.dtype)
        return out, noise.to(device="cpu", dtype=content.dtype)
