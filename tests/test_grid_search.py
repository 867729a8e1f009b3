"""The images-mixing pipeline's find-the-best-mix grid search: value parsing, grid order, objective, layout, and the node."""

from __future__ import annotations

import pytest
import torch

from blendspace.contact_sheet import tile
from blendspace.grid_search import (
    MAX_CELLS,
    OBJECTIVES,
    PARAMETERS,
    best_index,
    grid_cells,
    objective,
    parse_values,
)

FAST = "fast (decoder only)"


def test_values_lists_and_ranges():
    assert parse_values("0.2, 0.8", "x") == [0.2, 0.8]
    assert parse_values("0.5:0.7:0.1", "x") == [0.5, 0.6, 0.7]
    assert parse_values("0.05:0.98:0.31; 1", "x") == [0.05, 0.36, 0.67, 0.98, 1.0]
    for bad, msg in (("", "at least one"), ("a", "cannot read"), ("0.5:0.7:0", "cannot read"), ("1.5", "outside")):
        with pytest.raises(ValueError, match=msg):
            parse_values(bad, "noise_strength")


def test_grid_order_objective_and_ties():
    cells = grid_cells({"noise_strength": [0.5, 0.6], "slerp_latent_style_strength": [0.2],
                        "slerp_prompt_style_strength": [0.1, 0.9], "slerp_clip_image_style_strength": [0.3, 0.7]})
    assert len(cells) == 8 and cells[0] == dict(zip(PARAMETERS, (0.5, 0.2, 0.1, 0.3), strict=True))
    assert cells[1]["slerp_clip_image_style_strength"] == 0.7 and cells[4]["noise_strength"] == 0.6
    with pytest.raises(ValueError, match=f"at most {MAX_CELLS}"):
        grid_cells({p: [i / 10 for i in range(5)] for p in PARAMETERS})
    c, s = torch.tensor([0.9, 0.6, 0.7]), torch.tensor([0.5, 0.6, 0.8])
    assert best_index(objective(c, s, OBJECTIVES[0])) == 2
    assert best_index(objective(c, s, OBJECTIVES[1])) == 2
    assert best_index(objective(c, s, OBJECTIVES[2])) == 0 and best_index(objective(c, s, OBJECTIVES[3])) == 2
    assert best_index(torch.tensor([0.5, 0.7, 0.7])) == 1, "ties go to the first cell"


def test_tile_lays_out_rows():
    imgs = torch.arange(5, dtype=torch.float32).view(5, 1, 1, 1).expand(5, 2, 3, 3).contiguous()
    sheet = tile(imgs, 2)
    assert sheet.shape == (1, 6, 6, 3)
    assert sheet[0, 0, 0, 0] == 0 and sheet[0, 0, 3, 0] == 1 and sheet[0, 2, 0, 0] == 2 and sheet[0, 4, 0, 0] == 4
    assert sheet[0, 4, 3:].abs().sum() == 0, "the empty slot stays black"


def test_node_visits_every_cell_and_returns_the_argmax(comfy, tiny_models):
    model, clip, vae = tiny_models
    cv = comfy.tiny.tiny_clip_vision(3)
    g = torch.Generator().manual_seed(4)
    content, style = torch.rand(1, 64, 64, 3, generator=g), torch.rand(1, 64, 64, 3, generator=g)
    kept = content.clone(), style.clone()
    cp, sp, neg = (comfy.tiny.encode_prompt(clip, t) for t in ("boromir", "gigachad", ""))
    node = comfy.node("BlendspaceMixGridSearch")
    values = dict(noise_strength="0.5, 0.75", slerp_latent_style_strength="0.8", slerp_prompt_style_strength="0.2",
                  slerp_clip_image_style_strength="0.1, 0.9")
    torch.manual_seed(0)  # the 2024 ComfyUI's VAE encode samples the posterior: same draws for the node and below
    best, images, grid, report, *best_values = node.search(
        model, 17, 4, 5.0, "euler", "normal", cp, sp, neg, content, style, vae, 100.0, FAST, **values,
        objective=OBJECTIVES[0], columns=2, clip_vision=cv)
    assert torch.equal(content, kept[0]) and torch.equal(style, kept[1])
    assert images.shape == (4, 64, 64, 3) and grid.shape == (1, 128, 128, 3)

    cells = [(n, c) for n in (0.5, 0.75) for c in (0.1, 0.9)]
    sampler = comfy.node("ClipImageGuidanceSampler")
    torch.manual_seed(0)
    lat = {"samples": vae.encode(content)}, {"samples": vae.encode(style)}
    positive = comfy.node("SlerpConditioning").mix(cp, sp, 0.2)[0]
    for i, (noise, clip_t) in enumerate(cells):
        target = comfy.node("BlendspaceSlerpClipImageEmbeds").mix(clip_t, clip_vision=cv, content_image=content,
                                                                  style_image=style)[0]
        out = sampler.sample(model, 17, 4, 5.0, "euler", "normal", positive, neg, lat[0], noise,
                             strength_mode="diffusers (source)", latent_style=lat[1], slerp_latent_style_strength=0.8,
                             vae=vae, clip_vision=cv, target=target, clip_guidance_scale=100.0, gradient=FAST,
                             use_cutouts=False, num_cutouts=4, start_percent=0.0, end_percent=1.0, every_n_steps=1)[0]
        assert torch.allclose(images[i], vae.decode(out["samples"])[0].float().clamp(0, 1), atol=1e-5), i
    assert not torch.allclose(images[0], images[3], atol=1e-3)

    def emb(x):
        return cv.encode_image(x)["image_embeds"].float()

    sc = torch.nn.functional.cosine_similarity(emb(images), emb(content))
    ss = torch.nn.functional.cosine_similarity(emb(images), emb(style))
    k = int(torch.argmax(torch.minimum(sc, ss)))
    assert torch.equal(best[0], images[k])
    assert best_values == [cells[k][0], 0.8, 0.2, cells[k][1]]
    assert report.splitlines()[0].startswith(f"best: cell {k}:") and len(report.splitlines()) == 5
    r, c = divmod(k, 2)
    assert not torch.equal(grid[0, r * 64:r * 64 + 10, c * 64:c * 64 + 40], images[k, :10, :40]), "labels are drawn"
    with pytest.raises(ValueError, match="multiple of 8"):
        node.search(model, 17, 4, 5.0, "euler", "normal", cp, sp, neg, content[:, :60], style[:, :60], vae, 100.0,
                    FAST, **values, clip_vision=cv)


def test_node_copies_the_models_once_and_frees_them(comfy, tiny_models, monkeypatch):
    import gc
    import weakref
    model, clip, vae = tiny_models
    cv = comfy.tiny.tiny_clip_vision(3)
    guidance_mod = comfy.pack.nodes.runtime.guidance_hooks
    refs = []
    original = guidance_mod.ClipGuidance._frozen_copy

    def tracking(self, module, device):
        made = original(self, module, device)
        refs.append(weakref.ref(made))
        return made

    monkeypatch.setattr(guidance_mod.ClipGuidance, "_frozen_copy", tracking)
    g = torch.Generator().manual_seed(5)
    content, style = torch.rand(1, 64, 64, 3, generator=g), torch.rand(1, 64, 64, 3, generator=g)
    cp, sp = comfy.tiny.encode_prompt(clip, "boromir"), comfy.tiny.encode_prompt(clip, "gigachad")
    images = comfy.node("BlendspaceMixGridSearch").search(
        model, 17, 3, 5.0, "euler", "normal", cp, sp, comfy.tiny.encode_prompt(clip, ""), content, style, vae, 100.0,
        "exact (through the U-Net, source)", noise_strength="0.5, 1.0", slerp_latent_style_strength="0.8",
        slerp_prompt_style_strength="0.2", slerp_clip_image_style_strength="0.1, 0.9", clip_vision=cv)[1]
    assert images.shape[0] == 4
    gc.collect()
    assert len(refs) == 3, "one VAE, CLIP and U-Net copy for all four cells"
    assert all(r() is None for r in refs), "and freed when the search returns"


def test_grid_targets_and_scores_come_from_the_images_as_loaded(comfy, tiny_models, monkeypatch):
    model, clip, vae = tiny_models
    cv = comfy.tiny.tiny_clip_vision(3)
    g = torch.Generator().manual_seed(5)
    content, style = torch.rand(1, 64, 64, 3, generator=g), torch.rand(1, 64, 64, 3, generator=g)
    wide_c, wide_s = torch.rand(1, 72, 128, 3, generator=g), torch.rand(1, 72, 128, 3, generator=g)
    module = comfy.pack.nodes.nodes_image_mixing
    seen = {}

    def fake_cells(run, cells, cp, sp, ci, si, refs, guidance):
        seen["refs"] = refs
        return torch.rand(len(cells), 64, 64, 3, generator=torch.Generator().manual_seed(1))

    monkeypatch.setattr(module, "_grid_images", fake_cells)
    enc = comfy.tiny.encode_prompt
    cp, sp, neg = enc(clip, "a cat"), enc(clip, "bread"), enc(clip, "")
    node = comfy.node("BlendspaceMixGridSearch")
    values = dict(noise_strength="0.5", slerp_latent_style_strength="0.8", slerp_prompt_style_strength="0.2",
                  slerp_clip_image_style_strength="0.1")
    node.search(model, 17, 2, 5.0, "euler", "normal", cp, sp, neg, content, style, vae, 100.0, FAST, **values,
                clip_vision=cv, content_clip_image=wide_c, style_clip_image=wide_s)
    tower = comfy.pack.nodes.runtime.clip_vision.ImageTower(cv, None)
    assert torch.allclose(seen["refs"][0], tower.encode(wide_c).float().cpu())
    assert torch.allclose(seen["refs"][1], tower.encode(wide_s).float().cpu())
    node.search(model, 17, 2, 5.0, "euler", "normal", cp, sp, neg, content, style, vae, 100.0, FAST, **values,
                clip_vision=cv)
    assert torch.allclose(seen["refs"][0], tower.encode(content).float().cpu())
