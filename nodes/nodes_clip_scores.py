"""BlendspaceClipScore: CLIP similarity of a result to reference images and texts, whole and per half,
directional CLIP, and the seam's total variation (dual-style-image-gen's evaluation). Math: ``blendspace/clip_scores.py``."""

from __future__ import annotations

import torch

from ..blendspace.clip_scores import SPLITS, centre_strip_tv, cosine, directional, halves
from ..blendspace.contact_sheet import annotate
from ..blendspace.errors import BlendspaceInputError
from .inputs import OPEN_CLIP_TYPE
from .runtime.clip_vision import ImageTower, on_compute_device


def _text_or_none(text: str | None) -> str | None:
    return text if text and text.strip() else None


class ClipScore:
    NODE_ID = "BlendspaceClipScore"
    DISPLAY_NAME = "CLIP Score (image, text, halves, directional)"
    SEARCH_ALIASES = ["clip score", "clip similarity", "image similarity", "directional clip", "evaluate", "metric"]
    CATEGORY = "Blendspace/measure"
    DESCRIPTION = (
        "Measures a mix as dual-style-image-gen judges dual-style results. CLIP-I: cosine similarity of the CLIP image "
        "embeddings "
        "of the result and a reference image, whole and per half (left/right or top/bottom, each half against its own "
        "reference). CLIP-T (open_clip only, as dual-style-image-gen's CLIP score): the result against a text, whole and per "
        "half. "
        "Directional CLIP: the change from a source image to the result against the change from the source to the "
        "reference image, or (dual-style-image-gen's dCLIP) against the change from source_text to text_a. Also the total "
        "variation of the central strip (seam smoothness). Outputs the numbers (means over the batch), a report per "
        "image and the result annotated with it. Images are encoded as CLIP expects (resize, centre crop).")
    RETURN_TYPES = ("FLOAT", "FLOAT", "FLOAT", "FLOAT", "STRING", "IMAGE", "FLOAT", "FLOAT", "FLOAT", "FLOAT")
    RETURN_NAMES = ("clip_score", "first_half", "second_half", "directional", "report", "annotated", "clip_t",
                    "clip_t_first_half", "clip_t_second_half", "directional_text")
    OUTPUT_TOOLTIPS = ("CLIP-I: whole result vs reference_a (0 without reference_a).",
                       "CLIP-I: first half (left or top) vs reference_a (0 when split is whole).",
                       "CLIP-I: second half (right or bottom) vs reference_b (0 when split is whole).",
                       "Directional CLIP toward reference_a (0 without source_image and reference_a).",
                       "All scores per image, as text.", "The result with the report drawn on it.",
                       "CLIP-T: whole result vs text_a (0 without text_a).",
                       "CLIP-T: first half vs text_a (0 when split is whole).",
                       "CLIP-T: second half vs text_b (0 when split is whole).",
                       "Dual-style-image-gen's dCLIP: result - source_image against text_a - source_text (0 without them).")
    FUNCTION = "score"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": ("IMAGE", {"tooltip": "The result to measure (a batch is scored image by image)."}),
                "split": (list(SPLITS), {"default": "left/right",
                                         "tooltip": "Also score each half: left/right (dual-style-image-gen) or top/bottom."}),
            },
            "optional": {
                "clip_vision": ("CLIP_VISION", {"tooltip": "A core CLIP vision model to measure with (image scores "
                                                           "only); or connect open_clip instead."}),
                "open_clip": (OPEN_CLIP_TYPE, {"tooltip": "An open_clip model (dual-style-image-gen used ViT-B/32): image and "
                                                          "text scores."}),
                "reference_a": ("IMAGE", {"tooltip": "What the result (or its first half) should resemble, e.g. an "
                                                     "image in style A."}),
                "reference_b": ("IMAGE", {"tooltip": "Reference for the second half (default: reference_a)."}),
                "source_image": ("IMAGE", {"tooltip": "The image before the edit, for directional CLIP."}),
                "text_a": ("STRING", {"default": "", "multiline": True,
                                      "tooltip": "Text the result (and its first half) should match (dual-style-image-gen's "
                                                 "decode text, or decode_text_left). Needs open_clip."}),
                "text_b": ("STRING", {"default": "", "multiline": True,
                                      "tooltip": "Text for the second half (decode_text_right; default text_a)."}),
                "source_text": ("STRING", {"default": "", "multiline": True,
                                           "tooltip": "Text of the source image (dual-style-image-gen's encode text, 'A picture "
                                                      "of ...'), for the text directional score."}),
            },
        }

    def score(self, image, split, clip_vision=None, open_clip=None, reference_a=None, reference_b=None,
              source_image=None, text_a="", text_b="", source_text=""):
        if split not in SPLITS:
            raise BlendspaceInputError(f"split must be one of {SPLITS}")
        side = {"left/right": 2, "top/bottom": 1}.get(split)
        if side is not None and image.shape[side] < 2:
            raise BlendspaceInputError(f"image is {image.shape[2]}x{image.shape[1]} px: it has no two halves to score "
                                       f"with split {split!r}; choose split 'whole' or a larger image.")
        tower = ImageTower(clip_vision, open_clip)
        texts = _Texts(_text_or_none(text_a), _text_or_none(text_b), _text_or_none(source_text))
        _check_references(tower, reference_a, reference_b, texts)

        def embed(images):
            return tower.encode(images).float().cpu()

        whole_e = embed(image)
        parts = halves(image, split) if split != "whole" else None
        half_e = (embed(parts[0]), embed(parts[1])) if parts else None
        src = embed(source_image[:1]) if source_image is not None else None
        zero = torch.zeros(image.shape[0])
        img = dict(whole=zero, first=zero, second=zero, dirs=zero)
        if reference_a is not None:
            ref_a = embed(reference_a[:1])
            ref_b = embed(reference_b[:1]) if reference_b is not None else ref_a
            img["whole"] = cosine(whole_e, ref_a)
            if half_e:
                img["first"], img["second"] = cosine(half_e[0], ref_a), cosine(half_e[1], ref_b)
            if src is not None:
                img["dirs"] = directional(whole_e, src, src, ref_a)
        txt = dict(whole=zero, first=zero, second=zero, dirs=zero)
        if texts.a is not None:
            txt.update(_text_scores(tower, texts, whole_e, half_e, src))
        names = ("L", "R") if split == "left/right" else ("T", "B")
        lines = _report_lines(img if reference_a is not None else None, txt if texts.a is not None else None,
                              bool(half_e), src is not None, texts.source is not None, centre_strip_tv(image), names)
        annotated = torch.cat([annotate(image[i:i + 1], lines[i]) for i in range(image.shape[0])])
        return (float(img["whole"].mean()), float(img["first"].mean()), float(img["second"].mean()),
                float(img["dirs"].mean()), "\n".join(lines), annotated, float(txt["whole"].mean()),
                float(txt["first"].mean()), float(txt["second"].mean()), float(txt["dirs"].mean()))


class _Texts:
    """The three texts of a score, ``None`` where empty."""

    def __init__(self, a: str | None, b: str | None, source: str | None):
        self.a, self.b, self.source = a, b, source


def _check_references(tower: ImageTower, reference_a, reference_b, texts: _Texts) -> None:
    if reference_a is None and texts.a is None:
        raise BlendspaceInputError("nothing to compare with: connect reference_a (an image) or fill text_a.")
    filled = [n for n, t in (("text_a", texts.a), ("text_b", texts.b), ("source_text", texts.source)) if t]
    if filled and tower.open_clip is None:
        raise BlendspaceInputError(f"{' and '.join(filled)}: text scores need a text tower: connect an open_clip model "
                                   "(core CLIP vision models have none), or clear the texts.")
    if reference_b is not None and reference_a is None:
        raise BlendspaceInputError("reference_b is the second half's reference: connect reference_a too.")
    if texts.b is not None and texts.a is None:
        raise BlendspaceInputError("text_b is the second half's text: fill text_a too.")


def _text_scores(tower: ImageTower, texts: _Texts, whole_e, half_e, src) -> dict:
    """CLIP-T whole and per half, and dual-style-image-gen's text dCLIP, through the open_clip text tower."""
    with on_compute_device(tower.open_clip):
        t = tower.open_clip.encode_texts([texts.a, texts.b or texts.a, texts.source or texts.a])
    out = {"whole": cosine(whole_e, t[:1])}
    if half_e:
        out["first"], out["second"] = cosine(half_e[0], t[:1]), cosine(half_e[1], t[1:2])
    if src is not None and texts.source is not None:
        out["dirs"] = directional(whole_e, src, t[2:3], t[:1])
    return out


def _report_lines(img: dict | None, txt: dict | None, halves_on: bool, has_source: bool, has_source_text: bool,
                  tv: torch.Tensor, names: tuple[str, str]) -> list[str]:
    """One report line per image: the image scores, the text scores (where measured) and the seam TV."""
    lines = []
    for i in range(tv.shape[0]):
        row = []
        if img is not None:
            row.append(f"CLIP-I {img['whole'][i]:.4f}")
            if halves_on:
                row += [f"{names[0]} {img['first'][i]:.4f}", f"{names[1]} {img['second'][i]:.4f}"]
            if has_source:
                row.append(f"dCLIP-I {img['dirs'][i]:.4f}")
        if txt is not None:
            row.append(f"CLIP-T {txt['whole'][i]:.4f}")
            if halves_on:
                row += [f"{names[0]} {txt['first'][i]:.4f}", f"{names[1]} {txt['second'][i]:.4f}"]
            if has_source and has_source_text:
                row.append(f"dCLIP {txt['dirs'][i]:.4f}")
        row.append(f"seam TV {tv[i]:.1f}")
        lines.append(f"image {i}: " + "  ".join(row))
    return lines


NODES = [ClipScore]
