"""Measuring a mix (seed 002's evaluation): the score formulas and BlendspaceClipScore on a tiny CLIP."""

from __future__ import annotations

import math

import pytest
import torch

from blendspace.clip_scores import centre_strip_tv, cosine, directional, halves


def test_tv_of_the_centre_strip_matches_the_source_loops():
    g = torch.Generator().manual_seed(0)
    img = torch.rand(1, 6, 20, 3, generator=g)
    lo, hi = int(20 / 2 - 2), int(20 / 2 + 2)
    total = 0.0
    for c in range(3):
        for y in range(6):
            for x in range(lo, hi - 1):
                total += math.sqrt((img[0, y, x + 1, c] - img[0, y, x, c]).item() ** 2 + 1e-6)
        for y in range(5):
            for x in range(lo, hi):
                total += math.sqrt((img[0, y + 1, x, c] - img[0, y, x, c]).item() ** 2 + 1e-6)
    assert centre_strip_tv(img).item() == pytest.approx(total, rel=1e-5)


def test_cosine_directional_and_halves():
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0]])
    assert cosine(a, b).item() == pytest.approx(1 / math.sqrt(2))
    src, res, to = torch.tensor([[1.0, 1.0]]), torch.tensor([[3.0, 1.0]]), torch.tensor([[1.0, 4.0]])
    assert directional(res, src, src, to).item() == pytest.approx(0.0, abs=1e-6)
    img = torch.arange(2 * 4 * 6 * 3, dtype=torch.float32).view(2, 4, 6, 3)
    left, right = halves(img, "left/right")
    assert torch.equal(left, img[:, :, :3]) and torch.equal(right, img[:, :, 3:])
    top, bottom = halves(img, "top/bottom")
    assert torch.equal(top, img[:, :2]) and torch.equal(bottom, img[:, 2:])


def test_clip_score_node(comfy):
    cv = comfy.tiny.tiny_clip_vision(3)
    g = torch.Generator().manual_seed(1)
    image, ref_a, ref_b, src = (torch.rand(1, 64, 96, 3, generator=g) for _ in range(4))
    image2 = torch.cat([image, torch.rand(1, 64, 96, 3, generator=g)])
    before = image2.clone()
    node = comfy.node("BlendspaceClipScore")
    whole, first, second, dirs, report, annotated = node.score(cv, image2, ref_a, "left/right", ref_b, src)

    def emb(x):
        return cv.encode_image(x)["image_embeds"].float()

    ea, eb, es = emb(ref_a), emb(ref_b), emb(src)
    exp_whole = torch.nn.functional.cosine_similarity(emb(image2), ea).mean().item()
    exp_first = torch.nn.functional.cosine_similarity(emb(image2[:, :, :48]), ea).mean().item()
    exp_second = torch.nn.functional.cosine_similarity(emb(image2[:, :, 48:]), eb).mean().item()
    d = torch.nn.functional.normalize(emb(image2) - es, dim=-1)
    t = torch.nn.functional.normalize(ea - es, dim=-1)
    exp_dir = (d * t).sum(-1).mean().item()
    assert whole == pytest.approx(exp_whole, abs=1e-5) and first == pytest.approx(exp_first, abs=1e-5)
    assert second == pytest.approx(exp_second, abs=1e-5) and dirs == pytest.approx(exp_dir, abs=1e-5)
    assert report.count("\n") == 1 and "L " in report and "dCLIP" in report
    assert annotated.shape == image2.shape and not torch.equal(annotated[:, :12, :60], image2[:, :12, :60])
    assert torch.equal(image2, before)
    only = node.score(cv, image, ref_a, "whole")
    assert only[1] == 0.0 and only[3] == 0.0 and "dCLIP" not in only[4]
