"""CycleDiffusion nodes (dual-style-image-gen's backbone): an inversion node and a sampler that replays its noises.

Math: ``blendspace/cycle_diffusion.py``. Both run through ComfyUI's own sampling machinery
(``runtime/cycle_driver.py``: ``comfy.sample.sample_custom`` with a custom KSAMPLER), so conditioning tricks and
model patches (DualStyleEpsilonMix, CrossAttnInterpolate, LoRAs, ControlNets) apply as with any sampler.
"""

from __future__ import annotations

from ..blendspace.cycle_diffusion import CycleNoises
from ..blendspace.errors import BlendspaceInputError
from ..blendspace.latents import samples_of
from .runtime import cycle_driver

CYCLE_TYPE = "BLENDSPACE_CYCLE"


class CycleDiffusionInvert:
    NODE_ID = "BlendspaceCycleDiffusionInvert"
    DISPLAY_NAME = "CycleDiffusion Invert"
    SEARCH_ALIASES = ["inversion", "ddim inversion", "invert image", "restyle photo", "image editing", "cycle diffusion"]
    CATEGORY = "Blendspace/sampling"
    DESCRIPTION = (
        "CycleDiffusion's stochastic DDIM inversion, the backbone dual-style-image-gen restyles photos with: the latent is "
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
        sched = cycle_driver.schedule(model, steps, skip_steps, eta)
        return (cycle_driver.invert(model, positive, negative, cfg, samples, sched, seed),)


class CycleDiffusionSampler:
    NODE_ID = "BlendspaceCycleDiffusionSampler"
    DISPLAY_NAME = "CycleDiffusion Sampler"
    SEARCH_ALIASES = ["restyle photo", "style transfer", "image editing", "cycle diffusion", "style blend"]
    CATEGORY = "Blendspace/sampling"
    DESCRIPTION = (
        "Decodes a CycleDiffusion inversion with new prompts by replaying its recorded noises, so the image keeps "
        "the photo's layout. Connect DualStyleEpsilonMix's positive, or a model patched by CrossAttnInterpolate, "
        "for dual-style-image-gen's dual-style restyling (decoder CFG 15 for cross-attention, 20 for the epsilon blend). With "
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
        return ({"samples": cycle_driver.replay(model, positive, negative, cfg, cycle)},)


NODES = [CycleDiffusionInvert, CycleDiffusionSampler]
