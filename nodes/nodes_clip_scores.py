"""BlendspaceClipScore: CLIP similarity of a result to reference images, whole and per half, directional CLIP,
and the seam's total variation (seed 002's evaluation). Math: ``blendspace/clip_scores.py``."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..blendspace.clip_scores import SPLITS, centre_strip_tv, cosine, directional, halves
from ..blendspace.latents import BlendspaceInputError


def annotate(images: torch.Tensor, text: str) -> torch.Tensor:
    """A copy of the IMAGE batch with ``text`` drawn on a dark box at the top left of each image."""
    out = []
    for img in images:
        pil = Image.fromarray((img[..., :3].clamp(0, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8))
        draw = ImageDraw.Draw(pil)
        box = draw.multiline_textbbox((4, 4), text)
        draw.rectangle((0, 0, box[2] + 4, box[3] + 4), fill=(0, 0, 0))
        draw.multiline_text((4, 4), text, fill=(255, 255, 255))
        out.append(torch.from_numpy(np.asarray(pil).astype(np.float32) / 255.0))
    return torch.stack(out)


class ClipScore:
    NODE_ID = "BlendspaceClipScore"
    DISPLAY_NAME = "CLIP Score (image, halves, directional)"
    CATEGORY = "Blendspace/measure"
    DESCRIPTION = (
        "Measures a mix as seed 002 judges dual-style results: cosine similarity of the CLIP image embeddings of the "
        "result and a reference image (CLIP-I), the same for each half (left/right or top/bottom, each half against "
        "its own reference), directional CLIP (the change from a source image to the result against the change from "
        "the source to the reference) and the total variation of the central strip (seam smoothness). Outputs the "
        "numbers, a report and the result annotated with it. Images are encoded as CLIP expects (resize, centre crop).")
    RETURN_TYPES = ("FLOAT", "FLOAT", "FLOAT", "FLOAT", "STRING", "IMAGE")
    RETURN_NAMES = ("clip_score", "first_half", "second_half", "directional", "report", "annotated")
    OUTPUT_TOOLTIPS = ("Whole result vs reference_a (mean over the batch).",
                       "First half (left or top) vs reference_a (0 when split is whole).",
                       "Second half (right or bottom) vs reference_b (0 when split is whole).",
                       "Directional CLIP (0 when no source_image is connected).",
                       "All scores per image, as text.", "The result with the report drawn on it.")
    FUNCTION = "score"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "clip_vision": ("CLIP_VISION", {"tooltip": "The CLIP vision model to measure with (seed 002 used "
                                                           "ViT-B/32)."}),
                "image": ("IMAGE", {"tooltip": "The result to measure (a batch is scored image by image)."}),
                "reference_a": ("IMAGE", {"tooltip": "What the result (or its first half) should resemble, e.g. an "
                                                     "image in style A."}),
                "split": (list(SPLITS), {"default": "left/right",
                                         "tooltip": "Also score each half: left/right (seed 002) or top/bottom."}),
            },
            "optional": {
                "reference_b": ("IMAGE", {"tooltip": "Reference for the second half (default: reference_a)."}),
                "source_image": ("IMAGE", {"tooltip": "The image before the edit, for directional CLIP."}),
            },
        }

    def score(self, clip_vision, image, reference_a, split, reference_b=None, source_image=None):
        if split not in SPLITS:
            raise BlendspaceInputError(f"split must be one of {SPLITS}")

        def embed(images):
            return clip_vision.encode_image(images)["image_embeds"].float().cpu()

        ref_a = embed(reference_a[:1])
        ref_b = embed(reference_b[:1]) if reference_b is not None else ref_a
        whole = cosine(embed(image), ref_a)
        first = second = torch.zeros_like(whole)
        if split != "whole":
            h1, h2 = halves(image, split)
            first, second = cosine(embed(h1), ref_a), cosine(embed(h2), ref_b)
        dirs = torch.zeros_like(whole)
        if source_image is not None:
            src = embed(source_image[:1])
            dirs = directional(embed(image), src, src, ref_a)
        tv = centre_strip_tv(image)
        lines = []
        for i in range(image.shape[0]):
            parts = [f"CLIP {whole[i]:.4f}"]
            if split != "whole":
                names = ("L", "R") if split == "left/right" else ("T", "B")
                parts += [f"{names[0]} {first[i]:.4f}", f"{names[1]} {second[i]:.4f}"]
            if source_image is not None:
                parts.append(f"dCLIP {dirs[i]:.4f}")
            parts.append(f"seam TV {tv[i]:.1f}")
            lines.append(f"image {i}: " + "  ".join(parts))
        report = "\n".join(lines)
        annotated = torch.cat([annotate(image[i:i + 1], lines[i]) for i in range(image.shape[0])])
        return (float(whole.mean()), float(first.mean()), float(second.mean()), float(dirs.mean()), report, annotated)


NODES = [ClipScore]
