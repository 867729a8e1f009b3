"""Dual-style-image-gen's evaluation script: PSNR / L2 / SSIM / Gram formulas and `python -m blendspace evaluate`."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from blendspace.evaluation import gram, gram_distance, imagenet_normalize, l2, psnr, ssim


def test_psnr_and_l2_agree_as_in_the_sources_table():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(32, 48, 3, generator=g)
    b = (a + 0.1 * torch.randn(32, 48, 3, generator=g)).clamp(0, 1)
    p, d = psnr(b, a), l2(b, a)
    assert d == pytest.approx(math.sqrt(a.numel() * 10 ** (-p / 10)), rel=1e-9)
    # dual-style-image-gen's bear row: PSNR 14.22 goes with L2 172.5 at 512x512x3
    assert math.sqrt(512 * 512 * 3 * 10 ** (-14.22 / 10)) == pytest.approx(172.5, abs=0.3)
    assert psnr(a, a) == float("inf")


def test_ssim_matches_a_windowed_loop():
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(14, 15, 2, generator=g), torch.rand(14, 15, 2, generator=g)
    x = torch.arange(11, dtype=torch.float64) - 5
    w1 = torch.exp(-x ** 2 / (2 * 1.5 ** 2))
    w = torch.outer(w1, w1) / w1.sum() ** 2
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    vals = []
    for ch in range(2):
        for i in range(14 - 10):
            for j in range(15 - 10):
                pa, pb = a[i:i + 11, j:j + 11, ch].double() * 255, b[i:i + 11, j:j + 11, ch].double() * 255
                ma, mb = (w * pa).sum(), (w * pb).sum()
                va, vb = (w * pa * pa).sum() - ma ** 2, (w * pb * pb).sum() - mb ** 2
                cv = (w * pa * pb).sum() - ma * mb
                vals.append(((2 * ma * mb + c1) * (2 * cv + c2) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2))).item())
    assert ssim(a, b) == pytest.approx(sum(vals) / len(vals), rel=1e-9)
    assert ssim(a, a) == pytest.approx(1.0)


def test_gram_distance_faithful_and_corrected():
    torch.manual_seed(0)
    net = torch.nn.Sequential(*[torch.nn.Conv2d(3 if i == 0 else 4, 4, 3, padding=1) for i in range(30)]).eval()
    gen = torch.rand(40, 40, 3)
    refs = [torch.rand(30, 50, 3), torch.rand(64, 64, 3)]
    with torch.no_grad():
        def feats(x):
            out = []
            for i, layer in enumerate(net):
                x = layer(x)
                if i in (5, 10, 19, 28):
                    out.append(x)
            return out

        def prep(img, resize):
            x = img.permute(2, 0, 1)[None]
            if resize:
                x = imagenet_normalize(torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear",
                                                                       align_corners=False))
            return x

        for faithful in (True, False):
            fg = feats(prep(gen, not faithful))
            expected = sum(sum((gram(a) - gram(b)).norm().item() for a, b in zip(fg, feats(prep(r, True)), strict=True))
                           for r in refs) / 2
            assert gram_distance(net, gen, refs, faithful) == pytest.approx(expected, rel=1e-6)
    f = torch.randn(1, 4, 3, 5)
    assert torch.allclose(gram(f), (f.view(4, 15) @ f.view(4, 15).T).double() / 60)


def _save(path, arr):
    Image.fromarray((arr.numpy() * 255).round().astype(np.uint8)).save(path)


def test_evaluate_command_on_a_folder(comfy, tmp_path, capsys):
    from blendspace.__main__ import main
    from blendspace.open_clip_models import AUTO, load_open_clip
    weights = comfy.tiny.write_tiny_open_clip(str(tmp_path / "models"), 5)
    res, orig = tmp_path / "results", tmp_path / "originals"
    res.mkdir(), orig.mkdir()
    g = torch.Generator().manual_seed(3)
    for name in ("image_4.png", "image_7.png"):
        _save(orig / name, torch.rand(64, 64, 3, generator=g))
        _save(res / name, torch.rand(64, 64, 3, generator=g))
    out = tmp_path / "table.csv"
    texts = ["A picture of a black bear walking on grass", "A Minecraft-inspired rendering of a black bear",
             "A Van Gogh-style painting of a black bear"]
    assert main(["evaluate", "--open-clip", weights, "--architecture", AUTO, "--results", str(res), "--originals",
                 str(orig), "--encode-text", texts[0], "--decode-text", texts[1] + " and " + texts[2],
                 "--decode-text-left", texts[1], "--decode-text-right", texts[2], "--out", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["result"] for r in rows] == ["image_4.png", "image_7.png", "mean"] and rows[0]["gram"] == ""
    model = load_open_clip(weights)
    from blendspace.evaluation import load_image
    gen, src = load_image(res / "image_4.png"), load_image(orig / "image_4.png")
    e = model.encode_images(torch.stack([gen, src]))
    t = model.encode_texts([texts[1] + " and " + texts[2], texts[0], texts[1], texts[2]])
    cos = torch.nn.functional.cosine_similarity
    n = torch.nn.functional.normalize
    assert float(rows[0]["clip"]) == pytest.approx(cos(e[:1], t[:1]).item(), abs=1e-5)
    assert float(rows[0]["clip_left"]) == pytest.approx(cos(model.encode_images(gen[None, :, :32]), t[2:3]).item(),
                                                        abs=1e-5)
    assert float(rows[0]["dclip"]) == pytest.approx(cos(n(e[:1] - e[1:], dim=-1), n(t[:1] - t[1:2], dim=-1)).item(),
                                                    abs=1e-5)
    assert float(rows[0]["psnr"]) == pytest.approx(psnr(gen, src), abs=1e-5)
    assert float(rows[2]["ssim"]) == pytest.approx((float(rows[0]["ssim"]) + float(rows[1]["ssim"])) / 2, abs=1e-5)
    (res / "extra.png").write_bytes((res / "image_4.png").read_bytes())
    capsys.readouterr()
    assert main(["evaluate", "--open-clip", weights, "--architecture", AUTO, "--results", str(res), "--originals",
                 str(orig), "--encode-text", "a", "--decode-text", "b"]) == 1
    err = capsys.readouterr().err
    assert "no original for" in err and len(err.strip().splitlines()) == 1, err
