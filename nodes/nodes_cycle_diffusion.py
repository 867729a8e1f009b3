"""CycleDiffusion nodes (seed 002's backbone): an inversion node and a sampler that replays its noises.

Math: ``blendspace/cycle_diffusion.py``. Both run through ComfyUI's own sampling machinery
(``comfy.sample.sample_custom`` with a custom KSAMPLER), so conditioning tricks and model patches
(DualStyleEpsilonMix, CrossAttnInterpolate, LoRAs, ControlNets) apply as with any sampler.
"""

from __future__ import annotations

import torch

from ..blendspace.cycle_diffusion import CycleNoises, ddim_schedule, decode, encode
from ..blendspace.errors import BlendspaceInputError
from ..blendspace.latents import samples_of
from . import comfy_compat

CYCLE_TYPE = "BLENDSPACE_CYCLE"


WHAT = "CycleDiffusion (a DDPM/DDIM inversion, which does not apply to rectified-flow sampling)"


def _alphas_cumprod(model) -> torch.Tensor:
    comfy_compat.require_prediction(model, ("eps", "v"), WHAT)
    ms = comfy_compat.model_sampling(model)
    sigmas = getattr(ms, "sigmas", None)
    if sigmas is None or sigmas.dim() != 1 or sigmas.shape[0] < 10:
        raise BlendspaceInputError("CycleDiffusion needs a model with a discrete DDPM schedule (SD1.x, SD2.x, SDXL); "
                                   "this model's sampling has none (flow or EDM models are not supported).")
    return 1.0 / (1.0 + sigmas.detach().to("cpu", torch.float64) ** 2)


def _k_sigmas(sched, device) -> torch.Tensor:
    """The k-diffusion sigmas of the steps start … 0, then of the final ᾱ_prev (for ComfyUI's bookkeeping)."""
    values = [sched.k_sigma(i) for i in range(sched.start, -1, -1)]
    a_last = float(sched.alphas_prev[0])
    values.append(((1 - a_last) / a_last) ** 0.5)
    return torch.tensor(values, dtype=torch.float32, device=device)


def _run(model, positive, negative, cfg, sampler_fn, latent_samples, seed, steps_total):
    import comfy.model_management
    import comfy.sample
    import comfy.samplers
    import latent_preview

    sched = sampler_fn.schedule
    sigmas = _k_sigmas(sched, "cpu")
    callback = latent_preview.prepare_callback(model, steps_total)

    def fn(model_k, x, sigmas_in, extra_args=None, callback=None, disable=None):
        extra_args = extra_args or {}

        def denoise(x_k, sigma):
            comfy.model_management.throw_exception_if_processing_interrupted()
            return model_k(x_k, sigma, **extra_args)

        def step(i, x0_hat, x_now):
            if callback is not None:
                s = sigmas_in[min(i, len(sigmas_in) - 1)]
                callback({"x": x_now, "i": i, "sigma": s, "sigma_hat": s, "denoised": x0_hat})

        return sampler_fn(denoise, x, step)

    sampler = comfy.samplers.KSAMPLER(fn)
    noise = torch.zeros_like(latent_samples, device="cpu")
    return comfy.sample.sample_custom(model, noise, cfg, sampler, sigmas, positive, negative, latent_samples,
                                      callback=callback, disable_pbar=False, seed=seed)


class _Encoder:
    def __init__(self, sched, seed):
        self.schedule = sched
        self.seed = seed
        self.result: CycleNoises | None = None

    def __call__(self, denoise, x, step):
        g = torch.Generator(device="cpu").manual_seed(int(self.seed))
        self.result = encode(denoise, x, self.schedule, g, step)
        return x


class _Decoder:
    def __init__(self, cycle: CycleNoises):
        self.schedule = cycle.schedule
        self.cycle = cycle

    def __call__(self, denoise, x, step):
        self.cycle.check_latent(x.shape)
        return decode(denoise, self.cycle, step)


class CycleDiffusionInvert:
    NODE_ID = "BlendspaceCycleDiffusionInvert"
    DISPLAY_NAME = "CycleDiffusion Invert"
    SEARCH_ALIASES = ["inversion", "ddim inversion", "invert image", "restyle photo", "image editing", "cycle diffusion"]
    CATEGORY = "Blendspace/sampling"
    DESCRIPTION = (
        "CycleDiffusion's stochastic DDIM inversion, the backbone seed 002 restyles photos with: the latent is "
        "noised to the first kept step and walked down with a DDIM step of noise eta, recording the noise of every "
        "step. Feed the result to CycleDiffusion Sampler with the style prompt(s). Source settings: 99 steps, skip "
        "10, eta 0.1, encoder CFG 1, seed 42, encoder prompt 'A picture of <subject>'.")
    RETURN_TYPES = (CYCLE_TYPE,)
    RETURN_NAMES = ("cycle",)
    OUTPUT_TOOLTIPS = ("The recorded start latent and noises, for CycleDiffusion Sampler.",)
    FUNCTION = "invert"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The checkpoint's model (SD1.x / SD2.x / SDXL)."}),
                "positive": ("CONDITIONING", {"tooltip": "Prompt describing the photo as it is, e.g. 'A picture of a "
                                                         "black bear walking on grass'."}),
                "latent": ("LATENT", {"tooltip": "The photo, VAE-encoded (source: centre-cropped and resized to 512)."}),
                "seed": ("INT", {"default": 42, "min": 0, "max": 0xFFFFFFFFFFFFFFFF,
                                 "tooltip": "Seed of the inversion's noise draws (source: 42)."}),
                "steps": ("INT", {"default": 99, "min": 2, "max": 1000,
                                  "tooltip": "DDIM steps of the full schedule (source: 99)."}),
                "skip_steps": ("INT", {"default": 10, "min": 0, "max": 999,
                                       "tooltip": "Noisiest steps skipped; fewer = more change (source: 10, so 89 "
                                                  "steps run from t = 881)."}),
                "eta": ("FLOAT", {"default": 0.1, "min": 0.001, "max": 1.0, "step": 0.001,
                                  "tooltip": "DDIM stochasticity; must be > 0 (source: 0.1)."}),
                "cfg": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 30.0, "step": 0.1,
                                  "tooltip": "Encoder CFG (source: 1 = prompt only; other values need a negative)."}),
            },
            "optional": {"negative": ("CONDITIONING", {"tooltip": "Negative prompt, used only when cfg is not 1."})},
        }

    def invert(self, model, positive, latent, seed, steps, skip_steps, eta, cfg, negative=None):
        samples = samples_of(latent, "latent")
        if negative is None:
            if abs(cfg - 1.0) > 1e-6:
                raise BlendspaceInputError("cfg is not 1, so the inversion needs a negative prompt: connect one.")
            negative = positive
        sched = ddim_schedule(_alphas_cumprod(model), steps, skip_steps, eta)
        enc = _Encoder(sched, seed)
        _run(model, positive, negative, cfg, enc, samples, seed, sched.start + 1)
        return (enc.result,)


class CycleDiffusionSampler:
    NODE_ID = "BlendspaceCycleDiffusionSampler"
    DISPLAY_NAME = "CycleDiffusion Sampler"
    SEARCH_ALIASES = ["restyle photo", "style transfer", "image editing", "cycle diffusion", "style blend"]
    CATEGORY = "Blendspace/sampling"
    DESCRIPTION = (
        "Decodes a CycleDiffusion inversion with new prompts by replaying its recorded noises, so the image keeps "
        "the photo's layout. Connect DualStyleEpsilonMix's positive, or a model patched by CrossAttnInterpolate, "
        "for seed 002's dual-style restyling (decoder CFG 15 for cross-attention, 20 for the epsilon blend). With "
        "the inversion's own prompt and CFG it reproduces the input exactly.")
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The restyled latent; decode it with the checkpoint's VAE.",)
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The same model as the inversion (patches such as CrossAttnInterpolate "
                                               "are welcome)."}),
                "positive": ("CONDITIONING", {"tooltip": "The style prompt, or DualStyleEpsilonMix's output."}),
                "negative": ("CONDITIONING", {"tooltip": "Negative prompt (source: the empty prompt '')."}),
                "cycle": (CYCLE_TYPE, {"tooltip": "The output of CycleDiffusion Invert."}),
                "cfg": ("FLOAT", {"default": 15.0, "min": 0.0, "max": 100.0, "step": 0.1,
                                  "tooltip": "Decoder CFG (source: 15 for the baseline and cross-attention, 20 for the "
                                             "epsilon blend)."}),
            }
        }

    def sample(self, model, positive, negative, cycle, cfg):
        if not isinstance(cycle, CycleNoises):
            raise BlendspaceInputError("cycle must come from CycleDiffusion Invert.")
        comfy_compat.require_prediction(model, ("eps", "v"), WHAT)
        shape = cycle.noises[0].shape
        import comfy.model_management
        template = torch.zeros(shape, device=comfy.model_management.intermediate_device())
        dec = _Decoder(cycle)
        out = _run(model, positive, negative, cfg, dec, template, 0, cycle.schedule.start + 1)
        return ({"samples": out},)


NODES = [CycleDiffusionInvert, CycleDiffusionSampler]
