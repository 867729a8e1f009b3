"""The reference dial's math without ComfyUI (``blendspace/reference_mix.py``): the weights and their fixed points,
the models' reference layouts and the moved positions, the prompt weights, the key bias and the latent slerp."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
import torch

from blendspace.errors import BlendspaceInputError
from blendspace.reference_mix import (
    blended_reference_ids,
    dial_factors,
    flux_placements,
    key_bias,
    log_multiplier,
    presence,
    prompt_weights,
    qwen_placements,
    reference_multipliers,
    slerp_multiplier,
    slerp_prompt_weights,
    slerp_references,
    token_ids,
    tokens_of,
)

SHAPES = [(8, 12), (10, 6), (8, 8)]  # latent sizes of three references (tokens: 4x6, 5x3, 4x4)
IMAGE = (4, 4)  # an 8x8 latent's tokens


def test_the_three_fixed_points_and_the_pieces_between():
    assert dial_factors(0.0) == (1.0, 0.0) and dial_factors(0.5) == (1.0, 1.0) and dial_factors(1.0) == (0.0, 1.0)
    assert dial_factors(0.2) == (1.0, pytest.approx(0.4)) and dial_factors(0.8) == (pytest.approx(0.4), 1.0)
    ws = [i / 20 for i in range(21)]
    a, b = zip(*(dial_factors(w) for w in ws), strict=True)
    assert all(x >= y for x, y in pairwise(a)) and all(x <= y for x, y in pairwise(b)), "A fades, B grows"
    with pytest.raises(BlendspaceInputError, match="weight"):
        dial_factors(1.5)


def test_strengths_scale_the_dial_and_zero_means_absent():
    assert reference_multipliers(0.5, 0.3, 0.7) == (pytest.approx(0.3), pytest.approx(0.7))
    assert reference_multipliers(0.25, 1.0, 0.0) == (1.0, 0.0)
    assert reference_multipliers(0.75, 0.5, 2.0) == (pytest.approx(0.25), 2.0)
    assert log_multiplier(0.0) == -math.inf and log_multiplier(1.0) == 0.0
    assert log_multiplier(0.25) == pytest.approx(math.log(0.25))
    assert presence(2.0) == 1.0 and presence(0.3) == 0.3
    with pytest.raises(BlendspaceInputError, match="strength_b"):
        reference_multipliers(0.5, 1.0, -0.1)
    assert slerp_multiplier(0.25, 1.0, 0.0) == pytest.approx(0.75)


def test_flux_offset_places_each_reference_beside_the_previous_ones():
    """The layout the models compute: B (10x6) after A (8x12) goes below A (row offset = A's height), since
    stacking keeps the running extent smaller; alone it sits at the origin."""
    assert flux_placements(SHAPES[:2], "offset", IMAGE) == [(1, 0, 0), (1, 8, 0)]
    assert flux_placements(SHAPES[1:2], "offset", IMAGE) == [(1, 0, 0)]
    assert flux_placements(SHAPES[:2], "index", IMAGE) == [(1, 0, 0), (2, 0, 0)]
    # uxo: index 0, below-right of the image (4 tokens = 8 latent px), each after the previous
    assert flux_placements(SHAPES[:2], "uxo", IMAGE) == [(0, 8, 8), (0, 16, 20)]
    assert qwen_placements(SHAPES[:2], "index", IMAGE) == [(1, 0, 0), (2, 0, 0)]
    assert qwen_placements(SHAPES[:2], "uxo", IMAGE) == flux_placements(SHAPES[:2], "offset", IMAGE)


def test_token_ids_are_row_major_and_qwen_centres_them():
    ids = token_ids((8, 12), (2, 8, 0))
    assert ids.shape == (24, 3) and tokens_of((8, 12)) == (4, 6)
    assert ids[0].tolist() == [2.0, 4.0, 0.0] and ids[5].tolist() == [2.0, 4.0, 5.0] and ids[6].tolist() == [2.0, 5.0, 0.0]
    centred = token_ids((8, 12), (1, 0, 0), centred=True)
    assert centred[0].tolist() == [1.0, -2.0, -3.0] and centred[-1].tolist() == [1.0, 1.0, 2.0]
    assert tokens_of((7, 5)) == (4, 3), "odd sizes are padded to whole patches"


def _layout(method):
    return lambda shapes: flux_placements(shapes, method, IMAGE)


@pytest.mark.parametrize("method", ["offset", "index", "uxo"])
def test_moved_ids_reach_each_layout_at_the_ends_and_move_linearly(method):
    layout = _layout(method)
    both = [token_ids(s, p) for s, p in zip(SHAPES, layout(SHAPES), strict=True)]
    no_a = [token_ids(s, p) for s, p in zip(SHAPES[1:], layout(SHAPES[1:]), strict=True)]
    full = blended_reference_ids(SHAPES, layout, {0: 1.0})
    gone = blended_reference_ids(SHAPES, layout, {0: 0.0})
    half = blended_reference_ids(SHAPES, layout, {0: 0.5})
    assert all(torch.equal(x, y) for x, y in zip(full, both, strict=True))
    assert all(torch.equal(x, y) for x, y in zip(gone[1:], no_a, strict=True)), "without A: the layout without A"
    assert torch.equal(half[0], both[0]), "A's own place never depends on A's presence"
    assert all(torch.allclose(h, (x + y) / 2) for h, x, y in zip(half[1:], both[1:], no_a, strict=True))
    if method != "index":
        assert not torch.equal(both[1], no_a[0]), "the layout does move B when A leaves"


def test_two_partly_present_references_mix_four_layouts():
    layout = _layout("offset")
    ids = blended_reference_ids(SHAPES, layout, {0: 0.5, 1: 0.25})
    c_layouts = {kept: token_ids(SHAPES[2], layout([SHAPES[i] for i in kept] + [SHAPES[2]])[-1])
                 for kept in ((0, 1), (0,), (1,), ())}
    expected = (0.125 * c_layouts[(0, 1)] + 0.375 * c_layouts[(0,)] + 0.125 * c_layouts[(1,)]
                + 0.375 * c_layouts[()])
    assert torch.allclose(ids[2], expected)


def test_prompt_weights_sit_on_the_corners_follow_the_stronger_reference_and_sum_to_one():
    assert prompt_weights(1.0, 0.0, True, True) == {"a_only": 1.0, "both": 0.0, "b_only": 0.0}
    assert prompt_weights(0.0, 1.0, True, True) == {"a_only": 0.0, "both": 0.0, "b_only": 1.0}
    assert prompt_weights(1.0, 1.0, True, True) == {"a_only": 0.0, "both": 1.0, "b_only": 0.0}
    assert prompt_weights(1.0, 0.5, True, True) == {"a_only": 0.5, "both": 0.5, "b_only": 0.0}
    assert prompt_weights(0.4, 0.0, True, True)["a_only"] == 1.0, "B absent: no picture of B in the text"
    assert prompt_weights(0.5, 0.5, True, True)["both"] == 1.0, "equally tamed: both pictures"
    assert prompt_weights(1.0, 0.0, False, True)["both"] == 1.0, "a missing encoding counts as the prompt as given"
    for pa, pb in ((0.3, 0.8), (0.0, 0.0), (0.5, 0.25)):
        assert sum(prompt_weights(pa, pb, True, True).values()) == pytest.approx(1.0)
    assert prompt_weights(0.0, 0.0, True, True)["both"] == 1.0, "neither image: the prompt as given"
    near = prompt_weights(1e-6, 0.0, True, True)
    assert near["a_only"] == 1.0, "continuous towards A's corner"
    assert slerp_prompt_weights(0.25, True, True) == {"a_only": 0.75, "both": 0.0, "b_only": 0.25}
    assert slerp_prompt_weights(0.25, True, False)["both"] == 1.0


def test_key_bias_marks_only_its_blocks():
    bias = key_bias(10, [(2, 3, -1.0), (7, 2, -math.inf), (0, 1, 0.0)])
    assert bias.tolist()[:6] == [0.0, 0.0, -1.0, -1.0, -1.0, 0.0] and math.isinf(bias[8]) and bias[9] == 0.0


def test_slerp_references_keeps_the_ends_and_resizes_b_to_a():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(1, 16, 8, 12, generator=g), torch.randn(1, 16, 10, 6, generator=g)
    assert torch.equal(slerp_references(a, b, 0.0), a)
    mixed = slerp_references(a, b, 0.4)
    assert mixed.shape == a.shape and torch.isfinite(mixed).all()
    same = torch.randn(1, 16, 8, 12, generator=g)
    assert torch.equal(slerp_references(a, same, 1.0), same), "B of A's size is not resampled"
    video = slerp_references(a.unsqueeze(2), b.unsqueeze(2), 0.5)  # Qwen-Image's (B, C, 1, H, W) latents
    assert video.shape == (1, 16, 1, 8, 12)
