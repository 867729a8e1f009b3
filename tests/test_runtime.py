"""The runtime layer's shared pieces: the one dispatcher behind ``optimized_attention_override`` and chained DiT block
replacement, checked on a tiny Flux (current ComfyUI) and, where the 2024 ComfyUI lacks the hook, its refusal."""

from __future__ import annotations

import copy

import pytest
import torch


def _attention(comfy):
    return comfy.pack.nodes.runtime.attention


def _recorder(log: list, name: str, scale: float = 1.0):
    def handler(call_next, q, k, v, heads, **kwargs):
        log.append(name)
        return call_next(q, k, v, heads, **kwargs) * scale
    return handler


def test_handlers_run_in_order_then_the_foreign_override_then_the_kernel(comfy):
    attention = _attention(comfy)
    log = []

    def foreign(func, *args, **kwargs):
        log.append("foreign")
        return func(*args, **kwargs) + 1.0

    def kernel(q, k, v, heads, **kwargs):
        log.append("kernel")
        return q * 0 + 2.0

    d = attention.AttentionDispatcher(foreign=foreign).with_handler("a", _recorder(log, "a", 3.0))
    d = d.with_handler("b", _recorder(log, "b", 5.0))
    out = d(kernel, torch.zeros(1), torch.zeros(1), torch.zeros(1), 1, transformer_options={})
    assert log == ["a", "b", "foreign", "kernel"]
    assert float(out) == (2.0 + 1.0) * 5.0 * 3.0


def test_a_handler_added_again_under_its_name_replaces_itself_in_place(comfy):
    attention = _attention(comfy)
    log = []
    first = attention.AttentionDispatcher().with_handler("a", _recorder(log, "a1")).with_handler("b", _recorder(log, "b"))
    second = first.with_handler("a", _recorder(log, "a2"))
    assert second.names() == ["a", "b"] and first.names() == ["a", "b"]
    second(lambda q, k, v, heads, **kw: q, torch.zeros(1), None, None, 1)
    first(lambda q, k, v, heads, **kw: q, torch.zeros(1), None, None, 1)
    assert log == ["a2", "b", "a1", "b"], "the first dispatcher is unchanged"
    assert copy.deepcopy(first) is first, "ModelPatcher.clone() deep-copies model_options: the dispatcher is shared"


@pytest.fixture(scope="module")
def flux(comfy):
    comfy.tiny.current_comfyui_only("Flux")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 16, 8, 8, generator=g)
    cond = {"c_crossattn": torch.randn(1, 5, comfy.tiny.CONTEXT_DIM, generator=g), "y": torch.randn(1, 768, generator=g),
            "guidance": torch.tensor([3.5])}
    return comfy.tiny.tiny_flux(0), x, cond


def _predict(model, x, cond):
    """One prediction of ``model`` (a ModelPatcher) with its own transformer_options, as the sampler calls it."""
    options = model.model_options.get("transformer_options", {})
    return model.model.apply_model(x, torch.tensor([0.6]), transformer_options=dict(options), **cond)


def test_a_dit_runs_every_attention_call_through_the_dispatcher(comfy, flux):
    attention = _attention(comfy)
    model, x, cond = flux
    plain = _predict(model, x, cond)
    log = []
    patched = model.clone()
    attention.add_attention_handler(patched, "count", _recorder(log, "call"), "test")
    assert torch.equal(_predict(patched, x, cond), plain), "a pass-through handler leaves the result exactly"
    blocks = len(model.model.diffusion_model.double_blocks) + len(model.model.diffusion_model.single_blocks)
    assert len(log) == blocks, "one attention call per Flux block"
    assert "optimized_attention_override" not in model.model_options.get("transformer_options", {}), "source untouched"
    scaled = patched.clone()
    attention.add_attention_handler(scaled, "half", _recorder([], "half", 0.5), "test")
    assert not torch.allclose(_predict(scaled, x, cond), plain)


def test_an_override_another_pack_installed_is_kept(comfy, flux):
    attention = _attention(comfy)
    model, x, cond = flux
    seen = []

    def other_pack(func, *args, **kwargs):
        seen.append(1)
        return func(*args, **kwargs)

    theirs = model.clone()
    theirs.model_options["transformer_options"]["optimized_attention_override"] = other_pack
    ours = theirs.clone()
    attention.add_attention_handler(ours, "count", _recorder([], "call"), "test")
    assert torch.equal(_predict(ours, x, cond), _predict(model, x, cond))
    assert seen, "the other pack's override still sees the calls"


def test_block_replacement_wraps_the_patch_already_there(comfy, flux):
    attention = _attention(comfy)
    model, x, cond = flux
    log = []

    def theirs(args, extra):
        log.append("theirs")
        return extra["original_block"](args)

    def make(previous):
        def ours(args, extra):
            log.append("ours")
            return previous(args, extra) if previous is not None else extra["original_block"](args)
        return ours

    patched = model.clone()
    patched.set_model_patch_replace(theirs, "dit", "double_block", 0)
    attention.chain_block_replace(patched, "dit", [("double_block", 0)], make)
    assert torch.equal(_predict(patched, x, cond), _predict(model, x, cond))
    assert log == ["ours", "theirs"]


def test_the_2024_comfyui_is_refused_by_name(comfy, tiny_models):
    attention = _attention(comfy)
    if attention.supports_attention_override():
        pytest.skip("this ComfyUI has the attention override hook (the refusal is for the 2024 one)")
    with pytest.raises(ValueError, match="The joint-attention blend needs a current ComfyUI") as err:
        attention.add_attention_handler(tiny_models[0].clone(), "x", _recorder([], "x"), "The joint-attention blend")
    assert type(err.value).__name__ == "BlendspaceInputError"
