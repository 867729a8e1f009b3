"""Dual-style nodes of dual-style-image-gen: DualStyleMask, DualStyleEpsilonMix and CrossAttnInterpolate.

Math: ``blendspace/dual_style_mask.py``, ``blendspace/epsilon_mix.py``, ``blendspace/cross_attention.py`` (U-Net)
and ``blendspace/joint_attention.py`` (joint-attention models).
"""

from __future__ import annotations

from ..blendspace.dual_style_mask import (
    CROSS_ATTN_SHARPNESS,
    DIRECTIONS,
    EPS_SHARPNESS,
    SHAPES,
    resize_mask,
    style_mask,
)
from ..blendspace.epsilon_mix import dual_style_conditioning
from ..blendspace.errors import BlendspaceInputError
from .inputs import percent_inputs
from .runtime.cross_attention import blend_prompt_b
from .runtime.joint_attention import POOLED_CHOICES, blend_prompt_b_joint, two_prompt_route


def _mask_inputs(default_sharpness: float, where: str) -> dict:
    return {
        "direction": (list(DIRECTIONS), {"default": "left-right",
                                         "tooltip": "Where each style goes: left-right puts style A on the left and B "
                                                    "on the right (the source's only layout); the others rotate it."}),
        "shape": (list(SHAPES), {"default": "sigmoid",
                                 "tooltip": "sigmoid: a smooth S-shaped transition (the source's 'gaussian' mode, "
                                            "really a logistic). linear: a straight ramp (the source's 'linear' mode)."}),
        "center": ("FLOAT", {"default": 0.5, "min": -0.5, "max": 1.5, "step": 0.01,
                             "tooltip": "Where the transition is centred, as a fraction of the width (or height) from "
                                        "style A's side. 0.5 = the middle (source)."}),
        "sharpness": ("FLOAT", {"default": default_sharpness, "min": 0.1, "max": 500.0, "step": 0.5,
                                "tooltip": f"Sigmoid steepness over the normalised {where}. The source uses 20 for the "
                                           "epsilon blend and 30 for cross-attention; higher = a narrower seam."}),
        "transition_width": ("FLOAT", {"default": 1.0, "min": 0.01, "max": 4.0, "step": 0.01,
                                       "tooltip": "Linear shape only: width of the ramp as a fraction of the image; 1.0 "
                                                  "= the whole width (source)."}),
    }


MASK_OPTION = ("MASK", {"tooltip": "Optional: your own blend mask, white (1) = style A, black (0) = style B. Replaces "
                                   "the direction / shape / center settings; resized bilinearly."})


class DualStyleMask:
    NODE_ID = "BlendspaceDualStyleMask"
    DISPLAY_NAME = "Dual-Style Blend Mask"
    SEARCH_ALIASES = ["style blend mask", "blend mask", "gradient mask", "transition mask", "left right mask", "two styles"]
    CATEGORY = "Blendspace/mask"
    DESCRIPTION = (
        "The seamless left-to-right blend mask of dual-style-image-gen (Seamless Dual-Style Image Generation) as a MASK: 1 "
        "where style A goes, 0 where style B goes, with a sigmoid or linear transition. Use it with core Image "
        "Composite Masked (source = image of style A, destination = image of style B) for the source's "
        "pixel-interpolation baseline, or preview it.")
    RETURN_TYPES = ("MASK",)
    RETURN_NAMES = ("mask",)
    OUTPUT_TOOLTIPS = ("Weight of style A at every pixel (1 = A, 0 = B).",)
    FUNCTION = "build"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "width": ("INT", {"default": 512, "min": 1, "max": 16384, "step": 1,
                                  "tooltip": "Mask width in pixels (ignored when an image is connected)."}),
                "height": ("INT", {"default": 512, "min": 1, "max": 16384, "step": 1,
                                   "tooltip": "Mask height in pixels (ignored when an image is connected)."}),
                **_mask_inputs(EPS_SHARPNESS, "width"),
            },
            "optional": {"image": ("IMAGE", {"tooltip": "Optional: take the mask size from this image."})},
        }

    def build(self, width, height, direction, shape, center, sharpness, transition_width, image=None):
        if image is not None:
            height, width = int(image.shape[1]), int(image.shape[2])
        m = style_mask(height, width, direction, shape, center, sharpness, transition_width)
        return (m.unsqueeze(0),)


class DualStyleEpsilonMix:
    NODE_ID = "DualStyleEpsilonMix"
    DISPLAY_NAME = "Dual-Style Epsilon Mix"
    SEARCH_ALIASES = ["style blend", "dual style", "two styles", "mix styles", "split style", "regional prompt", "noise blend"]
    CATEGORY = "Blendspace/conditioning"
    DESCRIPTION = (
        "Dual-style-image-gen's epsilon blend: one image whose style changes smoothly from prompt A on one side to prompt B on "
        "the other. Outputs one positive CONDITIONING for the stock KSampler (or SamplerCustom): per latent pixel "
        "the noise prediction is eps = uncond + cfg·(m·eps_A + (1-m)·eps_B - uncond), computed by ComfyUI's own "
        "masked conditioning in one batched U-Net call per step (3 chunks; the source ran 4). Connect your usual "
        "negative to the sampler. The mask m is built at latent resolution, as in the source.")
    RETURN_TYPES = ("CONDITIONING", "MASK")
    RETURN_NAMES = ("positive", "mask")
    OUTPUT_TOOLTIPS = ("Positive conditioning for the sampler (prompt A and B, each with its part of the mask).",
                       "The blend mask at latent resolution (weight of A), for preview.")
    FUNCTION = "mix"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "positive_a": ("CONDITIONING", {"tooltip": "Prompt of style A (left side by default), e.g. 'a Minecraft "
                                                           "style rendering of a black bear'."}),
                "positive_b": ("CONDITIONING", {"tooltip": "Prompt of style B (right side by default), e.g. 'a Van Gogh "
                                                           "style painting of a black bear'."}),
                "width": ("INT", {"default": 512, "min": 8, "max": 16384, "step": 8,
                                  "tooltip": "Image width in pixels; the mask is built at width/8 latent columns. "
                                             "Ignored when a latent is connected."}),
                "height": ("INT", {"default": 512, "min": 8, "max": 16384, "step": 8,
                                   "tooltip": "Image height in pixels (mask rows = height/8). Ignored when a latent is "
                                              "connected."}),
                **_mask_inputs(EPS_SHARPNESS, "latent width"),
            },
            "optional": {
                "latent": ("LATENT", {"tooltip": "Optional: the latent you will sample, to size the mask exactly."}),
                "mask": MASK_OPTION,
            },
        }

    def mix(self, positive_a, positive_b, width, height, direction, shape, center, sharpness, transition_width,
            latent=None, mask=None):
        if latent is not None:
            lh, lw = int(latent["samples"].shape[-2]), int(latent["samples"].shape[-1])
        else:
            lh, lw = max(1, height // 8), max(1, width // 8)
        if mask is not None:
            m = resize_mask(mask[:1] if mask.dim() == 3 else mask, lh, lw).clamp(0.0, 1.0)
        else:
            m = style_mask(lh, lw, direction, shape, center, sharpness, transition_width)
        return (dual_style_conditioning(positive_a, positive_b, m), m.unsqueeze(0))


class CrossAttnInterpolate:
    NODE_ID = "CrossAttnInterpolate"
    DISPLAY_NAME = "Cross-Attention Interpolate (Dual-Style)"
    SEARCH_ALIASES = ["style blend", "dual style", "two styles", "mix styles", "attention blend", "cross attention",
                      "regional prompt"]
    CATEGORY = "Blendspace/model_patches"
    DESCRIPTION = (
        "Dual-style-image-gen's cross-attention blend as a MODEL patch: in every cross-attention layer the attention output "
        "for the sampler's positive prompt (A) and for prompt B are blended per position with the mask, resized to "
        "each layer's resolution (the source's sigmoid 30), for the positive pass only. Feed the patched model and "
        "prompt A to any sampler. Replace patches already on the model (e.g. IP-Adapter) are chained, not "
        "overwritten: apply them BEFORE this node. On joint-attention models (Flux dev / schnell / Kontext, Chroma, "
        "SD3 / SD3.5, HiDream, Qwen-Image, Lumina 2; current ComfyUI) prompt B's text is carried beside A's through "
        "every block and each image token's attention output is blended the same way: m·(attention with A) + "
        "(1-m)·(attention with B). An all-A mask samples prompt A exactly, an all-B mask prompt B's text exactly.")
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("A patched copy of the model; the input model is left unchanged.",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The model to patch (a copy is patched)."}),
                "conditioning_b": ("CONDITIONING", {"tooltip": "Prompt of style B (right side by default). Prompt A "
                                                               "is the positive you connect to the sampler."}),
                **_mask_inputs(CROSS_ATTN_SHARPNESS, "width of each attention map"),
                "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                       "tooltip": "How much of style B's attention is blended in where the mask says B: "
                                                  "0 = prompt A only, 1 = the source's full blend."}),
                **percent_inputs("the blend is applied", step=0.001, source=True),
                "blocks": ("STRING", {"default": "all", "multiline": False,
                                      "tooltip": "Blocks to blend: 'all' (source), or a comma list. U-Net models: "
                                                 "'input', 'middle', 'output' and/or single blocks like 'input 4'. "
                                                 "Flux, Chroma, HiDream: 'double', 'single', 'double 3', 'single "
                                                 "0-9'. SD3 / SD3.5, Qwen-Image, Lumina 2: 'joint', 'joint 0-11'. "
                                                 "Outside them prompt B's text is carried but the image sees A only. At "
                                                 "most 64 entries."}),
            },
            "optional": {
                "mask": MASK_OPTION,
                "pooled_and_guidance": (list(POOLED_CHOICES), {
                    "default": POOLED_CHOICES[0],
                    "tooltip": "Joint-attention models: where the prompt's global inputs (pooled vector; Flux's "
                               "guidance value) come from. from A: the sampled prompt's (an all-B mask then gives B's "
                               "text with A's pooled vector). from B: prompt B's (an all-B mask then samples prompt B "
                               "exactly). mask average: mixed by the mask's mean (both ends exact)."}),
            },
        }

    def patch(self, model, conditioning_b, direction, shape, center, sharpness, transition_width, strength,
              start_percent, end_percent, blocks, mask=None, pooled_and_guidance=POOLED_CHOICES[0]):
        if start_percent > end_percent:
            raise BlendspaceInputError(f"start_percent ({start_percent}) is after end_percent ({end_percent}).")
        if not conditioning_b or not hasattr(conditioning_b[0][0], "shape"):
            raise BlendspaceInputError("conditioning_b is empty: connect a CLIP Text Encode output.")
        context_b = conditioning_b[0][0]
        if mask is not None:
            user = (mask[:1] if mask.dim() == 3 else mask).float().clamp(0.0, 1.0)

            def mask_a_at(h, w, device):
                return resize_mask(user, h, w).to(device)
        else:
            def mask_a_at(h, w, device):
                return style_mask(h, w, direction, shape, center, sharpness, transition_width, device=device)
        if two_prompt_route(model, "Cross-Attention Interpolate") == "joint":
            return (blend_prompt_b_joint(model, conditioning_b, mask_a_at, strength, start_percent, end_percent, blocks,
                                         pooled_and_guidance),)
        if pooled_and_guidance != POOLED_CHOICES[0]:
            raise BlendspaceInputError(f"pooled_and_guidance '{pooled_and_guidance}' is for joint-attention models "
                                       "(Flux, SD3...): on U-Net models prompt B's attention only is blended; leave it "
                                       f"at '{POOLED_CHOICES[0]}'.")
        return (blend_prompt_b(model, context_b, mask_a_at, strength, start_percent, end_percent, blocks),)


NODES = [DualStyleMask, DualStyleEpsilonMix, CrossAttnInterpolate]
