"""The CLIP-guided sampler's hooks into ComfyUI's sampling, and the state they share.

The guidance (math: ``blendspace/clip_guidance.py``) acts after CFG on every guided step, as the model's
post-CFG function: it decodes the source's blend of predicted and current latent through grad-capable twins
(``twins``), embeds it with CLIP and moves the prediction down the gradient of the spherical distance to the
target. With the exact gradient on current ComfyUI it also takes the sampler's conditional pass
(``sampler_calc_cond_batch_function``): on a guided step that pass runs once, with gradients, and its graph is
handed to the post-CFG function of the same evaluation, so the U-Net is not run a second time. The 2024
ComfyUI has no such hook: there the post-CFG function makes the source's extra conditional pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...blendspace.clip_guidance import GUIDANCE_RESIZES, StepClock, correction_factor, embed_latent, guided_denoised
from ...blendspace.grad_memory import autocast_dtype, checkpoint_blocks, checkpoint_enabled, checkpointing
from .clip_vision import ImageTower
from .cross_attention import grad_attention_options, transformer_blocks
from .sampling import check_interrupted
from .twins import grad_capable_twin, tiny_decoder

DECODER_BLOCKS = ("ResnetBlock", "AttnBlock", "Upsample")
"""The VAE decoder's blocks checkpointed in the gradient passes (ComfyUI's ``diffusionmodules.model`` classes:
each keeps its input only; at 512 px the decoder's full-resolution activations are 128 MiB each in fp32)."""
TINY_DECODER_BLOCKS = ("Block",)
"""ComfyUI's TAESD residual blocks (``comfy.taesd.taesd.Block``)."""
TOWER_BLOCKS = ("ResidualAttentionBlock",)
"""open_clip's transformer layers (core CLIP vision's layers are checkpointed by ``clip_image_embeds`` itself)."""

GRADIENTS = ("exact (through the U-Net, source)", "fast (decoder only)", "taesd (tiny decoder)")
"""Saved workflows store the value: new choices are appended, existing ones never change."""


@dataclass
class CondPass:
    """What the calc-cond-batch hook decided for one model evaluation (input ``x``), for the post-CFG function of
    the same evaluation: whether the step is guided, and the ``(x leaf, x̂0 graph)`` pair when it differentiated
    the conditional pass."""

    x: torch.Tensor
    guided: bool
    graph: tuple | None = None


class ClipGuidance:
    """The post-CFG function of one patched model: ComfyUI's model calls bound to ``guided_denoised``, with the
    step window, every-n-th-step counting and the lazily built grad-capable copies. ``copies``: a dict shared by
    several guidances of the same models (the grid search's cells), freed by its owner, not by :meth:`release`.

    ``checkpoint`` (default :attr:`checkpoint`, on): gradient checkpointing of the decoder's blocks and the CLIP
    tower's layers inside the gradient passes (the same gradient, less memory: ``blendspace/grad_memory.py``);
    :attr:`checkpoint_tower` off leaves the tower out (its activations at 224 px do not grow with the image).
    ``autocast`` (default :attr:`autocast`, ``auto``): the fast and taesd gradients' dtype under autocast, one of
    ``grad_memory.AUTOCAST_CHOICES`` (``auto``: bf16 or fp16 on CUDA, none on the CPU); the exact one never."""

    checkpoint = True
    checkpoint_tower = True  # with checkpoint: the CLIP tower's layers too (off: the decoder's blocks only)
    autocast = "auto"

    def __init__(self, vae, tower: ImageTower, target: dict, scale: float, gradient: str, num_cutouts: int,
                 sigma_range: tuple[float, float], every: int, seed: int, copies: dict | None = None,
                 parametrisation: str = "k-diffusion", resize: str = GUIDANCE_RESIZES[0],
                 checkpoint: bool | None = None, autocast: str | None = None):
        self.vae, self.tower, self.target = vae, tower, target
        self.checkpoint = type(self).checkpoint if checkpoint is None else bool(checkpoint)
        self.autocast = type(self).autocast if autocast is None else autocast
        autocast_dtype("cpu", self.autocast)  # an unknown choice is refused now
        self.parametrisation = parametrisation
        self.scale, self.num_cutouts = float(scale), int(num_cutouts)
        self.exact, self.tiny = gradient == GRADIENTS[0], gradient == GRADIENTS[2]
        self.sigma_start, self.sigma_end = sigma_range
        self.clock = StepClock(every)
        self.resize = resize
        self.generator = torch.Generator().manual_seed(seed)
        self.shared = copies is not None
        self.cache: dict = copies if copies is not None else {}
        self.cond_pass: CondPass | None = None  # of the evaluation calc_cond_batch saw last

    def release(self) -> None:
        if not self.shared:
            self.cache.clear()
        self.clock.reset()
        self.cond_pass = None

    def _frozen_copy(self, module, device):
        return grad_capable_twin(module, device)

    def _copies(self, model, device):
        """The grad-capable copies, made once per cache; their decoder blocks and (open_clip) tower layers are
        marked for checkpointing (they checkpoint only in runs with :attr:`checkpoint` on)."""
        if "clip" not in self.cache:
            self.cache["clip"] = self._frozen_copy(self.tower.module, device)
            checkpoint_blocks(self.cache["clip"], TOWER_BLOCKS)
        if self.tiny and "tiny_decoder" not in self.cache:
            self.cache["tiny_decoder"] = tiny_decoder(model, device)
            checkpoint_blocks(self.cache["tiny_decoder"], TINY_DECODER_BLOCKS)
        if not self.tiny and "decoder" not in self.cache:
            self.cache["decoder"] = self._frozen_copy(self.vae.first_stage_model, device)
            checkpoint_blocks(self.cache["decoder"], DECODER_BLOCKS)
        if self.exact and "unet" not in self.cache:
            self.cache["unet"] = self._frozen_copy(model, device)
            self.cache["blocks"] = transformer_blocks(getattr(model, "diffusion_model", None))
        return self.cache

    def _embed_fn(self, cache: dict, model):
        """s → CLIP embeddings through the grad-capable decoder and CLIP copies. The VAE decodes the latent
        (``process_latent_out``); the tiny decoder, as in ComfyUI's previews, the sampler's own latent ``s``."""
        vae_dtype = getattr(self.vae, "vae_dtype", None)

        def decode(s):
            if self.tiny:
                tiny = cache["tiny_decoder"]
                return tiny.decode(s.to(next(tiny.parameters()).dtype))
            z = model.process_latent_out(s)
            return cache["decoder"].decode(z.to(vae_dtype or z.dtype))

        tower, tower_checkpoint = self.tower, self.checkpoint_tower

        def encode(px):
            with checkpointing(checkpoint_enabled() and tower_checkpoint):
                return tower.embed(cache["clip"], px)
        return lambda s: embed_latent(s, decode, encode, tower.size, tower.mean, tower.std, self.num_cutouts,
                                      self.generator, self.resize)

    def _active(self, sigma, model_options: dict) -> bool:
        """In the window and on a guided step (sampler steps: the schedule of our own sampler's run, else the one
        current ComfyUI passes as ``sample_sigmas``, else distinct sigmas)."""
        s_now = float(sigma.reshape(-1)[0])
        if self.scale == 0 or not (self.sigma_end <= s_now <= self.sigma_start):
            return False
        schedule = model_options.get("transformer_options", {}).get("sample_sigmas")
        return self.clock.guided(s_now, None if schedule is None else schedule.reshape(-1).tolist())

    def calc_cond_batch(self, args: dict) -> list:
        """ComfyUI's ``sampler_calc_cond_batch_function`` (current ComfyUI, exact gradient): on a guided step the
        conditional pass the sampler needs anyway runs once, with gradients, through the grad-capable copy, and
        its graph is kept for :meth:`__call__` (no second U-Net pass); the other passes run as usual."""
        import comfy.samplers
        conds, x, sigma, model, options = args["conds"], args["input"], args["sigma"], args["model"], \
            args.get("model_options") or {}
        active = self._active(sigma, options) and bool((correction_factor(
            sigma.float(), x.dim(), self.parametrisation) > 0).any())  # flow at σ = 1 is never guided
        if not active:
            self.cond_pass = CondPass(x, False)
            return comfy.samplers.calc_cond_batch(model, conds, x, sigma, options)
        check_interrupted()
        cache = self._copies(model, x.device)
        with torch.inference_mode(False), torch.enable_grad():
            wrt = x.detach().clone().requires_grad_(True)
            x0 = cond_prediction(cache["unet"], conds[0], wrt, sigma.to(x.device).float().clone(),
                                  grad_attention_options(options, cache["blocks"]))
        self.cond_pass = CondPass(x, True, (wrt, x0))
        rest = comfy.samplers.calc_cond_batch(model, conds[1:], x, sigma, options) if len(conds) > 1 else []
        return [x0.detach(), *rest]

    def _decision(self, x, sigma, model_options: dict):
        """``(guided, (x leaf, x̂0 graph) or None)`` for this evaluation: made by :meth:`calc_cond_batch` for the
        same input when it ran, else here."""
        record, self.cond_pass = self.cond_pass, None
        if record is not None and record.x is x:
            return record.guided, record.graph
        return self._active(sigma, model_options), None

    def __call__(self, args):
        denoised, x, sigma, model = args["denoised"], args["input"], args["sigma"], args["model"]
        active, graph = self._decision(x, sigma, args.get("model_options") or {})
        if not active:
            return denoised
        check_interrupted()
        cache = self._copies(model, x.device)
        predict_x0 = None
        if self.exact and graph is None:  # the 2024 ComfyUI (no calc-cond-batch hook): the source's extra pass
            sig = sigma.to(x.device).float()
            options = grad_attention_options(args.get("model_options", {}), cache["blocks"])

            def predict_x0(x_k):
                return cond_prediction(cache["unet"], args["cond"], x_k, sig.clone(), options)
        return guided_denoised(denoised, x, sigma, self.target["embeds"], self.scale, self._embed_fn(cache, model),
                               self.num_cutouts, predict_x0, args.get("cond_denoised"), self.parametrisation,
                               x0_graph=graph, checkpoint=self.checkpoint,
                               autocast=autocast_dtype(x.device, self.autocast))


def cond_prediction(model, cond, x, sigma, model_options):
    """The conditional-only x̂0 (the source's extra U-Net pass), through the grad-capable model copy."""
    import comfy.samplers
    unet = hasattr(getattr(model, "diffusion_model", None), "input_blocks")
    if hasattr(comfy.samplers, "calc_cond_batch") and unet:
        return comfy.samplers.calc_cond_batch(model, [cond], x, sigma, model_options)[0]
    # The 2024 transformer blocks and the Flux / SD3 blocks add residuals in place (x += ...); saving clones
    # keeps autograd valid there.
    with torch.autograd.graph.saved_tensors_hooks(lambda t: t.clone(), lambda t: t):
        if hasattr(comfy.samplers, "calc_cond_batch"):
            return comfy.samplers.calc_cond_batch(model, [cond], x, sigma, model_options)[0]
        return comfy.samplers.calc_cond_uncond_batch(model, cond, None, x, sigma, model_options)[0]


def patched_model(model, guidance: ClipGuidance):
    """A clone of ``model`` with the guidance as its post-CFG function (the input model is untouched). With the
    exact gradient on current ComfyUI it also takes the conditional pass (:meth:`ClipGuidance.calc_cond_batch`),
    unless another node already replaced that pass: then the source's extra pass runs instead."""
    m = model.clone()
    m.set_model_sampler_post_cfg_function(lambda args: guidance(args))
    if guidance.exact and hasattr(m, "set_model_sampler_calc_cond_batch_function") \
            and "sampler_calc_cond_batch_function" not in m.model_options:
        m.set_model_sampler_calc_cond_batch_function(guidance.calc_cond_batch)
    return m
