"""Measuring a mix (dual-style-image-gen's evaluation): the score formulas and BlendspaceClipScore on a tiny CLIP."""

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
    whole, first, second, dirs, report, annotated, *text = node.score(image2, "left/right", clip_vision=cv,
                                                                       reference_a=ref_a, reference_b=ref_b,
                                                                       source_image=src)

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
    assert report.count("\n") == 1 and "L " in report and "dCLIP-I" in report and "CLIP-T" not in report
    assert text == [0.0, 0.0, 0.0, 0.0]
    assert annotated.shape == image2.shape and not torch.equal(annotated[:, :12, :60], image2[:, :12, :60])
    assert torch.equal(image2, before)
    only = node.score(image, "whole", clip_vision=cv, reference_a=ref_a)
    assert only[1] == 0.0 and only[3] == 0.0 and "dCLIP" not in only[4]
    with pytest.raises(ValueError, match="connect an open_clip model"):
        node.score(image, "whole", clip_vision=cv, reference_a=ref_a, text_a="a bear")
    with pytest.raises(ValueError, match="nothing to compare with"):
        node.score(image, "whole", clip_vision=cv)


def test_text_scores_with_open_clip(comfy, tmp_path):
    """CLIP-T whole and per half, and dual-style-image-gen's dCLIP (image change against text change), on a tiny open_clip."""
    oc = comfy.pack.nodes.nodes_open_clip.OpenClipLoader.load_file(comfy.tiny.write_tiny_open_clip(str(tmp_path), 5))
    g = torch.Generator().manual_seed(2)
    image, src = torch.rand(2, 64, 96, 3, generator=g), torch.rand(1, 64, 96, 3, generator=g)
    texts = ["A Minecraft-inspired rendering of a black bear", "A Van Gogh-style painting of a black bear",
             "A picture of a black bear walking on grass"]
    out = comfy.node("BlendspaceClipScore").score(image, "left/right", open_clip=oc, source_image=src, text_a=texts[0],
                                                  text_b=texts[1], source_text=texts[2])
    t = oc.encode_texts(texts)
    e, el, er, es = (oc.encode_images(x) for x in (image, image[:, :, :48], image[:, :, 48:], src))

    def cos(a, b):
        return torch.nn.functional.cosine_similarity(a, b).mean().item()

    n = torch.nn.functional.normalize
    assert out[6] == pytest.approx(cos(e, t[:1]), abs=1e-5)
    assert out[7] == pytest.approx(cos(el, t[:1]), abs=1e-5) and out[8] == pytest.approx(cos(er, t[1:2]), abs=1e-5)
    assert out[9] == pytest.approx(cos(n(e - es, dim=-1), n(t[:1] - t[2:3], dim=-1)), abs=1e-5)
    assert out[0] == 0.0 and "CLIP-T" in out[4] and "dCLIP " in out[4] and "CLIP-I" not in out[4]
