"""Two prompts in one joint attention, the math alone (no ComfyUI): the two-stream attention and its blend, the
per-key bias of the attention-weight mix, the block names, and the mixed conditioning Slerp Conditioning's
"attention weight" mode builds. Checked against a direct softmax written token by token."""

from __future__ import annotations

import math

import pytest
import torch

from blendspace.joint_attention import (
    PROMPT_A,
    PROMPT_B,
    SHARED,
    JointLayout,
    blend_weights,
    full_size_mask,
    key_bias,
    parse_blocks,
    prompt_bias_attention,
    two_prompt_attention,
    weights_mode,
)
from blendspace.prompt_bias import MARKER, attention_weight_mix, dense_prompt_bias

HEADS = 2


def _attend(q, k, v, mask):
    """Plain attention on ``(B, L, H·D)`` tensors, as ComfyUI's kernels compute it."""
    b, lq, c = q.shape
    d = c // HEADS
    qh, kh, vh = (x.reshape(b, -1, HEADS, d).transpose(1, 2) for x in (q, k, v))
    scores = qh @ kh.transpose(-1, -2) / math.sqrt(d)
    if mask is not None:
        scores = scores + (mask.unsqueeze(1) if mask.dim() == 3 else mask)
    return (scores.softmax(-1) @ vh).transpose(1, 2).reshape(b, lq, c)


def _direct(q, k, v, keys: list[int], query: int, bias: dict | None = None):
    """One query's attention output over the listed keys, one softmax written out (optionally biased per key)."""
    d = q.shape[-1] // HEADS
    out = []
    for h in range(HEADS):
        sl = slice(h * d, (h + 1) * d)
        s = torch.stack([q[0, query, sl] @ k[0, j, sl] / math.sqrt(d) + (bias or {}).get(j, 0.0) for j in keys])
        w = s.softmax(0)
        out.append(sum(w[i] * v[0, j, sl] for i, j in enumerate(keys)))
    return torch.cat(out)


def _layout(weights=(1.0, 0.75, 0.25, 0.0)):
    """``[A ×3, B ×2, image ×4]`` with A's weight on the four image tokens."""
    return JointLayout.from_segments([(PROMPT_A, 3), (PROMPT_B, 2), (SHARED, torch.tensor(weights))])


def _qkv(batch=1, length=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, length, 8, generator=g, dtype=torch.float64) for _ in range(3)]


def test_each_text_stream_sees_itself_and_the_image_and_image_outputs_blend_by_the_mask():
    q, k, v = _qkv()
    layout = _layout()
    out = two_prompt_attention(q, k, v, None, layout, torch.tensor([0]), _attend, 1, 1)
    a_keys, b_keys = [0, 1, 2, 5, 6, 7, 8], [3, 4, 5, 6, 7, 8]
    for i in (0, 1, 2):
        assert torch.allclose(out[0, i], _direct(q, k, v, a_keys, i))
    for i in (3, 4):
        assert torch.allclose(out[0, i], _direct(q, k, v, b_keys, i))
    for i, m in zip((5, 6, 7, 8), (1.0, 0.75, 0.25, 0.0), strict=True):
        expected = m * _direct(q, k, v, a_keys, i) + (1 - m) * _direct(q, k, v, b_keys, i)
        assert torch.allclose(out[0, i], expected)


def test_weight_one_is_prompt_a_alone_bit_for_bit_and_other_rows_never_see_b():
    q, k, v = _qkv(batch=2)
    own = torch.tensor([0, 1, 2, 5, 6, 7, 8])
    alone = _attend(q[:, own], k[:, own], v[:, own], None)
    out = two_prompt_attention(q, k, v, None, _layout((1.0, 1.0, 0.2, 0.0)), torch.tensor([1]), _attend, 1, 1)
    assert torch.equal(out[0, own], alone[0]), "a row that does not blend is prompt A's own call"
    assert torch.equal(out[0, 3:5], torch.zeros_like(out[0, 3:5])), "its B text slots are empty"
    assert torch.equal(out[1, :3], alone[1, :3]) and torch.equal(out[1, 5:7], alone[1, 3:5])
    assert not torch.allclose(out[1, 7:], alone[1, 5:])


def test_outside_the_chosen_blocks_the_image_keeps_a_and_b_text_stays_current():
    q, k, v = _qkv()
    out = two_prompt_attention(q, k, v, None, _layout((0.0,) * 4), torch.tensor([0]), _attend, 1, 1, blend=False)
    own = torch.tensor([0, 1, 2, 5, 6, 7, 8])
    assert torch.equal(out[0, own], _attend(q[:, own], k[:, own], v[:, own], None)[0])
    assert torch.allclose(out[0, 3], _direct(q, k, v, [3, 4, 5, 6, 7, 8], 3))


def test_heads_first_layout_gives_the_same_result():
    q, k, v = _qkv()
    flat = two_prompt_attention(q, k, v, None, _layout(), torch.tensor([0]), _attend, 1, 1)

    def attend_heads(qh, kh, vh, mask):  # (B, H, L, D) in, (B, L, H·D) out, as skip_reshape kernels
        return _attend(*(x.transpose(1, 2).flatten(2) for x in (qh, kh, vh)), mask)
    heads = [x.reshape(1, 9, HEADS, 4).transpose(1, 2) for x in (q, k, v)]
    assert torch.allclose(two_prompt_attention(*heads, None, _layout(), torch.tensor([0]), attend_heads, 2, 1), flat)


def test_a_bias_made_for_prompt_a_alone_reaches_a_s_call_exactly():
    """The conditioning's own bias on Flux (Apply Style Model) is sized for ``[text_A, image]``."""
    q, k, v = _qkv()
    g = torch.Generator().manual_seed(3)
    bias = torch.randn(1, 7, 7, generator=g, dtype=torch.float64)
    layout = _layout((1.0,) * 4)
    out = two_prompt_attention(q, k, v, bias, layout, torch.tensor([0]), _attend, 1, 1)
    own = torch.tensor([0, 1, 2, 5, 6, 7, 8])
    assert torch.equal(out[0, own], _attend(q[:, own], k[:, own], v[:, own], bias)[0])
    full = full_size_mask(bias, layout)
    assert full.shape == (1, 9, 9) and torch.equal(full[0, 3:5], torch.zeros(2, 9, dtype=torch.float64))
    with pytest.raises(ValueError, match="fits neither"):
        full_size_mask(torch.zeros(1, 5, 5), layout)


def test_attention_weight_mix_biases_image_queries_and_keeps_texts_apart():
    q, k, v = _qkv(batch=2)
    layout = JointLayout.from_segments([(PROMPT_A, 3), (PROMPT_B, 2), (SHARED, 4)])
    t = torch.tensor([0.3, 0.8])
    out = prompt_bias_attention(q, k, v, None, layout, t, _attend, 1, 1)
    row = 1
    bias = {0: math.log(0.2), 1: math.log(0.2), 2: math.log(0.2), 3: math.log(0.8), 4: math.log(0.8)}
    qr, kr, vr = q[row:row + 1], k[row:row + 1], v[row:row + 1]
    assert torch.allclose(out[row, 6], _direct(qr, kr, vr, list(range(9)), 6, bias))
    assert torch.allclose(out[row, 1], _direct(qr, kr, vr, [0, 1, 2, 5, 6, 7, 8], 1))
    assert torch.allclose(out[row, 4], _direct(qr, kr, vr, [3, 4, 5, 6, 7, 8], 4))
    ends = [prompt_bias_attention(q, k, v, None, layout, torch.tensor([x, x]), _attend, 1, 1) for x in (1e-3, 1e-4)]
    a_alone = two_prompt_attention(q, k, v, None, _layout((1.0,) * 4), torch.tensor([0, 1]), _attend, 1, 1)
    gaps = [(e[:, 5:] - a_alone[:, 5:]).abs().max().item() for e in ends]
    assert gaps[1] < gaps[0] / 5 and gaps[0] < 1e-2, "t → 0 approaches prompt A continuously"


def test_key_bias_is_one_value_per_key():
    layout = JointLayout.from_segments([(PROMPT_A, 2), (PROMPT_B, 1), (SHARED, 2)])
    bias = key_bias(layout, {PROMPT_A: torch.tensor([-1.0]), PROMPT_B: torch.tensor([-2.0])}, 1, "cpu", torch.float32)
    assert bias.shape == (1, 1, 5) and bias[0, 0].tolist() == [-1.0, -1.0, -2.0, 0.0, 0.0]


def test_blend_weights_and_modes():
    m = torch.tensor([[1.0, 0.5], [0.0, 1.0]])
    assert blend_weights(m, 1.0).tolist() == [1.0, 0.5, 0.0, 1.0]
    assert blend_weights(m, 0.5).tolist() == [1.0, 0.75, 0.5, 1.0]
    assert weights_mode(blend_weights(m, 0.0)) == "a" and weights_mode(torch.zeros(3)) == "b"
    assert weights_mode(blend_weights(m, 1.0)) == "blend"


FLUX_BLOCKS = [("double", i) for i in range(19)] + [("single", i) for i in range(38)]


def test_block_names_kinds_numbers_and_ranges():
    assert parse_blocks("all", FLUX_BLOCKS, "Flux") == FLUX_BLOCKS
    assert parse_blocks("double", FLUX_BLOCKS, "Flux") == FLUX_BLOCKS[:19]
    assert parse_blocks("double 3, single 0-2, double 3", FLUX_BLOCKS, "Flux") == \
        [("double", 3), ("single", 0), ("single", 1), ("single", 2)]
    with pytest.raises(ValueError, match="Flux.*'double' / 'single'"):
        parse_blocks("input 4", FLUX_BLOCKS, "Flux")
    with pytest.raises(ValueError, match="no 'single 38'.*single 0-37"):
        parse_blocks("single 38-40", FLUX_BLOCKS, "Flux")
    with pytest.raises(ValueError, match="number or a range"):
        parse_blocks("double x", FLUX_BLOCKS, "Flux")


# --------------------------------------------------------------------------- the mixed conditioning


def _cond(seed, tokens, width=8, **extra):
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(1, tokens, width, generator=g), {"pooled_output": torch.randn(1, 4, generator=g), **extra}]]


def _lerp(t):
    return lambda a, b: (1 - t) * a + t * b


def test_ends_are_the_prompts_themselves():
    a, b = _cond(0, 5, guidance=3.5, reference_latents=["ref"]), _cond(1, 7, guidance=2.0)
    at0 = attention_weight_mix(a, b, 0.0, _lerp(0.0))
    assert torch.equal(at0[0][0], a[0][0]) and at0[0][1] == a[0][1] and at0[0][1] is not a[0][1]
    at1 = attention_weight_mix(a, b, 1.0, _lerp(1.0))
    assert torch.equal(at1[0][0], b[0][0]) and torch.equal(at1[0][1]["pooled_output"], b[0][1]["pooled_output"])
    assert at1[0][1]["guidance"] == 2.0 and at1[0][1]["reference_latents"] == ["ref"], "A's other keys are kept"


def test_mixed_prompt_is_both_prompts_side_by_side_with_the_flux_bias():
    a, b = _cond(0, 5, guidance=3.0), _cond(1, 7, guidance=1.0)
    out = attention_weight_mix(a, b, 0.25, _lerp(0.25))[0]
    tokens, extra = out
    assert torch.equal(tokens, torch.cat([a[0][0], b[0][0]], dim=1))
    assert extra[MARKER] == {"t": 0.25, "tokens": (5, 7), "llama": None, "dense_bias": True}
    assert extra["guidance"] == pytest.approx(2.5) and extra["attention_mask_img_shape"] == (1, 1)
    assert torch.allclose(extra["pooled_output"], 0.75 * a[0][1]["pooled_output"] + 0.25 * b[0][1]["pooled_output"])
    bias = extra["attention_mask"][0]
    assert bias.shape == (13, 13)
    assert bool((bias[:5, 5:12] == -math.inf).all()) and bool((bias[5:12, :5] == -math.inf).all())
    assert torch.allclose(bias[12, :5], torch.full((5,), math.log(0.75)))
    assert torch.allclose(bias[12, 5:12], torch.full((7,), math.log(0.25)))
    assert bias[12, 12] == 0 and bool((bias[:5, :5] == 0).all())


def test_a_style_model_bias_already_on_a_prompt_is_kept_in_its_quadrants():
    own = torch.zeros(1, 6, 6)
    own[:, :, 4] = math.log(0.5)  # a Redux token (index 4 of 5 text tokens) at strength 0.5
    a, b = _cond(0, 5, attention_mask=own, attention_mask_img_shape=(1, 1)), _cond(1, 3)
    bias, shape = dense_prompt_bias(a[0][1], b[0][1], 5, 3, 1, 0.5)
    assert shape == (1, 1)
    assert bias[0, 0, 4] == pytest.approx(math.log(0.5)) and bias[0, 8, 4] == pytest.approx(2 * math.log(0.5))
    with pytest.raises(ValueError, match="image grid"):
        dense_prompt_bias(a[0][1], {"attention_mask_img_shape": (2, 2)}, 5, 3, 1, 0.5)


def test_token_masked_prompts_lose_their_padding_and_keep_a_token_mask():
    """Lumina 2 and OmniGen2 conditionings: the encoder's (B, L) mask, padding at the end."""
    pad_a = torch.tensor([[1, 1, 1, 1, 0, 0]])
    a, b = _cond(0, 6, attention_mask=pad_a), _cond(1, 3, attention_mask=torch.ones(1, 3, dtype=torch.long))
    tokens, extra = attention_weight_mix(a, b, 0.5, _lerp(0.5))[0]
    assert torch.equal(tokens, torch.cat([a[0][0][:, :4], b[0][0]], dim=1))
    assert torch.equal(extra["attention_mask"], torch.ones(1, 7, dtype=torch.long))
    assert extra[MARKER]["tokens"] == (4, 3) and not extra[MARKER]["dense_bias"]


def test_llama_states_are_mixed_on_their_token_axis_and_references_turn_the_bias_off():
    g = torch.Generator().manual_seed(5)
    la, lb = torch.randn(1, 2, 4, 6, generator=g), torch.randn(1, 2, 9, 6, generator=g)
    a, b = _cond(0, 5, conditioning_llama3=la), _cond(1, 3, conditioning_llama3=lb)
    _, extra = attention_weight_mix(a, b, 0.5, _lerp(0.5))[0]
    assert torch.equal(extra["conditioning_llama3"], torch.cat([la, lb], dim=2)) and extra[MARKER]["llama"] == (4, 9)
    with pytest.raises(ValueError, match="conditioning_llama3"):
        attention_weight_mix(a, _cond(1, 3), 0.5, _lerp(0.5))
    kontext = _cond(0, 5, reference_latents=[torch.zeros(1, 4, 2, 2)])
    _, extra = attention_weight_mix(kontext, _cond(1, 3), 0.5, _lerp(0.5))[0]
    assert "attention_mask" not in extra and extra[MARKER]["dense_bias"] is False


def test_bad_pairs_are_refused_by_name():
    a, b = _cond(0, 5), _cond(1, 3, width=6)
    with pytest.raises(ValueError, match="conditioning_a has 8-d tokens but conditioning_b has 6-d"):
        attention_weight_mix(a, b, 0.5, _lerp(0.5))
    sdxl = [[torch.zeros(1, 154, 2048), {}]]
    for t in (0.0, 0.5, 1.0):
        with pytest.raises(ValueError, match="SDXL CLIP prompt.*whole tensor"):
            attention_weight_mix(sdxl, [[torch.zeros(1, 77, 2048), {}]], t, _lerp(t))
    assert attention_weight_mix([[torch.zeros(1, 154, 4096), {}]], [[torch.zeros(1, 77, 4096), {}]], 0.5, _lerp(0.5))
    mixed = attention_weight_mix(a, _cond(1, 3), 0.5, _lerp(0.5))
    with pytest.raises(ValueError, match="already a mix"):
        attention_weight_mix(mixed, a, 0.5, _lerp(0.5))
