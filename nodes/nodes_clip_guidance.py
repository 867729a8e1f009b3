"""CLIP image guidance (seed 000): the mixed target embedding and the guidance as a MODEL patch and a sampler.

Math and the k-diffusion derivation: ``blendspace/clip_guidance.py``. Gradients under ComfyUI's
inference mode (REFERENCE.md §4.5): grad-capable deep copies of the VAE, the CLIP vision tower and,
for the exact gradient, the diffusion model are made once per patched model (outside inference
mode, weights frozen) and released by the sampler node after each run.
"""

from __future__ import annotations

import copy

import torch

from ..blendspace.clip_guidance import (
    OPENAI_MEAN,
    OPENAI_STD,
    clip_pixels,
    fast_chain_factor,
    guidance_loss,
    guided_blend,
    make_cutouts,
)
from ..blendspace.latents import BlendspaceInputError, match_pair, samples_of
from ..blendspace.slerp import slerp
from ..blendspace.strength_sweep import STRENGTH_MODES, diffusers_start_step
from . import comfy_compat
from .nodes_open_clip import OPEN_CLIP_TYPE, on_compute_device, require_open_clip

TARGET_TYPE = "BLENDSPACE_CLIP_TARGET"
GRADIENTS = ("exact (through the U-Net, source)", "fast (decoder only)")


class ClipTarget(dict):
    """``{"embeds": (1 or B, D) unit vectors, "dim": D}``: where CLIP guidance pulls the image."""


class ImageTower:
    """The CLIP image model guidance and targets use: core CLIP_VISION or a Blendspace open_clip model."""

    def __init__(self, clip_vision=None, open_clip=None):
        if (clip_vision is None) == (open_clip is None):
            raise BlendspaceInputError("connect exactly one CLIP image model: clip_vision (Load CLIP Vision) or "
                                       "open_clip (Load open_clip Model, the seed's LAION ViT-B-32).")
        self.clip_vision = clip_vision
        self.open_clip = require_open_clip(open_clip) if open_clip is not None else None
        if self.open_clip is not None:
            oc = self.open_clip
            self.module, self.size, self.mean, self.std, self.dim = oc.model, oc.image_size, oc.mean, oc.std, oc.embed_dim
        else:
            self.module = clip_vision.model
            self.size = int(getattr(clip_vision, "image_size", 224))
            self.mean = getattr(clip_vision, "image_mean", OPENAI_MEAN)
            self.std = getattr(clip_vision, "image_std", OPENAI_STD)
            proj = getattr(self.module, "visual_projection", None)
            self.dim = getattr(proj, "out_features", None)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Projected embeddings of an IMAGE batch, preprocessed as CLIP expects (resize, centre crop)."""
        if self.open_clip is not None:
            with on_compute_device(self.open_clip):
                return self.open_clip.encode_images(images)
        return self.clip_vision.encode_image(images)["image_embeds"].float()

    def embed(self, module, pixels: torch.Tensor) -> torch.Tensor:
        """Differentiable embeddings of preprocessed pixels through ``module`` (a grad-capable copy)."""
        if self.open_clip is not None:
            return module.encode_image(pixels.to(next(module.parameters()).dtype), normalize=False).float()
        return clip_image_embeds(module, pixels).float()


def _embeds(tower: ImageTower, image=None, output=None, name="image"):
    if output is not None:
        if tower.open_clip is not None:
            raise BlendspaceInputError(f"the {name}'s CLIP Vision Encode output comes from a core CLIP vision model: "
                                       "with open_clip, connect the image itself.")
        return output["image_embeds"].float()
    if image is None:
        raise BlendspaceInputError(f"connect the {name} (an IMAGE, or its CLIP Vision Encode output).")
    return tower.encode(image)


class SlerpClipImageEmbeds:
    NODE_ID = "BlendspaceSlerpClipImageEmbeds"
    DISPLAY_NAME = "Slerp CLIP Image Embeds (guidance target)"
    SEARCH_ALIASES = ["mix images", "blend two images", "image mix target", "style blend", "clip image embeds", "image prompt"]
    CATEGORY = "Blendspace/clip_guidance"
    DESCRIPTION = (
        "Seed 000's CLIP guidance target: the slerp of the unit CLIP image embeddings of the content and the style "
        "image (slerp_clip_image_style_strength: 0 = content, 1 = style; recipes 0.2 'style to content', 0.8 "
        "'content to style'). The images are encoded as CLIP expects (shortest side 224, centre crop).")
    RETURN_TYPES = (TARGET_TYPE,)
    RETURN_NAMES = ("target",)
    OUTPUT_TOOLTIPS = ("The target embedding for CLIP Image Guidance.",)
    FUNCTION = "mix"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "slerp_clip_image_style_strength": ("FLOAT", {"default": 0.1, "min": 0.0, "max": 1.0, "step": 0.01,
                                                              "tooltip": "0 = the content image's embedding, 1 = the "
                                                                         "style image's (source default 0.1)."}),
            },
            "optional": {
                "clip_vision": ("CLIP_VISION", {"tooltip": "The CLIP vision model that will also guide (Load CLIP "
                                                           "Vision); or connect open_clip instead."}),
                "open_clip": (OPEN_CLIP_TYPE, {"tooltip": "An open_clip model that will also guide (the seed's LAION "
                                                          "ViT-B-32); or connect clip_vision instead."}),
                "content_image": ("IMAGE", {"tooltip": "The content image."}),
                "style_image": ("IMAGE", {"tooltip": "The style image."}),
                "content_clip_vision_output": ("CLIP_VISION_OUTPUT", {"tooltip": "Instead of content_image: its CLIP "
                                                                                 "Vision Encode output."}),
                "style_clip_vision_output": ("CLIP_VISION_OUTPUT", {"tooltip": "Instead of style_image: its CLIP "
                                                                               "Vision Encode output."}),
            },
        }

    def mix(self, slerp_clip_image_style_strength, clip_vision=None, open_clip=None, content_image=None,
            style_image=None, content_clip_vision_output=None, style_clip_vision_output=None):
        tower = ImageTower(clip_vision, open_clip)
        c = _embeds(tower, content_image, content_clip_vision_output, "content image")
        s = _embeds(tower, style_image, style_clip_vision_output, "style image")
        return (mixed_target(c, s, slerp_clip_image_style_strength),)


def mixed_target(content: torch.Tensor, style: torch.Tensor, t: float) -> ClipTarget:
    """The guidance target: the slerp (one tensor, as the source) of the unit content and style embeddings."""
    c = torch.nn.functional.normalize(content.float(), dim=-1)
    s = torch.nn.functional.normalize(style.float(), dim=-1)
    if c.shape != s.shape:
        raise BlendspaceInputError(f"content and style embeddings differ ({tuple(c.shape)} vs {tuple(s.shape)}): "
                                   "encode both with the same CLIP vision model, one image each.")
    mixed = slerp(c, s, float(t), per="tensor")
    return ClipTarget(embeds=mixed.cpu(), dim=int(mixed.shape[-1]))


def clip_image_embeds(model, pixels: torch.Tensor) -> torch.Tensor:
    """Projected CLIP image embeddings computed from the module's own weights, without the in-place
    residual adds of ComfyUI's ``CLIPLayer`` (which autograd cannot differentiate through)."""
    vm = model.vision_model
    x = vm.pre_layrnorm(vm.embeddings(pixels))
    for layer in vm.encoder.layers:
        att = layer.self_attn
        h = layer.layer_norm1(x)
        b, n, c = h.shape
        q, k, v = (p(h).view(b, n, att.heads, c // att.heads).transpose(1, 2)
                   for p in (att.q_proj, att.k_proj, att.v_proj))
        o = torch.nn.functional.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, c)
        x = x + att.out_proj(o)
        x = x + layer.mlp(layer.layer_norm2(x))
    return model.visual_projection(vm.post_layernorm(x[:, 0, :]))


class _Guidance:
    """The post-CFG function of one patched model, with its lazily built grad-capable copies. ``copies``: a dict
    shared by several guidances of the same models (the grid search's cells), freed by its owner, not by
    :meth:`release`."""

    def __init__(self, vae, tower: ImageTower, target: ClipTarget, scale: float, exact: bool, num_cutouts: int,
                 sigma_range: tuple[float, float], every: int, seed: int, copies: dict | None = None):
        self.vae, self.tower, self.target = vae, tower, target
        self.scale, self.exact, self.num_cutouts = float(scale), exact, int(num_cutouts)
        self.sigma_start, self.sigma_end = sigma_range
        self.every = max(1, int(every))
        self.generator = torch.Generator().manual_seed(seed)
        self.shared = copies is not None
        self.cache: dict = copies if copies is not None else {}
        self.calls = 0

    def release(self) -> None:
        if not self.shared:
            self.cache.clear()
        self.calls = 0

    def _frozen_copy(self, module, device):
        with torch.inference_mode(False):
            m = copy.deepcopy(module).to(device)
        for p in m.parameters():
            p.requires_grad_(False)
        return m

    def _copies(self, model, device):
        if "decoder" not in self.cache:
            self.cache["decoder"] = self._frozen_copy(self.vae.first_stage_model, device)
            self.cache["clip"] = self._frozen_copy(self.tower.module, device)
        if self.exact and "unet" not in self.cache:
            self.cache["unet"] = self._frozen_copy(model, device)
            self.cache["blocks"] = comfy_compat.transformer_blocks(getattr(model, "diffusion_model", None))
        return self.cache

    def _embed(self, decoder, clip, model, s):
        z = model.process_latent_out(s)
        img = decoder.decode(z.to(getattr(self.vae, "vae_dtype", z.dtype)))
        img = ((img.float() + 1.0) / 2.0).clamp(0.0, 1.0)
        size, mean, std = self.tower.size, self.tower.mean, self.tower.std
        if self.num_cutouts > 0:
            pixels = make_cutouts(img, size, self.num_cutouts, 1.0, self.generator)
            pixels = clip_pixels(pixels, size, mean, std)
        else:
            pixels = clip_pixels(img, size, mean, std)
            if pixels.shape[-1] != pixels.shape[-2]:  # the source only worked on square images: centre-crop others
                top, left = (pixels.shape[-2] - size) // 2, (pixels.shape[-1] - size) // 2
                pixels = pixels[..., top:top + size, left:left + size]
        return self.tower.embed(clip, pixels)

    def __call__(self, args):
        import comfy.model_management
        denoised, x, sigma, model = args["denoised"], args["input"], args["sigma"], args["model"]
        s_now = float(sigma.reshape(-1)[0])
        if self.scale == 0 or not (self.sigma_end <= s_now <= self.sigma_start):
            return denoised
        self.calls += 1
        if (self.calls - 1) % self.every:
            return denoised
        comfy.model_management.throw_exception_if_processing_interrupted()
        cache = self._copies(model, x.device)
        target = self.target["embeds"].to(x.device)
        sig = sigma.to(x.device).float()
        with torch.inference_mode(False), torch.enable_grad():
            if self.exact:
                x_k = x.detach().clone().requires_grad_(True)
                # same math, but attention through PyTorch's SDPA, whose backward is far cheaper than the CPU
                # sub-quadratic kernel's (blocks with their own replace patch keep it)
                options = comfy_compat.with_sdpa_attention(args.get("model_options", {}), cache["blocks"])
                x0 = _cond_prediction(cache["unet"], args["cond"], x_k, sig.clone(), options)
                s = guided_blend(x0, x_k, sig.clone())
                wrt = x_k
            else:
                x0 = args.get("cond_denoised", denoised).detach().clone()
                s = guided_blend(x0, x.detach().clone(), sig.clone()).detach().requires_grad_(True)
                wrt = s
            emb = self._embed(cache["decoder"], cache["clip"], model, s)
            loss = guidance_loss(emb, target, self.scale, self.num_cutouts)
            grad = torch.autograd.grad(loss, wrt)[0]
            if not self.exact:
                grad = grad * fast_chain_factor(sig, x.dim()).to(grad)
        grad = grad.detach().to(denoised.dtype)
        return denoised - (sig.view(-1, *([1] * (x.dim() - 1))) ** 2).to(denoised.dtype) * grad


def _cond_prediction(model, cond, x, sigma, model_options):
    """The conditional-only x̂0 (the source's extra U-Net pass), through the grad-capable model copy."""
    import comfy.samplers
    if hasattr(comfy.samplers, "calc_cond_batch"):
        return comfy.samplers.calc_cond_batch(model, [cond], x, sigma, model_options)[0]
    # The 2024 transformer blocks add residuals in place (x += ...); saving clones keeps autograd valid there.
    with torch.autograd.graph.saved_tensors_hooks(lambda t: t.clone(), lambda t: t):
        return comfy.samplers.calc_cond_uncond_batch(model, cond, None, x, sigma, model_options)[0]


def _patched(model, guidance: _Guidance):
    """A clone of ``model`` with the guidance as its post-CFG function (the input model is untouched)."""
    m = model.clone()
    m.set_model_sampler_post_cfg_function(lambda args: guidance(args))
    return m


def _guidance_inputs() -> dict:
    return {
        "vae": ("VAE", {"tooltip": "The checkpoint's VAE (the guided image is decoded through a copy of it)."}),
        "target": (TARGET_TYPE, {"tooltip": "The mixed CLIP image embedding (Slerp CLIP Image Embeds)."}),
        "clip_guidance_scale": ("FLOAT", {"default": 100.0, "min": 0.0, "max": 10000.0, "step": 1.0,
                                          "tooltip": "Strength of the pull toward the target (source: 100; 0 = off, "
                                                     "identical to plain sampling)."}),
        "gradient": (list(GRADIENTS), {"default": GRADIENTS[0],
                                       "tooltip": "exact: through the U-Net as the source (one extra U-Net forward and "
                                                  "backward per guided step, plus a copy of the U-Net in memory). "
                                                  "fast: through the VAE decoder and CLIP only (no U-Net backward)."}),
        "use_cutouts": ("BOOLEAN", {"default": False,
                                    "tooltip": "Score random crops instead of the whole image (the upstream pipeline; "
                                               "seed 000 uses the whole image)."}),
        "num_cutouts": ("INT", {"default": 4, "min": 1, "max": 64, "tooltip": "Crops per step when cutouts are on "
                                                                              "(upstream default 4)."}),
        "start_percent": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                    "tooltip": "First step (fraction of the schedule) that is guided."}),
        "end_percent": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                  "tooltip": "Last step (fraction of the schedule) that is guided."}),
        "every_n_steps": ("INT", {"default": 1, "min": 1, "max": 1000,
                                  "tooltip": "Guide only every n-th step in the window (1 = every step, as the source)."}),
    }


def _tower_inputs() -> dict:
    return {
        "clip_vision": ("CLIP_VISION", {"tooltip": "The CLIP vision model that made the target (Load CLIP Vision); or "
                                                   "connect open_clip instead."}),
        "open_clip": (OPEN_CLIP_TYPE, {"tooltip": "The open_clip model that made the target (the seed's LAION "
                                                  "ViT-B-32); or connect clip_vision instead."}),
    }


def _make_guidance(model, vae, target, clip_guidance_scale, gradient, use_cutouts, num_cutouts,
                   start_percent, end_percent, every_n_steps, seed=0, clip_vision=None, open_clip=None,
                   copies: dict | None = None) -> _Guidance:
    if not isinstance(target, dict) or "embeds" not in target:
        raise BlendspaceInputError("target must come from Slerp CLIP Image Embeds.")
    if gradient not in GRADIENTS:
        raise BlendspaceInputError(f"gradient must be one of {GRADIENTS}")
    if start_percent > end_percent:
        raise BlendspaceInputError(f"start_percent ({start_percent}) is after end_percent ({end_percent}).")
    tower = ImageTower(clip_vision, open_clip)
    if tower.dim is not None and tower.dim != target["dim"]:
        raise BlendspaceInputError(f"the target was made by a {target['dim']}-d CLIP model but this CLIP model gives "
                                   f"{tower.dim}-d embeddings: use the same model for both.")
    return _Guidance(vae, tower, target, clip_guidance_scale, gradient == GRADIENTS[0],
                     num_cutouts if use_cutouts else 0, comfy_compat.percent_sigmas(model, start_percent, end_percent),
                     every_n_steps, seed, copies)


class ClipImageGuidance:
    NODE_ID = "BlendspaceClipImageGuidance"
    DISPLAY_NAME = "CLIP Image Guidance (model patch)"
    SEARCH_ALIASES = ["clip guidance", "image guidance", "mix images", "blend two images", "style transfer", "image prompt"]
    CATEGORY = "Blendspace/clip_guidance"
    DESCRIPTION = (
        "Seed 000's CLIP guidance as a MODEL patch for any sampler node: every guided step decodes the source's blend "
        "of predicted and current latent, embeds it with CLIP and moves the prediction down the gradient of the "
        "spherical distance to the target (denoised - sigma²·∇L, the k-diffusion form of the source's correction), "
        "so every ComfyUI sampler and scheduler works. The grad-capable model copies live as long as the patched "
        "model; CLIP Image Guidance Sampler frees them after each run.")
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("A patched copy of the model; the input model is left unchanged.",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL", {"tooltip": "The model to patch (a copy is patched)."}),
                             **_guidance_inputs()},
                "optional": _tower_inputs()}

    def patch(self, model, **kwargs):
        return (_patched(model, _make_guidance(model, **kwargs)),)


class ClipImageGuidanceSampler:
    NODE_ID = "ClipImageGuidanceSampler"
    DISPLAY_NAME = "CLIP Image Guidance Sampler"
    SEARCH_ALIASES = ["mix images", "blend two images", "images mixing", "style blend", "style transfer",
                      "clip guided sampler", "image prompt"]
    CATEGORY = "Blendspace/clip_guidance"
    DESCRIPTION = (
        "A KSampler with seed 000's CLIP image guidance toward a target embedding (see CLIP Image Guidance). Works "
        "with every sampler and scheduler, eps and v-prediction models, img2img (denoise < 1) and batches; "
        "progress bar with previews and Cancel as KSampler. clip_guidance_scale 0 is exactly KSampler.")
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The guided latent.",)
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls):
        sampler = {
            "model": ("MODEL", {"tooltip": "The model to sample with."}),
            "seed": ("INT", {"default": 17, "min": 0, "max": 0xFFFFFFFFFFFFFFFF,
                             "tooltip": "Seed of the noise (source examples: 17 and 117)."}),
            "steps": ("INT", {"default": 50, "min": 1, "max": 10000, "tooltip": "Sampling steps (source: 50)."}),
            "cfg": ("FLOAT", {"default": 9.0, "min": 0.0, "max": 100.0, "step": 0.1,
                              "tooltip": "Classifier-free guidance (source examples: 9.0; its default 7.5)."}),
            "sampler_name": (comfy_compat.sampler_names(), {"default": "euler",
                                                            "tooltip": "Sampling algorithm, as in KSampler."}),
            "scheduler": (comfy_compat.scheduler_names(), {"default": "normal", "tooltip": "Noise schedule, as in KSampler."}),
            "positive": ("CONDITIONING", {"tooltip": "The (mixed) prompt, e.g. Slerp Conditioning's output."}),
            "negative": ("CONDITIONING", {"tooltip": "Negative prompt (source: the empty prompt)."}),
            "latent_image": ("LATENT", {"tooltip": "The start latent, e.g. Slerp Latents of the two images."}),
            "denoise": ("FLOAT", {"default": 0.6, "min": 0.0, "max": 1.0, "step": 0.01,
                                  "tooltip": "How much is re-noised: the source's noise_strength (0.6; README: 0.5-0.7) "
                                             "or KSampler's denoise, as strength_mode says."}),
            "strength_mode": (list(STRENGTH_MODES), {"default": STRENGTH_MODES[0],
                                                     "tooltip": "diffusers (source): noise_strength, run the last "
                                                                "int(steps·denoise) steps of a steps-long schedule, as "
                                                                "the source's img2img. comfyui denoise: KSampler's rule."}),
        }
        return {
            "required": {**sampler, **_guidance_inputs()},
            "optional": {
                **_tower_inputs(),
                "latent_style": ("LATENT", {"tooltip": "The style image's latent. When connected, the start latent is "
                                                       "the slerp of the content (latent_image) and style latents, "
                                                       "EACH noised with its own noise at the first step (source)."}),
                "slerp_latent_style_strength": ("FLOAT", {"default": 0.8, "min": 0.0, "max": 1.0, "step": 0.01,
                                                          "tooltip": "Latent mix when latent_style is connected: 0 = "
                                                                     "content, 1 = style (source default 0.8)."}),
            },
        }

    def sample(self, model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image, denoise,
               strength_mode=None, latent_style=None, slerp_latent_style_strength=0.8, callback=None, copies=None,
               **guidance_args):
        """Not node inputs: ``callback``, a step callback replacing KSampler's progress bar and previews;
        ``copies``, grad-capable model copies shared across runs (their owner frees them)."""
        strength_mode = strength_mode or STRENGTH_MODES[0]
        if strength_mode not in STRENGTH_MODES:
            raise BlendspaceInputError(f"strength_mode must be one of {STRENGTH_MODES}")
        guidance = _make_guidance(model, seed=seed, copies=copies, **guidance_args)
        m = _patched(model, guidance)
        if callback is None:
            import latent_preview
            callback = latent_preview.prepare_callback(m, steps)  # progress bar and previews, as KSampler
        source = strength_mode == STRENGTH_MODES[0]
        span = dict(start_step=diffusers_start_step(steps, denoise), last_step=steps, force_full_denoise=True) \
            if source else dict(denoise=denoise)
        latent, noise = latent_image, None
        if latent_style is not None:
            latent, noise = _mixed_start(model, latent_image, latent_style, seed, scheduler, steps, denoise, source,
                                         float(slerp_latent_style_strength))
        try:
            out = comfy_compat.ksample(m, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent,
                                       callback=callback, noise=noise, **span)
        finally:
            guidance.release()  # free the grad-capable copies now, not when the graph cache drops the model
        result = dict(latent_image)
        result["samples"] = out
        return (result,)


def _mixed_start(model, latent_content, latent_style, seed, scheduler, steps, denoise, source, t):
    """Seed 000's start latent: content and style latents each noised at the first kept step with their own
    noise (seed and seed + 1), then slerped as one tensor; the sampler then adds no more noise."""
    content = samples_of(latent_content, "latent_image")
    style = samples_of(latent_style, "latent_style")
    content, style = match_pair(content, style, names=("latent_image", "latent_style"))
    ms = comfy_compat.model_sampling(model)
    if not hasattr(ms, "sigmas"):
        raise BlendspaceInputError("mixing noised latents needs an eps or v-prediction model (SD1.x, SD2.x, SDXL).")
    if source:
        sigmas = comfy_compat.schedule_sigmas(model, scheduler, steps, 1.0)
        first = diffusers_start_step(steps, denoise)
    else:
        sigmas = comfy_compat.schedule_sigmas(model, scheduler, steps, denoise)
        first = 0
    if first >= len(sigmas) - 1:
        return latent_content, None
    sigma0 = float(sigmas[first])
    _, n_c = comfy_compat.prepare_noise(model, {"samples": content.contiguous()}, seed)
    _, n_s = comfy_compat.prepare_noise(model, {"samples": style.contiguous()}, seed + 1)
    inner = model.model
    c_in = inner.process_latent_in(content.float())
    s_in = inner.process_latent_in(style.float())
    start = slerp(c_in + sigma0 * n_c.to(c_in), s_in + sigma0 * n_s.to(s_in), t, per="tensor")
    out = dict(latent_content)
    out["samples"] = inner.process_latent_out(start).to(content.dtype)
    return out, torch.zeros_like(content, device="cpu")


NODES = [SlerpClipImageEmbeds, ClipImageGuidance, ClipImageGuidanceSampler]
