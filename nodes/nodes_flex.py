"""ImageEmbedToPromptMapper: FlexDiffuse image guidance on the prompt's token embeddings.

Math: ``blendspace/flex_mapping.py``. This adapter gets the guide tokens (all 257 CLIP ViT tokens
through the vision model's own post-layernorm and projection, which core CLIPVisionEncode does not
expose, or a guide prompt's tokens) and applies the mapping to every 77-token chunk of every entry.
"""

from __future__ import annotations

import logging

import torch

from ..blendspace.conditioning import check_conditioning
from ..blendspace.errors import BlendspaceInputError
from ..blendspace.flex_mapping import (
    ALIGNMENTS,
    ORDERS,
    TOKENS,
    FlexSettings,
    channel_slice,
    concept_map,
    direct_guidance,
    tween,
)
from .runtime.clip_vision import image_tokens

log = logging.getLogger("blendspace")
NORMALIZATIONS = ("corrected ([0,1] pixels)", "faithful ([-1,1] pixels, source)")
MODES = ("tween prompt", "direct image guidance")


def _first_tokens(cond, name) -> torch.Tensor:
    check_conditioning(cond, name)
    if cond[0][0].shape[1] < TOKENS:
        raise BlendspaceInputError(f"{name} has {cond[0][0].shape[1]} tokens: expected a CLIP text prompt of at least "
                                   f"{TOKENS} tokens (CLIP Text Encode).")
    return cond[0][0][0, :TOKENS].float().cpu()


class ImageEmbedToPromptMapper:
    NODE_ID = "ImageEmbedToPromptMapper"
    DISPLAY_NAME = "Image Embeds to Prompt (FlexDiffuse)"
    SEARCH_ALIASES = ["image prompt", "flexdiffuse", "image to prompt", "style from image", "image guidance", "prompt mix",
                      "tween prompts"]
    CATEGORY = "Blendspace/conditioning"
    DESCRIPTION = (
        "FlexDiffuse: maps a guide image's CLIP embeddings (all 257 ViT tokens, projected) onto the prompt's "
        "77 token embeddings and blends them in, so the prompt reaches what text alone cannot. No adapter weights. "
        "Each prompt token is matched to its most similar image token (softmax of 100·cosine); Linear, Clustered and "
        "Threshold guidance set per-token weights, capped by Max Image Guidance. A guide prompt instead of an image "
        "gives text-to-text tweening. Tip from the source: start with Threshold and Clustered at 0.0-0.1 and raise.")
    RETURN_TYPES = ("CONDITIONING", "STRING")
    RETURN_NAMES = ("conditioning", "preview")
    OUTPUT_TOOLTIPS = ("The prompt with image guidance mixed into its tokens (same token count, other settings kept).",
                       "Per-token match, similarity and weight of the first prompt, to tune the settings.")
    FUNCTION = "map"

    @classmethod
    def INPUT_TYPES(cls):
        def f(default, lo, hi, tip):
            return ("FLOAT", {"default": default, "min": lo, "max": hi, "step": 0.01, "tooltip": tip})
        return {
            "required": {
                "conditioning": ("CONDITIONING", {"tooltip": "The prompt to guide (CLIP Text Encode output)."}),
                "linear_start": f(0.0, -1.0, 1.0, "Linear guidance at the first token (source README: 0.0; UI: 0.1)."),
                "linear_end": f(0.5, -1.0, 1.0, "Linear guidance at the last token; weights rise linearly along the "
                                                "prompt (source: 0.5)."),
                "clustered": f(0.25, -1.0, 1.0, "Clustered 'match' guidance: triangles of weight on the best-matching "
                                                "tokens (source README: 0.25; UI: 0.15). Negative pushes away."),
                "threshold_mult": f(0.25, -1.0, 1.0, "Threshold 'match' guidance: this weight on every token whose "
                                                     "similarity reaches the floor (source: 0.25)."),
                "threshold_floor": f(0.75, 0.0, 1.0, "Similarity a token needs for threshold guidance (source: 0.75; "
                                                     "the experiments lower it to 0.1-0.2)."),
                "max_guidance": f(0.35, 0.0, 1.0, "Max Image Guidance: upper cap of every token's weight (source: "
                                                  "0.35; tuned experiments use 1.0)."),
                "header_max": f(0.0, 0.0, 1.0, "Cap on the header (first) token's weight; the source found that "
                                               "touching the header breaks guidance (experiments: 0)."),
                "mapping_priority": (list(ORDERS), {"default": "Best Fit",
                                                    "tooltip": "Best Fit: globally best matches first. Text Order: "
                                                               "prompt tokens in order. Direct: image token k to "
                                                               "prompt slot k."}),
                "reuse_tokens": ("BOOLEAN", {"default": True,
                                             "tooltip": "Let one image token serve several prompt tokens (source "
                                                        "'Reuse Latents': on)."}),
                "token_alignment": (list(ALIGNMENTS), {"default": "corrected",
                                                       "tooltip": "corrected (default): each token blends with its own "
                                                                  "match; similarities in float64; concepts are also "
                                                                  "mapped for a guide prompt. faithful: as the source, "
                                                                  "the off-by-one (token k gets token k+1's match), "
                                                                  "similarities in float32, concepts mapped only for "
                                                                  "a guide image."}),
                "image_normalization": (list(NORMALIZATIONS), {"default": NORMALIZATIONS[0],
                                                               "tooltip": "corrected (default): [0,1] pixels. faithful: "
                                                                          "as the source, long side 512, short side a "
                                                                          "multiple of 64, then CLIP's normalisation on "
                                                                          "[-1,1] pixels (needs the IMAGE input)."}),
                "mode": (list(MODES), {"default": "tween prompt",
                                       "tooltip": "tween prompt: blend the prompt toward the guide. direct image "
                                                  "guidance: replace the prompt by the first 77 image tokens (the "
                                                  "source: 'generates very random things')."}),
            },
            "optional": {
                "clip_vision": ("CLIP_VISION", {"tooltip": "The CLIP vision model (Load CLIP Vision); its own "
                                                           "post-layernorm and projection map all 257 tokens."}),
                "clip_vision_output": ("CLIP_VISION_OUTPUT", {"tooltip": "The guide image encoded by core CLIP Vision "
                                                                         "Encode with the same model."}),
                "image": ("IMAGE", {"tooltip": "The guide image (needed for the faithful normalisation, or instead of "
                                               "clip_vision_output)."}),
                "concept_conditioning": ("CONDITIONING", {"tooltip": "Optional 'mapping concepts' prompt (e.g. 'creepy "
                                                                     "tree'): prompt tokens that match a concept (> 0.9) "
                                                                     "are replaced by that concept's guide token (with a "
                                                                     "guide prompt only in corrected alignment; the "
                                                                     "source maps concepts for guide images only)."}),
                "guide_conditioning": ("CONDITIONING", {"tooltip": "Text-to-text tweening: a guide PROMPT instead of an "
                                                                   "image (the source's text-to-text tweening)."}),
            },
        }

    def map(self, conditioning, linear_start, linear_end, clustered, threshold_mult, threshold_floor, max_guidance,
            header_max, mapping_priority, reuse_tokens, token_alignment, image_normalization, mode, clip_vision=None,
            clip_vision_output=None, image=None, concept_conditioning=None, guide_conditioning=None):
        check_conditioning(conditioning, "conditioning")
        cfg = FlexSettings(linear_start, linear_end, clustered, threshold_mult, threshold_floor, max_guidance,
                           header_max, mapping_priority, bool(reuse_tokens), token_alignment)
        if mode not in MODES or image_normalization not in NORMALIZATIONS:
            raise BlendspaceInputError(f"mode must be one of {MODES}; image_normalization one of {NORMALIZATIONS}.")
        if guide_conditioning is not None:
            guide = _first_tokens(guide_conditioning, "guide_conditioning")
            guide_name = "the guide prompt"
        else:
            if clip_vision is None:
                raise BlendspaceInputError("connect a CLIP_VISION model (Load CLIP Vision) and the guide image, or a "
                                           "guide_conditioning for text-to-text tweening.")
            guide = image_tokens(clip_vision, clip_vision_output, image, image_normalization == NORMALIZATIONS[1])
            guide_name = "the CLIP vision model"
        concept = _concept_tokens(concept_conditioning, guide_conditioning is not None, token_alignment)
        width = conditioning[0][0].shape[-1]
        ch = channel_slice(width, guide.shape[-1], guide_name)
        if concept is not None:
            concept = concept[:, ch] if concept.shape[-1] == width else concept
        out, preview = [], None
        for tokens, extra in ((e[0], e[1]) for e in conditioning):
            if tokens.shape[1] % TOKENS:
                raise BlendspaceInputError(f"conditioning has {tokens.shape[1]} tokens, not a multiple of {TOKENS}: "
                                           "connect a CLIP text prompt (CLIP Text Encode of SD1.x, SD2.x or SDXL).")
            new = tokens.clone()
            for b in range(tokens.shape[0]):
                for start in range(0, tokens.shape[1], TOKENS):
                    txt = tokens[b, start:start + TOKENS, ch].float().cpu()
                    if mode == MODES[1]:
                        mixed = direct_guidance(txt, guide)
                    else:
                        res = tween(txt, guide, cfg)
                        mixed = res.tokens
                        if concept is not None:
                            mixed, _ = concept_map(mixed, txt, guide, concept, dtype=cfg.dtype)
                        if preview is None:
                            preview = _preview(res, cfg)
                    new[b, start:start + TOKENS, ch] = mixed.to(device=new.device, dtype=new.dtype)
            out.append([new, dict(extra)])
        if preview is None:
            preview = "direct image guidance: the prompt tokens were replaced by the first 77 image tokens"
        return (out, preview)


def _concept_tokens(concept_conditioning, text_guide: bool, token_alignment: str):
    """The concept prompt's tokens, or None: not connected, or a guide prompt in faithful alignment (the source
    maps concepts only when it guides with an image)."""
    if concept_conditioning is None:
        return None
    if text_guide and token_alignment == ALIGNMENTS[1]:
        log.warning("Blendspace: faithful alignment maps concepts only with a guide image, as the source; "
                    "concept_conditioning is ignored for the guide prompt (choose corrected to use it).")
        return None
    return _first_tokens(concept_conditioning, "concept_conditioning")


def _preview(res, cfg: FlexSettings) -> str:
    scores = res.rows[:, 1]
    lines = [f"FlexDiffuse mapping ({cfg.order}, reuse {'on' if cfg.reuse else 'off'}, {cfg.alignment}); "
             f"mean similarity {float(scores.mean()) * 100:.2f}%",
             "token  guide-token  similarity  weight  applied"]
    for k in range(TOKENS):
        a = res.applied[k]
        applied = "replaced" if torch.isnan(a) else f"{float(a):.3f}"
        lines.append(f"{k:5d}  {int(res.rows[k, 0]):11d}  {float(scores[k]) * 100:9.2f}%  {float(res.weights[k]):6.3f}  "
                     f"{applied}")
    return "\n".join(lines)


NODES = [ImageEmbedToPromptMapper]
