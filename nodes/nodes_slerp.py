"""SlerpLatents and SlerpConditioning, the slerps of the diffusers images-mixing pipeline as ComfyUI nodes, and
Prompt Mix Attention Patch, the model side of SlerpConditioning's attention-weight mode.

Math: ``blendspace/slerp.py``; plumbing (batches, sizes, token lengths, carried keys):
``blendspace/latents.py`` and ``blendspace/conditioning.py``; the attention-weight mode: ``blendspace/prompt_bias.py``
and its model patch (Prompt Mix Attention Patch) ``nodes/runtime/joint_attention.py``.
"""

from __future__ import annotations

from ..blendspace.conditioning import LENGTH_MODES, combine_conditionings
from ..blendspace.errors import BlendspaceInputError
from ..blendspace.latents import SIZE_MODES, slerp_latents
from ..blendspace.prompt_bias import attention_weight_mix
from ..blendspace.slerp import interpolation_weights, lerp, slerp
from .runtime.joint_attention import prompt_mix_patch, with_sampling_check

METHODS = ("slerp", "lerp")
LATENT_SCOPES = ("per sample", "whole batch (source)")
COND_MODES = ("whole tensor (source)", "per token", "attention weight (joint attention)")


def _mixer(method: str):
    if method == "slerp":
        return slerp
    if method == "lerp":
        return lambda a, b, t, per: lerp(a, b, t)
    raise BlendspaceInputError(f"method must be one of {METHODS}, got {method!r}.")


def _t_input(default: float, what_a: str, what_b: str):
    return ("FLOAT", {"default": default, "min": 0.0, "max": 1.0, "step": 0.01,
                      "tooltip": f"Mix weight: 0 returns {what_a} exactly, 1 returns {what_b} exactly. In the images-mixing "
                                 f"pipeline "
                                 "this is the 'style strength' (a = content, b = style)."})


METHOD_INPUT = (list(METHODS), {"default": "slerp",
                                "tooltip": "slerp: spherical interpolation as in the source (keeps the 'noise-like' "
                                           "norm of latents between the ends). lerp: plain (1-t)·a + t·b, for comparison."})


class SlerpLatents:
    NODE_ID = "SlerpLatents"
    DISPLAY_NAME = "Slerp Latents"
    SEARCH_ALIASES = ["mix latents", "blend latents", "interpolate latents", "mix images", "blend two images", "morph",
                      "latent walk", "lerp"]
    CATEGORY = "Blendspace/latent"
    DESCRIPTION = (
        "Spherical interpolation (slerp) of two latents, as the diffusers images-mixing pipeline mixes its "
        "content and style start latents: each latent is one flat vector, the angle comes from their "
        "normalised dot product, and nearly parallel or opposite vectors (|cos| > 0.9995) are lerped. "
        "Computed in float32, returned in the input dtype. With frames > 1 it returns a batch of "
        "interpolants from a to b for latent walks.")
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The mixed latent (one per sample, or frames × batch for a walk, frame-major).",)
    FUNCTION = "mix"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "latent_a": ("LATENT", {"tooltip": "First latent (t = 0), e.g. the content image's VAE encoding. "
                                                   "Its noise_mask, batch_index and other keys are carried to the output."}),
                "latent_b": ("LATENT", {"tooltip": "Second latent (t = 1), e.g. the style image's encoding. A batch of 1 "
                                                   "is repeated against a larger batch of latent_a (and vice versa)."}),
                "t": _t_input(0.5, "latent_a", "latent_b"),
                "frames": ("INT", {"default": 1, "min": 1, "max": 4096,
                                   "tooltip": "1: one mix at t. 2 or more: a batch of that many mixes at evenly spaced "
                                              "weights from 0 to 1, both ends included (t is not used then)."}),
                "method": METHOD_INPUT,
                "scope": (list(LATENT_SCOPES), {"default": "per sample",
                                                "tooltip": "per sample: each image of the batch is its own vector (the "
                                                           "natural choice). whole batch (source): the whole batch is one "
                                                           "vector, as the source does; identical for a batch of 1."}),
                "size_mismatch": (list(SIZE_MODES), {"default": "error",
                                                     "tooltip": "What to do when the latents differ in width or height: "
                                                                "stop with an error, or resize latent_b to latent_a's "
                                                                "size (bilinear)."}),
            }
        }

    def mix(self, latent_a, latent_b, t, frames=1, method="slerp", scope="per sample", size_mismatch="error"):
        if scope not in LATENT_SCOPES:
            raise BlendspaceInputError(f"scope must be one of {LATENT_SCOPES}, got {scope!r}.")
        ts = [float(t)] if frames == 1 else interpolation_weights(frames)
        per = "sample" if scope == "per sample" else "tensor"
        return (slerp_latents(latent_a, latent_b, ts, per=per, size_mode=size_mismatch, mix=_mixer(method)),)


class SlerpConditioning:
    NODE_ID = "SlerpConditioning"
    DISPLAY_NAME = "Slerp Conditioning"
    SEARCH_ALIASES = ["interpolate prompts", "prompt mix", "mix prompts", "blend prompts", "prompt blend", "style blend",
                      "conditioning average"]
    CATEGORY = "Blendspace/conditioning"
    DESCRIPTION = (
        "Spherical interpolation (slerp) of two prompt conditionings, as the images-mixing pipeline mixes its content and style "
        "prompts: the token embeddings (and the pooled output, when both have one) are slerped. Like core "
        "Conditioning (Average), every entry of conditioning_a is mixed with the first entry of "
        "conditioning_b and keeps its other settings (Flux guidance, SDXL sizes). Prompts of different lengths: "
        "SD CLIP chunks (77 vs 154 tokens) are tiled to a common multiple of 77, which leaves cross-attention "
        "unchanged; T5 / joint-attention prompts (Flux, SD3) are padded with the shorter one's pad token, as its "
        "tokenizer would. Mode 'attention weight (joint attention)' pairs no tokens at all: both prompts are "
        "concatenated and the image's attention weighs A's tokens by (1-t) and B's by t, for the T5 and LLM "
        "encoders of Flux, Chroma, SD3, HiDream, Qwen-Image and Lumina 2 (prompts of any lengths). Flux and "
        "Chroma read that weight from the conditioning itself; the other families (and Flux Kontext with "
        "reference latents) also need 'Prompt Mix Attention Patch' on the model: without it the sampler stops with an "
        "error naming the family, before the model runs.")
    RETURN_TYPES = ("CONDITIONING",)
    RETURN_NAMES = ("conditioning",)
    OUTPUT_TOOLTIPS = ("The mixed conditioning, one entry per entry of conditioning_a.",)
    FUNCTION = "mix"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "conditioning_a": ("CONDITIONING", {"tooltip": "First prompt (t = 0), e.g. the content prompt. Every "
                                                               "entry is mixed; its area, mask, timestep range and other "
                                                               "settings are kept."}),
                "conditioning_b": ("CONDITIONING", {"tooltip": "Second prompt (t = 1), e.g. the style prompt. Only its "
                                                               "first entry is used, as in core Conditioning (Average)."}),
                "t": _t_input(0.5, "conditioning_a", "conditioning_b"),
                "mode": (list(COND_MODES), {"default": "whole tensor (source)",
                                            "tooltip": "whole tensor (source): all tokens of a prompt form one vector, "
                                                       "as the images-mixing pipeline does. per token: every token is slerped "
                                                       "on its own "
                                                       "(keeps each token's norm path; differs where tokens point in "
                                                       "very different directions). attention weight (joint "
                                                       "attention): both prompts side by side, the image attends to "
                                                       "A's tokens with weight 1-t and to B's with t (Flux, Chroma; "
                                                       "other joint-attention models with Prompt Mix Attention "
                                                       "Patch); method then mixes only the pooled outputs."}),
                "method": METHOD_INPUT,
            },
            "optional": {
                "length_mismatch": (list(LENGTH_MODES), {
                    "default": LENGTH_MODES[0],
                    "tooltip": "Prompts of different token lengths. tile: repeat each to a common multiple of 77 (SD1.x, "
                               "SD2.x, SDXL: cross-attention unchanged). pad: extend the shorter with copies of its last "
                               "(pad) token, as its T5 tokenizer would (Flux, SD3: joint attention). auto: tile CLIP "
                               "chunks of 77, pad T5-wide or other lengths."}),
            },
        }

    def mix(self, conditioning_a, conditioning_b, t, mode="whole tensor (source)", method="slerp",
            length_mismatch=LENGTH_MODES[0]):
        if mode not in COND_MODES:
            raise BlendspaceInputError(f"mode must be one of {COND_MODES}, got {mode!r}.")
        fn = _mixer(method)
        t = float(t)
        if mode == COND_MODES[2]:
            mixed = attention_weight_mix(conditioning_a, conditioning_b, t, lambda a, b: fn(a, b, t, "sample"))
            return (with_sampling_check(mixed),)
        per = "sample" if mode == COND_MODES[0] else "token"
        return (combine_conditionings(conditioning_a, conditioning_b,
                                      mix_tokens=lambda a, b: fn(a, b, t, per),
                                      mix_pooled=lambda a, b: fn(a, b, t, "sample"),
                                      length_mode=length_mismatch, t=t),)


class PromptMixAttentionPatch:
    NODE_ID = "BlendspacePromptMixAttentionPatch"
    DISPLAY_NAME = "Prompt Mix Attention Patch"
    SEARCH_ALIASES = ["prompt mix", "mix prompts", "blend prompts", "attention weight", "prompt weight", "qwen prompt mix",
                      "sd3 prompt mix", "hidream prompt mix", "lumina prompt mix"]
    CATEGORY = "Blendspace/model_patches"
    DESCRIPTION = (
        "The model side of Slerp Conditioning's 'attention weight (joint attention)' mode: the image's attention to "
        "the mixed prompt's two halves is weighted (1-t) and t through ComfyUI's attention override, each prompt's "
        "text keeps to itself, and each prompt keeps the text positions it has alone (Qwen-Image's text ids, Lumina "
        "2's caption length). Needed on SD3 / SD3.5, HiDream, Qwen-Image and Lumina 2, and on Flux Kontext when the "
        "conditioning carries reference latents; Flux and Chroma read the weights from the conditioning and need "
        "no patch. Other conditionings run unchanged. Current ComfyUI only.")
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("A patched copy of the model; the input model is left unchanged.",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL", {"tooltip": "The joint-attention model to sample the mixed prompt with "
                                                            "(a copy is patched)."})}}

    def patch(self, model):
        return (prompt_mix_patch(model),)


NODES = [SlerpLatents, SlerpConditioning, PromptMixAttentionPatch]
