"""The sampler runs the nodes share, on ComfyUI's own sampling path (``comfy.sample.sample``, as KSampler and
KSampler Advanced call it): sampler and scheduler lists, noise, schedules, one progress bar over several runs,
and the Cancel check."""

from __future__ import annotations

from .model_facts import model_sampling


def sampler_names() -> list[str]:
    import comfy.samplers
    return list(comfy.samplers.KSampler.SAMPLERS)


def scheduler_names() -> list[str]:
    import comfy.samplers
    return list(comfy.samplers.KSampler.SCHEDULERS)


def prepare_noise(model, latent: dict, seed: int):
    """The latent (empty-channel fix as core applies it) and KSampler's noise for ``seed``."""
    import comfy.sample
    samples = latent["samples"]
    if hasattr(comfy.sample, "fix_empty_latent_channels"):
        samples = comfy.sample.fix_empty_latent_channels(model, samples)
    return samples, comfy.sample.prepare_noise(samples, seed, latent.get("batch_index"))


def ksample(model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent: dict, denoise=1.0,
            start_step=None, last_step=None, force_full_denoise=False, callback=None, noise=None):
    """Core ``common_ksampler`` (KSampler / KSampler Advanced with noise) with our own callback; returns samples.

    ``callback(step, x0, x, total_steps)`` as ComfyUI's; ``noise`` replaces the seed's noise. ``denoise`` 0
    returns the latent unchanged on both ComfyUIs (the 2024 one divides by it)."""
    import comfy.sample
    samples, seed_noise = prepare_noise(model, latent, seed)
    if denoise is not None and denoise <= 0.0:  # nothing to sample: the latent itself, as current ComfyUI returns
        return samples.clone()
    return comfy.sample.sample(model, seed_noise if noise is None else noise, steps, cfg, sampler_name, scheduler,
                               positive, negative, samples, denoise=denoise, start_step=start_step, last_step=last_step,
                               force_full_denoise=force_full_denoise, noise_mask=latent.get("noise_mask"),
                               callback=callback, disable_pbar=True, seed=seed)


class Progress:
    """One progress bar over several sampler runs, with an interruption check on every update."""

    def __init__(self, total: int):
        import comfy.utils
        self.total = max(1, int(total))
        self.bar = comfy.utils.ProgressBar(self.total)
        self.done = 0

    def check(self) -> None:
        check_interrupted()

    def step_callback(self, offset: int):
        def cb(step, x0, x, total_steps):
            self.check()
            self.bar.update_absolute(min(self.total, offset + step + 1), self.total)
        return cb

    def advance(self, n: int) -> None:
        self.done += n
        self.check()
        self.bar.update_absolute(min(self.total, self.done), self.total)


def schedule_sigmas(model, scheduler: str, steps: int, denoise: float = 1.0):
    """The sigmas KSampler runs for ``steps`` and ``denoise`` (its ``set_steps`` rule), in both versions."""
    import comfy.samplers
    import torch

    def full(n):
        if hasattr(comfy.samplers, "calculate_sigmas"):
            return comfy.samplers.calculate_sigmas(model_sampling(model), scheduler, n)
        return comfy.samplers.calculate_sigmas_scheduler(model.model, scheduler, n)

    if denoise is None or denoise > 0.9999:
        return full(steps)
    if denoise <= 0.0:
        return torch.FloatTensor([])
    return full(int(steps / denoise))[-(steps + 1):]


def check_interrupted() -> None:
    """Raise ComfyUI's interruption exception when the user pressed Cancel."""
    import comfy.model_management
    comfy.model_management.throw_exception_if_processing_interrupted()


def preview_callback(model, steps: int):
    """KSampler's own step callback for ``model``: the progress bar and the latent previews."""
    import latent_preview
    return latent_preview.prepare_callback(model, steps)


def intermediate_device():
    """The device ComfyUI keeps latents on between nodes."""
    import comfy.model_management
    return comfy.model_management.intermediate_device()
