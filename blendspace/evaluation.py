"""dual-style-image-gen's evaluation of dual-style results on any folder of outputs.

Background and source: docs/techniques.md, "Evaluation and CLIP scores".

Per result image (``gen``) and its source photo (``orig``), with CLIP image / text embeddings ``f``:

* CLIP score ``cos(f(gen), f(decode_text))``; left / right: the left half against
  ``decode_text_left`` and the right half against ``decode_text_right``;
* directional CLIP ``cos(norm(f(gen) - f(orig)), norm(f(decode_text) - f(encode_text)))``;
* PSNR ``10·log10(1 / mse)`` on [0, 1] pixels, L2 ``‖gen - orig‖₂`` over all pixels on [0, 1];
* SSIM, MATLAB style: 11×11 Gaussian window σ 1.5 on 0-255 pixels, valid filtering,
  ``C1 = (0.01·255)²``, ``C2 = (0.03·255)²``, mean over the map and the channels;
* seam smoothness: the central strip's total variation (``clip_scores.centre_strip_tv``) of orig, gen and
  their difference;
* style fidelity (with VGG19 weights): Gram distance ``Σ_layers ‖G(gen) - G(ref)‖_F`` with
  ``G = F·Fᵀ / (c·h·w)`` on VGG19 ``features`` outputs 5, 10, 19, 28 (conv2_1 … conv5_1, before ReLU),
  averaged over the style's reference images. Faithful quirk (default): references are resized to
  224 and ImageNet-normalised while ``gen`` is used as it is ([0, 1], full size); ``corrected``
  treats both alike.

The source's OpenAI CLIP ViT-B/32 is open_clip's ``ViT-B-32-quickgelu`` with OpenAI's weights.
LPIPS needs its own trained weights and is not computed. "CLIPEnergy" is never computed by dual-style-image-gen.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .clip_scores import centre_strip_tv
from .errors import BlendspaceInputError

VGG_LAYERS = (5, 10, 19, 28)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def psnr(gen: torch.Tensor, orig: torch.Tensor) -> float:
    """PSNR of two images in [0, 1] (any layout), MSE over all values."""
    mse = F.mse_loss(gen.double(), orig.double()).item()
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)


def l2(gen: torch.Tensor, orig: torch.Tensor) -> float:
    return (gen.double() - orig.double()).norm().item()


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim(gen: torch.Tensor, orig: torch.Tensor) -> float:
    """MATLAB-style SSIM of two (H, W, C) images in [0, 1], computed on 0-255."""
    a = (gen.double() * 255).permute(2, 0, 1).unsqueeze(1)  # (C, 1, H, W)
    b = (orig.double() * 255).permute(2, 0, 1).unsqueeze(1)
    w = _gaussian_window().view(1, 1, 11, 11)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = F.conv2d(a, w), F.conv2d(b, w)
    var_a = F.conv2d(a * a, w) - mu_a ** 2
    var_b = F.conv2d(b * b, w) - mu_b ** 2
    cov = F.conv2d(a * b, w) - mu_a * mu_b
    m = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return m.mean(dim=(1, 2, 3)).mean().item()


def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix F·Fᵀ / (c·h·w) of (1, c, h, w) features."""
    _, c, h, w = features.shape
    f = features.reshape(c, h * w).double()
    return f @ f.T / (c * h * w)


def vgg_features(vgg_features_module: torch.nn.Module, x: torch.Tensor,
                 layers: Sequence[int] = VGG_LAYERS) -> list[torch.Tensor]:
    """Outputs of ``vgg.features`` at ``layers`` for a (1, 3, H, W) input."""
    out = []
    for i, layer in enumerate(vgg_features_module):
        x = layer(x)
        if i in layers:
            out.append(x)
        if i >= max(layers):
            break
    return out


def imagenet_normalize(x: torch.Tensor) -> torch.Tensor:
    m = torch.tensor(IMAGENET_MEAN, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(IMAGENET_STD, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - m) / s


def gram_distance(vgg_features_module: torch.nn.Module, gen: torch.Tensor, refs: Sequence[torch.Tensor],
                  faithful: bool = True) -> float:
    """dual-style-image-gen's style distance of a (H, W, 3) image to reference images (lower = closer to the style)."""
    def prep(img: torch.Tensor, is_ref: bool) -> torch.Tensor:
        x = img.permute(2, 0, 1).unsqueeze(0).float()
        if is_ref or not faithful:
            x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
            x = imagenet_normalize(x)
        return x

    with torch.no_grad():
        g_gen = [gram(f) for f in vgg_features(vgg_features_module, prep(gen, False))]
        total = 0.0
        for ref in refs:
            g_ref = [gram(f) for f in vgg_features(vgg_features_module, prep(ref, True))]
            total += sum((a - b).norm().item() for a, b in zip(g_gen, g_ref, strict=True))
    return total / len(refs)


@dataclass
class Sample:
    """One result to evaluate (the manifest's entry)."""

    result: Path
    original: Path
    encode_text: str
    decode_text: str
    decode_text_left: str | None = None
    decode_text_right: str | None = None


def load_image(path: Path) -> torch.Tensor:
    """(H, W, 3) float in [0, 1]."""
    import numpy as np
    from PIL import Image
    with Image.open(path) as im:
        return torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0)


def samples_from_manifest(path: Path) -> list[Sample]:
    """A JSON list of ``{"result", "original", "encode_text", "decode_text"[, "decode_text_left",
    "decode_text_right"]}``; relative paths are relative to the manifest."""
    entries = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for i, e in enumerate(entries):
        missing = [k for k in ("result", "original", "encode_text", "decode_text") if k not in e]
        if missing:
            raise BlendspaceInputError(f"{path} entry {i} lacks {missing}")
        out.append(Sample(path.parent / e["result"], path.parent / e["original"], e["encode_text"], e["decode_text"],
                          e.get("decode_text_left"), e.get("decode_text_right")))
    return out


def samples_from_folders(results: Path, originals: Path, encode_text: str, decode_text: str,
                         left: str | None = None, right: str | None = None) -> list[Sample]:
    """Every image in ``results`` with the image of the same name in ``originals``, one set of texts."""
    out = []
    for res in sorted(p for p in results.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        orig = originals / res.name
        if not orig.is_file():
            cands = [p for p in originals.iterdir() if p.stem == res.stem and p.suffix.lower() in IMAGE_SUFFIXES]
            if not cands:
                raise BlendspaceInputError(f"no original for {res.name} in {originals} (same file name expected)")
            orig = cands[0]
        out.append(Sample(res, orig, encode_text, decode_text, left, right))
    if not out:
        raise BlendspaceInputError(f"no images in {results}")
    return out


COLUMNS = ("result", "clip", "clip_left", "clip_right", "dclip", "psnr", "ssim", "l2", "tv_orig", "tv_gen", "tv_delta",
           "gram")


def evaluate(samples: Sequence[Sample], image_embed: Callable[[torch.Tensor], torch.Tensor],
             text_embed: Callable[[list[str]], torch.Tensor], vgg: torch.nn.Module | None = None,
             style_refs: Sequence[torch.Tensor] = (), faithful_gram: bool = True) -> list[dict]:
    """The per-sample table. ``image_embed`` maps an IMAGE batch (B, H, W, 3) to CLIP embeddings and
    ``text_embed`` a list of texts to CLIP text embeddings, from the same model."""
    rows = []
    for s in samples:
        gen, orig = load_image(s.result), load_image(s.original)
        if gen.shape != orig.shape:
            orig = F.interpolate(orig.permute(2, 0, 1)[None], size=gen.shape[:2], mode="bicubic",
                                 align_corners=False)[0].permute(1, 2, 0).clamp(0, 1)
        texts = [s.decode_text, s.encode_text, s.decode_text_left or s.decode_text,
                 s.decode_text_right or s.decode_text]
        t = text_embed(texts).float()
        w = gen.shape[1]
        e = image_embed(torch.stack([gen, orig])).float()
        halves = image_embed(gen[None, :, : w // 2]).float(), image_embed(gen[None, :, w - w // 2:]).float()
        row = {"result": s.result.name,
               "clip": F.cosine_similarity(e[:1], t[:1]).item(),
               "clip_left": F.cosine_similarity(halves[0], t[2:3]).item(),
               "clip_right": F.cosine_similarity(halves[1], t[3:4]).item(),
               "dclip": F.cosine_similarity(F.normalize(e[:1] - e[1:2], dim=-1), F.normalize(t[:1] - t[1:2], dim=-1)).item(),
               "psnr": psnr(gen, orig), "ssim": ssim(gen, orig), "l2": l2(gen, orig)}
        tv = centre_strip_tv(torch.stack([orig, gen]))
        row.update(tv_orig=tv[0].item(), tv_gen=tv[1].item(), tv_delta=(tv[1] - tv[0]).item())
        row["gram"] = gram_distance(vgg, gen, style_refs, faithful_gram) if vgg is not None and style_refs else None
        rows.append(row)
    return rows


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r[k] is None else (f"{r[k]:.6f}" if isinstance(r[k], float) else r[k]))
                         for k in COLUMNS})
    means = {k: sum(r[k] for r in rows) / len(rows) for k in COLUMNS[1:] if all(r[k] is not None for r in rows)}
    writer.writerow({"result": "mean", **{k: f"{v:.6f}" for k, v in means.items()}})
    return buf.getvalue()
