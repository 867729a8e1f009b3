"""BlendspaceMixGridSearch: seed 000's find-the-best-mix by complete enumeration, scored with CLIP.

Grid, objective and layout: ``blendspace/grid_search.py``. Each cell is exactly what the image-mixing
workflows run (Slerp Conditioning, Slerp CLIP Image Embeds' target and CLIP Image Guidance Sampler with the
style latent), so a cell's settings reproduce its image there.
"""

from __future__ import annotations

import torch

from ..blendspace.grid_search import (
    OBJECTIVES,
    PARAMETERS,
    best_index,
    cell_label,
    grid_cells,
    parse_values,
    tile,
)
from ..blendspace.grid_search import objective as objective_scores
from ..blendspace.latents import BlendspaceInputError
from ..blendspace.strength_sweep import STRENGTH_MODES, diffusers_start_step
from . import comfy_compat
from .nodes_clip_guidance import GRADIENTS, ClipImageGuidanceSampler, ImageTower, mixed_target
from .nodes_clip_scores import annotate
from .nodes_open_clip import OPEN_CLIP_TYPE
from .nodes_slerp import SlerpConditioning

DEFAULT_VALUES = {"noise_strength": "0.5, 0.6, 0.7", "slerp_latent_style_strength": "0.2, 0.8",
                  "slerp_prompt_style_strength": "0.2, 0.8", "slerp_clip_image_style_strength": "0.2, 0.8"}
VALUE_TIPS = {
    "noise_strength": "img2img strength per cell (source semantics: the last int(steps·value) steps; README: 0.5-0.7).",
    "slerp_latent_style_strength": "Start-latent mix per cell: 0 = content, 1 = style.",
    "slerp_prompt_style_strength": "Prompt mix per cell: 0 = content prompt, 1 = style prompt.",
    "slerp_clip_image_style_strength": "CLIP target mix per cell: 0 = content image, 1 = style image.",
}


class MixGridSearch:
    NODE_ID = "BlendspaceMixGridSearch"
    DISPLAY_NAME = "Image Mixing Grid Search"
    SEARCH_ALIASES = ["grid search", "best mix", "mix images", "parameter sweep", "xy plot", "clip score"]
    CATEGORY = "Blendspace/measure"
    DESCRIPTION = (
        "Seed 000's 'find the best mix' by complete enumeration: samples the image mix for every combination of the "
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
        sampler = ClipImageGuidanceSampler.INPUT_TYPES()["required"]
        return {
            "required": {
                **{k: sampler[k] for k in ("model", "seed", "steps", "cfg", "sampler_name", "scheduler")},
                "content_positive": ("CONDITIONING", {"tooltip": "The content prompt (or its CoCa caption), encoded."}),
                "style_positive": ("CONDITIONING", {"tooltip": "The style prompt (or its CoCa caption), encoded."}),
                "negative": sampler["negative"],
                "content_image": ("IMAGE", {"tooltip": "The content image (encoded with the VAE at its size, which "
                                                       "must be a multiple of 8)."}),
                "style_image": ("IMAGE", {"tooltip": "The style image, the same size as the content image."}),
                "vae": sampler["vae"],
                "clip_guidance_scale": sampler["clip_guidance_scale"],
                "gradient": sampler["gradient"],
                **{p: ("STRING", {"default": DEFAULT_VALUES[p], "tooltip": VALUE_TIPS[p]}) for p in PARAMETERS},
                "objective": (list(OBJECTIVES), {"default": OBJECTIVES[0],
                                                 "tooltip": "What 'best' means: balanced = the highest lower score of "
                                                            "the two similarities, mean, or closest to one source."}),
                "columns": ("INT", {"default": 4, "min": 1, "max": 64, "tooltip": "Cells per row of the grid sheet."}),
            },
            "optional": {
                "clip_vision": ("CLIP_VISION", {"tooltip": "CLIP that guides and scores (core); or connect open_clip."}),
                "open_clip": (OPEN_CLIP_TYPE, {"tooltip": "CLIP that guides and scores (the seed's LAION ViT-B-32); or "
                                                          "connect clip_vision."}),
            },
        }

    def search(self, model, seed, steps, cfg, sampler_name, scheduler, content_positive, style_positive, negative,
               content_image, style_image, vae, clip_guidance_scale, gradient, noise_strength,
               slerp_latent_style_strength, slerp_prompt_style_strength, slerp_clip_image_style_strength, objective=OBJECTIVES[0],
               columns=4, clip_vision=None, open_clip=None):
        if objective not in OBJECTIVES:
            raise BlendspaceInputError(f"objective must be one of {OBJECTIVES}")
        if gradient not in GRADIENTS:
            raise BlendspaceInputError(f"gradient must be one of {GRADIENTS}")
        texts = dict(zip(PARAMETERS, (noise_strength, slerp_latent_style_strength, slerp_prompt_style_strength,
                                      slerp_clip_image_style_strength), strict=True))
        cells = grid_cells({p: parse_values(texts[p], p) for p in PARAMETERS})
        if content_image.shape[1:] != style_image.shape[1:]:
            raise BlendspaceInputError(f"content and style images differ in size ({tuple(content_image.shape[1:3])} vs "
                                       f"{tuple(style_image.shape[1:3])}): scale both to one size (e.g. Upscale Image "
                                       "to 512x512, as the source).")
        if content_image.shape[1] % 8 or content_image.shape[2] % 8:
            raise BlendspaceInputError(f"image size {tuple(content_image.shape[1:3])} is not a multiple of 8: scale "
                                       "the images first (the VAE works on 8-pixel blocks).")
        tower = ImageTower(clip_vision, open_clip)
        content_latent = {"samples": vae.encode(content_image[:1, :, :, :3])}
        style_latent = {"samples": vae.encode(style_image[:1, :, :, :3])}
        # encoded once: the cells' targets (their slerps) and the scores (cosines) all use these two embeddings
        ref_c, ref_s = tower.encode(content_image[:1]).float().cpu(), tower.encode(style_image[:1]).float().cpu()
        runs = [steps - diffusers_start_step(steps, c["noise_strength"]) for c in cells]
        progress = comfy_compat.Progress(sum(runs))
        sampler, cond_node = ClipImageGuidanceSampler(), SlerpConditioning()
        images = []
        copies: dict = {}  # the grad-capable VAE / CLIP / U-Net copies, made once for all cells
        try:
            for cell, run in zip(cells, runs, strict=True):
                progress.check()
                positive = cond_node.mix(content_positive, style_positive, cell["slerp_prompt_style_strength"])[0]
                target = mixed_target(ref_c, ref_s, cell["slerp_clip_image_style_strength"])
                latent = sampler.sample(model, seed, steps, cfg, sampler_name, scheduler, positive, negative,
                                        content_latent, cell["noise_strength"], strength_mode=STRENGTH_MODES[0],
                                        latent_style=style_latent,
                                        slerp_latent_style_strength=cell["slerp_latent_style_strength"],
                                        callback=progress.step_callback(progress.done), copies=copies, vae=vae,
                                        clip_vision=clip_vision, open_clip=open_clip, target=target,
                                        clip_guidance_scale=clip_guidance_scale, gradient=gradient, use_cutouts=False,
                                        num_cutouts=4, start_percent=0.0, end_percent=1.0, every_n_steps=1)[0]
                images.append(vae.decode(latent["samples"]).float().cpu().clamp(0, 1))
                progress.advance(run)
        finally:
            copies.clear()
        batch = torch.cat(images)
        emb = tower.encode(batch).float().cpu()
        sim_c = torch.nn.functional.cosine_similarity(emb, ref_c)
        sim_s = torch.nn.functional.cosine_similarity(emb, ref_s)
        scores = objective_scores(sim_c, sim_s, objective)
        best = best_index(scores)
        rows = [(i, f"{cell_label(c)} | content {sim_c[i]:.4f} style {sim_s[i]:.4f} score {scores[i]:.4f}")
                for i, c in enumerate(cells)]
        report = "\n".join([f"best: cell {best}: {rows[best][1]}"] + [f"cell {i}: {text}" for i, text in rows])
        labelled = torch.cat([annotate(batch[i:i + 1], ("* " if i == best else "") + text.replace(" | ", "\n"))
                              for i, text in rows])
        return (batch[best:best + 1], batch, tile(labelled, columns), report,
                *(float(cells[best][p]) for p in PARAMETERS))


NODES = [MixGridSearch]
