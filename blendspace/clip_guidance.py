"""CLIP-guided sampling toward a mixed image embedding (the diffusers images-mixing pipeline, "CLIP
Guided Images Mixing" by TheDenk/images_mixing; docs/techniques.md, "CLIP-guided image mixing").

Source (diffusers ``cond_fn``, DDIM-type schedulers), with x the DDPM latent, ᾱ = alphas_cumprod[t],
β = 1 - ᾱ and x̂0 from an extra conditional-only U-Net pass:

    s   = sqrt(β)·x̂0 + (1 - sqrt(β))·x                    (the blend it guides on, not x̂0 itself)
    img = clamp(VAE.decode(s)/2 + 1/2, 0, 1) → Resize(224) (no crop) → CLIP mean/std
    L   = scale · mean_batch( 2·arcsin(‖ê - ê*‖/2)² )      (ê, ê* unit CLIP image embeddings)
    ε  ← ε_cfg + sqrt(β)·∇_x L                             (LMS: x ← x - σ²·∇_x L, ε unchanged)

Derivation for ComfyUI's k-diffusion samplers (every sampler, every scheduler): the samplers see
``x_k = x / sqrt(ᾱ)`` at ``σ = sqrt(β/ᾱ)`` and the model returns the denoised D = x_k - σ·ε. So
``∇_x L = ∇_{x_k} L / sqrt(ᾱ)`` and the source's ε correction becomes

    D' = x_k - σ·(ε + sqrt(β)·∇_x L) = D - σ·sqrt(β)/sqrt(ᾱ)·∇_{x_k} L = D - σ²·∇_{x_k} L,

which is also what the LMS branch does (it moves x_k by -σ²·∇L and keeps ε). Guiding D is how a
ComfyUI post-CFG hook acts, for eps and v-prediction models alike (both return D). In k-space the
guided blend is ``s = sqrt(β)·x̂0 + (1 - sqrt(β))·sqrt(ᾱ)·x_k``.

Any parametrisation ``x = a·x0 + b·n`` of the sampler's variable (PARAMETRISATIONS): k-diffusion
(eps/v models) has ``a = 1, b = σ``; ComfyUI's CONST flow sampling (Flux, SD3) has ``a = 1 - σ,
b = σ``. With ``r = sqrt(a² + b²)`` the variance-preserving latent is ``x_t = x/r`` with
``sqrt(ᾱ) = a/r`` and ``sqrt(β) = b/r`` (k-diffusion: ``r = sqrt(1 + σ²)``, the relation above). The
source's correction ``x̂0' = x̂0 - β/sqrt(ᾱ)·∇_{x_t} L`` with ``∇_{x_t} L = r·∇_x L`` becomes

    D' = D - (b²/a)·∇_x L        (k-diffusion: σ²·∇L;  flow: σ²/(1 - σ)·∇L),

the same move Tweedie's formula ``E[x0|x] = (x + b²·∇ log p(x))/a`` gives for a guidance term
``-∇_x L``. The blend is ``s = sqrt(β)·x̂0 + (1 - sqrt(β))·x/r``. At ``a → 0`` (flow at σ = 1, pure
noise: x says nothing about x0) the factor diverges; steps with ``a < MIN_SIGNAL`` stay unguided.

Gradients: ``exact`` differentiates through the model's x̂0 (as the source); ``fast`` treats x̂0 as
moving with x as in the noiseless case (∂x̂0/∂x ≈ I/a), so only the decoder and CLIP are
differentiated: ``∇_x L ≈ (sqrt(β)/a + (1 - sqrt(β))/r)·∇_s L`` (k-diffusion:
``sqrt(β) + (1 - sqrt(β))·sqrt(ᾱ)``).

Cutouts (the upstream diffusers CLIP-guided pipeline with a text target, which the images-mixing pipeline adapted):
``num_cutouts`` random square crops of sizes ``rand^cut_power·(max - min) + min`` pooled to 224, loss
``sum over batch of mean over cutouts``.
Non-square images are centre-cropped after the resize (the source only ever guided square images).
The resize is bilinear without antialiasing by default (torchvision's tensor ``Resize(224)`` as the source
ran it); bicubic is the alternative (:data:`GUIDANCE_RESIZES`).

Every n-th step (:class:`StepClock`) counts sampler steps, not model calls: every evaluation of one step
(Heun's corrector, DPM2's midpoint) shares that step's decision.

The target (:func:`mixed_target`) is the slerp of the unit content and style image embeddings, the
whole tensor as one vector. :func:`guided_denoised` is one guided step; it takes the model calls it
needs (decode, embed, the conditional x̂0) as callables, so it runs and is tested without ComfyUI.
Pure torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from .clip_preprocess import shortest_side_pixels
from .grad_memory import checkpoint_call, checkpointing, maybe_autocast
from .slerp import slerp

GUIDANCE_RESIZES = ("bilinear (source)", "bicubic")


def spherical_dist_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """2·arcsin(‖x̂ - ŷ‖/2)² per row (θ²/2 for the angle θ between x and y)."""
    x = F.normalize(x, dim=-1)
    y = F.normalize(y, dim=-1)
    return (x - y).norm(dim=-1).div(2).arcsin().pow(2).mul(2)


PARAMETRISATIONS = ("k-diffusion", "flow")
"""``x = x0 + σ·n`` (ComfyUI's eps and v models) and ``x = (1 - σ)·x0 + σ·n`` (CONST: Flux, SD3)."""

MIN_SIGNAL = 1e-3
"""Steps whose signal coefficient ``a`` is below this (flow at σ ≈ 1) are left unguided."""


def alpha_bar(sigma: torch.Tensor) -> torch.Tensor:
    """ᾱ for a k-diffusion σ: σ² = (1 - ᾱ)/ᾱ."""
    return 1.0 / (1.0 + sigma.double() ** 2)


def noise_coefficients(sigma: torch.Tensor, parametrisation: str = "k-diffusion") -> tuple[torch.Tensor, torch.Tensor]:
    """``(a, b)`` of ``x = a·x0 + b·n`` at ``sigma`` (float64): k-diffusion ``(1, σ)``, flow ``(1 - σ, σ)``."""
    sig = sigma.double()
    if parametrisation == "k-diffusion":
        return torch.ones_like(sig), sig
    if parametrisation == "flow":
        return 1.0 - sig, sig
    raise ValueError(f"parametrisation must be one of {PARAMETRISATIONS}, got {parametrisation!r}")


def _vp_terms(sigma: torch.Tensor, ndim: int, parametrisation: str):
    """``a``, ``r = sqrt(a² + b²)`` and ``sqrt(β) = b/r``, shaped to broadcast over a ``ndim`` tensor."""
    a, b = noise_coefficients(sigma, parametrisation)
    shape = (-1, *([1] * (ndim - 1)))
    r = torch.sqrt(a * a + b * b)
    return a.view(shape), r.view(shape), (b / r).view(shape)


def guided_blend(x0: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor,
                 parametrisation: str = "k-diffusion") -> torch.Tensor:
    """The source's guidance point ``sqrt(β)·x̂0 + (1 - sqrt(β))·x_t`` with ``x_t = x/r`` (k-diffusion:
    ``x_t = sqrt(ᾱ)·x_k``)."""
    _, r, fac = _vp_terms(sigma, x.dim(), parametrisation)
    return (fac * x0 + (1.0 - fac) * x / r).to(x.dtype)


def fast_chain_factor(sigma: torch.Tensor, ndim: int, parametrisation: str = "k-diffusion") -> torch.Tensor:
    """∂s/∂x when x̂0 moves as ``x/a``: ``sqrt(β)/a + (1 - sqrt(β))/r`` (k-diffusion: sqrt(β) + (1 - sqrt(β))·sqrt(ᾱ))."""
    a, r, fac = _vp_terms(sigma, ndim, parametrisation)
    return fac / a + (1.0 - fac) / r


def correction_factor(sigma: torch.Tensor, ndim: int, parametrisation: str = "k-diffusion") -> torch.Tensor:
    """``b²/a`` of ``D' = D - (b²/a)·∇_x L`` (k-diffusion σ², flow σ²/(1 - σ)); 0 where ``a < MIN_SIGNAL``."""
    a, b = noise_coefficients(sigma, parametrisation)
    factor = torch.where(a < MIN_SIGNAL, torch.zeros_like(a), b * b / a.clamp_min(MIN_SIGNAL))
    return factor.view(-1, *([1] * (ndim - 1)))


def make_cutouts(img: torch.Tensor, cut_size: int, num_cutouts: int, cut_power: float = 1.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """``num_cutouts`` random square crops of (B, 3, H, W), each adaptive-avg-pooled to ``cut_size``;
    returns (num_cutouts·B, 3, cut_size, cut_size), cutout-major."""
    h, w = img.shape[-2:]
    max_size = min(h, w)
    min_size = min(h, w, cut_size)
    cuts = []
    for _ in range(num_cutouts):
        r = float(torch.rand((), generator=generator))
        size = int(r ** cut_power * (max_size - min_size) + min_size)
        ox = int(torch.randint(0, w - size + 1, (), generator=generator))
        oy = int(torch.randint(0, h - size + 1, (), generator=generator))
        cuts.append(F.adaptive_avg_pool2d(img[:, :, oy:oy + size, ox:ox + size], cut_size))
    return torch.cat(cuts)


def guidance_loss(embeds: torch.Tensor, target: torch.Tensor, scale: float, num_cutouts: int = 0) -> torch.Tensor:
    """The source's loss: ``scale·mean_batch(d)`` without cutouts; with cutouts (upstream pipeline)
    ``scale·Σ_batch mean_cutouts(d)`` for embeds laid out cutout-major."""
    if target.shape[0] == 1:
        target = target.expand(embeds.shape[0], -1)
    elif target.shape[0] != embeds.shape[0]:
        target = target.repeat(embeds.shape[0] // target.shape[0], 1)
    d = spherical_dist_loss(embeds, target)
    if num_cutouts:
        return d.view(num_cutouts, -1).mean(0).sum() * scale
    return d.mean() * scale


def mixed_target(content: torch.Tensor, style: torch.Tensor, t: float) -> torch.Tensor:
    """The guidance target ``slerp(ĉ, ŝ, t)`` of the unit content and style embeddings ``(N, D)``, the whole
    tensor as one vector, as the source does (0 = content, 1 = style). Returns float32."""
    c = F.normalize(content.float(), dim=-1)
    s = F.normalize(style.float(), dim=-1)
    if c.shape != s.shape:
        raise ValueError(f"content and style embeddings differ ({tuple(c.shape)} vs {tuple(s.shape)})")
    return slerp(c, s, float(t), per="tensor")


def clip_image_embeds(model: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """Projected CLIP image embeddings of a CLIP vision transformer laid out as Hugging Face's
    ``CLIPVisionModelWithProjection`` (``vision_model.embeddings``, ``pre_layrnorm``, ``encoder.layers``,
    ``post_layernorm``, ``visual_projection``), computed from its weights with out-of-place residual adds
    and SDPA attention so that autograd can differentiate it (pixels → embeddings)."""
    vm = model.vision_model
    x = vm.pre_layrnorm(vm.embeddings(pixels))
    for layer in vm.encoder.layers:
        x = checkpoint_call(_clip_layer, layer, x)  # checkpointed inside grad_memory.checkpointing()
    return model.visual_projection(vm.post_layernorm(x[:, 0, :]))


def _clip_layer(layer: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One pre-norm CLIP encoder layer: ``x + attn(ln1(x))``, then ``+ mlp(ln2(·))``."""
    att = layer.self_attn
    h = layer.layer_norm1(x)
    b, n, c = h.shape
    q, k, v = (p(h).view(b, n, att.heads, c // att.heads).transpose(1, 2)
               for p in (att.q_proj, att.k_proj, att.v_proj))
    o = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, c)
    x = x + att.out_proj(o)
    return x + layer.mlp(layer.layer_norm2(x))


def embed_latent(s: torch.Tensor, decode: Callable[[torch.Tensor], torch.Tensor],
                 encode_pixels: Callable[[torch.Tensor], torch.Tensor], size: int, mean: Sequence[float],
                 std: Sequence[float], num_cutouts: int = 0, generator: torch.Generator | None = None,
                 resize: str = GUIDANCE_RESIZES[0]) -> torch.Tensor:
    """CLIP embeddings of the guided latent ``s``: ``decode`` (latent → image in [-1, 1]), map to [0, 1],
    then the whole image (shorter side to ``size`` with ``resize``'s interpolation, centre crop) or
    ``num_cutouts`` random crops, and ``encode_pixels`` (normalised pixels → embeddings). Differentiable."""
    img = ((decode(s).float() + 1.0) / 2.0).clamp(0.0, 1.0)
    if num_cutouts > 0:
        img = make_cutouts(img, size, num_cutouts, 1.0, generator)
    mode = "bicubic" if resize == GUIDANCE_RESIZES[1] else "bilinear"
    return encode_pixels(shortest_side_pixels(img, size, mean, std, mode=mode)).float()


def guided_denoised(denoised: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor, target: torch.Tensor, scale: float,
                    embed: Callable[[torch.Tensor], torch.Tensor], num_cutouts: int = 0,
                    predict_x0: Callable[[torch.Tensor], torch.Tensor] | None = None,
                    cond_denoised: torch.Tensor | None = None, parametrisation: str = "k-diffusion",
                    x0_graph: tuple[torch.Tensor, torch.Tensor] | None = None, checkpoint: bool = True,
                    autocast: torch.dtype | None = None) -> torch.Tensor:
    """One guided step: ``D' = D - (b²/a)·∇_x L`` (k-diffusion ``σ²``, flow ``σ²/(1 - σ)``; derivation in the
    module docstring).

    ``embed`` maps the guided blend ``s`` to CLIP embeddings (:func:`embed_latent`). With ``predict_x0``
    (x → the conditional x̂0, differentiable) the gradient is exact, through the model; otherwise it is
    the fast one, from ``cond_denoised`` (or ``denoised``) held fixed and scaled by :func:`fast_chain_factor`.
    ``x0_graph`` = ``(x leaf, x̂0)`` is the exact gradient's pass already made with gradients (the sampler's own
    conditional pass, so that no second model pass is needed); it takes precedence over ``predict_x0``.
    Gradients are enabled here even under an outer ``torch.inference_mode()``. ``checkpoint``: the blocks marked
    for gradient checkpointing (``grad_memory``) keep only their inputs and run again in the backward pass (the
    same gradient, less memory). ``autocast``: the dtype the fast gradient's decode and CLIP pass run in under
    ``torch.autocast`` (None: the models' own); the exact gradient ignores it (its x̂0 is the sampler's own
    prediction, kept in the model's dtype).
    """
    sig = sigma.to(x.device).float()
    factor = correction_factor(sig, x.dim(), parametrisation)
    if not bool((factor > 0).any()):
        return denoised
    with torch.inference_mode(False), torch.enable_grad(), checkpointing(checkpoint):
        if x0_graph is None and predict_x0 is not None:
            wrt = x.detach().clone().requires_grad_(True)
            x0_graph = (wrt, predict_x0(wrt))
        exact = x0_graph is not None
        if exact:
            wrt, x0 = x0_graph
            s = guided_blend(x0, wrt, sig.clone(), parametrisation)
        else:
            x0 = (cond_denoised if cond_denoised is not None else denoised).detach().clone()
            s = guided_blend(x0, x.detach().clone(), sig.clone(), parametrisation).detach().requires_grad_(True)
            wrt = s
        with maybe_autocast(x.device, None if exact else autocast):
            embeds = embed(s)
        loss = guidance_loss(embeds.float(), target.to(x.device), scale, num_cutouts)
        grad = torch.autograd.grad(loss, wrt)[0]
        if not exact:
            grad = grad * fast_chain_factor(sig, x.dim(), parametrisation).to(grad)
    grad = grad.detach().to(denoised.dtype)
    return denoised - factor.to(denoised) * grad


HEUN_TYPE = ("heun", "heunpp2")  # samplers whose corrector evaluates the model again at the NEXT step's sigma


class StepClock:
    """Which sampler step a model evaluation belongs to, so that ``every`` counts steps, not model calls.

    With the run's sigma schedule, step i is the interval ``σ_(i+1) < σ ≤ σ_i``: exact for one-evaluation
    samplers and for those whose extra evaluations lie strictly inside the step (DPM2's midpoint, the SDE
    samplers). Heun-type samplers (``corrector_at_next``) evaluate their corrector exactly at ``σ_(i+1)``,
    which the next step evaluates again: the first evaluation at a schedule sigma then belongs to the step
    before, the repeat to the new step. Without a schedule each new sigma value is a step (exact for
    one-evaluation samplers, and for Heun-type ones with the flag). A sigma above the previous one starts
    a new run. The first step seen is guided, then every ``every``-th.
    """

    def __init__(self, every: int = 1):
        self.every = max(1, int(every))
        self.schedule: list[float] | None = None
        self.corrector_at_next = False
        self.reset()

    def reset(self) -> None:
        self.first: int | None = None
        self.last_sigma: float | None = None
        self.distinct = -1

    def start(self, schedule: Sequence[float] | None = None, corrector_at_next: bool = False) -> None:
        """A new run whose sampler and schedule are known (the sampler node's own runs)."""
        self.reset()
        self.schedule = None if schedule is None else [float(x) for x in schedule]
        self.corrector_at_next = bool(corrector_at_next)

    def index(self, sigma: float, schedule: Sequence[float] | None = None) -> int:
        if self.last_sigma is not None and sigma > self.last_sigma:
            self.reset()  # a new run
        repeat = sigma == self.last_sigma
        if not repeat:
            self.distinct += 1
        self.last_sigma = sigma
        schedule = self.schedule if self.schedule is not None else schedule
        if schedule is not None and len(schedule) > 1:
            tol = 1e-6 * max(1.0, abs(sigma))
            i = max(0, sum(1 for s in schedule if float(s) >= sigma - tol) - 1)
            on_grid = abs(float(schedule[i]) - sigma) <= tol
        else:
            i, on_grid = self.distinct, True
        if self.corrector_at_next and on_grid and i > 0 and not repeat:
            return i - 1  # the corrector of the step before
        return i

    def guided(self, sigma: float, schedule: Sequence[float] | None = None) -> bool:
        """Whether the evaluation at ``sigma`` is guided (call once per evaluation inside the window)."""
        i = self.index(float(sigma), schedule)
        if self.first is None:
            self.first = i
        return (i - self.first) % self.every == 0
