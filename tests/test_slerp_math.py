"""Tier 1: the pure slerp math (no ComfyUI), against the source formula and its defined edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from blendspace.slerp import DOT_THRESHOLD, interpolation_weights, lerp, slerp, slerp_rows


def reference_slerp(t: float, v0: np.ndarray, v1: np.ndarray, thr: float = 0.9995) -> np.ndarray:
    """The source's formula (docs/techniques.md, "Slerp") in float64 numpy: the oracle for these tests."""
    dot = np.sum(v0 * v1 / (np.linalg.norm(v0) * np.linalg.norm(v1)))
    if abs(dot) > thr:
        return (1 - t) * v0 + t * v1
    theta0 = np.arccos(dot)
    theta_t = theta0 * t
    return np.sin(theta0 - theta_t) / np.sin(theta0) * v0 + np.sin(theta_t) / np.sin(theta0) * v1


finite = st.floats(min_value=-100, max_value=100, allow_nan=False, allow_infinity=False, width=32)
vectors = st.integers(min_value=2, max_value=24).flatmap(
    lambda n: st.tuples(st.lists(finite, min_size=n, max_size=n), st.lists(finite, min_size=n, max_size=n)))
weights = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(vectors, weights)
def test_matches_source_formula(pair, t):
    a = torch.tensor(pair[0], dtype=torch.float32)
    b = torch.tensor(pair[1], dtype=torch.float32)
    out = slerp(a, b, t, per="tensor")
    assert torch.isfinite(out).all()
    na, nb = a.norm().item(), b.norm().item()
    if na < 1e-3 or nb < 1e-3:
        return  # near-zero vectors: covered by the exact zero test below
    a64, b64 = a.double().numpy(), b.double().numpy()
    cos = float(np.dot(a64, b64) / (np.linalg.norm(a64) * np.linalg.norm(b64)))
    if abs(abs(cos) - DOT_THRESHOLD) < 1e-4:
        return  # on the threshold float32 and float64 may pick different branches
    ref = reference_slerp(t, a64, b64)
    scale = max(na, nb, 1.0)
    assert np.allclose(out.double().numpy(), ref, atol=2e-4 * scale, rtol=1e-4)


@settings(max_examples=100, deadline=None)
@given(vectors)
def test_endpoints_are_exact_and_inputs_untouched(pair):
    a = torch.tensor(pair[0], dtype=torch.float32)
    b = torch.tensor(pair[1], dtype=torch.float32)
    a0, b0 = a.clone(), b.clone()
    assert torch.equal(slerp(a, b, 0.0, per="tensor"), a)
    assert torch.equal(slerp(a, b, 1.0, per="tensor"), b)
    slerp(a, b, 0.37, per="tensor")
    assert torch.equal(a, a0) and torch.equal(b, b0)


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=0.05, max_value=3.0), weights)
def test_unit_vectors_stay_on_the_sphere(theta, t):
    """The defining property: between unit vectors the path keeps norm 1 and the angle to v0 is t·θ."""
    a = torch.tensor([1.0, 0.0, 0.0])
    b = torch.tensor([math.cos(theta), math.sin(theta), 0.0])
    out = slerp(a, b, t, per="tensor")
    assert out.norm().item() == pytest.approx(1.0, abs=1e-5)
    assert math.acos(max(-1.0, min(1.0, out[0].item()))) == pytest.approx(t * theta, abs=1e-3)


def test_parallel_opposite_and_zero_vectors_fall_back_to_lerp():
    a = torch.tensor([1.0, 2.0, 3.0])
    for b in (2.5 * a, -a, torch.zeros(3)):
        out = slerp(a, b, 0.3, per="tensor")
        assert torch.isfinite(out).all()
        assert torch.allclose(out, 0.7 * a + 0.3 * b)
    zero = torch.zeros(3)
    assert torch.equal(slerp(zero, zero, 0.5, per="tensor"), zero)
    assert torch.allclose(slerp(zero, a, 0.25, per="tensor"), 0.25 * a)


def test_float16_is_computed_in_float32_and_returned_in_float16():
    """The source's numpy float16 norm overflows (Σx² > 65504) and degenerates; ours must not."""
    g = torch.Generator().manual_seed(0)
    a32 = torch.randn(1, 77, 768, generator=g) * 1.5
    b32 = a32 + torch.randn(1, 77, 768, generator=g) * 1.5
    a16, b16 = a32.half(), b32.half()
    assert torch.isinf(a16.norm(dtype=torch.float16)) or a16.float().pow(2).sum() > 65504
    out = slerp(a16, b16, 0.4, per="tensor")
    assert out.dtype == torch.float16
    ref = reference_slerp(0.4, a16.double().numpy(), b16.double().numpy())
    assert np.allclose(out.double().numpy(), ref, atol=2e-2)
    naive = math.cos(0.4 * math.pi / 2) * a16.double().numpy() + math.sin(0.4 * math.pi / 2) * b16.double().numpy()
    assert not np.allclose(out.double().numpy(), naive, atol=2e-2)


def test_per_sample_per_token_and_whole_tensor_scopes():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(3, 5, 8, generator=g)
    b = torch.randn(3, 5, 8, generator=g)
    per_sample = slerp(a, b, 0.6, per="sample")
    per_token = slerp(a, b, 0.6, per="token")
    whole = slerp(a, b, 0.6, per="tensor")
    for i in range(3):
        assert torch.allclose(per_sample[i], slerp(a[i], b[i], 0.6, per="tensor"), atol=1e-6)
        for k in range(5):
            assert torch.allclose(per_token[i, k], slerp(a[i, k], b[i, k], 0.6, per="tensor"), atol=1e-6)
    ref = reference_slerp(0.6, a.double().numpy(), b.double().numpy())
    assert np.allclose(whole.double().numpy(), ref, atol=1e-5)
    assert not torch.allclose(per_sample, whole, atol=1e-4)
    assert not torch.allclose(per_token, per_sample, atol=1e-4)


def test_rows_accept_one_weight_per_row():
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    b = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    out = slerp_rows(a, b, torch.tensor([0.0, 1.0]))
    assert torch.allclose(out, torch.tensor([[1.0, 0.0], [0.0, 1.0]]), atol=1e-6)


def test_bad_arguments_are_rejected_with_a_message():
    with pytest.raises(ValueError, match="one shape"):
        slerp(torch.zeros(2), torch.zeros(3), 0.5)
    with pytest.raises(ValueError, match="per must be"):
        slerp(torch.ones(2), torch.ones(2), 0.5, per="pixel")
    with pytest.raises(ValueError, match="finite"):
        slerp(torch.ones(2), torch.ones(2), float("nan"))
    with pytest.raises(ValueError, match="at least 1"):
        interpolation_weights(0)


def test_lerp_and_walk_weights():
    a, b = torch.tensor([1.0, 3.0]), torch.tensor([3.0, -1.0])
    assert torch.allclose(lerp(a, b, 0.25), 0.75 * a + 0.25 * b)
    assert interpolation_weights(1) == [0.0]
    assert interpolation_weights(5) == [0.0, 0.25, 0.5, 0.75, 1.0]
