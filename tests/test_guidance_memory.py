"""Memory and precision of the CLIP guidance gradients (``blendspace/grad_memory.py``): gradient checkpointing of
the decoder blocks and CLIP layers leaves the gradient unchanged (equal to 1e-6 of its largest entry; the
recompute runs the same kernels on the same inputs) while it is really in effect, and the bf16 autocast the
fast and taesd gradients may use on CUDA agrees with fp32 within the stated tolerance (forced here on the CPU,
whose own default stays fp32)."""

from __future__ import annotations

import sys

import pytest
import torch

from blendspace.clip_guidance import guided_denoised
from blendspace.grad_memory import autocast_dtype, checkpoint_blocks, checkpointing

EXACT, FAST, TAESD = "exact (through the U-Net, source)", "fast (decoder only)", "taesd (tiny decoder)"
CHECKPOINT_RTOL = 1e-6
"""Checkpointed and plain gradients differ by at most this fraction of the gradient's largest entry."""
BF16_COSINE, BF16_RTOL = 0.98, 0.2
"""bf16 autocast against fp32 (the stated tolerance): cosine of the guidance corrections at least 0.98 and their
difference at most 20 % of the fp32 correction's norm. bf16 keeps 8 bits of mantissa (about 0.4 % per rounding,
compounded over the layers). Measured on the tiny random models: fast 0.9995 / 3 %, taesd 0.987 / 16 % (a deep
random ReLU decoder is chaotic, test_taesd_guidance.py), the toy decoder below closer still."""


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float = CHECKPOINT_RTOL) -> bool:
    return (a - b).abs().max().item() <= rtol * b.abs().max().item()


class _Block(torch.nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.norm, self.conv = torch.nn.GroupNorm(2, ch), torch.nn.Conv2d(ch, ch, 3, padding=1)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x + self.conv(torch.nn.functional.silu(self.norm(x)))


def _toy_decoder(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    with torch.inference_mode(False):  # weights made outside inference mode, as the node's copies are
        net = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3, padding=1), _Block(8), torch.nn.Upsample(scale_factor=2),
                                  _Block(8), torch.nn.Conv2d(8, 3, 3, padding=1))
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def _toy_step(decoder, **kwargs):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 4, 8, 8, generator=g)
    target = torch.randn(1, 3 * 16 * 16, generator=g)
    embed = lambda s: decoder(s).flatten(1)  # noqa: E731 - a stand-in for decode + CLIP
    return x - guided_denoised(x, x, torch.tensor([2.0]), target, 100.0, embed, cond_denoised=x * 0.3, **kwargs)


def test_checkpointing_keeps_the_gradient_and_recomputes_the_blocks():
    decoder = _toy_decoder()
    assert checkpoint_blocks(decoder, ["_Block"]) == 2
    checkpoint_blocks(decoder, ["_Block"])  # wrapping twice wraps once
    blocks = [m for m in decoder if isinstance(m, _Block)]
    plain = _toy_step(decoder, checkpoint=False)
    assert [b.calls for b in blocks] == [1, 1]
    kept = _toy_step(decoder, checkpoint=True)
    assert [b.calls for b in blocks] == [3, 3], "checkpointed: a forward and a recompute in the backward"
    assert plain.abs().max() > 0 and _close(kept, plain)
    with checkpointing(True), torch.inference_mode(False), torch.no_grad():
        decoder(torch.zeros(1, 4, 8, 8))
    assert [b.calls for b in blocks] == [4, 4], "no recompute where no gradient is recorded"


def test_clip_layers_checkpoint_to_the_same_gradient():
    from blendspace.clip_guidance import clip_image_embeds

    class Att(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = 2
            self.q_proj, self.k_proj, self.v_proj, self.out_proj = (torch.nn.Linear(8, 8) for _ in range(4))

    layer = lambda: torch.nn.ModuleDict(dict(  # noqa: E731
        self_attn=Att(), layer_norm1=torch.nn.LayerNorm(8), layer_norm2=torch.nn.LayerNorm(8),
        mlp=torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 8))))
    torch.manual_seed(0)
    with torch.inference_mode(False):
        model = _toy_tower(layer)
    grads = []
    for on in (False, True):
        with torch.inference_mode(False):
            px = torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(2), requires_grad=True)
            with checkpointing(on):
                clip_image_embeds(model, px).square().sum().backward()
        grads.append(px.grad)
    assert grads[0].abs().max() > 0 and _close(grads[1], grads[0])


def _toy_tower(layer) -> torch.nn.Module:
    vm = torch.nn.Module()
    vm.embeddings = lambda px: px.flatten(2).transpose(1, 2).repeat(1, 1, 8)[..., :8]
    vm.pre_layrnorm, vm.post_layernorm = torch.nn.LayerNorm(8), torch.nn.LayerNorm(8)
    vm.encoder = torch.nn.Module()
    vm.encoder.layers = torch.nn.ModuleList([layer() for _ in range(3)])
    model = torch.nn.Module()
    model.vision_model, model.visual_projection = vm, torch.nn.Linear(8, 4)
    return model


def test_autocast_dtype_is_fp32_on_the_cpu_and_bf16_or_fp16_on_cuda(monkeypatch):
    assert autocast_dtype("cpu") is None and autocast_dtype(torch.device("cpu"), "auto") is None
    assert autocast_dtype("cpu", "bf16") is torch.bfloat16 and autocast_dtype("cpu", "fp16") is torch.float16
    assert autocast_dtype("cuda", "off") is None
    for supported, dtype in ((True, torch.bfloat16), (False, torch.float16)):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, s=supported, **k: s)
        assert autocast_dtype("cuda:0") is dtype
    with pytest.raises(ValueError, match="autocast must be one of"):
        autocast_dtype("cpu", "fp8")


def test_bf16_autocast_gradient_agrees_with_fp32_on_a_toy_decoder():
    decoder = _toy_decoder(3)
    fp32 = _toy_step(decoder)
    bf16 = _toy_step(decoder, autocast=torch.bfloat16)
    assert bf16.dtype == fp32.dtype == torch.float32
    cos = torch.nn.functional.cosine_similarity(bf16.flatten(), fp32.flatten(), dim=0).item()
    assert cos >= BF16_COSINE and (bf16 - fp32).norm() <= BF16_RTOL * fp32.norm(), cos
    assert not torch.equal(bf16, fp32), "the bf16 path must really run in bf16"


# --------------------------------------------------------------------------------------------- ComfyUI's models

@pytest.fixture(scope="module")
def setup(comfy, tiny_models, tmp_path_factory):
    import folder_paths
    model, clip, vae = tiny_models
    root = tmp_path_factory.mktemp("vae_approx")
    folder_paths.add_model_folder_path("vae_approx", str(root))
    comfy.tiny.write_tiny_taesd_decoder(str(root), "taesd_decoder", comfy.tiny.tiny_taesd(11))
    g = torch.Generator().manual_seed(0)
    with torch.inference_mode():  # as the executor makes them (a module fixture runs outside the tests' mode)
        cv = comfy.tiny.tiny_clip_vision(3)
        target = comfy.node("BlendspaceSlerpClipImageEmbeds").mix(
            0.8, clip_vision=cv, content_image=torch.rand(1, 64, 64, 3, generator=g),
            style_image=torch.rand(1, 64, 64, 3, generator=g))[0]
    yield dict(model=model, vae=vae, cv=cv, target=target, pos=comfy.tiny.encode_prompt(clip, "a cat"),
               neg=comfy.tiny.encode_prompt(clip, ""), latent={"samples": torch.randn(1, 4, 8, 8, generator=g) * 3})
    folder_paths.folder_names_and_paths["vae_approx"][0].remove(str(root))


def _corrections(comfy, s, monkeypatch, gradient: str, **options) -> tuple[list, int]:
    """Every guided step's correction D - D' of a 3-step guided run with ``options`` set on ClipGuidance, and how
    many times torch's checkpoint ran."""
    hooks = comfy.pack.nodes.runtime.guidance_hooks
    memory = sys.modules[hooks.checkpoint_blocks.__module__]
    seen, counted = [], {"n": 0}

    def recording(denoised, *args, **kwargs):
        out = hooks_guided(denoised, *args, **kwargs)
        seen.append((denoised - out).detach().clone())
        return out

    def counting(*args, **kwargs):
        counted["n"] += 1
        return real_checkpoint(*args, **kwargs)

    hooks_guided, real_checkpoint = hooks.guided_denoised, memory.checkpoint
    with monkeypatch.context() as mp:
        mp.setattr(hooks, "guided_denoised", recording)
        mp.setattr(memory, "checkpoint", counting)
        for name, value in options.items():
            mp.setattr(hooks.ClipGuidance, name, value)
        comfy.node("ClipImageGuidanceSampler").sample(
            s["model"], 1, 3, 5.0, "euler", "normal", s["pos"], s["neg"], s["latent"], 1.0, vae=s["vae"],
            clip_vision=s["cv"], target=s["target"], clip_guidance_scale=1000.0, gradient=gradient,
            use_cutouts=False, num_cutouts=4, start_percent=0.0, end_percent=1.0, every_n_steps=1,
            strength_mode="comfyui denoise")
    return seen, counted["n"]


@pytest.mark.parametrize("gradient", [TAESD, FAST, EXACT])
def test_checkpointed_guidance_gives_the_same_gradient(comfy, setup, monkeypatch, gradient):
    plain, none = _corrections(comfy, setup, monkeypatch, gradient, checkpoint=False)
    kept, used = _corrections(comfy, setup, monkeypatch, gradient, checkpoint=True)
    assert none == 0 and used > 0, (none, used)
    assert len(plain) == len(kept) == 3 and all(p.abs().max() > 0 for p in plain)
    for a, b in zip(kept, plain, strict=True):
        assert _close(a, b), (a - b).abs().max()


def test_tower_checkpointing_can_be_left_out(comfy, setup, monkeypatch):
    both, with_tower = _corrections(comfy, setup, monkeypatch, FAST, checkpoint=True)
    decoder, without = _corrections(comfy, setup, monkeypatch, FAST, checkpoint=True, checkpoint_tower=False)
    assert 0 < without < with_tower, (without, with_tower)
    assert all(_close(a, b) for a, b in zip(decoder, both, strict=True))


@pytest.mark.parametrize("gradient", [TAESD, FAST])
def test_bf16_autocast_guidance_agrees_with_fp32_and_the_cpu_default_is_fp32(comfy, setup, monkeypatch, gradient):
    fp32, _ = _corrections(comfy, setup, monkeypatch, gradient, autocast="off")
    auto, _ = _corrections(comfy, setup, monkeypatch, gradient)  # "auto" on the CPU: fp32
    bf16, _ = _corrections(comfy, setup, monkeypatch, gradient, autocast="bf16")
    for a, b in zip(auto, fp32, strict=True):
        assert torch.equal(a, b)
    a, b = bf16[0].flatten(), fp32[0].flatten()  # the first step: both from the same latent
    cos = torch.nn.functional.cosine_similarity(a, b, dim=0).item()
    assert cos >= BF16_COSINE and (a - b).norm() <= BF16_RTOL * b.norm(), cos
    assert not torch.equal(a, b), "the bf16 path must really run in bf16"


def test_exact_gradient_ignores_autocast(comfy, setup, monkeypatch):
    off, _ = _corrections(comfy, setup, monkeypatch, EXACT, autocast="off")
    forced, _ = _corrections(comfy, setup, monkeypatch, EXACT, autocast="bf16")
    assert all(torch.equal(a, b) for a, b in zip(off, forced, strict=True))
