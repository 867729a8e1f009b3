"""The img2img and StableFused experiments (the img2img blog post and StableFused) as nodes.

Strength sweep, animated GIF, latent walk, variations around one latent, denoising replay, zero /
negative guidance and the guidance × steps grid. Math: ``blendspace/strength_sweep.py``,
``animation.py``, ``slerp.py``, ``latents.py``, ``guidance.py``, ``contact_sheet.py``.
"""

from __future__ import annotations

import torch

from ..blendspace.animation import save_gif
from ..blendspace.conditioning import combine_conditionings
from ..blendspace.contact_sheet import annotate, tile
from ..blendspace.errors import BlendspaceInputError
from ..blendspace.grid_search import parse_values
from ..blendspace.guidance import guided_epsilon
from ..blendspace.latents import perturbed_latents, samples_of
from ..blendspace.slerp import interpolation_weights, lerp, slerp
from ..blendspace.strength_sweep import (
    MAX_FRAMES,
    STRENGTH_MODES,
    arange_strengths,
    diffusers_start_step,
    parse_strengths,
)
from .inputs import sampler_inputs
from .runtime import sampling
from .runtime.files import output_file

COND_INPUTS = {
    "positive": ("CONDITIONING", {"tooltip": "The prompt (positive conditioning)."}),
    "negative": ("CONDITIONING", {"tooltip": "The negative prompt (the img2img blog post passes an empty one)."}),
}


def _single_latent(latent: dict, why: str) -> torch.Tensor:
    """The samples of ``latent`` (input ``latent``) when its batch is 1; else an error ending with ``why``."""
    samples = samples_of(latent, "latent")
    if samples.shape[0] != 1:
        raise BlendspaceInputError(f"the latent has a batch of {samples.shape[0]}; {why}")
    return samples


def _frames_latent(template: dict, frames: list[torch.Tensor]) -> dict:
    out = {k: v for k, v in template.items() if k not in ("batch_index", "noise_mask")}
    out["samples"] = torch.cat(frames, dim=0)
    return out


class StrengthSweep:
    NODE_ID = "BlendspaceStrengthSweep"
    DISPLAY_NAME = "img2img Strength Sweep"
    SEARCH_ALIASES = ["strength sweep", "denoise sweep", "img2img", "image to image", "variations", "morph"]
    CATEGORY = "Blendspace/experiments"
    DESCRIPTION = (
        "The img2img blog post's experiment: one image, one prompt, one fixed seed, img2img at a series of strengths; returns "
        "the "
        "results as one batch in strength order, ready for an animated GIF (the blog's morph: 0.05 to 0.98 in steps of "
        "0.03 = 31 frames, 50 steps, CFG 9). 'diffusers (source)' strength runs the last int(steps·strength) steps "
        "of a steps-long schedule, as the source; 'comfyui denoise' is KSampler's denoise.")
    RETURN_TYPES = ("LATENT", "STRING")
    RETURN_NAMES = ("latents", "strengths")
    OUTPUT_TOOLTIPS = ("One result per strength (per input image), in strength order.",
                       "The strengths used, comma separated, for labels.")
    FUNCTION = "sweep"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The model to sample with."}),
                **COND_INPUTS,
                "latent": ("LATENT", {"tooltip": "The VAE-encoded image to vary."}),
                **sampler_inputs(50, 9.0),
                "strength_mode": (list(STRENGTH_MODES), {"default": STRENGTH_MODES[0],
                                                         "tooltip": "How strength maps to steps (see the node "
                                                                    "description)."}),
                "start": ("FLOAT", {"default": 0.05, "min": 0.001, "max": 1.0, "step": 0.01,
                                    "tooltip": "First strength (source: 0.05)."}),
                "stop": ("FLOAT", {"default": 0.98, "min": 0.002, "max": 1.001, "step": 0.01,
                                   "tooltip": "Strengths go up to, not including, this value (source: 0.98, so the "
                                              "last is 0.95), like numpy.arange."}),
                "step": ("FLOAT", {"default": 0.03, "min": 0.001, "max": 1.0, "step": 0.001,
                                   "tooltip": "Strength increment (source: 0.03)."}),
            },
            "optional": {
                "strength_list": ("STRING", {"default": "", "multiline": False,
                                             "tooltip": "Optional explicit strengths, e.g. '0.1, 0.3, 0.55, 0.8' "
                                                        f"(at most {MAX_FRAMES}); replaces start/stop/step when not "
                                                        "empty."}),
            },
        }

    def sweep(self, model, positive, negative, latent, seed, steps, cfg, sampler_name, scheduler, strength_mode,
              start, stop, step, strength_list=""):
        samples_of(latent, "latent")
        if strength_mode not in STRENGTH_MODES:
            raise BlendspaceInputError(f"strength_mode must be one of {STRENGTH_MODES}")
        strengths = parse_strengths(strength_list) if strength_list.strip() else arange_strengths(start, stop, step)
        progress = sampling.Progress(len(strengths) * steps)
        frames = []
        for k, s in enumerate(strengths):
            progress.check()
            cb = progress.step_callback(k * steps)
            if strength_mode == STRENGTH_MODES[0]:
                first = diffusers_start_step(steps, s)
                out = sampling.ksample(model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent,
                                           start_step=first, last_step=steps, force_full_denoise=True, callback=cb)
            else:
                out = sampling.ksample(model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent,
                                           denoise=s, callback=cb)
            frames.append(out)
            progress.advance(steps)
        return (_frames_latent(latent, frames), ", ".join(f"{s:g}" for s in strengths))


class SaveAnimatedGIF:
    NODE_ID = "BlendspaceSaveAnimatedGIF"
    DISPLAY_NAME = "Save Animated GIF"
    SEARCH_ALIASES = ["gif", "save gif", "animated gif", "animation", "morph gif"]
    CATEGORY = "Blendspace/experiments"
    DESCRIPTION = (
        "Saves an image batch as a looping animated GIF, as the img2img blog post's morph GIF (400 ms a frame, loop forever). "
        "Beside core Save Animated WEBP / PNG; ping-pong plays the frames forward then back.")
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    OUTPUT_TOOLTIPS = ()
    FUNCTION = "save"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The frames, in order (a batch)."}),
                "filename_prefix": ("STRING", {"default": "Blendspace/morph",
                                               "tooltip": "File name prefix in ComfyUI's output folder."}),
                "frame_duration_ms": ("INT", {"default": 400, "min": 10, "max": 60000, "step": 10,
                                              "tooltip": "How long each frame shows, in milliseconds (source: 400)."}),
                "loop": ("INT", {"default": 0, "min": 0, "max": 65535,
                                 "tooltip": "How many times the animation repeats; 0 = forever (source)."}),
                "ping_pong": ("BOOLEAN", {"default": False,
                                          "tooltip": "Play forward then backward (the end frames are not doubled)."}),
            }
        }

    def save(self, images, filename_prefix, frame_duration_ms, loop, ping_pong):
        path, entry = output_file(filename_prefix, int(images.shape[2]), int(images.shape[1]), "gif")
        save_gif(images.cpu().numpy(), path, frame_duration_ms, loop, ping_pong)
        return {"ui": {"images": [entry]}}


class LatentWalk:
    NODE_ID = "BlendspaceLatentWalk"
    DISPLAY_NAME = "Latent Walk (seeds and prompts)"
    SEARCH_ALIASES = ["latent walk", "interpolate prompts", "prompt mix", "seed walk", "interpolate seeds", "morph", "animation"]
    CATEGORY = "Blendspace/experiments"
    DESCRIPTION = (
        "StableFused's latent walk (its interpolate, after Karpathy): frames from (seed A, prompt A) to "
        "(seed B, prompt B), both ends included, the starting noises slerped and the prompt embeddings lerped "
        "(StableFused's defaults), sampled as batches. The first and last frames are exactly what KSampler gives "
        "for the endpoints.")
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("latents",)
    OUTPUT_TOOLTIPS = ("The frames in walk order.",)
    FUNCTION = "walk"

    @classmethod
    def INPUT_TYPES(cls):
        inputs = sampler_inputs(20, 7.5, "seed_a")
        inputs["seed_b"] = ("INT", {"default": 1, "min": 0, "max": 0xFFFFFFFFFFFFFFFF,
                                    "tooltip": "Seed of the last frame's noise (same as seed_a for a prompt-only walk)."})
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The model to sample with."}),
                "positive_a": ("CONDITIONING", {"tooltip": "Prompt of the first frame."}),
                "positive_b": ("CONDITIONING", {"tooltip": "Prompt of the last frame (connect positive_a again for a "
                                                           "seed-only walk)."}),
                "negative": ("CONDITIONING", {"tooltip": "Negative prompt for every frame."}),
                "latent": ("LATENT", {"tooltip": "An empty latent of the wanted size (batch 1)."}),
                **inputs,
                "frames": ("INT", {"default": 8, "min": 2, "max": 1000,
                                   "tooltip": "Frames from A to B, both included (StableFused: 8 interpolation steps)."}),
                "noise_interpolation": (["slerp", "lerp"], {"default": "slerp",
                                                            "tooltip": "How the starting noises mix (StableFused: slerp)."}),
                "prompt_interpolation": (["lerp", "slerp"], {"default": "lerp",
                                                             "tooltip": "How the prompt embeddings mix (StableFused: "
                                                                        "lerp)."}),
                "max_batch": ("INT", {"default": 8, "min": 0, "max": 1000,
                                      "tooltip": "Frames sampled together; 0 = all at once. Lower it if memory runs out."}),
            }
        }

    def walk(self, model, positive_a, positive_b, negative, latent, seed_a, steps, cfg, sampler_name, scheduler,
             seed_b, frames, noise_interpolation, prompt_interpolation, max_batch):
        samples = _single_latent(latent, "a walk starts from one empty latent (batch 1), the frames are made by the "
                                         "node.")
        _, noise_a = sampling.prepare_noise(model, latent, seed_a)
        _, noise_b = sampling.prepare_noise(model, latent, seed_b)
        mix_noise = slerp if noise_interpolation == "slerp" else (lambda a, b, t, per: lerp(a, b, t))
        mix_prompt = slerp if prompt_interpolation == "slerp" else (lambda a, b, t, per: lerp(a, b, t))
        ts = interpolation_weights(frames)
        noises = [mix_noise(noise_a, noise_b, t, "sample") for t in ts]
        conds = [combine_conditionings(positive_a, positive_b, lambda a, b, t=t: mix_prompt(a, b, t, "sample"),
                                       lambda a, b, t=t: mix_prompt(a, b, t, "sample"), ("positive_a", "positive_b"),
                                       t=t) for t in ts]
        groups = _frame_groups(conds, frames if max_batch == 0 else max_batch)
        progress = sampling.Progress(len(groups) * steps)
        outs = []
        for n, idx in enumerate(groups):
            cond = _stack_conditionings([conds[i] for i in idx])
            noise = torch.cat([noises[i] for i in idx], dim=0)
            batch_latent = {"samples": samples.repeat(len(idx), 1, 1, 1)}
            outs.append(sampling.ksample(model, seed_a, steps, cfg, sampler_name, scheduler, cond, negative,
                                             batch_latent, noise=noise, callback=progress.step_callback(n * steps)))
            progress.advance(steps)
        return (_frames_latent(latent, outs),)


def _frame_groups(conds: list[list], chunk: int) -> list[list[int]]:
    """Consecutive frames in batches of at most ``chunk`` whose conditionings have the same token shapes (the end
    frames keep their prompts' own lengths, the mixed ones the matched length)."""
    groups: list[list[int]] = []
    for i, cond in enumerate(conds):
        shapes = [e[0].shape for e in cond]
        if groups and len(groups[-1]) < chunk and shapes == [e[0].shape for e in conds[groups[-1][0]]]:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _stack_conditionings(conds: list[list]) -> list:
    """Frame conditionings (one list per frame, same entries) stacked along the batch: frame k gets row k."""
    out = []
    for entries in zip(*conds, strict=True):
        extra = dict(entries[0][1])
        if "pooled_output" in extra:
            extra["pooled_output"] = torch.cat([e[1]["pooled_output"] for e in entries], dim=0)
        out.append([torch.cat([e[0] for e in entries], dim=0), extra])
    return out


class DenoisingReplay:
    NODE_ID = "BlendspaceDenoisingReplay"
    DISPLAY_NAME = "KSampler (Denoising Replay)"
    SEARCH_ALIASES = ["denoising steps", "step by step", "x0 history", "visualize denoising", "sampler history", "ksampler"]
    CATEGORY = "Blendspace/experiments"
    DESCRIPTION = (
        "A KSampler that also returns the denoising process step by step (StableFused's visualisation; ComfyUI issue "
        "#4272): the predicted clean image x0 at every step, and the noisy latent x_t before every step plus the "
        "result (StableFused's latent history, steps+1 frames). Decode them and show a grid or an animation.")
    RETURN_TYPES = ("LATENT", "LATENT", "LATENT")
    RETURN_NAMES = ("latent", "x0_history", "xt_history")
    OUTPUT_TOOLTIPS = ("The sampled latent, as KSampler returns it.",
                       "Predicted x0 at every step (steps × batch, step-major).",
                       "x_t before every step, then the result (steps+1 × batch, step-major).")
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The model to sample with."}),
                **sampler_inputs(20, 7.5),
                **COND_INPUTS,
                "latent_image": ("LATENT", {"tooltip": "Empty latent (text-to-image) or an encoded image (img2img)."}),
                "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                      "tooltip": "As KSampler's denoise (below 1 for image-to-image)."}),
            }
        }

    def sample(self, model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image, denoise):
        samples_of(latent_image, "latent_image")
        x0s, xts = [], []
        progress = sampling.Progress(steps)
        inner = progress.step_callback(0)
        process_out = model.model.process_latent_out

        def callback(step, x0, x, total_steps):
            x0s.append(process_out(x0.detach().clone()).to("cpu"))
            xts.append(process_out(x.detach().clone()).to("cpu"))
            inner(step, x0, x, total_steps)

        out = sampling.ksample(model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image,
                                   denoise=denoise, callback=callback)
        result = {k: v for k, v in latent_image.items()}
        result["samples"] = out
        if not x0s:  # nothing was sampled (denoise 0): the history is the input itself
            x0s, xts = [out], []
        x0_hist = _frames_latent(latent_image, x0s)
        xt_hist = _frames_latent(latent_image, xts + [out.to("cpu")])
        return (result, x0_hist, xt_hist)


class GuidanceScale:
    NODE_ID = "BlendspaceGuidanceScale"
    DISPLAY_NAME = "Any Guidance Scale (zero / negative)"
    SEARCH_ALIASES = ["negative cfg", "zero cfg", "guidance scale", "cfg", "negative guidance", "guidance rescale"]
    CATEGORY = "Blendspace/model_patches"
    DESCRIPTION = (
        "StableFused's guidance-scale experiments: a MODEL patch that replaces the sampler's CFG with "
        "uncond + scale·(cond - uncond) for any scale from -30 to 30 (core KSampler stops at 0), always running the "
        "unconditional pass (also at 0 and 1). scale 0 gives the negative prompt's image, below 0 the 'opposite' of "
        "the prompt. Optional guidance rescale: StableFused uses 0.7 everywhere. The sampler's own cfg is ignored.")
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("A patched copy of the model; the input model is left unchanged.",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The model to patch (a copy is patched)."}),
                "guidance_scale": ("FLOAT", {"default": 7.5, "min": -30.0, "max": 30.0, "step": 0.1, "round": 0.01,
                                             "tooltip": "CFG scale, zero and negative allowed (StableFused sweeps -1.5 "
                                                        "to 15 in steps of 1.5)."}),
                "guidance_rescale": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                               "tooltip": "Guidance rescale φ (Lin et al.): 0 = plain CFG (default), "
                                                          "0.7 = StableFused's setting."}),
            }
        }

    def patch(self, model, guidance_scale, guidance_rescale):
        return (_any_scale_model(model, float(guidance_scale), float(guidance_rescale)),)


def _any_scale_model(model, scale: float, phi: float):
    """A clone of ``model`` whose CFG is ``guided_epsilon`` at ``scale`` with rescale ``phi``."""
    def cfg_function(args):
        return guided_epsilon(args["cond"], args["uncond"], scale, phi)

    m = model.clone()
    m.set_model_sampler_cfg_function(cfg_function, disable_cfg1_optimization=True)
    return m


class LatentVariations:
    NODE_ID = "BlendspaceLatentVariations"
    DISPLAY_NAME = "Latent Variations (walk around one latent)"
    CATEGORY = "Blendspace/experiments"
    DESCRIPTION = (
        "StableFused's walk around one latent (its modify_latent): the seed's starting noise z is mixed with "
        "`count` fresh noises n as (1 - strength)·z + strength·n, the batch is standardised with one mean and "
        "standard deviation (as the source), and each result is sampled as text-to-image. Small strengths (source: "
        "0.25; its default 0.2) give images similar to the seed's own; 1 gives unrelated ones.")
    SEARCH_ALIASES = ["similar images", "variations", "modify latent", "latent walk around", "stablefused"]
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("latents",)
    OUTPUT_TOOLTIPS = ("One sampled latent per variation, in order.",)
    FUNCTION = "vary"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The model to sample with."}),
                "positive": ("CONDITIONING", {"tooltip": "The prompt of every variation."}),
                "negative": ("CONDITIONING", {"tooltip": "The negative prompt of every variation."}),
                "latent": ("LATENT", {"tooltip": "An empty latent of the wanted size (batch 1)."}),
                **sampler_inputs(20, 7.5, seed_tip="Seed of the base noise z, the latent walked around (source: 44; "
                                                   "strength 0 gives the seed's own image, up to the standardisation).",
                                 cfg_tip="CFG of the variations (source: 7.5; its base image used 10)."),
                "strength": ("FLOAT", {"default": 0.25, "min": 0.0, "max": 1.0, "step": 0.01,
                                       "tooltip": "How much fresh noise each variation mixes in: 0 = the base latent, "
                                                  "1 = new noise (source: 0.25; its default 0.2)."}),
                "count": ("INT", {"default": 4, "min": 1, "max": 256, "tooltip": "Number of variations (source: 4)."}),
                "variation_seed": ("INT", {"default": 1, "min": 0, "max": 0xFFFFFFFFFFFFFFFF,
                                           "tooltip": "Seed of the fresh noises the variations mix in."}),
            }
        }

    def vary(self, model, positive, negative, latent, seed, steps, cfg, sampler_name, scheduler, strength, count,
             variation_seed):
        samples = _single_latent(latent, "variations start from one empty latent (batch 1), the node makes the "
                                         "batch.")
        _, base = sampling.prepare_noise(model, latent, seed)
        batch = {"samples": samples.repeat(count, 1, 1, 1)}
        _, fresh = sampling.prepare_noise(model, batch, variation_seed)
        noise = perturbed_latents(base, fresh, float(strength)).to(base.dtype)
        progress = sampling.Progress(steps)
        out = sampling.ksample(model, seed, steps, cfg, sampler_name, scheduler, positive, negative, batch,
                                   noise=noise, callback=progress.step_callback(0))
        return (_frames_latent(latent, [out]),)


GRID_VALUES = 64
"""The most rows (step counts) and columns (guidance scales) of the guidance grid."""


class GuidanceGrid:
    NODE_ID = "BlendspaceGuidanceGrid"
    DISPLAY_NAME = "Guidance Scale × Steps Grid"
    CATEGORY = "Blendspace/experiments"
    DESCRIPTION = (
        "StableFused's guidance-scale experiments as one node: the same prompt and seed sampled for every combination "
        "of a list of step counts (rows) and a list of guidance scales (columns, zero and negative allowed, as Any "
        "Guidance Scale), with the optional guidance rescale. Returns every latent, a sheet labelled with each "
        "cell's steps and scale, and the labels. Source: steps 3, 6, 12, 20, 25 × scales -1.5 to 15 step 1.5.")
    SEARCH_ALIASES = ["cfg grid", "guidance grid", "xy plot", "steps vs guidance", "negative guidance"]
    RETURN_TYPES = ("LATENT", "IMAGE", "STRING")
    RETURN_NAMES = ("latents", "grid", "labels")
    OUTPUT_TOOLTIPS = ("Every cell's latent, row by row (steps) and column by column (scales).",
                       "All cells decoded on one sheet, each labelled with its steps and scale.",
                       "Each cell's steps and scale, one line per cell in grid order.")
    FUNCTION = "grid"

    @classmethod
    def INPUT_TYPES(cls):
        inputs = sampler_inputs(20, 7.5, seed_tip="Seed of the starting noise, the same for every cell (source: 42).")
        for k in ("steps", "cfg"):
            inputs.pop(k)
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The model to sample with."}),
                "positive": ("CONDITIONING", {"tooltip": "The prompt of every cell."}),
                "negative": ("CONDITIONING", {"tooltip": "The negative prompt of every cell."}),
                "latent": ("LATENT", {"tooltip": "An empty latent of the wanted size (batch 1)."}),
                "vae": ("VAE", {"tooltip": "Decodes the cells for the labelled grid sheet."}),
                **inputs,
                "steps_list": ("STRING", {"default": "3, 6, 12, 20, 25",
                                          "tooltip": "Step counts (1 to 10000), one row each: '3, 6, 12' or a "
                                                     "range '4:20:4' (start:stop:step, stop included); at most "
                                                     f"{GRID_VALUES} rows. Source: 3, 6, 12, 20, 25."}),
                "guidance_scales": ("STRING", {"default": "-1.5:15:1.5",
                                               "tooltip": "Guidance scales, one column each (-30 to 30): '0, 7.5' or "
                                                          f"a range; at most {GRID_VALUES} columns. Source: -1.5 to "
                                                          "15 in steps of 1.5 (12 values)."}),
                "guidance_rescale": ("FLOAT", {"default": 0.7, "min": 0.0, "max": 1.0, "step": 0.01,
                                               "tooltip": "Guidance rescale φ for every cell (StableFused: 0.7; 0 = "
                                                          "plain CFG)."}),
            }
        }

    def grid(self, model, positive, negative, latent, vae, seed, sampler_name, scheduler, steps_list, guidance_scales,
             guidance_rescale):
        _single_latent(latent, "the grid samples one image per cell from an empty latent of batch 1.")
        steps = [int(round(v)) for v in parse_values(steps_list, "steps_list", 1, 10000, GRID_VALUES)]
        scales = parse_values(guidance_scales, "guidance_scales", -30.0, 30.0, GRID_VALUES)
        cells = [(n, g) for n in steps for g in scales]
        progress = sampling.Progress(sum(n for n, _ in cells))
        outs, images = [], []
        for n, g in cells:
            progress.check()
            m = _any_scale_model(model, float(g), float(guidance_rescale))
            out = sampling.ksample(m, seed, n, 1.0, sampler_name, scheduler, positive, negative, latent,
                                       callback=progress.step_callback(progress.done))
            progress.advance(n)
            outs.append(out)
            images.append(annotate(vae.decode(out).float().cpu().clamp(0, 1)[:1], f"steps {n}\nscale {g:g}"))
        labels = "\n".join(f"steps {n}, scale {g:g}" for n, g in cells)
        return (_frames_latent(latent, outs), tile(torch.cat(images), len(scales)), labels)


NODES = [StrengthSweep, SaveAnimatedGIF, LatentWalk, DenoisingReplay, GuidanceScale, LatentVariations, GuidanceGrid]
