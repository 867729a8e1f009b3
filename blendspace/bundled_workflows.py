"""The bundled workflows (``workflows/*.json``), built from the seeds' documented settings.

``python -m blendspace build-workflows`` writes them from these definitions with the node
definitions of the running ComfyUI, so every socket and widget slot matches the real nodes; a test
checks that the committed files are what this module builds. Each workflow names its source and
settings in a Note. Model file names are the ones the seeds used, so users only pick their own.
Pure Python (the node definitions are passed in).
"""

from __future__ import annotations

from collections.abc import Callable

from .workflow import UIGraph

SD14 = "sd-v1-4.ckpt"
SD15 = "v1-5-pruned-emaonly.safetensors"
SD21_768 = "v2-1_768-ema-pruned.safetensors"
SD2_BASE = "512-base-ema.safetensors"
VIT_L = "clip-vit-large-patch14.safetensors"
MINECRAFT = ("A Minecraft-inspired rendering of a black bear walking on grass, featuring distinct pixelated 16x16 "
             "textures, blocky 3D cube structures, limited color palette with no gradients, sharp right angles and "
             "perfect squares, characteristic voxel-based terrain with visible block edges.")
VAN_GOGH = ("A Van Gogh-style painting of a black bear walking on grass, with bold, swirling brushstrokes, rich "
            "textures, and vibrant, expressive colors reminiscent of Starry Night")
NEG_SF = "cartoon, unrealistic, blur, boring background, deformed, disfigured, low resolution, unattractive"


def _checkpoint(g: UIGraph, name: str, x: int = 0) -> int:
    return g.add("CheckpointLoaderSimple", {"ckpt_name": name}, pos=(x, 200))


def _text(g: UIGraph, ckpt: int, text: str, title: str, y: int) -> int:
    return g.add("CLIPTextEncode", {"text": text}, title=title, pos=(400, y), inputs={"clip": (ckpt, 1)})


def _decode_save(g: UIGraph, ckpt: int, latent: tuple[int, int], prefix: str, x: int = 1400, y: int = 200) -> int:
    dec = g.add("VAEDecode", pos=(x, y), inputs={"samples": latent, "vae": (ckpt, 2)})
    g.add("SaveImage", {"filename_prefix": prefix}, pos=(x + 250, y), inputs={"images": (dec, 0)})
    return dec


def _photo_latent(g: UIGraph, ckpt: int, image: str, size: int = 512) -> int:
    img = g.add("LoadImage", {"image": image}, title="Your photo", pos=(0, 600))
    scaled = g.add("ImageScale", {"upscale_method": "lanczos", "width": size, "height": size, "crop": "center"},
                   pos=(300, 600), inputs={"image": (img, 0)})
    return g.add("VAEEncode", pos=(600, 600), inputs={"pixels": (scaled, 0), "vae": (ckpt, 2)})


def _cycle(g: UIGraph, ckpt: int, enc_text: str, photo: int) -> int:
    enc = _text(g, ckpt, enc_text, "Encoder prompt (describes the photo)", 700)
    return g.add("BlendspaceCycleDiffusionInvert", {"seed": 42, "steps": 99, "skip_steps": 10, "eta": 0.1, "cfg": 1.0},
                 pos=(900, 600), inputs={"model": (ckpt, 0), "positive": (enc, 0), "latent": (photo, 0)})


def dual_style_epsilon(g: UIGraph) -> str:
    ck = _checkpoint(g, SD14)
    a, b = _text(g, ck, MINECRAFT, "Style A (left)", 0), _text(g, ck, VAN_GOGH, "Style B (right)", 200)
    neg = _text(g, ck, "", "Negative (empty, as the source)", 400)
    photo = _photo_latent(g, ck, "bear.png")
    cyc = _cycle(g, ck, "A picture of a black bear walking on grass", photo)
    mix = g.add("DualStyleEpsilonMix", {"direction": "left-right", "shape": "sigmoid", "center": 0.5, "sharpness": 20.0},
                pos=(900, 0), inputs={"positive_a": (a, 0), "positive_b": (b, 0), "latent": (photo, 0)})
    s = g.add("BlendspaceCycleDiffusionSampler", {"cfg": 20.0}, pos=(1150, 200),
              inputs={"model": (ck, 0), "positive": (mix, 0), "negative": (neg, 0), "cycle": (cyc, 0)})
    _decode_save(g, ck, (s, 0), "Blendspace/dual_style_eps")
    return ("Seed 002, experiment D3 (epsilon interpolation, bear): SD-1.4, CycleDiffusion 99 DDIM steps, skip 10, "
            "eta 0.1, encoder 'A picture of a black bear walking on grass' at CFG 1, decoder CFG 20, sigmoid 20 over "
            "the latent width, Minecraft left / Van Gogh right, seed 42, 512x512 centre crop. Load your own photo.")


def dual_style_cross_attention(g: UIGraph) -> str:
    ck = _checkpoint(g, SD14)
    a, b = _text(g, ck, MINECRAFT, "Style A (left)", 0), _text(g, ck, VAN_GOGH, "Style B (right)", 200)
    neg = _text(g, ck, "", "Negative (empty, as the source)", 400)
    photo = _photo_latent(g, ck, "bear.png")
    cyc = _cycle(g, ck, "A picture of a black bear walking on grass", photo)
    patched = g.add("CrossAttnInterpolate", {"sharpness": 30.0, "strength": 1.0}, pos=(900, 0),
                    inputs={"model": (ck, 0), "conditioning_b": (b, 0)})
    s = g.add("BlendspaceCycleDiffusionSampler", {"cfg": 15.0}, pos=(1150, 200),
              inputs={"model": (patched, 0), "positive": (a, 0), "negative": (neg, 0), "cycle": (cyc, 0)})
    _decode_save(g, ck, (s, 0), "Blendspace/dual_style_xattn")
    return ("Seed 002, experiment D4 (cross-attention interpolation, bear): every attn2 layer blends the attention "
            "of prompt A (left) and B (right) with sigmoid 30 over each map's width, positive pass only; CycleDiffusion "
            "99 steps, skip 10, eta 0.1, decoder CFG 15, seed 42.")


def dual_style_baselines(g: UIGraph) -> str:
    ck = _checkpoint(g, SD14)
    a, b = _text(g, ck, MINECRAFT, "Style A", 0), _text(g, ck, VAN_GOGH, "Style B", 200)
    concat = _text(g, ck, " A minecraft style black bear walking on grass on the left and a van gogh style black bear "
                           "walking on grass on the right", "Concatenated prompt (baseline D2)", 400)
    neg = _text(g, ck, "", "Negative", 1000)
    photo = _photo_latent(g, ck, "bear.png")
    cyc = _cycle(g, ck, "A picture of a black bear walking on grass", photo)
    outs = []
    for i, (pos, prefix) in enumerate(((concat, "concat"), (a, "style_a"), (b, "style_b"))):
        s = g.add("BlendspaceCycleDiffusionSampler", {"cfg": 15.0}, pos=(1150, 200 * i),
                  inputs={"model": (ck, 0), "positive": (pos, 0), "negative": (neg, 0), "cycle": (cyc, 0)})
        outs.append(_decode_save(g, ck, (s, 0), f"Blendspace/baseline_{prefix}", y=300 * i))
    mask = g.add("BlendspaceDualStyleMask", {"sharpness": 20.0}, pos=(1400, 900), inputs={"image": (outs[1], 0)})
    comp = g.add("ImageCompositeMasked", {"x": 0, "y": 0, "resize_source": False}, pos=(1650, 900),
                 inputs={"destination": (outs[2], 0), "source": (outs[1], 0), "mask": (mask, 0)})
    g.add("SaveImage", {"filename_prefix": "Blendspace/baseline_pixel_interpolation"}, pos=(1900, 900),
          inputs={"images": (comp, 0)})
    return ("Seed 002 baselines: D2 prompt concatenation (one prompt describing both halves, decoder CFG 15) and D6 "
            "pixel interpolation (the image generated once per style, blended left to right with sigmoid 20: "
            "source = style A image, destination = style B image). Seed 42.")


PAIRS = (("Minecraft", MINECRAFT, "Van Gogh", VAN_GOGH),
         ("Mosaic", "A highly detailed mosaic of a black bear walking on grass, made of small, colorful tiles with "
                    "visible grout lines, creating a textured and handcrafted appearance",
          "Andy Warhol pop", "A vibrant Andy Warhol-style pop art image of a black bear walking on grass, featuring "
                            "bold, contrasting colors, high saturation, thick outlines, and a repeated or "
                            "silkscreen-like print effect."))


def dual_style_mask_shapes(g: UIGraph) -> str:
    ck = _checkpoint(g, SD14)
    neg = _text(g, ck, "", "Negative (empty, as the source)", 1000)
    photo = _photo_latent(g, ck, "bear.png")
    cyc = _cycle(g, ck, "A picture of a black bear walking on grass", photo)
    shapes = (("sigmoid", "exp: sigmoid 30"), ("linear", "linear ramp"))
    for p, (name_a, text_a, name_b, text_b) in enumerate(PAIRS):
        a = _text(g, ck, text_a, f"Style A (left): {name_a}", 400 * p)
        b = _text(g, ck, text_b, f"Style B (right): {name_b}", 400 * p + 200)
        for k, (shape, label) in enumerate(shapes):
            patched = g.add("CrossAttnInterpolate", {"shape": shape, "sharpness": 30.0, "transition_width": 1.0,
                                                     "strength": 1.0}, title=f"{label}, {name_a} / {name_b}",
                            pos=(900, 600 * p + 300 * k), inputs={"model": (ck, 0), "conditioning_b": (b, 0)})
            s = g.add("BlendspaceCycleDiffusionSampler", {"cfg": 15.0}, pos=(1150, 600 * p + 300 * k),
                      inputs={"model": (patched, 0), "positive": (a, 0), "negative": (neg, 0), "cycle": (cyc, 0)})
            _decode_save(g, ck, (s, 0), f"Blendspace/xattn_{shape}_{name_a.lower()}", y=600 * p + 300 * k)
    return ("Seed 002, experiment D5 (cross-attention with the 'exp' and the 'linear' mask): the bear (image 4) with "
            "both style pairs the source evaluates, Minecraft left / Van Gogh right and Mosaic left / Andy Warhol pop "
            "right; each once with the sigmoid-30 mask ('exp') and once with a linear ramp over the whole width. "
            "CycleDiffusion 99 DDIM steps, skip 10, eta 0.1, encoder 'A picture of a black bear walking on grass' at "
            "CFG 1, decoder CFG 15, seed 42, 512x512 centre crop. The source repeats this on images 1, 2, 3, 4, 5, 7 "
            "and 8: load each and change the subject in the prompts.")


LAION_B32 = "CLIP-ViT-B-32-laion2B-s34B-b79K/open_clip_model.safetensors"
COCA_L14 = "CoCa-ViT-L-14-laion2B-s13B-b90k/open_clip_model.safetensors"


def _mixing_inputs(g: UIGraph, content: tuple[str, str | None], style: tuple[str, str | None], ckpt: str = SD14):
    """Checkpoint, the two prompts (typed, or CoCa captions when None), the loaded images (the CLIP target is
    encoded from these, as the source does), the 512x512 images and their latents, and the seed's LAION
    ViT-B-32 guidance CLIP."""
    ck = _checkpoint(g, ckpt)
    coca = None
    prompts, originals, images, latents = [], [], [], []
    for i, ((name, prompt), role) in enumerate(((content, "Content"), (style, "Style"))):
        img = g.add("LoadImage", {"image": name}, title=f"{role} image", pos=(0, 600 + 350 * i))
        originals.append(img)
        if prompt is None:
            if coca is None:
                coca = g.add("BlendspaceOpenClipLoader", {"clip_name": COCA_L14, "architecture": "coca_ViT-L-14"},
                             title="CoCa captioner (coca_ViT-L-14, laion2B-s13B-b90k)", pos=(0, 1500))
            cap = g.add("BlendspaceCocaCaption", {"prompt": ""}, title=f"{role} prompt from CoCa",
                        pos=(300, 1000 + 200 * i), inputs={"open_clip": (coca, 0), "image": (img, 0)})
            prompts.append(g.add("CLIPTextEncode", {"text": ""}, title=f"{role} prompt", pos=(400, 200 * i),
                                 inputs={"clip": (ck, 1), "text": (cap, 0)}))
        else:
            prompts.append(_text(g, ck, prompt, f"{role} prompt", 200 * i))
        scaled = g.add("ImageScale", {"upscale_method": "lanczos", "width": 512, "height": 512, "crop": "disabled"},
                       pos=(300, 600 + 350 * i), inputs={"image": (img, 0)})
        images.append(scaled)
        latents.append(g.add("VAEEncode", pos=(600, 600 + 350 * i), inputs={"pixels": (scaled, 0), "vae": (ck, 2)}))
    oc = g.add("BlendspaceOpenClipLoader", {"clip_name": LAION_B32, "architecture": "ViT-B-32"},
               title="Guidance CLIP (LAION ViT-B-32, laion2B-s34B-b79K)", pos=(0, 1300))
    neg = _text(g, ck, "", "Negative (empty, as the source)", 400)
    return ck, prompts, (originals, images), latents, oc, neg


def _mix_once(g: UIGraph, inputs, seed: int, noise: float, latent_t: float, prompt_t: float, clip_t: float,
              prefix: str = "Blendspace/images_mixing", label: str = "") -> None:
    """One mix of the inputs from ``_mixing_inputs``: prompt slerp, CLIP target from the ORIGINAL images,
    guided sampler from the slerp of the two noised latents, decoded and saved."""
    ck, (cp, sp), (originals, _scaled), latents, oc, neg = inputs
    mixed = g.add("SlerpConditioning", {"t": prompt_t, "mode": "whole tensor (source)", "method": "slerp"},
                  title=f"slerp_prompt_style_strength{label}", pos=(700, 0),
                  inputs={"conditioning_a": (cp, 0), "conditioning_b": (sp, 0)})
    target = g.add("BlendspaceSlerpClipImageEmbeds", {"slerp_clip_image_style_strength": clip_t}, pos=(700, 1300),
                   title=f"CLIP target from the original images{label}",
                   inputs={"open_clip": (oc, 0), "content_image": (originals[0], 0), "style_image": (originals[1], 0)})
    s = g.add("ClipImageGuidanceSampler", {"seed": seed, "steps": 50, "cfg": 9.0, "sampler_name": "ddim",
                                           "scheduler": "ddim_uniform", "denoise": noise,
                                           "strength_mode": "diffusers (source)", "clip_guidance_scale": 100.0,
                                           "gradient": "exact (through the U-Net, source)",
                                           "slerp_latent_style_strength": latent_t}, pos=(1050, 300),
              title=f"CLIP Image Guidance Sampler{label}",
              inputs={"model": (ck, 0), "positive": (mixed, 0), "negative": (neg, 0),
                      "latent_image": (latents[0], 0), "vae": (ck, 2), "open_clip": (oc, 0),
                      "target": (target, 0), "latent_style": (latents[1], 0)})
    _decode_save(g, ck, (s, 0), prefix)


def _images_mixing(g: UIGraph, content: tuple[str, str | None], style: tuple[str, str | None], seed: int, noise: float,
                   latent_t: float, prompt_t: float, clip_t: float, ckpt: str = SD14) -> None:
    _mix_once(g, _mixing_inputs(g, content, style, ckpt), seed, noise, latent_t, prompt_t, clip_t)


MIXING_BASE = ("50 steps (DDIM stands in for the source's PNDM), CFG 9, CLIP guidance 100 with the exact "
               "gradient and the seed's LAION ViT-B-32 (put the repository's open_clip_model.safetensors and "
               "open_clip_config.json in models/open_clip/CLIP-ViT-B-32-laion2B-s34B-b79K/), latents from the "
               "images scaled to 512x512 (aspect not kept, as the source)")
MIXING_SETTINGS = MIXING_BASE + ", the CLIP target from the images as loaded (shorter side 224, centre crop, as the source)."
MIXING_NOTE = " SD-1.4, " + MIXING_SETTINGS


def images_mixing_style_to_content(g: UIGraph) -> str:
    _images_mixing(g, ("boromir.jpg", "boromir"), ("gigachad.jpg", "gigachad"), 117, 0.6, 0.8, 0.2, 0.2)
    return ("Seed 000, experiment E1 and the README's 'from style to content' preset: content boromir, style "
            "gigachad, prompts 'boromir' / 'gigachad', seed 117, noise_strength 0.6 (preset: 0.5), latent 0.8, "
            "prompt 0.2, CLIP image 0.2." + MIXING_NOTE)


def images_mixing_content_to_style(g: UIGraph) -> str:
    _images_mixing(g, ("shrek.jpg", "shrek"), ("gigachad.jpg", "gigachad"), 17, 0.7, 0.2, 0.8, 0.8)
    return ("Seed 000, experiment E2 and the README's 'from content to style' preset: content shrek, style "
            "gigachad, prompts 'shrek' / 'gigachad', seed 17, noise_strength 0.7 (preset: 0.5), latent 0.2, "
            "prompt 0.8, CLIP image 0.8." + MIXING_NOTE)


def images_mixing_coca(g: UIGraph) -> str:
    _images_mixing(g, ("boromir.jpg", None), ("gigachad.jpg", None), 17, 0.65, 0.9, 0.1, 0.1)
    return ("Seed 000, experiment E6 (the diffusers community README): content boromir, style gigachad, both prompts "
            "written by CoCa (coca_ViT-L-14, laion2B-s13B-b90k; beam search 6 beams in 3 groups, 5 to 30 tokens, "
            "cleaned as the source), seed 17, noise_strength 0.65, latent 0.9, prompt 0.1, CLIP image 0.1. Type a "
            "prompt into a CoCa node to use it instead of the caption." + MIXING_NOTE)


def images_mixing_grid_search(g: UIGraph) -> str:
    ck, (cp, sp), (_originals, images), _latents, oc, neg = _mixing_inputs(g, ("boromir.jpg", "boromir"),
                                                                           ("gigachad.jpg", "gigachad"))
    s = g.add("BlendspaceMixGridSearch", {"seed": 117, "steps": 50, "cfg": 9.0, "sampler_name": "ddim",
                                          "scheduler": "ddim_uniform", "clip_guidance_scale": 100.0,
                                          "gradient": "exact (through the U-Net, source)",
                                          "noise_strength": "0.5, 0.6, 0.7", "slerp_latent_style_strength": "0.2, 0.8",
                                          "slerp_prompt_style_strength": "0.2, 0.8",
                                          "slerp_clip_image_style_strength": "0.2, 0.8", "columns": 4},
              pos=(1050, 300), inputs={"model": (ck, 0), "content_positive": (cp, 0), "style_positive": (sp, 0),
                                       "negative": (neg, 0), "content_image": (images[0], 0),
                                       "style_image": (images[1], 0), "vae": (ck, 2), "open_clip": (oc, 0)})
    g.add("SaveImage", {"filename_prefix": "Blendspace/mixing_grid"}, title="Grid, labelled", pos=(1500, 0),
          inputs={"images": (s, 2)})
    g.add("SaveImage", {"filename_prefix": "Blendspace/mixing_best"}, title="Best mix", pos=(1500, 400),
          inputs={"images": (s, 0)})
    return ("Seed 000's 'find the best mix by complete enumeration' (its notebook is lost, so the grid is the README's "
            "advice: noise_strength 0.5-0.7 and the two presets' strengths 0.2 / 0.8), on E1's images and prompts, "
            "seed 117: 24 CLIP-guided runs scored by CLIP similarity to both images; the best is the highest lower "
            "score. The report and the best strengths are outputs too (wire them into a mixing workflow). SD-1.4, "
            + MIXING_BASE + "; the grid node encodes its CLIP targets and scores from the 512x512 images.")


def images_mixing_sd2_base(g: UIGraph) -> str:
    _images_mixing(g, ("cat.jpeg", None), ("bread.png", None), 17, 0.5, 0.8, 0.15, 0.15, ckpt=SD2_BASE)
    return ("Seed 000, experiment E3 (the stable-diffusion-2-base notebook, 'cat_bread'): SD-2-base "
            "(512-base-ema), content cat, style bread, both prompts written by CoCa, seed 17, noise_strength 0.5, "
            "latent 0.8, prompt 0.15, CLIP image 0.15. " + MIXING_SETTINGS)


def images_mixing_load_by_parts(g: UIGraph) -> str:
    _images_mixing(g, ("boromir.jpg", None), ("vazovskiy.jpg", None), 17, 0.6, 0.8, 0.1, 0.1)
    return ("Seed 000, experiment E4 (the load-by-parts notebook, 'boromir_vazovskiy'): SD-1.4 (the notebook loads "
            "U-Net, VAE, text encoder, PNDM scheduler and CLIP separately and turns on attention slicing to save "
            "memory; ComfyUI manages memory itself, so one checkpoint loader does), content boromir, style "
            "vazovskiy, CoCa prompts, seed 17, noise_strength 0.6, latent 0.8, prompt 0.1, CLIP image 0.1." + MIXING_NOTE)


def images_mixing_colab(g: UIGraph) -> str:
    _images_mixing(g, ("cat.jpeg", "abyssinians"), ("bread.png", "whole wheat bread isolated on a white background"),
                   17, 0.4, 0.25, 0.99, 0.9)
    return ("Seed 000, experiment E5 (the colab example, 'cat_bread'): content cat, style bread, the prompts CoCa "
            "printed in the notebook typed in ('abyssinians' / 'whole wheat bread isolated on a white background'), "
            "seed 17, noise_strength 0.4, latent 0.25, prompt 0.99, CLIP image 0.9." + MIXING_NOTE)


def images_mixing_presets_compared(g: UIGraph) -> str:
    inputs = _mixing_inputs(g, ("shrek.jpg", "shrek"), ("gigachad.jpg", "gigachad"))
    _mix_once(g, inputs, 17, 0.5, 0.8, 0.2, 0.2, "Blendspace/style_to_content", " (style to content)")
    _mix_once(g, inputs, 17, 0.5, 0.2, 0.8, 0.8, "Blendspace/content_to_style", " (content to style)")
    return ("Seed 000, experiment E7 (the README's difference.png): the same content (shrek) and style (gigachad) "
            "mixed with both presets side by side: 'style to content' noise_strength 0.5, latent 0.8, prompt 0.2, "
            "CLIP image 0.2; 'content to style' noise_strength 0.5, latent 0.2, prompt 0.8, CLIP image 0.8. The "
            "figure's seed and prompts are not documented: seed 17 and the prompts 'shrek' / 'gigachad' (E2's) "
            "are used." + MIXING_NOTE)


def _flex_img2img(g: UIGraph, settings: dict, prompt: str, init: bool, note: str, guide_text: str | None = None,
                  concept: str | None = None, steps: int = 30, seed: int = 1337, strength: float = 0.6,
                  guide_image: str = "guide.png") -> str:
    ck = _checkpoint(g, SD14)
    pos = _text(g, ck, prompt, "Prompt", 0)
    neg = _text(g, ck, "", "Negative (empty: FlexDiffuse's uncond)", 200)
    extra = {}
    if guide_text is not None:
        extra["guide_conditioning"] = (_text(g, ck, guide_text, "Guide text (text-to-text tweening)", 400), 0)
    else:
        cv = g.add("CLIPVisionLoader", {"clip_name": VIT_L}, pos=(0, 900))
        guide = g.add("LoadImage", {"image": guide_image}, title="Guide image", pos=(300, 900))
        extra.update(clip_vision=(cv, 0), image=(guide, 0))
    if concept is not None:
        extra["concept_conditioning"] = (_text(g, ck, concept, "Mapping concepts", 600), 0)
    mapped = g.add("ImageEmbedToPromptMapper", settings, pos=(700, 0), inputs={"conditioning": (pos, 0), **extra})
    if init:
        latent = (_photo_latent(g, ck, "init.png"), 0)
        s = g.add("BlendspaceStrengthSweep", {"seed": seed, "steps": steps, "cfg": 8.0, "sampler_name": "ddim",
                                              "scheduler": "ddim_uniform", "strength_list": f"{strength}"},
                  title="img2img (diffusers strength)", pos=(1100, 200),
                  inputs={"model": (ck, 0), "positive": (mapped, 0), "negative": (neg, 0), "latent": latent})
    else:
        empty = g.add("EmptyLatentImage", {"width": 512, "height": 512, "batch_size": 1}, pos=(700, 400))
        s = g.add("KSampler", {"seed": seed, "steps": steps, "cfg": 8.0, "sampler_name": "ddim",
                               "scheduler": "ddim_uniform", "denoise": 1.0}, pos=(1100, 200),
                  inputs={"model": (ck, 0), "positive": (mapped, 0), "negative": (neg, 0), "latent_image": (empty, 0)})
    _decode_save(g, ck, (s, 0), "Blendspace/flexdiffuse")
    g.add("Note", {"text": "Connect the mapper's 'preview' output to a text display node (e.g. a Show Text node) to "
                           "see every token's match and weight. The source sampled with PNDM, which ComfyUI does not "
                           "have; DDIM is used here."}, pos=(700, 500))
    return note


FAITHFUL = {"token_alignment": "faithful (shifted, source)", "image_normalization": "faithful ([-1,1] pixels, source)"}
DEER = ("Deer colorful, fantasy, intricate, highly detailed, digital painting, hq, trending on artstation, "
        "illustration, lovecraftian dark ominous eldritch")


def flexdiffuse_threshold(g: UIGraph) -> str:
    return _flex_img2img(g, {"threshold_mult": 1.0, "threshold_floor": 0.2, "clustered": 0.0, "linear_start": 0.0,
                             "linear_end": 1.0, "max_guidance": 1.0, "header_max": 0.0, **FAITHFUL}, DEER, True,
                         "Seed 001, experiment F4 ('deer_tuned'): img2img of the deer at strength 0.6 (30 steps, CFG 8, "
                         "seed 1337) with the guide deer_mod image: Threshold 1.0 at floor 0.2, Clustered 0, Linear "
                         "0 -> 1.0, Max Image Guidance 1.0, header 0, Best Fit with reuse; the source's quirks kept "
                         "(faithful alignment and normalisation). Set threshold_mult to 0 for F5 (linear only).")


def flexdiffuse_defaults(g: UIGraph) -> str:
    return _flex_img2img(g, {"threshold_mult": 0.25, "threshold_floor": 0.75, "clustered": 0.25, "linear_start": 0.0,
                             "linear_end": 0.5, "max_guidance": 0.35, "header_max": 0.0, **FAITHFUL}, DEER, True,
                         "Seed 001, experiments F2/F3: the README defaults (Threshold 0.25 at floor 0.75, Clustered "
                         "0.25, Linear 0 -> 0.5, Max 0.35, header 0, Best Fit, reuse on), img2img strength 0.6, 30 "
                         "steps, CFG 8, seed 1337. F3 lowers the floor to 0.2. The source's advice: set Threshold and "
                         "Clustered to 0.0-0.1 and increment.")


def flexdiffuse_concepts(g: UIGraph) -> str:
    return _flex_img2img(g, {"threshold_mult": 0.0, "clustered": 0.0, "linear_start": 0.0, "linear_end": 0.0,
                             "max_guidance": 0.0, **FAITHFUL}, "a creepy tree creature, 8k dslr photo", False,
                         "Seed 001, experiment F7 ('creepy_tree_mapped'): txt2img, guide deer_mod, Mapping Concepts "
                         "'creepy tree', all other guidance 0: prompt tokens matching a concept (> 0.9) take that "
                         "concept's image token. Seed 1337, 30 steps, CFG 8.", concept="creepy tree")


def flexdiffuse_text_tween(g: UIGraph) -> str:
    return _flex_img2img(g, {"linear_start": 0.1, **FAITHFUL}, "an urban landscape, city, dslr photo", False,
                         "Seed 001, experiment F8 ('city_photo_forest_blend'): text-to-text tweening of 'an urban "
                         "landscape, city, dslr photo' toward the guide text 'a painting of the deep woods, forest', "
                         "Linear Start 0.1, other settings at the README defaults; seed 1337, 30 steps, CFG 8.",
                         guide_text="a painting of the deep woods, forest")


def flexdiffuse_txt2img_baseline(g: UIGraph) -> str:
    ck = _checkpoint(g, SD14)
    pos = _text(g, ck, DEER, "Prompt", 0)
    neg = _text(g, ck, "", "Negative (empty: FlexDiffuse's uncond)", 200)
    empty = g.add("EmptyLatentImage", {"width": 512, "height": 512, "batch_size": 4}, pos=(700, 400))
    s = g.add("KSampler", {"seed": 1337, "steps": 30, "cfg": 8.0, "sampler_name": "ddim", "scheduler": "ddim_uniform",
                           "denoise": 1.0}, pos=(1100, 200),
              inputs={"model": (ck, 0), "positive": (pos, 0), "negative": (neg, 0), "latent_image": (empty, 0)})
    _decode_save(g, ck, (s, 0), "Blendspace/flexdiffuse_base")
    return ("Seed 001, experiment F1 ('deer_base'): the README's text-to-image baseline without any guide, the deer "
            "prompt, SD-1.4, 30 steps, CFG 8, seed 1337, 512x512, 4 images (the source draws them one after another "
            "from one generator, ComfyUI as one batch, so the pictures differ). DDIM stands in for the source's "
            "PNDM. Compare with the guided deer workflows (F2-F5).")


def flexdiffuse_turtle_strong_guide(g: UIGraph) -> str:
    return _flex_img2img(g, {"threshold_mult": 1.0, "threshold_floor": 0.1, "clustered": 0.0, "linear_start": 0.0,
                             "linear_end": 1.0, "max_guidance": 1.0, "header_max": 0.0, **FAITHFUL},
                         "a photo of a turtle, hd 8k, dlsr photo", False,
                         "Seed 001, experiment F6 ('turtle_to_rock_monkey'): text-to-image of 'a photo of a turtle, hd "
                         "8k, dlsr photo' with the strong guide deer_mod: Threshold 1.0 at floor 0.1, Clustered 0, "
                         "Linear 0 -> 1.0, Max Image Guidance 1.0, header 0, Best Fit with reuse; the source's quirks "
                         "kept (faithful alignment, float32 similarities, [-1,1] pixels after the 512/64 resize). "
                         "Seed 1337, 30 steps, CFG 8. The README: at max guidance 0.2 it is still a turtle.",
                         guide_image="deer_mod.webp")


def _blog_img2img(g: UIGraph, image: str, title: str) -> tuple[int, int, tuple[int, int]]:
    """SD-2.1 768 checkpoint, the empty negative the blog passes, and the image resized to 768x768 and encoded."""
    ck = _checkpoint(g, SD21_768)
    neg = _text(g, ck, "", "Negative (empty: the blog never passes its default)", 600)
    img = g.add("LoadImage", {"image": image}, title=title, pos=(0, 600))
    scaled = g.add("ImageScale", {"upscale_method": "bilinear", "width": 768, "height": 768, "crop": "disabled"},
                   pos=(300, 600), inputs={"image": (img, 0)})
    enc = g.add("VAEEncode", pos=(600, 600), inputs={"pixels": (scaled, 0), "vae": (ck, 2)})
    return ck, neg, (enc, 0)


ARTISTS = ("alfred sisley", "carl rungius", "paul hedley", "leonardo da vinci")


def img2img_artist_variations(g: UIGraph) -> str:
    ck, neg, latent = _blog_img2img(g, "flowers.jpg", "Your photo (flowers)")
    for i, artist in enumerate(ARTISTS):
        pos = _text(g, ck, f"flowers by {artist}", f"Prompt + ' by {artist}'", 200 * i)
        s = g.add("BlendspaceStrengthSweep", {"seed": 343, "steps": 50, "cfg": 9.0, "sampler_name": "euler",
                                              "scheduler": "normal", "strength_mode": "diffusers (source)",
                                              "strength_list": "0.8"}, title=f"img2img 0.8, {artist}",
                  pos=(900, 300 * i), inputs={"model": (ck, 0), "positive": (pos, 0), "negative": (neg, 0),
                                              "latent": latent})
        _decode_save(g, ck, (s, 0), f"Blendspace/flowers_{artist.replace(' ', '_')}", y=300 * i)
    return ("Seed 003, experiment B1 (the blog's 'Example', flowers_variations): one flowers photo, img2img at "
            "strength 0.8 with one fixed seed, the prompt varied by the artist appended as ' by <artist>'; SD-2.1 768 "
            "with Euler, 50 steps, CFG 9, empty negative, image resized to 768x768 (aspect not kept). The blog gives "
            "neither its prompts nor its seed: 'flowers by <artist>' with four artists the seed names elsewhere and "
            "seed 343 are used; change them freely.")


def img2img_strength_grid(g: UIGraph) -> str:
    ck, neg, latent = _blog_img2img(g, "superman.jpg", "Your image (superman)")
    pos = _text(g, ck, "superman by carl rungius, paul hedley", "Prompt + ' by <artist>'", 0)
    s = g.add("BlendspaceStrengthSweep", {"seed": 343, "steps": 50, "cfg": 9.0, "sampler_name": "euler",
                                          "scheduler": "normal", "strength_mode": "diffusers (source)",
                                          "start": 0.05, "stop": 1.0, "step": 0.25}, title="Strength sweep",
              pos=(900, 200), inputs={"model": (ck, 0), "positive": (pos, 0), "negative": (neg, 0), "latent": latent})
    _decode_save(g, ck, (s, 0), "Blendspace/superman_strengths")
    return ("Seed 003, experiment B3 (the blog's 'Strength parameter', superman_varystrength): one image, one fixed "
            "seed, increasing strength. The notebook run: prompt 'superman' with style 'carl rungius, paul hedley', "
            "seed 343, strengths 0.05, 0.30, 0.55, 0.80 (numpy arange 0.05 to 1 step 0.25); the blog's figure goes "
            "from 0.1 to 0.95 (set start/stop/step or strength_list). SD-2.1 768 with Euler, 50 steps, CFG 9, empty "
            "negative, 768x768.")


def strength_sweep_gif(g: UIGraph) -> str:
    ck = _checkpoint(g, SD21_768)
    pos = _text(g, ck, "renaissance lady, evening light, high quality by carl rungius", "Prompt + ' by <artist>'", 0)
    neg = _text(g, ck, "", "Negative (empty: the blog never passes its default)", 200)
    img = g.add("LoadImage", {"image": "monalisa.jpg"}, title="Your image", pos=(0, 600))
    scaled = g.add("ImageScale", {"upscale_method": "bilinear", "width": 768, "height": 768, "crop": "disabled"},
                   pos=(300, 600), inputs={"image": (img, 0)})
    enc = g.add("VAEEncode", pos=(600, 600), inputs={"pixels": (scaled, 0), "vae": (ck, 2)})
    sweep = g.add("BlendspaceStrengthSweep", {"seed": 187, "steps": 50, "cfg": 9.0, "sampler_name": "euler",
                                              "scheduler": "normal", "strength_mode": "diffusers (source)",
                                              "start": 0.05, "stop": 0.98, "step": 0.03}, pos=(900, 200),
                  inputs={"model": (ck, 0), "positive": (pos, 0), "negative": (neg, 0), "latent": (enc, 0)})
    dec = g.add("VAEDecode", pos=(1200, 200), inputs={"samples": (sweep, 0), "vae": (ck, 2)})
    g.add("BlendspaceSaveAnimatedGIF", {"filename_prefix": "Blendspace/morph", "frame_duration_ms": 400, "loop": 0},
          pos=(1450, 200), inputs={"images": (dec, 0)})
    return ("Seed 003, experiment B4/B5 (morph GIF): SD-2.1 768 with Euler, 50 steps, CFG 9, empty negative, image "
            "resized to 768x768 (aspect not kept), fixed seed (187 as B5), strengths 0.05 to 0.98 step 0.03 = 31 "
            "frames in strength order (diffusers strength), GIF 400 ms a frame, looping.")


def sketch_to_picture(g: UIGraph) -> str:
    ck = _checkpoint(g, SD21_768)
    pos = _text(g, ck, "a mountain landscape with a lake at sunset, high quality by albert bierstadt", "Prompt", 0)
    neg = _text(g, ck, "", "Negative (empty: the blog never passes its default)", 200)
    img = g.add("LoadImage", {"image": "sketch.png"}, title="Your colour-block sketch", pos=(0, 600))
    scaled = g.add("ImageScale", {"upscale_method": "bilinear", "width": 768, "height": 768, "crop": "disabled"},
                   pos=(300, 600), inputs={"image": (img, 0)})
    enc = g.add("VAEEncode", pos=(600, 600), inputs={"pixels": (scaled, 0), "vae": (ck, 2)})
    s = g.add("BlendspaceStrengthSweep", {"seed": 343, "steps": 50, "cfg": 9.0, "sampler_name": "euler",
                                          "scheduler": "normal", "strength_mode": "diffusers (source)",
                                          "strength_list": "0.75"}, title="img2img (diffusers strength 0.75)",
              pos=(900, 200), inputs={"model": (ck, 0), "positive": (pos, 0), "negative": (neg, 0), "latent": (enc, 0)})
    _decode_save(g, ck, (s, 0), "Blendspace/sketch_to_picture")
    return ("Seed 003, experiment B2 (rudimentary sketches): a colour-block landscape sketch turned into a picture "
            "by img2img at strength about 0.75, SD-2.1 768 with Euler, 50 steps, CFG 9, prompt + ' by <artist>', "
            "empty negative, fixed seed. The blog's exact prompt and seed are not given; change them freely.")


def image_to_image_replay(g: UIGraph) -> str:
    ck = _checkpoint(g, SD15)
    pos = _text(g, ck, "Cartoon-like portrait, drawn by a child, of a male astronaut in space, colorful, funky, crazy",
                "Prompt", 0)
    neg = _text(g, ck, NEG_SF, "Negative (StableFused's)", 200)
    cfg = g.add("BlendspaceGuidanceScale", {"guidance_scale": 15.0, "guidance_rescale": 0.7}, pos=(400, 400),
                inputs={"model": (ck, 0)})
    img = g.add("LoadImage", {"image": "the-renaissance-astronaut.png"}, title="Your image", pos=(0, 600))
    scaled = g.add("ImageScale", {"upscale_method": "lanczos", "width": 512, "height": 512, "crop": "center"},
                   pos=(300, 600), inputs={"image": (img, 0)})
    enc = g.add("VAEEncode", pos=(600, 600), inputs={"pixels": (scaled, 0), "vae": (ck, 2)})
    s = g.add("BlendspaceDenoisingReplay", {"seed": 31337, "steps": 30, "cfg": 15.0, "sampler_name": "euler",
                                            "scheduler": "normal", "denoise": 0.83}, pos=(800, 200),
              inputs={"model": (cfg, 0), "positive": (pos, 0), "negative": (neg, 0), "latent_image": (enc, 0)})
    _decode_save(g, ck, (s, 0), "Blendspace/i2i_result", y=0)
    dec = g.add("VAEDecode", pos=(1150, 400), inputs={"samples": (s, 2), "vae": (ck, 2)})
    g.add("BlendspaceSaveAnimatedGIF", {"filename_prefix": "Blendspace/i2i_xt", "frame_duration_ms": 200},
          pos=(1400, 400), inputs={"images": (dec, 0)})
    return ("Seed 004, experiment S3 with the denoising process shown (S4): SD-1.5, 30 steps, guidance 15 with "
            "StableFused's rescale 0.7, StableFused's negative, seed 31337; start_step 5 of 30 is about denoise 0.83 "
            "(StableFused's image_to_image fed unnormalised pixels to the VAE, a bug not reproduced here).")


def latent_walk(g: UIGraph) -> str:
    ck = _checkpoint(g, SD15)
    a = _text(g, ck, "A dog chasing a cat in a garden, photorealistic, high quality", "Prompt A", 0)
    b = _text(g, ck, "A cat escaping into outer space in a rocket, photorealistic, high quality", "Prompt B", 200)
    neg = _text(g, ck, NEG_SF, "Negative (StableFused's)", 400)
    empty = g.add("EmptyLatentImage", {"width": 512, "height": 512, "batch_size": 1}, pos=(400, 600))
    walk = g.add("BlendspaceLatentWalk", {"seed_a": 123456, "steps": 20, "cfg": 15.0, "sampler_name": "dpmpp_2m",
                                          "scheduler": "karras", "seed_b": 123457, "frames": 24,
                                          "noise_interpolation": "slerp", "prompt_interpolation": "lerp",
                                          "max_batch": 4}, pos=(800, 200),
                 inputs={"model": (ck, 0), "positive_a": (a, 0), "positive_b": (b, 0), "negative": (neg, 0),
                         "latent": (empty, 0)})
    dec = g.add("VAEDecode", pos=(1150, 200), inputs={"samples": (walk, 0), "vae": (ck, 2)})
    g.add("BlendspaceSaveAnimatedGIF", {"filename_prefix": "Blendspace/latent_walk", "frame_duration_ms": 125},
          pos=(1400, 200), inputs={"images": (dec, 0)})
    return ("Seed 004, experiment S8 (latent walk): SD-1.5, two of the story prompts, 24 interpolation frames (both "
            "ends included), noise slerped and prompt embeddings lerped, 20 steps, CFG 15, seeds 123456/123457, "
            "8 fps (125 ms). StableFused also applies guidance rescale 0.7; add Any Guidance Scale for it.")


def denoising_replay(g: UIGraph) -> str:
    ck = _checkpoint(g, SD15)
    pos = _text(g, ck, "Cyberpunk cityscape with towering skyscrapers, neon signs, and flying cars.", "Prompt", 0)
    neg = _text(g, ck, "", "Negative", 200)
    cfg = g.add("BlendspaceGuidanceScale", {"guidance_scale": 7.5, "guidance_rescale": 0.7}, pos=(400, 400),
                inputs={"model": (ck, 0)})
    empty = g.add("EmptyLatentImage", {"width": 512, "height": 512, "batch_size": 1}, pos=(400, 600))
    s = g.add("BlendspaceDenoisingReplay", {"seed": 1337, "steps": 20, "cfg": 7.5, "sampler_name": "euler",
                                            "scheduler": "normal", "denoise": 1.0}, pos=(800, 200),
              inputs={"model": (cfg, 0), "positive": (pos, 0), "negative": (neg, 0), "latent_image": (empty, 0)})
    _decode_save(g, ck, (s, 0), "Blendspace/replay_result", y=0)
    dec = g.add("VAEDecode", pos=(1150, 400), inputs={"samples": (s, 1), "vae": (ck, 2)})
    g.add("BlendspaceSaveAnimatedGIF", {"filename_prefix": "Blendspace/replay_x0", "frame_duration_ms": 200},
          pos=(1400, 400), inputs={"images": (dec, 0)})
    dec_t = g.add("VAEDecode", pos=(1150, 700), inputs={"samples": (s, 2), "vae": (ck, 2)})
    g.add("BlendspaceSaveAnimatedGIF", {"filename_prefix": "Blendspace/replay_xt", "frame_duration_ms": 200},
          pos=(1400, 700), inputs={"images": (dec_t, 0)})
    return ("Seed 004, experiment S1 with the denoising process shown (S2): SD-1.5, 20 steps, guidance 7.5 with "
            "StableFused's rescale 0.7, seed 1337; the predicted x0 and the noisy x_t of every step as animations "
            "(5 fps in the source). For image-to-image (S3/S4) encode an image and lower denoise.")


def guidance_scale_study(g: UIGraph) -> str:
    ck = _checkpoint(g, SD15)
    pos = _text(g, ck, "Artistic image, very detailed cute cat, cinematic lighting effect, cute, charming, fantasy "
                       "art, digital painting, photorealistic", "Prompt", 0)
    neg = _text(g, ck, NEG_SF, "Negative (StableFused's)", 200)
    empty = g.add("EmptyLatentImage", {"width": 512, "height": 512, "batch_size": 1}, pos=(400, 600))
    for i, scale in enumerate((-1.5, 0.0, 1.5, 7.5, 15.0)):
        m = g.add("BlendspaceGuidanceScale", {"guidance_scale": scale, "guidance_rescale": 0.7}, pos=(700, 300 * i),
                  inputs={"model": (ck, 0)})
        s = g.add("KSampler", {"seed": 2023, "steps": 20, "cfg": 7.5, "sampler_name": "euler", "scheduler": "normal",
                               "denoise": 1.0}, title=f"guidance {scale}", pos=(1000, 300 * i),
                  inputs={"model": (m, 0), "positive": (pos, 0), "negative": (neg, 0), "latent_image": (empty, 0)})
        _decode_save(g, ck, (s, 0), f"Blendspace/guidance_{scale}", x=1300, y=300 * i)
    return ("Seed 004, experiment S5 (effect of guidance scale): SD-1.5, 20 steps, seed 2023, StableFused's negative, "
            "guidance -1.5, 0, 1.5, 7.5 and 15 (the source sweeps -1.5 to 15 in steps of 1.5), each with rescale 0.7 "
            "as StableFused. 0 gives the negative prompt's image, below 0 the 'opposite' of the prompt.")


ALIEN = ("Photorealistic illustration of a mystical alien creature, magnificent, strong, atomic, tyrannic, predator, "
         "unforgiving, full-body image")
ROBOT = ("Large futuristic mechanical robot in the foreground of a baroque-style battle scene, photorealistic, high "
         "quality, 8k")


def guidance_steps_grid(g: UIGraph) -> str:
    ck = _checkpoint(g, SD15)
    pos = _text(g, ck, ALIEN, "Prompt", 0)
    neg = _text(g, ck, NEG_SF, "Negative (StableFused's)", 200)
    empty = g.add("EmptyLatentImage", {"width": 512, "height": 512, "batch_size": 1}, pos=(400, 600))
    grid = g.add("BlendspaceGuidanceGrid", {"seed": 42, "sampler_name": "euler", "scheduler": "normal",
                                            "steps_list": "3, 6, 12, 20, 25", "guidance_scales": "-1.5:15:1.5",
                                            "guidance_rescale": 0.7}, pos=(800, 200),
                 inputs={"model": (ck, 0), "positive": (pos, 0), "negative": (neg, 0), "latent": (empty, 0),
                         "vae": (ck, 2)})
    g.add("SaveImage", {"filename_prefix": "Blendspace/guidance_vs_steps"}, title="Grid (rows: steps, columns: scale)",
          pos=(1200, 200), inputs={"images": (grid, 1)})
    return ("Seed 004, experiment S6 ('effect-of-guidance-scale-vs-steps'): SD-1.5, seed 42, the alien creature "
            "prompt, StableFused's negative, steps 3, 6, 12, 20, 25 (rows) x guidance -1.5 to 15 in steps of 1.5 "
            "(12 columns), guidance rescale 0.7 as StableFused: 60 runs on one labelled sheet. Euler stands in for "
            "the source's PNDM.")


def latent_variations(g: UIGraph) -> str:
    ck = _checkpoint(g, SD15)
    pos = _text(g, ck, ROBOT, "Prompt", 0)
    neg = _text(g, ck, NEG_SF, "Negative (StableFused's)", 200)
    empty = g.add("EmptyLatentImage", {"width": 512, "height": 512, "batch_size": 1}, pos=(400, 600))
    base_cfg = g.add("BlendspaceGuidanceScale", {"guidance_scale": 10.0, "guidance_rescale": 0.7},
                     title="Base image: guidance 10", pos=(400, 400), inputs={"model": (ck, 0)})
    base = g.add("KSampler", {"seed": 44, "steps": 20, "cfg": 10.0, "sampler_name": "euler", "scheduler": "normal",
                              "denoise": 1.0}, title="Base image (seed 44)", pos=(800, 0),
                 inputs={"model": (base_cfg, 0), "positive": (pos, 0), "negative": (neg, 0), "latent_image": (empty, 0)})
    _decode_save(g, ck, (base, 0), "Blendspace/walk_base", y=0)
    walk_cfg = g.add("BlendspaceGuidanceScale", {"guidance_scale": 7.5, "guidance_rescale": 0.7},
                     title="Variations: guidance 7.5", pos=(400, 800), inputs={"model": (ck, 0)})
    v = g.add("BlendspaceLatentVariations", {"seed": 44, "steps": 20, "cfg": 7.5, "sampler_name": "euler",
                                             "scheduler": "normal", "strength": 0.25, "count": 4,
                                             "variation_seed": 45}, pos=(800, 400),
              inputs={"model": (walk_cfg, 0), "positive": (pos, 0), "negative": (neg, 0), "latent": (empty, 0)})
    _decode_save(g, ck, (v, 0), "Blendspace/walk_variations", y=400)
    return ("Seed 004, experiment S7 (the latent_walk notebook's walk around one latent): SD-1.5, the robot prompt, "
            "StableFused's negative, seed 44; the base image at 20 steps, guidance 10; four variations of the same "
            "starting noise at strength 0.25 ((1 - 0.25)·z + 0.25·fresh noise, standardised), 20 steps, guidance "
            "7.5; guidance rescale 0.7 throughout, as StableFused. Euler stands in for the source's PNDM.")


WORKFLOWS: dict[str, tuple[Callable[[UIGraph], str], str, str]] = {
    "images_mixing_style_to_content": (images_mixing_style_to_content, "CLIP-guided mixing, style to content (E1)",
                                       "000"),
    "images_mixing_content_to_style": (images_mixing_content_to_style, "CLIP-guided mixing, content to style (E2)",
                                       "000"),
    "images_mixing_coca": (images_mixing_coca, "CLIP-guided mixing with CoCa captions as prompts (E6)", "000"),
    "images_mixing_sd2_base": (images_mixing_sd2_base, "CLIP-guided mixing on SD-2-base, cat and bread (E3)", "000"),
    "images_mixing_load_by_parts": (images_mixing_load_by_parts, "CLIP-guided mixing, boromir and vazovskiy (E4)",
                                    "000"),
    "images_mixing_colab": (images_mixing_colab, "CLIP-guided mixing with the colab's printed CoCa prompts (E5)",
                            "000"),
    "images_mixing_presets_compared": (images_mixing_presets_compared,
                                       "Style-to-content vs content-to-style presets side by side (E7)", "000"),
    "images_mixing_grid_search": (images_mixing_grid_search, "Find the best mix: parameter grid scored by CLIP", "000"),
    "dual_style_epsilon": (dual_style_epsilon, "Dual-style epsilon blend (D3)", "002"),
    "dual_style_cross_attention": (dual_style_cross_attention, "Dual-style cross-attention (D4)", "002"),
    "dual_style_baselines": (dual_style_baselines, "Prompt concatenation and pixel interpolation (D2, D6)", "002"),
    "dual_style_mask_shapes": (dual_style_mask_shapes, "Cross-attention with the exp vs the linear mask, two style "
                                                       "pairs (D5)", "002"),
    "flexdiffuse_txt2img_baseline": (flexdiffuse_txt2img_baseline, "FlexDiffuse's text-to-image baseline (F1)", "001"),
    "flexdiffuse_defaults": (flexdiffuse_defaults, "FlexDiffuse Linear + Threshold + Clustered, img2img (F2/F3)", "001"),
    "flexdiffuse_threshold": (flexdiffuse_threshold, "FlexDiffuse tuned Threshold, img2img (F4/F5)", "001"),
    "flexdiffuse_concepts": (flexdiffuse_concepts, "FlexDiffuse concept mapping (F7)", "001"),
    "flexdiffuse_text_tween": (flexdiffuse_text_tween, "FlexDiffuse text-to-text tweening (F8)", "001"),
    "flexdiffuse_turtle_strong_guide": (flexdiffuse_turtle_strong_guide, "FlexDiffuse turtle with a strong guide (F6)",
                                        "001"),
    "img2img_artist_variations": (img2img_artist_variations, "img2img artist-style variations at 0.8 (B1)", "003"),
    "img2img_strength_grid": (img2img_strength_grid, "img2img strength grid (B3)", "003"),
    "img2img_strength_sweep_gif": (strength_sweep_gif, "img2img strength sweep to morph GIF (B4/B5)", "003"),
    "sketch_to_picture": (sketch_to_picture, "Sketch to picture with img2img (B2)", "003"),
    "image_to_image_replay": (image_to_image_replay, "Image-to-image with the denoising process (S3/S4)", "004"),
    "latent_walk": (latent_walk, "Latent walk between seeds and prompts (S8)", "004"),
    "denoising_replay": (denoising_replay, "Text-to-image with the denoising process (S1/S2)", "004"),
    "guidance_scale_study": (guidance_scale_study, "Zero and negative guidance (S5)", "004"),
    "guidance_steps_grid": (guidance_steps_grid, "Guidance scale x steps grid (S6)", "004"),
    "latent_variations": (latent_variations, "Variations around one latent (S7)", "004"),
}


def build(name: str, node_defs, outputs) -> dict:
    fn, _, _ = WORKFLOWS[name]
    g = UIGraph(node_defs, outputs)
    note = fn(g)
    g.add("Note", {"text": note}, title="Source and settings", pos=(0, -300))
    return g.to_json()


def nodes_used(workflow: dict) -> list[str]:
    return sorted({n["type"] for n in workflow["nodes"] if n["type"] != "Note"})


SOURCES = {"000": "seed 000 (CLIP Guided Images Mixing)", "001": "seed 001 (FlexDiffuse)",
           "002": "seed 002 (Seamless dual-style)", "003": "seed 003 (img2img blog)", "004": "seed 004 (StableFused)"}


def readme_table(workflows: dict[str, dict]) -> str:
    """The README's workflow table from the built workflows (name → UI JSON), in WORKFLOWS order."""
    lines = ["| workflow | technique | source document | nodes used |", "|---|---|---|---|"]
    for name, (_, what, seed) in WORKFLOWS.items():
        nodes = ", ".join(f"`{n}`" for n in nodes_used(workflows[name]))
        lines.append(f"| `{name}.json` | {what} | {SOURCES[seed]} | {nodes} |")
    return "\n".join(lines)

