"""CLIP-guided image mixing (the diffusers images-mixing pipeline): the mixed target embedding, the guidance as a
MODEL patch and as a sampler, the two-image CLIP vision mix, and the find-the-best-mix grid search.

Math: ``blendspace/clip_guidance.py`` (target slerp, guided step, k-diffusion derivation) and
``blendspace/grid_search.py``. What runs inside the sampler lives in the runtime layer:
``runtime/guidance_hooks.py`` (the post-CFG and calc-cond-batch hooks, gradients through grad-capable twins of
the VAE or tiny decoder, the CLIP tower and, for the exact gradient, the diffusion model, whose weights alias
the loaded ones) and ``runtime/guided_run.py`` (the sampler run the sampler node and the grid search share;
the grid search shares one set of twins across its cells).
"""

from __future__ import annotations

import copy

import torch

from ..blendspace.clip_guidance import GUIDANCE_RESIZES, mixed_target
from ..blendspace.conditioning import combine_conditionings
from ..blendspace.contact_sheet import annotate, tile
from ..blendspace.errors import BlendspaceInputError
from ..blendspace.grid_search import (
    MAX_CELLS,
    OBJECTIVES,
    PARAMETERS,
    best_index,
    cell_label,
    grid_cells,
    parse_values,
)
from ..blendspace.grid_search import objective as objective_scores
from ..blendspace.slerp import slerp
from ..blendspace.strength_sweep import STRENGTH_MODES, diffusers_start_step
from ..blendspace.vision_output import slerp_fields, tensor_fields
from .inputs import model_input, percent_inputs, sampler_inputs, tower_inputs
from .runtime.clip_vision import ImageTower
from .runtime.guidance_hooks import GRADIENTS, ClipGuidance, patched_model
from .runtime.guided_run import GuidedRun
from .runtime.model_facts import percent_sigmas, require_prediction
from .runtime.sampling import Progress
from .runtime.twins import tiny_decoder_path

TARGET_TYPE = "BLENDSPACE_CLIP_TARGET"


class ClipTarget(dict):
    """``{"embeds": (1 or B, D) unit vectors, "dim": D}``: where CLIP guidance pulls the image."""


def _target(content: torch.Tensor, style: torch.Tensor, t: float,
            names: tuple[str, str] = ("content", "style")) -> ClipTarget:
    if content.shape != style.shape:
        raise BlendspaceInputError(f"{names[0]} and {names[1]} give embeddings of different shapes "
                                   f"({tuple(content.shape)} vs {tuple(style.shape)}): encode both with the same CLIP "
                                   "vision model, one image each.")
    mixed = mixed_target(content, style, t)
    return ClipTarget(embeds=mixed.cpu(), dim=int(mixed.shape[-1]))


def _embeds(tower: ImageTower, image=None, output=None, name="content"):
    """The CLIP image embeddings of ``{name}_image`` or of ``{name}_clip_vision_output``."""
    if output is not None:
        embeds = output["image_embeds"] if "image_embeds" in tensor_fields(output) else None
        if tower.open_clip is not None or embeds is None:
            raise BlendspaceInputError(f"{name}_clip_vision_output has no core CLIP image embeddings (image_embeds) "
                                       "for this model: connect its CLIP Vision Encode output, or (with open_clip) "
                                       f"{name}_image itself.")
        return embeds.float()
    if image is None:
        raise BlendspaceInputError(f"connect {name}_image (an IMAGE) or {name}_clip_vision_output.")
    return tower.encode(image)


class SlerpClipImageEmbeds:
    NODE_ID = "BlendspaceSlerpClipImageEmbeds"
    DISPLAY_NAME = "Slerp CLIP Image Embeds (guidance target)"
    SEARCH_ALIASES = ["mix images", "blend two images", "image mix target", "style blend", "clip image embeds", "image prompt"]
    CATEGORY = "Blendspace/clip_guidance"
    DESCRIPTION = (
        "The images-mixing pipeline's CLIP guidance target: the slerp of the unit CLIP image embeddings of the content and "
        "the style "
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
                **tower_inputs("will also guide"),
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
        c = _embeds(tower, content_image, content_clip_vision_output, "content")
        s = _embeds(tower, style_image, style_clip_vision_output, "style")
        names = tuple(f"{w}_clip_vision_output" if out is not None else f"{w}_image" for w, out in
                      (("content", content_clip_vision_output), ("style", style_clip_vision_output)))
        return (_target(c, s, slerp_clip_image_style_strength, names),)


def _guidance_inputs() -> dict:
    return {
        "vae": ("VAE", {"tooltip": "The checkpoint's VAE (the guided image is decoded through it; the taesd "
                                   "gradient uses the tiny decoder instead)."}),
        "target": (TARGET_TYPE, {"tooltip": "The mixed CLIP image embedding (Slerp CLIP Image Embeds)."}),
        "clip_guidance_scale": ("FLOAT", {"default": 100.0, "min": 0.0, "max": 10000.0, "step": 1.0,
                                          "tooltip": "Strength of the pull toward the target (source: 100; 0 = off, "
                                                     "identical to plain sampling)."}),
        "gradient": (list(GRADIENTS), {"default": GRADIENTS[0],
                                       "tooltip": "exact: through the U-Net as the source (a U-Net backward per guided "
                                                  "step; on current ComfyUI the sampler's own conditional pass is "
                                                  "differentiated, on the 2024 one an extra pass is made). "
                                                  "fast: through the VAE decoder and CLIP only (no U-Net backward). "
                                                  "taesd: as fast, through the tiny autoencoder decoder ComfyUI's "
                                                  "previews use (models/vae_approx: taesd_decoder, taesdxl_decoder, "
                                                  "taesd3_decoder or taef1_decoder for SD1.x/SD2, SDXL, SD3, Flux): "
                                                  "cheapest."}),
        "use_cutouts": ("BOOLEAN", {"default": False,
                                    "tooltip": "Score random crops instead of the whole image (the upstream pipeline; "
                                               "the images-mixing pipeline uses the whole image)."}),
        "num_cutouts": ("INT", {"default": 4, "min": 1, "max": 64, "tooltip": "Crops per step when cutouts are on "
                                                                              "(upstream default 4)."}),
        **percent_inputs("guidance acts"),
        "every_n_steps": ("INT", {"default": 1, "min": 1, "max": 1000,
                                  "tooltip": "Guide only every n-th sampler step in the window (1 = every step, as the "
                                             "source). Steps, not model calls: Heun's or DPM2's second evaluation "
                                             "shares its step's decision."}),
    }


GUIDANCE_RESIZE_INPUT = {
    "guidance_resize": (list(GUIDANCE_RESIZES), {"default": GUIDANCE_RESIZES[0],
                                                  "tooltip": "How the decoded image is resized to CLIP's 224 px each "
                                                             "guided step. bilinear (source, default): as the source's "
                                                             "Resize(224). bicubic: smoother; the pack's earlier "
                                                             "behaviour."}),
}


def _make_guidance(model, vae, target, clip_guidance_scale, gradient, use_cutouts, num_cutouts,
                   start_percent, end_percent, every_n_steps, seed=0, clip_vision=None, open_clip=None,
                   copies: dict | None = None, guidance_resize=GUIDANCE_RESIZES[0]) -> ClipGuidance:
    if not isinstance(target, dict) or "embeds" not in target:
        raise BlendspaceInputError("target must come from Slerp CLIP Image Embeds.")
    if gradient not in GRADIENTS:
        raise BlendspaceInputError(f"gradient must be one of {GRADIENTS}")
    if start_percent > end_percent:
        raise BlendspaceInputError(f"start_percent ({start_percent}) is after end_percent ({end_percent}).")
    if guidance_resize not in GUIDANCE_RESIZES:
        raise BlendspaceInputError(f"guidance_resize must be one of {GUIDANCE_RESIZES}")
    kind = require_prediction(model, ("eps", "v", "flow"), "CLIP image guidance")
    if gradient == GRADIENTS[2]:
        tiny_decoder_path(model.model)  # a missing file is reported now, not at the first step
    tower = ImageTower(clip_vision, open_clip)
    if tower.dim is not None and tower.dim != target["dim"]:
        raise BlendspaceInputError(f"the target was made by a {target['dim']}-d CLIP model but this CLIP model gives "
                                   f"{tower.dim}-d embeddings: use the same model for both.")
    return ClipGuidance(vae, tower, target, clip_guidance_scale, gradient,
                        num_cutouts if use_cutouts else 0, percent_sigmas(model, start_percent, end_percent),
                        every_n_steps, seed, copies, "flow" if kind == "flow" else "k-diffusion", guidance_resize)


class ClipImageGuidance:
    NODE_ID = "BlendspaceClipImageGuidance"
    DISPLAY_NAME = "CLIP Image Guidance (model patch)"
    SEARCH_ALIASES = ["clip guidance", "image guidance", "mix images", "blend two images", "style transfer", "image prompt"]
    CATEGORY = "Blendspace/clip_guidance"
    DESCRIPTION = (
        "The images-mixing pipeline's CLIP guidance as a MODEL patch for any sampler node: every guided step decodes the "
        "source's blend "
        "of predicted and current latent, embeds it with CLIP and moves the prediction down the gradient of the "
        "spherical distance to the target (denoised - sigma²·∇L, the k-diffusion form of the source's correction; "
        "denoised - sigma²/(1-sigma)·∇L on flow models such as Flux and SD3), "
        "so every ComfyUI sampler and scheduler works. The grad-capable model copies live as long as the patched "
        "model; CLIP Image Guidance Sampler frees them after each run.")
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("A patched copy of the model; the input model is left unchanged.",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {**model_input("The model to patch (a copy is patched)."), **_guidance_inputs()},
                "optional": {**tower_inputs("made the target"), **GUIDANCE_RESIZE_INPUT}}

    def patch(self, model, **kwargs):
        return (patched_model(model, _make_guidance(model, **kwargs)),)


def _sampler_inputs() -> dict:
    """The mixing sampler's own inputs, shared by the sampler and the grid search."""
    return {
        **model_input(),
        **sampler_inputs(50, 9.0, seed_default=17, seed_tip="Seed of the noise (source examples: 17 and 117).",
                         steps_tip="Sampling steps (source: 50).",
                         cfg_tip="Classifier-free guidance (source examples: 9.0; its default 7.5)."),
        "negative": ("CONDITIONING", {"tooltip": "Negative prompt (source: the empty prompt)."}),
    }


class ClipImageGuidanceSampler:
    NODE_ID = "ClipImageGuidanceSampler"
    DISPLAY_NAME = "CLIP Image Guidance Sampler"
    SEARCH_ALIASES = ["mix images", "blend two images", "images mixing", "style blend", "style transfer",
                      "clip guided sampler", "image prompt"]
    CATEGORY = "Blendspace/clip_guidance"
    DESCRIPTION = (
        "A KSampler with the images-mixing pipeline's CLIP image guidance toward a target embedding (see CLIP Image "
        "Guidance). Works "
        "with every sampler and scheduler, eps and v-prediction models (SD1.x, SD2.x, SDXL) and flow models (Flux, "
        "SD3: denoised - σ²/(1-σ)·∇L), img2img (denoise < 1) and batches; "
        "progress bar with previews and Cancel as KSampler. clip_guidance_scale 0 is exactly KSampler.")
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The guided latent.",)
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls):
        common = _sampler_inputs()
        negative = common.pop("negative")
        sampler = {
            **common,
            "positive": ("CONDITIONING", {"tooltip": "The (mixed) prompt, e.g. Slerp Conditioning's output."}),
            "negative": negative,
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
                **tower_inputs("made the target"),
                "latent_style": ("LATENT", {"tooltip": "The style image's latent. When connected, the start latent is "
                                                       "the slerp of the content (latent_image) and style latents, "
                                                       "EACH noised with its own noise at the first step (source)."}),
                "slerp_latent_style_strength": ("FLOAT", {"default": 0.8, "min": 0.0, "max": 1.0, "step": 0.01,
                                                          "tooltip": "Latent mix when latent_style is connected: 0 = "
                                                                     "content, 1 = style (source default 0.8)."}),
                **GUIDANCE_RESIZE_INPUT,
            },
        }

    def sample(self, model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image, denoise,
               strength_mode=STRENGTH_MODES[0], latent_style=None, slerp_latent_style_strength=0.8, **guidance_args):
        if strength_mode not in STRENGTH_MODES:
            raise BlendspaceInputError(f"strength_mode must be one of {STRENGTH_MODES}")
        guidance = _make_guidance(model, seed=seed, **guidance_args)
        run = GuidedRun(model, seed, steps, cfg, sampler_name, scheduler, negative, strength_mode == STRENGTH_MODES[0])
        return (run.sample(guidance, positive, latent_image, denoise, latent_style, float(slerp_latent_style_strength)),)


VISION_MODES = ("whole tensor (source)", "per token")


class SlerpClipVisionOutput:
    NODE_ID = "BlendspaceSlerpClipVisionOutput"
    DISPLAY_NAME = "Slerp CLIP Vision Output"
    CATEGORY = "Blendspace/conditioning"
    DESCRIPTION = (
        "Mixes two images for image-prompt nodes: the images-mixing pipeline's slerp of two CLIP image embeddings, applied to "
        "every "
        "tensor of two CLIP Vision Encode outputs (image_embeds, last_hidden_state, penultimate_hidden_states and "
        "the others). The result is a CLIP_VISION_OUTPUT that core Apply Style Model (Flux Redux), unCLIP "
        "Conditioning and IP-Adapter nodes accept. weight 0 gives image A exactly, 1 gives image B.")
    SEARCH_ALIASES = ["mix images", "redux mix", "image prompt mix", "blend two images", "slerp clip vision",
                      "unclip mix", "ipadapter mix"]
    RETURN_TYPES = ("CLIP_VISION_OUTPUT",)
    RETURN_NAMES = ("clip_vision_output",)
    OUTPUT_TOOLTIPS = ("The mixed CLIP vision output, for Apply Style Model, unCLIP Conditioning or IP-Adapter.",)
    FUNCTION = "mix"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "clip_vision_output_a": ("CLIP_VISION_OUTPUT", {"tooltip": "Image A (weight 0), from CLIP Vision "
                                                                           "Encode."}),
                "clip_vision_output_b": ("CLIP_VISION_OUTPUT", {"tooltip": "Image B (weight 1), encoded with the same "
                                                                           "CLIP vision model."}),
                "weight": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01,
                                     "tooltip": "0 = image A exactly, 1 = image B exactly, between: the slerp."}),
                "mode": (list(VISION_MODES), {"default": VISION_MODES[0],
                                              "tooltip": "whole tensor (source): each tensor of one image is one "
                                                         "vector, as the images-mixing pipeline slerps embeddings. per token: "
                                                         "each "
                                                         "token (patch) vector is slerped on its own."}),
                "method": (["slerp", "lerp"], {"default": "slerp", "tooltip": "slerp (source) or plain lerp."}),
            }
        }

    def mix(self, clip_vision_output_a, clip_vision_output_b, weight, mode=VISION_MODES[0], method="slerp"):
        if mode not in VISION_MODES:
            raise BlendspaceInputError(f"mode must be one of {VISION_MODES}, got {mode!r}.")
        if method not in ("slerp", "lerp"):
            raise BlendspaceInputError(f"method must be slerp or lerp, got {method!r}.")
        mixed = slerp_fields(tensor_fields(clip_vision_output_a), tensor_fields(clip_vision_output_b), float(weight),
                             "sample" if mode == VISION_MODES[0] else "token", method)
        out = copy.copy(clip_vision_output_a)  # same class (core Output), non-tensor fields of A carried
        for name, value in mixed.items():
            out[name] = value
        return (out,)


DEFAULT_VALUES = {"noise_strength": "0.5, 0.6, 0.7", "slerp_latent_style_strength": "0.2, 0.8",
                  "slerp_prompt_style_strength": "0.2, 0.8", "slerp_clip_image_style_strength": "0.2, 0.8"}
VALUE_TIPS = {
    "noise_strength": "img2img strength per cell (source semantics: the last int(steps·value) steps; README: 0.5-0.7).",
    "slerp_latent_style_strength": "Start-latent mix per cell: 0 = content, 1 = style.",
    "slerp_prompt_style_strength": "Prompt mix per cell: 0 = content prompt, 1 = style prompt.",
    "slerp_clip_image_style_strength": "CLIP target mix per cell: 0 = content image, 1 = style image.",
}


GRID_TIP = (" A list '0.2, 0.8' or a range '0.5:0.7:0.1' (start:stop:step, stop included); the grid (the product "
            f"of the four lists' lengths) holds at most {MAX_CELLS} cells.")


def _check_grid_images(content_image: torch.Tensor, style_image: torch.Tensor) -> None:
    if content_image.shape[1:] != style_image.shape[1:]:
        raise BlendspaceInputError(f"content_image and style_image differ in size ({tuple(content_image.shape[1:3])} vs "
                                   f"{tuple(style_image.shape[1:3])}): scale both to one size (e.g. Upscale Image "
                                   "to 512x512, as the source).")
    if content_image.shape[1] % 8 or content_image.shape[2] % 8:
        raise BlendspaceInputError(f"content_image's size {tuple(content_image.shape[1:3])} is not a multiple of 8: scale "
                                   "the images first (the VAE works on 8-pixel blocks).")


def _slerp_prompts(content_positive, style_positive, t: float) -> list:
    """Slerp Conditioning's mix (whole tensor, source) of the content and style prompts."""
    return combine_conditionings(content_positive, style_positive, mix_tokens=lambda a, b: slerp(a, b, t, "sample"),
                                 mix_pooled=lambda a, b: slerp(a, b, t, "sample"),
                                 names=("content_positive", "style_positive"))


def _grid_report(batch: torch.Tensor, cells: list[dict], sim_c, sim_s, scores, columns: int):
    best = best_index(scores)
    rows = [(i, f"{cell_label(c)} | content {sim_c[i]:.4f} style {sim_s[i]:.4f} score {scores[i]:.4f}")
            for i, c in enumerate(cells)]
    report = "\n".join([f"best: cell {best}: {rows[best][1]}"] + [f"cell {i}: {text}" for i, text in rows])
    labelled = torch.cat([annotate(batch[i:i + 1], ("* " if i == best else "") + text.replace(" | ", "\n"))
                          for i, text in rows])
    return (batch[best:best + 1], batch, tile(labelled, columns), report, *(float(cells[best][p]) for p in PARAMETERS))


class MixGridSearch:
    NODE_ID = "BlendspaceMixGridSearch"
    DISPLAY_NAME = "Image Mixing Grid Search"
    SEARCH_ALIASES = ["grid search", "best mix", "mix images", "parameter sweep", "xy plot", "clip score"]
    CATEGORY = "Blendspace/measure"
    DESCRIPTION = (
        "The images-mixing pipeline's 'find the best mix' by complete enumeration: samples the image mix for every "
        "combination of the "
        "listed noise, latent, prompt and CLIP-image strengths (same seed), scores each result by CLIP image similarity "
        "to the content and to the style image, and returns the best setting, all results and a grid labelled with the "
        "scores. Every cell is a full CLIP-guided sampling run: the grid's size multiplies the time. Values: '0.2, 0.8' "
        "or a range '0.5:0.7:0.1'.")
    RETURN_TYPES = ("IMAGE", "IMAGE", "IMAGE", "STRING", "FLOAT", "FLOAT", "FLOAT", "FLOAT")
    RETURN_NAMES = ("best_image", "images", "grid", "report", *PARAMETERS)
    OUTPUT_TOOLTIPS = ("The best cell's image.", "Every cell's image, in grid order.",
                       "All cells on one sheet, each labelled with its settings and scores (best marked *).",
                       "A table of every cell's settings and scores, best first line.",
                       *(f"The best cell's {p}." for p in PARAMETERS))
    FUNCTION = "search"

    @classmethod
    def INPUT_TYPES(cls):
        common, guidance = _sampler_inputs(), _guidance_inputs()
        negative = common.pop("negative")
        return {
            "required": {
                **common,
                "content_positive": ("CONDITIONING", {"tooltip": "The content prompt (or its CoCa caption), encoded."}),
                "style_positive": ("CONDITIONING", {"tooltip": "The style prompt (or its CoCa caption), encoded."}),
                "negative": negative,
                "content_image": ("IMAGE", {"tooltip": "The content image (encoded with the VAE at its size, which "
                                                       "must be a multiple of 8)."}),
                "style_image": ("IMAGE", {"tooltip": "The style image, the same size as the content image."}),
                **{k: guidance[k] for k in ("vae", "clip_guidance_scale", "gradient")},
                **{p: ("STRING", {"default": DEFAULT_VALUES[p], "tooltip": VALUE_TIPS[p] + GRID_TIP})
                   for p in PARAMETERS},
                "objective": (list(OBJECTIVES), {"default": OBJECTIVES[0],
                                                 "tooltip": "What 'best' means: balanced = the highest lower score of "
                                                            "the two similarities, mean, or closest to one source."}),
                "columns": ("INT", {"default": 4, "min": 1, "max": 64, "tooltip": "Cells per row of the grid sheet."}),
            },
            "optional": {
                **tower_inputs("guides and scores"),
                "content_clip_image": ("IMAGE", {"tooltip": "The content image as loaded, for the CLIP targets and "
                                                            "scores (the source embeds the original picture); "
                                                            "default: content_image."}),
                "style_clip_image": ("IMAGE", {"tooltip": "The style image as loaded, for the CLIP targets and scores; "
                                                          "default: style_image."}),
            },
        }

    def search(self, model, seed, steps, cfg, sampler_name, scheduler, content_positive, style_positive, negative,
               content_image, style_image, vae, clip_guidance_scale, gradient, noise_strength,
               slerp_latent_style_strength, slerp_prompt_style_strength, slerp_clip_image_style_strength,
               objective=OBJECTIVES[0], columns=4, clip_vision=None, open_clip=None, content_clip_image=None,
               style_clip_image=None):
        if objective not in OBJECTIVES:
            raise BlendspaceInputError(f"objective must be one of {OBJECTIVES}")
        if gradient not in GRADIENTS:
            raise BlendspaceInputError(f"gradient must be one of {GRADIENTS}")
        texts = dict(zip(PARAMETERS, (noise_strength, slerp_latent_style_strength, slerp_prompt_style_strength,
                                      slerp_clip_image_style_strength), strict=True))
        cells = grid_cells({p: parse_values(texts[p], p) for p in PARAMETERS})
        _check_grid_images(content_image, style_image)
        tower = ImageTower(clip_vision, open_clip)
        # encoded once: the cells' targets (their slerps) and the scores (cosines) all use these two embeddings
        refs = tuple(tower.encode((img if img is not None else fallback)[:1]).float().cpu() for img, fallback in
                     ((content_clip_image, content_image), (style_clip_image, style_image)))
        run = GuidedRun(model, seed, steps, cfg, sampler_name, scheduler, negative, source_strength=True)
        guidance = dict(vae=vae, clip_guidance_scale=clip_guidance_scale, gradient=gradient, use_cutouts=False,
                        num_cutouts=4, start_percent=0.0, end_percent=1.0, every_n_steps=1, seed=seed,
                        clip_vision=clip_vision, open_clip=open_clip)
        batch = _grid_images(run, cells, content_positive, style_positive, content_image, style_image, refs, guidance)
        emb = tower.encode(batch).float().cpu()
        sim_c = torch.nn.functional.cosine_similarity(emb, refs[0])
        sim_s = torch.nn.functional.cosine_similarity(emb, refs[1])
        return _grid_report(batch, cells, sim_c, sim_s, objective_scores(sim_c, sim_s, objective), columns)


def _grid_images(run: GuidedRun, cells: list[dict], content_positive, style_positive, content_image, style_image,
                 refs: tuple[torch.Tensor, torch.Tensor], guidance: dict) -> torch.Tensor:
    """Every cell sampled as the mixing workflows do (prompt slerp, target slerp, guided sampler with the style
    latent), one progress bar over all, the grad-capable copies made once and freed at the end."""
    vae = guidance["vae"]
    content_latent = {"samples": vae.encode(content_image[:1, :, :, :3])}
    style_latent = {"samples": vae.encode(style_image[:1, :, :, :3])}
    lengths = [run.steps - diffusers_start_step(run.steps, c["noise_strength"]) for c in cells]
    progress = Progress(sum(lengths))
    copies: dict = {}  # the grad-capable VAE / CLIP / U-Net copies, made once for all cells
    images = []
    try:
        for cell, length in zip(cells, lengths, strict=True):
            progress.check()
            target = _target(refs[0], refs[1], cell["slerp_clip_image_style_strength"])
            latent = run.sample(_make_guidance(run.model, target=target, copies=copies, **guidance),
                                _slerp_prompts(content_positive, style_positive, cell["slerp_prompt_style_strength"]),
                                content_latent, cell["noise_strength"], style_latent,
                                cell["slerp_latent_style_strength"], callback=progress.step_callback(progress.done))
            images.append(vae.decode(latent["samples"]).float().cpu().clamp(0, 1))
            progress.advance(length)
    finally:
        copies.clear()
    return torch.cat(images)


NODES = [SlerpClipImageEmbeds, SlerpClipVisionOutput, ClipImageGuidance, ClipImageGuidanceSampler, MixGridSearch]
