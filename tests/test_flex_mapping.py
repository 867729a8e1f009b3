"""FlexDiffuse: the mapping against a literal transcription of the source's pseudo-code
(docs/techniques.md, "FlexDiffuse"), and ImageEmbedToPromptMapper on tiny CLIP models."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

from blendspace.flex_mapping import (
    FlexSettings,
    channel_slice,
    clustered_weights,
    concept_map,
    direct_guidance,
    map_tokens,
    similarity,
    tween,
)

# ------------------------------------------------------------------ the oracle: the source, line by line


def ref_map_emb(alt, txt, reuse, order, dtype=torch.float64):
    altn = [a / a.norm() for a in alt.to(dtype)]
    txtn = [t / t.norm() for t in txt.to(dtype)]
    matches = []
    sims = []
    for i in range(len(altn)):
        s = torch.softmax(torch.stack([100 * torch.dot(altn[i], t) for t in txtn]), 0)
        sims.append(s)
        for k in range(76):
            matches.append((i, k, float(s[k + 1])))
    m = [[0, 0.0] for _ in range(77)]
    if order == "Direct":
        for k in range(min(76, len(altn))):
            m[k] = [k, float(sims[k][k + 1])]
        return m
    if order == "Best Fit":
        matches.sort(key=lambda x: (-x[2], x[1], x[0]))
    else:
        matches.sort(key=lambda x: (x[1], -x[2], x[0]))
    used = set()
    for i, k, s in matches:
        if m[k][1] > 0 or i in used:
            continue
        m[k] = [i, s]
        if not reuse:
            used.add(i)
    return m


def ref_blend(a, b):
    if max(a) >= 0 and max(b) >= 0:
        return [max(x, y) for x, y in zip(a, b, strict=True)]
    if max(a) >= 0:
        return [x + y for x, y in zip(a, b, strict=True)]
    return [min(x, y) for x, y in zip(a, b, strict=True)]


def ref_clustered(m, threshold, guidance):
    s = [r[1] for r in m]
    peaks = [k for k in range(1, 76) if s[k] >= threshold and s[k - 1] <= s[k] >= s[k + 1]]
    if not peaks:
        return None
    valleys = [0] + [p1 + math.ceil((p2 - p1) / 2) for p1, p2 in zip(peaks, peaks[1:], strict=False)] + [76]
    w = [1.0] * 77
    w[0] -= 1
    bi = 0
    for a in peaks:
        b = valleys[bi]
        if b < a:
            for j in range(1, a - b):
                w[a - j] -= j / (a - b)
            bi += 1
        if bi >= len(valleys):
            break
        b = valleys[bi]
        for j in range(1, b - a + 1):
            w[a + j] -= j / (b - a)
    return [x * guidance for x in w]


def ref_tween(T, A, st: FlexSettings, shift: bool):
    m = ref_map_emb(A, T, st.reuse, st.order, torch.float64 if shift else torch.float32)
    if shift:  # corrected: token j uses slot j-1
        m = [[0, 0.0]] + m[:76]
    avg = sum(r[1] for r in m) / 77
    w = [st.linear_start + (st.linear_end - st.linear_start) * k / 76 for k in range(77)]
    if st.clustered != 0:
        c = ref_clustered(m, avg, st.clustered)
        if c is not None:
            w = ref_blend(w, c)
    if st.threshold_mult != 0:
        w = ref_blend(w, [st.threshold_mult if r[1] >= st.threshold_floor else 0 for r in m])
    if st.header_max < 1.0:
        w[0] = min(w[0], st.header_max) if w[0] >= 0 else max(w[0], -st.header_max)
    out = T.clone()
    for k in range(77):
        i, s = int(m[k][0]), m[k][1]
        iw = min(w[k], st.max_guidance)
        if iw == 0:
            out[k] = T[k]
        elif abs(iw) >= 1 - s:
            out[k] = A[i]
        else:
            out[k] = T[k] + iw * (A[i] - T[k])
    return out


def _tokens(seed, n=77, c=16):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(4, c, generator=g)
    # clustered structure so that softmax scores are far from uniform
    return base[torch.randint(0, 4, (n,), generator=g)] + 0.3 * torch.randn(n, c, generator=g)


SETTINGS = [
    FlexSettings(),
    FlexSettings(threshold_mult=1.0, threshold_floor=0.2, clustered=0.0, linear_end=1.0, max_guidance=1.0),
    FlexSettings(threshold_mult=-0.25, clustered=0.0, linear_end=1.0, max_guidance=1.0, order="Text Order", reuse=False),
    FlexSettings(clustered=-0.5, threshold_mult=1.0, linear_end=1.0, max_guidance=1.0, header_max=0.35,
                 order="Best Fit", reuse=False),
    FlexSettings(linear_start=0.1, order="Direct"),
]


@pytest.mark.parametrize("reuse", [True, False])
@pytest.mark.parametrize("order", ["Best Fit", "Text Order", "Direct"])
def test_mapping_matches_the_source(reuse, order):
    A, T = _tokens(1, n=120), _tokens(2)
    ours = map_tokens(A, T, reuse, order)
    ref = torch.tensor(ref_map_emb(A, T, reuse, order), dtype=torch.float64)
    assert torch.equal(ours[:, 0], ref[:, 0])
    assert torch.allclose(ours[:, 1], ref[:, 1], atol=1e-12)
    assert ours[76, 1] == 0
    if not reuse and order != "Direct":
        idx = ours[:76, 0].long().tolist()
        assert len(set(idx)) == len(idx), "without reuse every image token serves one slot"


@pytest.mark.parametrize("st", SETTINGS)
@pytest.mark.parametrize("alignment", ["faithful (shifted, source)", "corrected"])
def test_tween_matches_the_source(st, alignment):
    A, T = _tokens(3, n=90), _tokens(4)
    st = dataclasses.replace(st, alignment=alignment)
    ours = tween(T, A, st).tokens
    ref = ref_tween(T, A, st, shift=alignment == "corrected")
    assert torch.allclose(ours, ref, atol=1e-6)
    assert torch.equal(ours[0], T[0]) or st.header_max > 0


def _near_certain_pair():
    """Prompt tokens close together (cosines ≈ 0.7) and two guide tokens near text token 6, the second nearer:
    in float64 the second scores higher, in float32 both scores round to exactly 1.0."""
    c = 64
    u = torch.randn(c, generator=torch.Generator().manual_seed(0))
    txt = u + 0.7 * torch.randn(77, c, generator=torch.Generator().manual_seed(1))
    alt = torch.stack([txt[6] + 0.02 * torch.randn(c, generator=torch.Generator().manual_seed(2)),
                       txt[6] + 0.01 * torch.randn(c, generator=torch.Generator().manual_seed(3))])
    return alt, txt


def test_faithful_similarities_are_float32_where_near_certain_scores_round_to_one():
    alt, txt = _near_certain_pair()
    s64, s32 = similarity(alt, txt)[:, 6], similarity(alt, txt, torch.float32)[:, 6]
    assert (s64 < 1.0).all() and s64[1] > s64[0]
    assert (s32 == 1.0).all(), "the source's float32 rounds near-certain scores to exactly 1.0"
    # the tie changes which guide token text token 6 (slot 5) takes: the first one in float32
    assert int(map_tokens(alt, txt)[5, 0]) == 1
    assert int(map_tokens(alt, txt, dtype=torch.float32)[5, 0]) == 0
    faithful = FlexSettings(alignment="faithful (shifted, source)")
    assert faithful.dtype == torch.float32 and FlexSettings().dtype == torch.float64
    # ... and the threshold: a score of exactly 1.0 passes |iw| >= 1 - s for every non-zero weight
    assert torch.equal(tween(txt, alt, dataclasses.replace(faithful, linear_start=0.01, linear_end=0.01,
                                                           clustered=0.0, threshold_mult=0.0)).tokens[5], alt[0])


def test_clustered_weights_are_triangles():
    scores = torch.full((77,), 0.01, dtype=torch.float64)
    scores[10], scores[20] = 0.5, 0.4
    w = clustered_weights(scores, float(scores.mean()), 1.0)
    assert w[10] == 1 and w[20] == 1
    assert w[0] == 0 and w[15] == 0 and w[76] == 0
    assert w[5] == pytest.approx(0.5) and w[12] == pytest.approx(0.6) and w[16] == pytest.approx(0.2)
    assert clustered_weights(torch.zeros(77, dtype=torch.float64), 1.0, 1.0) is None


# ------------------------------------------------------------------ small cases worked by hand
# The prompt is the 77 unit vectors e_0 … e_76, so every cosine is read off the guide tokens' coordinates: a guide
# token c·e_j has cosine 1 with text token j and 0 with the others, and its softmax row over the 77 text tokens
# (scale 100) is e^100 / (e^100 + 76) at j, which is 1.0 in float64 (76·e^-100 ≈ 3e-42 is below half an ulp),
# and 1 / (e^100 + 76) ≈ 3.7e-44 elsewhere. (e_5 + e_6) has cosine 1/√2 with tokens 5 and 6: both scores are
# e^70.7 / (2·e^70.7 + 75) = 0.5 in float64.

def _eye_prompt() -> torch.Tensor:
    return torch.eye(77, dtype=torch.float64)


def _guide(*columns: dict[int, float]) -> torch.Tensor:
    alt = torch.zeros(len(columns), 77, dtype=torch.float64)
    for i, coords in enumerate(columns):
        for j, value in coords.items():
            alt[i, j] = value
    return alt


def test_mapping_by_hand_each_slot_takes_the_guide_token_pointing_at_its_text_token():
    alt = _guide({5: 2.0}, {3: 3.0})  # guide 0 points at text token 5, guide 1 at text token 3
    rows = map_tokens(alt, _eye_prompt(), reuse=True, order="Best Fit")
    # slot k holds text token k+1: token 5 → slot 4 (guide 0), token 3 → slot 2 (guide 1), both with score 1.0
    assert rows[4].tolist() == [0.0, 1.0] and rows[2].tolist() == [1.0, 1.0]
    others = [k for k in range(76) if k not in (2, 4)]
    assert all(rows[k, 0] == 0 and 0 < rows[k, 1] < 1e-40 for k in others), "ties go to the first guide token"
    assert rows[76].tolist() == [0.0, 0.0], "the last slot is never filled"
    # without reuse a guide token serves one slot: Best Fit gives both certain slots first, then the rest are
    # left with no unused guide token at all
    once = map_tokens(alt, _eye_prompt(), reuse=False, order="Best Fit")
    assert once[4].tolist() == [0.0, 1.0] and once[2].tolist() == [1.0, 1.0]
    assert all(once[k].tolist() == [0.0, 0.0] for k in others)


def test_tween_by_hand_replaces_certain_matches_and_lerps_half_matches():
    settings = FlexSettings(linear_start=0.0, linear_end=0.0, clustered=0.0, threshold_mult=0.5, threshold_floor=0.9,
                            max_guidance=1.0, header_max=0.0)
    txt, alt = _eye_prompt(), _guide({5: 2.0}, {3: 3.0})
    out = tween(txt, alt, settings).tokens
    # corrected: token 5 has its own match (score 1, weight 0.5 ≥ 1 − 1) and becomes guide 0 = 2·e_5; token 3
    # becomes 3·e_3; every other token keeps its text vector
    expected = txt.clone()
    expected[5], expected[3] = 2.0 * txt[5], 3.0 * txt[3]
    assert torch.equal(out, expected)
    # faithful (the source's off-by-one): row k is applied to token k, so token 4 takes token 5's match and
    # token 2 takes token 3's
    faithful = tween(txt, alt, dataclasses.replace(settings, alignment="faithful (shifted, source)")).tokens
    expected = txt.clone()
    expected[4], expected[2] = 2.0 * txt[5], 3.0 * txt[3]
    assert torch.equal(faithful, expected)
    # a half match: guide e_5 + e_6 scores 0.5 on tokens 5 and 6; weight 0.25 < 1 − 0.5, so both are lerped:
    # token 5 → 0.75·e_5 + 0.25·(e_5 + e_6) = e_5 + 0.25·e_6, token 6 → e_6 + 0.25·e_5
    half = tween(txt, _guide({5: 1.0, 6: 1.0}), dataclasses.replace(settings, threshold_mult=0.25,
                                                                   threshold_floor=0.4)).tokens
    expected = txt.clone()
    expected[5, 6] = expected[6, 5] = 0.25
    assert torch.allclose(half, expected, atol=1e-12) and torch.equal(half[7:], txt[7:])


def test_clustered_weights_by_hand_one_and_two_peaks():
    one = torch.zeros(77, dtype=torch.float64)
    one[10] = 1.0  # a single peak at slot 10: up from 0 at slot 0, down to 0 at slot 76
    w = clustered_weights(one, float(one.mean()), 0.5)
    expected = [0.5 * k / 10 for k in range(11)] + [0.5 * (76 - k) / 66 for k in range(11, 77)]
    assert torch.allclose(w, torch.tensor(expected, dtype=torch.float64), atol=1e-12)
    two = one.clone()
    two[30] = 1.0  # peaks 10 and 30 meet at the valley 10 + ceil(20 / 2) = 20
    w = clustered_weights(two, float(two.mean()), 1.0)
    expected = ([k / 10 for k in range(11)] + [(20 - k) / 10 for k in range(11, 21)] +
                [(k - 20) / 10 for k in range(21, 31)] + [(76 - k) / 46 for k in range(31, 77)])
    assert torch.allclose(w, torch.tensor(expected, dtype=torch.float64), atol=1e-12)


def test_concept_mapping_and_direct_guidance():
    A, T = _tokens(5, n=100), _tokens(6)
    concept = T.clone()  # a concept prompt identical to the prompt matches every token with score ~1
    out, replaced = concept_map(T, T, A, concept)
    cm = ref_map_emb(A, concept, False, "Text Order")
    ct = ref_map_emb(concept, T, True, "Best Fit")
    expected = T.clone()
    for j in range(76):
        c, s = ct[j]
        if c - 1 >= 0 and s > 0.9:
            expected[j + 1] = A[int(cm[c - 1][0])]
    assert torch.equal(out, expected) and len(replaced) > 0 and 0 not in replaced
    d = direct_guidance(T, A)
    assert torch.equal(d[1:], A[1:77]) and torch.allclose(d[0], 0.15 * A[0] + 0.85 * T[0], atol=1e-6)


def test_channel_slice_pairs_models():
    assert channel_slice(768, 768) == slice(0, 768)
    assert channel_slice(2048, 768) == slice(0, 768)
    assert channel_slice(2048, 1280) == slice(768, 2048)
    with pytest.raises(ValueError, match="ViT-H/14"):
        channel_slice(1024, 768)


# ------------------------------------------------------------------------------------------ the node

def _node_args(**over):
    args = dict(linear_start=0.0, linear_end=0.5, clustered=0.25, threshold_mult=0.25, threshold_floor=0.75,
                max_guidance=0.35, header_max=0.0, mapping_priority="Best Fit", reuse_tokens=True,
                token_alignment="corrected", image_normalization="corrected ([0,1] pixels)", mode="tween prompt")
    args.update(over)
    return args


def _vision(comfy, tmp_path, proj, patch=16):
    cfg = json.loads((Path(comfy.tiny.HERE) / "tiny_clip_vision.json").read_text())
    cfg.update(projection_dim=proj, patch_size=patch)
    path = tmp_path / f"cv_{proj}_{patch}.json"
    path.write_text(json.dumps(cfg))
    from comfy.clip_vision import ClipVisionModel
    with torch.no_grad():
        cv = ClipVisionModel(str(path))
        comfy.tiny.randomize(cv.model, 7)
    return cv


def _image(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 96, 128, 3, generator=g)


def test_node_zero_strength_is_identity_and_keeps_everything(comfy, tiny_models, tmp_path):
    _, clip, _ = tiny_models
    cond = comfy.tiny.encode_prompt(clip, "a photo of a turtle, hd 8k")
    cond = [[torch.cat([cond[0][0], cond[0][0]], dim=1), {**cond[0][1], "strength": 0.9}]]
    before = copy.deepcopy(cond)
    cv = _vision(comfy, tmp_path, 32)
    node = comfy.node("ImageEmbedToPromptMapper")
    zero = node.map(cond, **_node_args(linear_end=0.0, clustered=0.0, threshold_mult=0.0), clip_vision=cv,
                    image=_image())[0]
    assert torch.equal(zero[0][0], cond[0][0]) and zero[0][1]["strength"] == 0.9
    out, preview = node.map(cond, **_node_args(linear_end=1.0, max_guidance=1.0, threshold_floor=0.0), clip_vision=cv,
                            image=_image())
    new = out[0][0]
    assert new.shape == cond[0][0].shape
    assert torch.equal(new[:, 0], cond[0][0][:, 0]) and torch.equal(new[:, 77], cond[0][0][:, 77]), "headers kept"
    assert not torch.allclose(new, cond[0][0])
    assert torch.equal(cond[0][0], before[0][0]) and out[0][1] is not cond[0][1]
    assert "similarity" in preview and len(preview.splitlines()) == 79


def test_node_uses_core_clip_vision_output_and_faithful_normalisation(comfy, tiny_models, tmp_path):
    _, clip, _ = tiny_models
    cond = comfy.tiny.encode_prompt(clip, "a creepy tree creature")
    cv = _vision(comfy, tmp_path, 32)
    img = torch.rand(1, 224, 224, 3, generator=torch.Generator().manual_seed(1))  # square: no resize either way
    node = comfy.node("ImageEmbedToPromptMapper")
    enc = comfy.node("CLIPVisionEncode")
    cvo = enc.encode(cv, img, "center")[0] if comfy.is_current else enc.encode(cv, img)[0]
    image_tokens = comfy.pack.nodes.runtime.clip_vision.image_tokens
    via_core = image_tokens(cv, clip_vision_output=cvo)
    via_image = image_tokens(cv, image=img)
    assert via_core.shape == (197, 32)
    assert torch.allclose(via_core, via_image, atol=0.05)  # core rounds pixels to 1/255, nothing else differs
    assert not torch.allclose(image_tokens(cv, image=img, faithful=True), via_image, atol=0.05)
    args = _node_args(linear_end=1.0, max_guidance=1.0, clustered=0.0, threshold_mult=0.0)
    from_output = node.map(cond, **args, clip_vision=cv, clip_vision_output=cvo)[0][0][0]
    assert not torch.allclose(from_output, cond[0][0])
    with pytest.raises(ValueError, match="connect the guide IMAGE"):
        node.map(cond, **{**args, "image_normalization": "faithful ([-1,1] pixels, source)"}, clip_vision=cv,
                 clip_vision_output=cvo)


def test_node_refuses_mismatched_widths_and_maps_sdxl_halves(comfy, tmp_path):
    node = comfy.node("ImageEmbedToPromptMapper")
    g = torch.Generator().manual_seed(3)
    sd15 = [[torch.randn(1, 77, 768, generator=g), {}]]
    with pytest.raises(ValueError, match="ViT-L/14"):
        node.map(sd15, **_node_args(), clip_vision=_vision(comfy, tmp_path, 32), image=_image())
    sdxl = [[torch.randn(1, 77, 2048, generator=g), {"pooled_output": torch.randn(1, 1280, generator=g)}]]
    args = _node_args(linear_end=1.0, max_guidance=1.0)
    l_half = node.map(sdxl, **args, clip_vision=_vision(comfy, tmp_path, 768), image=_image())[0][0][0]
    assert not torch.allclose(l_half[..., :768], sdxl[0][0][..., :768])
    assert torch.equal(l_half[..., 768:], sdxl[0][0][..., 768:])
    g_half = node.map(sdxl, **args, clip_vision=_vision(comfy, tmp_path, 1280), image=_image())[0][0][0]
    assert torch.equal(g_half[..., :768], sdxl[0][0][..., :768])
    assert not torch.allclose(g_half[..., 768:], sdxl[0][0][..., 768:])


def test_node_text_tweening_concepts_and_direct_mode(comfy, tiny_models, tmp_path):
    _, clip, _ = tiny_models
    enc = comfy.tiny.encode_prompt
    cond = enc(clip, "an urban landscape, city, dslr photo")
    guide = enc(clip, "a painting of the deep woods, forest")
    node = comfy.node("ImageEmbedToPromptMapper")
    tweened = node.map(cond, **_node_args(linear_start=0.1), guide_conditioning=guide)[0][0][0]
    expected = tween(cond[0][0][0].float(), guide[0][0][0].float(), FlexSettings(linear_start=0.1))
    assert torch.allclose(tweened[0], expected.tokens, atol=1e-6)
    cv = _vision(comfy, tmp_path, 32)
    concept = enc(clip, "creepy tree")
    with_concept = node.map(cond, **_node_args(threshold_mult=0.0, clustered=0.0, linear_end=0.0, max_guidance=0.0),
                            clip_vision=cv, image=_image(), concept_conditioning=concept)[0][0][0]
    assert with_concept.shape == cond[0][0].shape
    direct = node.map(cond, **_node_args(mode="direct image guidance"), clip_vision=cv, image=_image())[0][0][0]
    assert not torch.allclose(direct[0, 1:], cond[0][0][0, 1:])
    with pytest.raises(ValueError, match="CLIP_VISION"):
        node.map(cond, **_node_args())


def test_faithful_preprocessing_resizes_long_side_512_to_multiples_of_64(comfy, tmp_path):
    from blendspace.clip_preprocess import centre_square_pixels, source_resize_512
    wide = torch.rand(1, 720, 1280, 3, generator=torch.Generator().manual_seed(4))
    assert source_resize_512(wide).shape == (1, 256, 512, 3)  # 720·512/1280 = 288 → floored to 256
    assert source_resize_512(wide[:, :, :720]).shape == (1, 512, 512, 3)
    assert source_resize_512(wide.transpose(1, 2)).shape == (1, 512, 256, 3)
    cv = _vision(comfy, tmp_path, 32)
    image_tokens = comfy.pack.nodes.runtime.clip_vision.image_tokens
    faithful = image_tokens(cv, image=wide, faithful=True)
    model = cv.model
    with torch.no_grad():
        px = centre_square_pixels(source_resize_512(wide), 224, True)
        hidden = model(pixel_values=px, intermediate_output=-2)[0]
        expected = model.visual_projection(model.vision_model.post_layernorm(hidden))[0].float()
        px_plain = centre_square_pixels(wide, 224, True)
        hidden = model(pixel_values=px_plain, intermediate_output=-2)[0]
        skipped = model.visual_projection(model.vision_model.post_layernorm(hidden))[0].float()
    assert torch.allclose(faithful, expected, atol=1e-5)
    assert not torch.allclose(faithful, skipped, atol=1e-3), "the 512 / 64 resize changes the picture CLIP sees"


@pytest.mark.parametrize("alignment,text_guide,mapped", [
    ("faithful (shifted, source)", True, False), ("faithful (shifted, source)", False, True),
    ("corrected", True, True), ("corrected", False, True)])
def test_concepts_are_mapped_for_a_guide_prompt_only_in_corrected_alignment(comfy, tiny_models, tmp_path, monkeypatch,
                                                                             alignment, text_guide, mapped):
    _, clip, _ = tiny_models
    enc = comfy.tiny.encode_prompt
    module = comfy.pack.nodes.nodes_flex
    calls = []
    original = module.concept_map

    def recording(*args, **kwargs):
        calls.append(kwargs.get("dtype"))
        return original(*args, **kwargs)

    monkeypatch.setattr(module, "concept_map", recording)
    guide = dict(guide_conditioning=enc(clip, "a painting of the deep woods, forest")) if text_guide else dict(
        clip_vision=_vision(comfy, tmp_path, 32), image=_image())
    comfy.node("ImageEmbedToPromptMapper").map(enc(clip, "a creepy tree creature"),
                                               **_node_args(token_alignment=alignment), **guide,
                                               concept_conditioning=enc(clip, "creepy tree"))
    assert bool(calls) == mapped
    if calls:
        assert calls[0] == (torch.float32 if alignment.startswith("faithful") else torch.float64)
