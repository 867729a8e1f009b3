"""Mix Two References and the Reference Sweep: one dial between two reference images of an edit model (Flux
Kontext, Qwen-Image-Edit), and w = 0…1 in N frames from one seed for a morph.

Math: ``blendspace/reference_mix.py``; runtime (ComfyUI's hooks): ``runtime/reference_mix.py``;
docs/techniques.md, "Reference mixing on edit models".
"""

from __future__ import annotations

import torch

from ..blendspace.reference_mix import MODES
from ..blendspace.slerp import interpolation_weights
from .inputs import percent_inputs, sampler_inputs
from .runtime import sampling
from .runtime.reference_mix import Dial, mix_references

FAMILIES_NOTE = "Flux Kontext (every reference method core offers) and Qwen-Image-Edit; OmniGen2 with measured gaps"


def dial_inputs() -> dict:
    """The dial's widgets shared by both nodes: the strengths, the mode and the sigma window."""
    return {
        "strength_a": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 2.0, "step": 0.01,
                                 "tooltip": "How much of reference A (key multiplier on its tokens): 0 = absent, "
                                            "exactly; 1 = as the dial alone gives; below 1 tames a reference that "
                                            "overpowers the prompt."}),
        "strength_b": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 2.0, "step": 0.01,
                                 "tooltip": "How much of reference B: 0 = absent, exactly; 1 = as the dial alone gives."}),
        "mode": (list(MODES), {"default": MODES[0],
                               "tooltip": "attention dial: both references stay, each one's tokens weighted in every "
                                          "attention (w = 0.5 is core's two-reference result). latent slerp: the two "
                                          "latents slerped into one reference in A's place (B resized to A)."}),
        **percent_inputs("the dial acts (outside it both references count fully, as connected)"),
    }


def optional_inputs() -> dict:
    """Which two references, and the one-image encodings of a Qwen-Image-Edit prompt for exact ends."""
    def only(which: str, prompt: str) -> tuple:
        end = "0" if which == "A" else "1"
        return ("CONDITIONING", {"tooltip": f"The {prompt} with only reference {which}, for the weight-{end} end. "
                                            "Qwen-Image-Edit: the same prompt encoded with only image "
                                            f"{which} (TextEncodeQwenImageEditPlus); its images sit inside the prompt, "
                                            "so that end is exact only with it. Flux Kontext (optional): a prompt of "
                                            f"its own for {which}'s end, with only reference {which} attached; the "
                                            "dial blends the prompts too."})
    return {
        "reference_a": ("INT", {"default": 1, "min": 1, "max": 16,
                                "tooltip": "Which reference is A (1 = the first one attached). Others pass through."}),
        "reference_b": ("INT", {"default": 2, "min": 1, "max": 16, "tooltip": "Which reference is B (default the second)."}),
        "conditioning_a_only": only("A", "prompt"),
        "conditioning_b_only": only("B", "prompt"),
        "negative_a_only": only("A", "negative prompt"),
        "negative_b_only": only("B", "negative prompt"),
    }


COND_INPUTS = {
    "conditioning": ("CONDITIONING", {"tooltip": "The prompt carrying two (or more) reference latents: chained "
                                                 "ReferenceLatent nodes, or TextEncodeQwenImageEditPlus with two "
                                                 "images."}),
    "negative": ("CONDITIONING", {"tooltip": "The negative prompt. When it carries the same references (Qwen-Image-"
                                             "Edit's usual negative) the dial applies to it too, so each end matches "
                                             "the one-image workflow; without references it passes unchanged."}),
}
WEIGHT_TIP = "0 = reference A only, exactly; 1 = reference B only, exactly; 0.5 = both, as core samples them."


def _conds(conditioning, negative, extra: dict) -> dict:
    names = ("conditioning_a_only", "conditioning_b_only", "negative_a_only", "negative_b_only")
    return {"conditioning": conditioning, "negative": negative, **{n: extra.get(n) for n in names}}


class ReferenceMix:
    NODE_ID = "BlendspaceReferenceMix"
    DISPLAY_NAME = "Mix Two References"
    SEARCH_ALIASES = ["reference mix", "mix references", "mix two images", "blend two images", "mix images", "kontext mix",
                      "qwen image edit mix", "reference strength", "reference latent strength", "image prompt"]
    CATEGORY = "Blendspace/conditioning"
    DESCRIPTION = (
        "One dial between two reference images of an edit model: " + FAMILIES_NOTE + ". weight 0 gives core's "
        "result with only reference A, exactly; 1 with only B; 0.5 with both strengths at 1 core's two-reference "
        "result; in between each reference's tokens get a per-key attention bias log(min(1, 2(1-w))·strength_a) "
        "and log(min(1, 2w)·strength_b), and the references behind a fading one move to where they sit without "
        "it. Connect the returned model, conditioning and negative to the sampler.")
    RETURN_TYPES = ("MODEL", "CONDITIONING", "CONDITIONING")
    RETURN_NAMES = ("model", "conditioning", "negative")
    OUTPUT_TOOLTIPS = ("The model with the dial's attention bias (unchanged where the result is core's own).",
                       "The prompt with the references dialled.", "The negative, dialled where it carries the pair.")
    FUNCTION = "mix"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The edit model (Flux Kontext, Qwen-Image-Edit)."}),
                **COND_INPUTS,
                "weight": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip": WEIGHT_TIP}),
                **dial_inputs(),
            },
            "optional": optional_inputs(),
        }

    def mix(self, model, conditioning, negative, weight, strength_a, strength_b, mode, start_percent, end_percent,
            reference_a=1, reference_b=2, **only):
        dial = Dial(mode, weight, strength_a, strength_b, (reference_a - 1, reference_b - 1),
                    (start_percent, end_percent))
        return mix_references(model, _conds(conditioning, negative, only), dial)


class ReferenceSweep:
    NODE_ID = "BlendspaceReferenceSweep"
    DISPLAY_NAME = "Reference Sweep (morph)"
    SEARCH_ALIASES = ["reference sweep", "reference morph", "morph", "morph two images", "kontext morph",
                      "interpolate references", "animation"]
    CATEGORY = "Blendspace/experiments"
    DESCRIPTION = (
        "Mix Two References at w = 0, 1/(N-1), ..., 1 from one seed: N frames from reference A to reference B, "
        "the first and last exactly core's one-reference results, the middle one (odd N) core's two-reference "
        "result. Decode the batch and save it with Save Animated GIF for a morph.")
    RETURN_TYPES = ("LATENT", "STRING")
    RETURN_NAMES = ("latents", "weights")
    OUTPUT_TOOLTIPS = ("One result per weight, in order (a batch).", "The weights used, comma separated, for labels.")
    FUNCTION = "sweep"
    VIDEO_LATENTS = ("latent",)
    """Qwen-Image-Edit's VAE Encode gives 5-D (video-format) latents; the sweep passes them to core's sampler."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The edit model (Flux Kontext, Qwen-Image-Edit)."}),
                **COND_INPUTS,
                "latent": ("LATENT", {"tooltip": "The start latent (batch 1), e.g. Empty SD3 Latent Image or the "
                                                 "encoded image to edit."}),
                **sampler_inputs(20, 1.0),
                "frames": ("INT", {"default": 9, "min": 2, "max": 1000,
                                   "tooltip": "Frames from A (w = 0) to B (w = 1), both included; odd counts include "
                                              "w = 0.5."}),
                **dial_inputs(),
            },
            "optional": optional_inputs(),
        }

    def sweep(self, model, conditioning, negative, latent, seed, steps, cfg, sampler_name, scheduler, frames, strength_a,
              strength_b, mode, start_percent, end_percent, reference_a=1, reference_b=2, **only):
        weights = interpolation_weights(frames)
        conds = _conds(conditioning, negative, only)
        dials = [Dial(mode, w, strength_a, strength_b, (reference_a - 1, reference_b - 1), (start_percent, end_percent))
                 for w in weights]
        mixed = [mix_references(model, conds, d) for d in dials]  # every input checked before the first frame
        progress = sampling.Progress(len(weights) * steps)
        out = []
        for k, (m, pos, neg) in enumerate(mixed):
            progress.check()
            out.append(sampling.ksample(m, seed, steps, cfg, sampler_name, scheduler, pos, neg, latent,
                                        callback=progress.step_callback(k * steps)))
            progress.advance(steps)
        result = {key: value for key, value in latent.items() if key not in ("batch_index", "noise_mask")}
        result["samples"] = torch.cat(out, dim=0)
        return (result, ", ".join(f"{w:g}" for w in weights))


NODES = [ReferenceMix, ReferenceSweep]
