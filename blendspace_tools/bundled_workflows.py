"""The bundled workflows (``workflows/*.json``), built from the source documents' documented settings.

``python -m blendspace build-workflows`` writes them from these definitions with the node
definitions of the running ComfyUI, so every socket and widget slot matches the real nodes; a test
checks that the committed files are what this module builds. Each workflow names its source and
settings in a Note. Model file names are the ones the seeds used, so users only pick their own.
Node ids follow the order in which the builders add nodes, and ``UIGraph.layout`` places every
node, so the builders only say what is connected to what. Pure Python (the node definitions are
passed in). The Flux workflows (``NEEDS_CURRENT_COMFYUI``) use nodes the 2024 ComfyUI lacks: only a current
ComfyUI builds them (``build-workflows --comfyui DIR``), and only those; a plain build leaves them alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from .model_files import CATALOG, declare_models
from .workflow import UIGraph, widget_names

Link = tuple[int, int]  # (node id, output slot)

SD14 = "sd-v1-4.ckpt"
SD15 = "v1-5-pruned-emaonly.safetensors"
SD21_768 = "v2-1_768-ema-pruned.safetensors"
SD2_BASE = "512-base-ema.safetensors"
VIT_L = "clip-vit-large-patch14.safetensors"
LAION_B32 = "CLIP-ViT-B-32-laion2B-s34B-b79K/open_clip_model.safetensors"
COCA_L14 = "CoCa-ViT-L-14-laion2B-s13B-b90k/open_clip_pytorch_model.bin"  # the one file LAION publishes
MINECRAFT = ("A Minecraft-inspired rendering of a black bear walking on grass, featuring distinct pixelated 16x16 "
             "textures, blocky 3D cube structures, limited color palette with no gradients, sharp right angles and "
             "perfect squares, characteristic voxel-based terrain with visible block edges.")
VAN_GOGH = ("A Van Gogh-style painting of a black bear walking on grass, with bold, swirling brushstrokes, rich "
            "textures, and vibrant, expressive colors reminiscent of Starry Night")
BEAR = "A picture of a black bear walking on grass"
STABLEFUSED_NEGATIVE_TEXT = ("cartoon, unrealistic, blur, boring background, deformed, disfigured, low resolution, "
                             "unattractive")
DEER = ("Deer colorful, fantasy, intricate, highly detailed, digital painting, hq, trending on artstation, "
        "illustration, lovecraftian dark ominous eldritch")


# --- small value types ----------------------------------------------------------------------------------------------


class Prompt(NamedTuple):
    """A text prompt and the title its CLIP Text Encode node shows."""

    text: str
    title: str


EMPTY_AS_SOURCE = Prompt("", "Negative (empty, as the source)")
EMPTY_BLOG_NEGATIVE = Prompt("", "Negative (empty: the blog never passes its default)")
STABLEFUSED_NEGATIVE = Prompt(STABLEFUSED_NEGATIVE_TEXT, "Negative (StableFused's)")


class Resize(NamedTuple):
    """Core Image Scale's settings: method, square size and crop."""

    method: str
    size: int
    crop: str


CENTRE_CROP_512 = Resize("lanczos", 512, "center")
STRETCH_512 = Resize("lanczos", 512, "disabled")
STRETCH_768 = Resize("bilinear", 768, "disabled")


@dataclass(frozen=True)
class Sampling:
    """The widgets every KSampler-like node shares."""

    seed: int
    steps: int
    cfg: float
    sampler_name: str = "euler"
    scheduler: str = "normal"

    def widgets(self, **more) -> dict:
        return {"seed": self.seed, "steps": self.steps, "cfg": self.cfg, "sampler_name": self.sampler_name,
                "scheduler": self.scheduler, **more}


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint loader node; its outputs as links."""

    node: int

    @property
    def model(self) -> Link:
        return (self.node, 0)

    @property
    def clip(self) -> Link:
        return (self.node, 1)

    @property
    def vae(self) -> Link:
        return (self.node, 2)


@dataclass(frozen=True)
class Prompted:
    """A checkpoint with a positive and a negative prompt encoded by its CLIP."""

    checkpoint: Checkpoint
    positive: int
    negative: int


# --- node helpers ---------------------------------------------------------------------------------------------------


def _checkpoint(g: UIGraph, name: str) -> Checkpoint:
    return Checkpoint(g.add("CheckpointLoaderSimple", {"ckpt_name": name}))


def _encode_text(g: UIGraph, checkpoint: Checkpoint, prompt: Prompt) -> int:
    return g.add("CLIPTextEncode", {"text": prompt.text}, title=prompt.title, inputs={"clip": checkpoint.clip})


def _prompted(g: UIGraph, checkpoint_name: str, positive: Prompt, negative: Prompt) -> Prompted:
    """Checkpoint loader, then the positive and the negative prompt."""
    checkpoint = _checkpoint(g, checkpoint_name)
    return Prompted(checkpoint, _encode_text(g, checkpoint, positive), _encode_text(g, checkpoint, negative))


def _sampler_links(model: Link, prompts: Prompted, latent_input: str, latent: Link) -> dict[str, Link]:
    """The model, the two prompts and the latent input (``latent_image`` or ``latent``) of a sampler node."""
    return {"model": model, "positive": (prompts.positive, 0), "negative": (prompts.negative, 0), latent_input: latent}


def _load_image(g: UIGraph, name: str, title: str) -> int:
    return g.add("LoadImage", {"image": name}, title=title)


def _scale_and_encode(g: UIGraph, checkpoint: Checkpoint, image: int, resize: Resize) -> tuple[int, int]:
    """Image Scale then VAE Encode; returns both node ids (scaled image, latent)."""
    scaled = g.add("ImageScale", {"upscale_method": resize.method, "width": resize.size, "height": resize.size,
                                  "crop": resize.crop}, inputs={"image": (image, 0)})
    latent = g.add("VAEEncode", inputs={"pixels": (scaled, 0), "vae": checkpoint.vae})
    return scaled, latent


def _image_latent(g: UIGraph, checkpoint: Checkpoint, name: str, title: str, resize: Resize = CENTRE_CROP_512) -> int:
    """Load Image, Image Scale, VAE Encode: the latent of the user's image."""
    _, latent = _scale_and_encode(g, checkpoint, _load_image(g, name, title), resize)
    return latent


def _empty_latent_512(g: UIGraph) -> int:
    return g.add("EmptyLatentImage", {"width": 512, "height": 512, "batch_size": 1})


def _decode_save(g: UIGraph, checkpoint: Checkpoint, latent: Link, prefix: str) -> int:
    """VAE Decode then Save Image; returns the decoder's node id."""
    decoded = g.add("VAEDecode", inputs={"samples": latent, "vae": checkpoint.vae})
    g.add("SaveImage", {"filename_prefix": prefix}, inputs={"images": (decoded, 0)})
    return decoded


def _decode_gif(g: UIGraph, checkpoint: Checkpoint, latent: Link, prefix: str, **gif_widgets) -> None:
    """VAE Decode then Blendspace's animated GIF saver."""
    decoded = g.add("VAEDecode", inputs={"samples": latent, "vae": checkpoint.vae})
    g.add("BlendspaceSaveAnimatedGIF", {"filename_prefix": prefix, **gif_widgets}, inputs={"images": (decoded, 0)})


# --- dual-style-image-gen: dual-style blending with CycleDiffusion --------------------------------------------------


@dataclass(frozen=True)
class DualStyle:
    """What the dual-style workflows share: the two style prompts, the negative, the photo and its inversion."""

    checkpoint: Checkpoint
    style_a: int
    style_b: int
    negative: int
    photo: int
    cycle: int


def _dual_style(g: UIGraph, style_a: Prompt, style_b: Prompt, negative: Prompt,
                more_prompts: tuple[Prompt, ...] = ()) -> tuple[DualStyle, list[int]]:
    """SD-1.4, the two styles (then ``more_prompts``), the negative, and the bear photo inverted by CycleDiffusion
    (99 steps, skip 10, eta 0.1, encoder prompt at CFG 1). Returns the setup and the extra prompts' nodes."""
    checkpoint = _checkpoint(g, SD14)
    encoded_a, encoded_b = _encode_text(g, checkpoint, style_a), _encode_text(g, checkpoint, style_b)
    extra = [_encode_text(g, checkpoint, prompt) for prompt in more_prompts]
    encoded_negative = _encode_text(g, checkpoint, negative)
    photo = _image_latent(g, checkpoint, "bear.png", "Your photo")
    encoder = _encode_text(g, checkpoint, Prompt(BEAR, "Encoder prompt (describes the photo)"))
    cycle = g.add("BlendspaceCycleDiffusionInvert", {"seed": 42, "steps": 99, "skip_steps": 10, "eta": 0.1, "cfg": 1.0},
                  inputs={"model": checkpoint.model, "positive": (encoder, 0), "latent": (photo, 0)})
    return DualStyle(checkpoint, encoded_a, encoded_b, encoded_negative, photo, cycle), extra


def _cycle_sample(g: UIGraph, setup: DualStyle, model: Link, positive: Link, cfg: float) -> int:
    return g.add("BlendspaceCycleDiffusionSampler", {"cfg": cfg}, inputs={
        "model": model, "positive": positive, "negative": (setup.negative, 0), "cycle": (setup.cycle, 0)})


def _dual_style_left_right(g: UIGraph) -> DualStyle:
    setup, _ = _dual_style(g, Prompt(MINECRAFT, "Style A (left)"), Prompt(VAN_GOGH, "Style B (right)"), EMPTY_AS_SOURCE)
    return setup


def dual_style_epsilon(g: UIGraph) -> str:
    setup = _dual_style_left_right(g)
    mix = g.add("DualStyleEpsilonMix", {"direction": "left-right", "shape": "sigmoid", "center": 0.5, "sharpness": 20.0},
                inputs={"positive_a": (setup.style_a, 0), "positive_b": (setup.style_b, 0), "latent": (setup.photo, 0)})
    sampled = _cycle_sample(g, setup, setup.checkpoint.model, (mix, 0), cfg=20.0)
    _decode_save(g, setup.checkpoint, (sampled, 0), "Blendspace/dual_style_eps")
    return ("dual-style-image-gen's epsilon interpolation of the bear: SD-1.4, CycleDiffusion 99 DDIM steps, skip 10, "
            "eta 0.1, encoder 'A picture of a black bear walking on grass' at CFG 1, decoder CFG 20, sigmoid 20 over "
            "the latent width, Minecraft left / Van Gogh right, seed 42, 512x512 centre crop. Load your own photo.")


def dual_style_cross_attention(g: UIGraph) -> str:
    setup = _dual_style_left_right(g)
    patched = g.add("CrossAttnInterpolate", {"sharpness": 30.0, "strength": 1.0},
                    inputs={"model": setup.checkpoint.model, "conditioning_b": (setup.style_b, 0)})
    sampled = _cycle_sample(g, setup, (patched, 0), (setup.style_a, 0), cfg=15.0)
    _decode_save(g, setup.checkpoint, (sampled, 0), "Blendspace/dual_style_xattn")
    return ("dual-style-image-gen's cross-attention interpolation of the bear: every attn2 layer blends the attention "
            "of prompt A (left) and B (right) with sigmoid 30 over each map's width, positive pass only; CycleDiffusion "
            "99 steps, skip 10, eta 0.1, decoder CFG 15, seed 42.")


STYLE_PAIRS = (
    ("Minecraft", MINECRAFT, "Van Gogh", VAN_GOGH),
    ("Mosaic", "A highly detailed mosaic of a black bear walking on grass, made of small, colorful tiles with visible "
               "grout lines, creating a textured and handcrafted appearance",
     "Andy Warhol pop", "A vibrant Andy Warhol-style pop art image of a black bear walking on grass, featuring bold, "
                        "contrasting colors, high saturation, thick outlines, and a repeated or silkscreen-like print "
                        "effect."),
)
MASK_SHAPES = (("sigmoid", "exp: sigmoid 30"), ("linear", "linear ramp"))


def dual_style_mask_shapes(g: UIGraph) -> str:
    (left, left_text, right, right_text), (left_2, left_2_text, right_2, right_2_text) = STYLE_PAIRS
    setup, (style_a_2, style_b_2) = _dual_style(
        g, Prompt(left_text, f"Style A (left): {left}"), Prompt(right_text, f"Style B (right): {right}"),
        EMPTY_AS_SOURCE, more_prompts=(Prompt(left_2_text, f"Style A (left): {left_2}"),
                                       Prompt(right_2_text, f"Style B (right): {right_2}")))
    pairs = ((left, setup.style_a, setup.style_b), (left_2, style_a_2, style_b_2))
    for name, style_a, style_b in pairs:
        for shape, label in MASK_SHAPES:
            patched = g.add("CrossAttnInterpolate", {"shape": shape, "sharpness": 30.0, "transition_width": 1.0,
                                                     "strength": 1.0}, title=f"{label}, {name} pair",
                            inputs={"model": setup.checkpoint.model, "conditioning_b": (style_b, 0)})
            sampled = _cycle_sample(g, setup, (patched, 0), (style_a, 0), cfg=15.0)
            _decode_save(g, setup.checkpoint, (sampled, 0), f"Blendspace/xattn_{shape}_{name.lower()}")
    return ("dual-style-image-gen's cross-attention with the 'exp' and the 'linear' mask: the bear (image 4) with "
            "both style pairs the source evaluates, Minecraft left / Van Gogh right and Mosaic left / Andy Warhol pop "
            "right; each once with the sigmoid-30 mask ('exp') and once with a linear ramp over the whole width. "
            "CycleDiffusion 99 DDIM steps, skip 10, eta 0.1, encoder 'A picture of a black bear walking on grass' at "
            "CFG 1, decoder CFG 15, seed 42, 512x512 centre crop. The source repeats this on images 1, 2, 3, 4, 5, 7 "
            "and 8: load each and change the subject in the prompts.")


def dual_style_baselines(g: UIGraph) -> str:
    concat = Prompt(" A minecraft style black bear walking on grass on the left and a van gogh style black bear "
                    "walking on grass on the right", "Concatenated prompt (baseline)")
    setup, (concatenated,) = _dual_style(g, Prompt(MINECRAFT, "Style A"), Prompt(VAN_GOGH, "Style B"),
                                         Prompt("", "Negative"), more_prompts=(concat,))
    decoded = {}
    for positive, name in ((concatenated, "concat"), (setup.style_a, "style_a"), (setup.style_b, "style_b")):
        sampled = _cycle_sample(g, setup, setup.checkpoint.model, (positive, 0), cfg=15.0)
        decoded[name] = _decode_save(g, setup.checkpoint, (sampled, 0), f"Blendspace/baseline_{name}")
    mask = g.add("BlendspaceDualStyleMask", {"sharpness": 20.0}, inputs={"image": (decoded["style_a"], 0)})
    composite = g.add("ImageCompositeMasked", {"x": 0, "y": 0, "resize_source": False},
                      inputs={"destination": (decoded["style_b"], 0), "source": (decoded["style_a"], 0),
                              "mask": (mask, 0)})
    g.add("SaveImage", {"filename_prefix": "Blendspace/baseline_pixel_interpolation"}, inputs={"images": (composite, 0)})
    return ("dual-style-image-gen's baselines: prompt concatenation (one prompt describing both halves, decoder CFG 15) and "
            "pixel interpolation (the image generated once per style, blended left to right with sigmoid 20: "
            "source = style A image, destination = style B image). Seed 42.")


# --- the diffusers images-mixing pipeline: CLIP-guided image mixing -------------------------------------------------


class MixSource(NamedTuple):
    """One of the two mixed images and its prompt (None: CoCa writes the prompt from the image)."""

    image: str
    prompt: str | None


@dataclass(frozen=True)
class MixRecipe:
    """The images-mixing pipeline's four strengths and the seed."""

    seed: int
    noise_strength: float
    latent_style_strength: float
    prompt_style_strength: float
    clip_image_style_strength: float


@dataclass(frozen=True)
class MixingInputs:
    """Nodes the mixing workflows share (each image as loaded, its prompt, 512x512 image and latent; the
    guidance CLIP)."""

    checkpoint: Checkpoint
    prompts: list[int]
    loaded: list[int]
    images: list[int]
    latents: list[int]
    guidance_clip: int
    negative: int


MIXING_SAMPLING = {"steps": 50, "cfg": 9.0, "sampler_name": "ddim", "scheduler": "ddim_uniform",
                   "clip_guidance_scale": 100.0, "gradient": "exact (through the U-Net, source)"}
BOROMIR_TO_GIGACHAD = (MixSource("boromir.jpg", "boromir"), MixSource("gigachad.jpg", "gigachad"))


class _CocaCaptioner:
    """Adds the CoCa loader the first time a prompt must be captioned, then one caption node per image."""

    def __init__(self, g: UIGraph, checkpoint: Checkpoint):
        self.g, self.checkpoint, self.loader = g, checkpoint, None

    def prompt(self, image: int, role: str) -> int:
        if self.loader is None:
            self.loader = self.g.add("BlendspaceOpenClipLoader", {"clip_name": COCA_L14, "architecture": "coca_ViT-L-14"},
                                     title="CoCa captioner (coca_ViT-L-14, laion2B-s13B-b90k)")
        caption = self.g.add("BlendspaceCocaCaption", {"prompt": ""}, title=f"{role} prompt from CoCa",
                             inputs={"open_clip": (self.loader, 0), "image": (image, 0)})
        return self.g.add("CLIPTextEncode", {"text": ""}, title=f"{role} prompt",
                          inputs={"clip": self.checkpoint.clip, "text": (caption, 0)})


def _mixing_inputs(g: UIGraph, content: MixSource, style: MixSource, checkpoint_name: str = SD14) -> MixingInputs:
    """SD-1.4 (or ``checkpoint_name``), each image with its prompt (typed, or a CoCa caption), resized to 512x512
    and encoded, and the pipeline's LAION ViT-B-32 guidance CLIP."""
    checkpoint = _checkpoint(g, checkpoint_name)
    captioner = _CocaCaptioner(g, checkpoint)
    prompts, loaded, images, latents = [], [], [], []
    for source, role in ((content, "Content"), (style, "Style")):
        image = _load_image(g, source.image, f"{role} image")
        loaded.append(image)
        if source.prompt is None:
            prompts.append(captioner.prompt(image, role))
        else:
            prompts.append(_encode_text(g, checkpoint, Prompt(source.prompt, f"{role} prompt")))
        scaled, latent = _scale_and_encode(g, checkpoint, image, STRETCH_512)
        images.append(scaled)
        latents.append(latent)
    guidance_clip = g.add("BlendspaceOpenClipLoader", {"clip_name": LAION_B32, "architecture": "ViT-B-32"},
                          title="Guidance CLIP (LAION ViT-B-32, laion2B-s34B-b79K)")
    negative = _encode_text(g, checkpoint, EMPTY_AS_SOURCE)
    return MixingInputs(checkpoint, prompts, loaded, images, latents, guidance_clip, negative)


def _mix(g: UIGraph, mixing: MixingInputs, recipe: MixRecipe, prefix: str = "Blendspace/images_mixing",
         label: str = "") -> None:
    """One mix: the prompt slerp, the CLIP target from the images AS LOADED (as the source), and the guided
    sampler from the slerp of the two noised 512x512 latents; decoded and saved."""
    content_prompt, style_prompt = mixing.prompts
    mixed_prompt = g.add("SlerpConditioning", {"t": recipe.prompt_style_strength, "mode": "whole tensor (source)",
                                               "method": "slerp"}, title=f"slerp_prompt_style_strength{label}",
                         inputs={"conditioning_a": (content_prompt, 0), "conditioning_b": (style_prompt, 0)})
    target = g.add("BlendspaceSlerpClipImageEmbeds",
                   {"slerp_clip_image_style_strength": recipe.clip_image_style_strength},
                   title=f"CLIP target from the original images{label}",
                   inputs={"open_clip": (mixing.guidance_clip, 0), "content_image": (mixing.loaded[0], 0),
                           "style_image": (mixing.loaded[1], 0)})
    sampled = g.add("ClipImageGuidanceSampler", {
        "seed": recipe.seed, **MIXING_SAMPLING, "denoise": recipe.noise_strength,
        "strength_mode": "diffusers (source)", "slerp_latent_style_strength": recipe.latent_style_strength,
    }, title=f"CLIP Image Guidance Sampler{label}",
        inputs={"model": mixing.checkpoint.model, "positive": (mixed_prompt, 0), "negative": (mixing.negative, 0),
                "latent_image": (mixing.latents[0], 0), "vae": mixing.checkpoint.vae,
                "open_clip": (mixing.guidance_clip, 0), "target": (target, 0), "latent_style": (mixing.latents[1], 0)})
    _decode_save(g, mixing.checkpoint, (sampled, 0), prefix)


def _images_mixing(g: UIGraph, content: MixSource, style: MixSource, recipe: MixRecipe,
                   checkpoint_name: str = SD14) -> None:
    _mix(g, _mixing_inputs(g, content, style, checkpoint_name), recipe)


MIXING_BASE = ("50 steps (DDIM stands in for the source's PNDM), CFG 9, CLIP guidance 100 with the exact "
               "gradient and the pipeline's LAION ViT-B-32 (put the repository's open_clip_model.safetensors and "
               "open_clip_config.json in models/open_clip/CLIP-ViT-B-32-laion2B-s34B-b79K/), latents from the "
               "images scaled to 512x512 (aspect not kept, as the source)")
MIXING_SETTINGS = MIXING_BASE + ", the CLIP target from the images as loaded (shorter side 224, centre crop, as the source)."
MIXING_NOTE = " SD-1.4, " + MIXING_SETTINGS


def images_mixing_style_to_content(g: UIGraph) -> str:
    _images_mixing(g, *BOROMIR_TO_GIGACHAD, MixRecipe(seed=117, noise_strength=0.6, latent_style_strength=0.8,
                                                      prompt_style_strength=0.2, clip_image_style_strength=0.2))
    return ("The diffusers images-mixing pipeline, its README example and 'from style to content' preset: content boromir, style "
            "gigachad, prompts 'boromir' / 'gigachad', seed 117, noise_strength 0.6 (preset: 0.5), latent 0.8, "
            "prompt 0.2, CLIP image 0.2." + MIXING_NOTE)


def images_mixing_content_to_style(g: UIGraph) -> str:
    _images_mixing(g, MixSource("shrek.jpg", "shrek"), MixSource("gigachad.jpg", "gigachad"),
                   MixRecipe(seed=17, noise_strength=0.7, latent_style_strength=0.2, prompt_style_strength=0.8,
                             clip_image_style_strength=0.8))
    return ("The diffusers images-mixing pipeline, its example without CoCa and 'from content to style' preset: content "
            "shrek, style gigachad, prompts 'shrek' / 'gigachad', seed 17, noise_strength 0.7 (preset: 0.5), latent 0.2, "
            "prompt 0.8, CLIP image 0.8." + MIXING_NOTE)


def images_mixing_coca(g: UIGraph) -> str:
    _images_mixing(g, MixSource("boromir.jpg", None), MixSource("gigachad.jpg", None),
                   MixRecipe(seed=17, noise_strength=0.65, latent_style_strength=0.9, prompt_style_strength=0.1,
                             clip_image_style_strength=0.1))
    return ("The diffusers images-mixing pipeline as the diffusers community README runs it: content boromir, style "
            "gigachad, both prompts written by CoCa (coca_ViT-L-14, laion2B-s13B-b90k; beam search 6 beams in 3 groups, 5 to "
            "30 tokens, cleaned as the source), seed 17, noise_strength 0.65, latent 0.9, prompt 0.1, CLIP image 0.1. Type a "
            "prompt into a CoCa node to use it instead of the caption." + MIXING_NOTE)


def images_mixing_grid_search(g: UIGraph) -> str:
    mixing = _mixing_inputs(g, *BOROMIR_TO_GIGACHAD)
    content_prompt, style_prompt = mixing.prompts
    grid = g.add("BlendspaceMixGridSearch", {
        "seed": 117, **MIXING_SAMPLING, "noise_strength": "0.5, 0.6, 0.7", "slerp_latent_style_strength": "0.2, 0.8",
        "slerp_prompt_style_strength": "0.2, 0.8", "slerp_clip_image_style_strength": "0.2, 0.8", "columns": 4,
    }, inputs={"model": mixing.checkpoint.model, "content_positive": (content_prompt, 0),
               "style_positive": (style_prompt, 0), "negative": (mixing.negative, 0),
               "content_image": (mixing.images[0], 0), "style_image": (mixing.images[1], 0),
               "vae": mixing.checkpoint.vae, "open_clip": (mixing.guidance_clip, 0),
               "content_clip_image": (mixing.loaded[0], 0), "style_clip_image": (mixing.loaded[1], 0)})
    g.add("SaveImage", {"filename_prefix": "Blendspace/mixing_grid"}, title="Grid, labelled", inputs={"images": (grid, 2)})
    g.add("SaveImage", {"filename_prefix": "Blendspace/mixing_best"}, title="Best mix", inputs={"images": (grid, 0)})
    return ("The diffusers images-mixing pipeline's 'find the best mix by complete enumeration' (its notebook is lost, so "
            "the grid is the README's advice: noise_strength 0.5-0.7 and the two presets' strengths 0.2 / 0.8), on the "
            "README example's images and prompts, seed 117: 24 CLIP-guided runs scored by CLIP similarity to both images; "
            "the best is the highest lower score. The report and the best strengths are outputs too (wire them into a mixing "
            "workflow). SD-1.4, "
            + MIXING_SETTINGS)


def images_mixing_sd2_base(g: UIGraph) -> str:
    _images_mixing(g, MixSource("cat.jpeg", None), MixSource("bread.png", None),
                   MixRecipe(seed=17, noise_strength=0.5, latent_style_strength=0.8, prompt_style_strength=0.15,
                             clip_image_style_strength=0.15), checkpoint_name=SD2_BASE)
    return ("The diffusers images-mixing pipeline's stable-diffusion-2-base notebook ('cat_bread'): SD-2-base "
            "(512-base-ema), content cat, style bread, both prompts written by CoCa, seed 17, noise_strength 0.5, "
            "latent 0.8, prompt 0.15, CLIP image 0.15. " + MIXING_SETTINGS)


def images_mixing_load_by_parts(g: UIGraph) -> str:
    _images_mixing(g, MixSource("boromir.jpg", None), MixSource("vazovskiy.jpg", None),
                   MixRecipe(seed=17, noise_strength=0.6, latent_style_strength=0.8, prompt_style_strength=0.1,
                             clip_image_style_strength=0.1))
    return ("The diffusers images-mixing pipeline's load-by-parts notebook ('boromir_vazovskiy'): the notebook loads U-Net, "
            "VAE, text encoder, PNDM scheduler and CLIP separately and turns on attention slicing to save memory; "
            "ComfyUI manages memory itself, so one checkpoint loader does. Content boromir, style vazovskiy, CoCa "
            "prompts, seed 17, noise_strength 0.6, latent 0.8, prompt 0.1, CLIP image 0.1." + MIXING_NOTE)


def images_mixing_colab(g: UIGraph) -> str:
    _images_mixing(g, MixSource("cat.jpeg", "abyssinians"),
                   MixSource("bread.png", "whole wheat bread isolated on a white background"),
                   MixRecipe(seed=17, noise_strength=0.4, latent_style_strength=0.25, prompt_style_strength=0.99,
                             clip_image_style_strength=0.9))
    return ("The diffusers images-mixing pipeline's colab example ('cat_bread'): content cat, style bread, the prompts CoCa "
            "printed in the notebook typed in ('abyssinians' / 'whole wheat bread isolated on a white background'), "
            "seed 17, noise_strength 0.4, latent 0.25, prompt 0.99, CLIP image 0.9." + MIXING_NOTE)


def images_mixing_presets_compared(g: UIGraph) -> str:
    mixing = _mixing_inputs(g, MixSource("shrek.jpg", "shrek"), MixSource("gigachad.jpg", "gigachad"))
    _mix(g, mixing, MixRecipe(seed=17, noise_strength=0.5, latent_style_strength=0.8, prompt_style_strength=0.2,
                              clip_image_style_strength=0.2), "Blendspace/style_to_content", " (style to content)")
    _mix(g, mixing, MixRecipe(seed=17, noise_strength=0.5, latent_style_strength=0.2, prompt_style_strength=0.8,
                              clip_image_style_strength=0.8), "Blendspace/content_to_style", " (content to style)")
    return ("The diffusers images-mixing pipeline's README figure difference.png: the same content (shrek) and style "
            "(gigachad) mixed with both presets side by side: 'style to content' noise_strength 0.5, latent 0.8, prompt 0.2, "
            "CLIP image 0.2; 'content to style' noise_strength 0.5, latent 0.2, prompt 0.8, CLIP image 0.8. The figure's "
            "seed and prompts are not documented: seed 17 and the prompts 'shrek' / 'gigachad' (those of the example without "
            "CoCa) are used." + MIXING_NOTE)


# --- FlexDiffuse ----------------------------------------------------------------------------------------------------

FLEX_SAMPLING = Sampling(seed=1337, steps=30, cfg=8.0, sampler_name="ddim", scheduler="ddim_uniform")
FLEX_NEGATIVE = Prompt("", "Negative (empty: FlexDiffuse's uncond)")
FAITHFUL = {"token_alignment": "faithful (shifted, source)", "image_normalization": "faithful ([-1,1] pixels, source)"}


def _flex_guides(g: UIGraph, checkpoint: Checkpoint, guide_text: str | None, concept: str | None,
                 guide_image: str = "guide.png") -> dict[str, Link]:
    """The mapper's guide: a guide prompt (text-to-text tweening) or the guide image with CLIP vision; and the
    optional mapping concepts."""
    guides: dict[str, Link] = {}
    if guide_text is not None:
        guide = _encode_text(g, checkpoint, Prompt(guide_text, "Guide text (text-to-text tweening)"))
        guides["guide_conditioning"] = (guide, 0)
    else:
        clip_vision = g.add("CLIPVisionLoader", {"clip_name": VIT_L})
        guides.update(clip_vision=(clip_vision, 0), image=(_load_image(g, guide_image, "Guide image"), 0))
    if concept is not None:
        guides["concept_conditioning"] = (_encode_text(g, checkpoint, Prompt(concept, "Mapping concepts")), 0)
    return guides


def _flexdiffuse(g: UIGraph, settings: dict, prompt: str, *, img2img: bool, guide_text: str | None = None,
                 concept: str | None = None, guide_image: str = "guide.png") -> None:
    """FlexDiffuse's mapper on the prompt, then img2img of ``init.png`` at diffusers strength 0.6 (``img2img``) or
    text-to-image at 512x512; DDIM 30 steps, CFG 8, seed 1337."""
    prompts = _prompted(g, SD14, Prompt(prompt, "Prompt"), FLEX_NEGATIVE)
    checkpoint = prompts.checkpoint
    guides = _flex_guides(g, checkpoint, guide_text, concept, guide_image)
    mapped = g.add("ImageEmbedToPromptMapper", settings, inputs={"conditioning": (prompts.positive, 0), **guides})
    mapped_prompts = Prompted(checkpoint, mapped, prompts.negative)
    if img2img:
        latent = _image_latent(g, checkpoint, "init.png", "Your photo")
        sampled = g.add("BlendspaceStrengthSweep", FLEX_SAMPLING.widgets(strength_list="0.6"),
                        title="img2img (diffusers strength)",
                        inputs=_sampler_links(checkpoint.model, mapped_prompts, "latent", (latent, 0)))
    else:
        empty = _empty_latent_512(g)
        sampled = g.add("KSampler", FLEX_SAMPLING.widgets(denoise=1.0),
                        inputs=_sampler_links(checkpoint.model, mapped_prompts, "latent_image", (empty, 0)))
    _decode_save(g, checkpoint, (sampled, 0), "Blendspace/flexdiffuse")
    g.add("Note", {"text": "Connect the mapper's 'preview' output to a text display node (e.g. a Show Text node) to "
                           "see every token's match and weight. The source sampled with PNDM, which ComfyUI does not "
                           "have; DDIM is used here."})


@dataclass(frozen=True)
class DeerImg2Img:
    """FlexDiffuse's guided deer, one workflow per setting: img2img of the deer guided by the deer_mod image (linear guidance
    from 0, header 0) with these mapper settings; building it returns its note."""

    note: str
    threshold_mult: float
    threshold_floor: float
    clustered: float
    linear_end: float
    max_guidance: float

    def __call__(self, g: UIGraph) -> str:
        settings = {"threshold_mult": self.threshold_mult, "threshold_floor": self.threshold_floor,
                    "clustered": self.clustered, "linear_start": 0.0, "linear_end": self.linear_end,
                    "max_guidance": self.max_guidance, "header_max": 0.0, **FAITHFUL}
        _flexdiffuse(g, settings, DEER, img2img=True)
        return self.note


flexdiffuse_threshold = DeerImg2Img(
    "FlexDiffuse's tuned deer ('deer_tuned'): img2img of the deer at strength 0.6 (30 steps, CFG 8, seed 1337) with "
    "the guide deer_mod image: Threshold 1.0 at floor 0.2, Clustered 0, Linear 0 -> 1.0, Max Image Guidance 1.0, "
    "header 0, Best Fit with reuse; the source's quirks kept (faithful alignment and normalisation). Set "
    "threshold_mult to 0 for its linear-only variant ('deer_tuned_linear_only').",
    threshold_mult=1.0, threshold_floor=0.2, clustered=0.0, linear_end=1.0, max_guidance=1.0)
flexdiffuse_defaults = DeerImg2Img(
    "FlexDiffuse's deer at the README defaults ('deer_img2img_defaults', 'deer_modded_defaults'): the defaults "
    "(Threshold 0.25 at floor 0.75, Clustered 0.25, Linear 0 -> 0.5, Max 0.35, header 0, Best Fit, reuse on), img2img "
    "strength 0.6, 30 steps, CFG 8, seed 1337. The guided one lowers the floor to 0.2. The source's advice: set "
    "Threshold and Clustered to 0.0-0.1 and increment.",
    threshold_mult=0.25, threshold_floor=0.75, clustered=0.25, linear_end=0.5, max_guidance=0.35)


def flexdiffuse_concepts(g: UIGraph) -> str:
    _flexdiffuse(g, {"threshold_mult": 0.0, "clustered": 0.0, "linear_start": 0.0, "linear_end": 0.0,
                     "max_guidance": 0.0, **FAITHFUL}, "a creepy tree creature, 8k dslr photo", img2img=False,
                 concept="creepy tree")
    return ("FlexDiffuse's concept mapping ('creepy_tree_mapped'): txt2img, guide deer_mod, Mapping Concepts "
            "'creepy tree', all other guidance 0: prompt tokens matching a concept (> 0.9) take that "
            "concept's image token. Seed 1337, 30 steps, CFG 8.")


def flexdiffuse_text_tween(g: UIGraph) -> str:
    _flexdiffuse(g, {"linear_start": 0.1, **FAITHFUL}, "an urban landscape, city, dslr photo", img2img=False,
                 guide_text="a painting of the deep woods, forest")
    return ("FlexDiffuse's text-to-text tweening ('city_photo_forest_blend'): text-to-text tweening of 'an urban "
            "landscape, city, dslr photo' toward the guide text 'a painting of the deep woods, forest', "
            "Linear Start 0.1, other settings at the README defaults; seed 1337, 30 steps, CFG 8.")


def flexdiffuse_txt2img_baseline(g: UIGraph) -> str:
    prompts = _prompted(g, SD14, Prompt(DEER, "Prompt"), FLEX_NEGATIVE)
    empty = g.add("EmptyLatentImage", {"width": 512, "height": 512, "batch_size": 4})
    sampled = g.add("KSampler", FLEX_SAMPLING.widgets(denoise=1.0),
                    inputs=_sampler_links(prompts.checkpoint.model, prompts, "latent_image", (empty, 0)))
    _decode_save(g, prompts.checkpoint, (sampled, 0), "Blendspace/flexdiffuse_base")
    return ("FlexDiffuse's baseline ('deer_base'): the README's text-to-image baseline without any guide, the deer "
            "prompt, SD-1.4, 30 steps, CFG 8, seed 1337, 512x512, 4 images (the source draws them one after another "
            "from one generator, ComfyUI as one batch, so the pictures differ). DDIM stands in for the source's "
            "PNDM. Compare with the guided deer workflows (flexdiffuse_defaults, flexdiffuse_threshold).")


def flexdiffuse_turtle_strong_guide(g: UIGraph) -> str:
    _flexdiffuse(g, {"threshold_mult": 1.0, "threshold_floor": 0.1, "clustered": 0.0, "linear_start": 0.0,
                     "linear_end": 1.0, "max_guidance": 1.0, "header_max": 0.0, **FAITHFUL},
                 "a photo of a turtle, hd 8k, dlsr photo", img2img=False, guide_image="deer_mod.webp")
    return ("FlexDiffuse's strong guide ('turtle_to_rock_monkey'): text-to-image of 'a photo of a turtle, hd 8k, dlsr "
            "photo' with the strong guide deer_mod: Threshold 1.0 at floor 0.1, Clustered 0, Linear 0 -> 1.0, Max "
            "Image Guidance 1.0, header 0, Best Fit with reuse; the source's quirks kept (faithful alignment, float32 "
            "similarities, [-1,1] pixels after the 512/64 resize). Seed 1337, 30 steps, CFG 8. The README: at max "
            "guidance 0.2 it is still a turtle.")


# --- the img2img blog post and StableFused --------------------------------------------------------------------------


def _strength_sweep(g: UIGraph, prompts: Prompted, image: str, title: str, widgets: dict, node_title: str | None = None
                    ) -> int:
    """The blog's img2img: the image stretched to 768x768, Blendspace's strength sweep (diffusers strength)."""
    latent = _image_latent(g, prompts.checkpoint, image, title, STRETCH_768)
    return g.add("BlendspaceStrengthSweep", {**widgets, "strength_mode": "diffusers (source)"}, title=node_title,
                 inputs=_sampler_links(prompts.checkpoint.model, prompts, "latent", (latent, 0)))


def strength_sweep_gif(g: UIGraph) -> str:
    prompts = _prompted(g, SD21_768, Prompt("renaissance lady, evening light, high quality by carl rungius",
                                            "Prompt + ' by <artist>'"), EMPTY_BLOG_NEGATIVE)
    sweep = _strength_sweep(g, prompts, "monalisa.jpg", "Your image",
                            Sampling(seed=187, steps=50, cfg=9.0).widgets(start=0.05, stop=0.98, step=0.03))
    _decode_gif(g, prompts.checkpoint, (sweep, 0), "Blendspace/morph", frame_duration_ms=400, loop=0)
    return ("The img2img blog post's morph GIF (monalisa_img2img, and its notebook variant with seed 187): SD-2.1 768 with "
            "Euler, 50 steps, CFG 9, empty negative, image resized to 768x768 (aspect not kept), fixed seed (187, as the "
            "notebook variant), strengths 0.05 to 0.98 step 0.03 = 31 frames in strength order (diffusers strength), GIF 400 "
            "ms a frame, looping.")


def sketch_to_picture(g: UIGraph) -> str:
    prompts = _prompted(g, SD21_768, Prompt("a mountain landscape with a lake at sunset, high quality by albert "
                                            "bierstadt", "Prompt"), EMPTY_BLOG_NEGATIVE)
    sampled = _strength_sweep(g, prompts, "sketch.png", "Your colour-block sketch",
                              Sampling(seed=343, steps=50, cfg=9.0).widgets(strength_list="0.75"),
                              node_title="img2img (diffusers strength 0.75)")
    _decode_save(g, prompts.checkpoint, (sampled, 0), "Blendspace/sketch_to_picture")
    return ("The img2img blog post's rudimentary sketches: a colour-block landscape sketch turned into a picture "
            "by img2img at strength about 0.75, SD-2.1 768 with Euler, 50 steps, CFG 9, prompt + ' by <artist>', "
            "empty negative, fixed seed. The blog's exact prompt and seed are not given; change them freely.")


BLOG_SAMPLING = Sampling(seed=343, steps=50, cfg=9.0)
ARTISTS = ("alfred sisley", "carl rungius", "paul hedley", "leonardo da vinci")


def img2img_artist_variations(g: UIGraph) -> str:
    checkpoint = _checkpoint(g, SD21_768)
    negative = _encode_text(g, checkpoint, EMPTY_BLOG_NEGATIVE)
    latent = _image_latent(g, checkpoint, "flowers.jpg", "Your photo (flowers)", STRETCH_768)
    for artist in ARTISTS:
        prompts = Prompted(checkpoint, _encode_text(g, checkpoint, Prompt(f"flowers by {artist}",
                                                                          f"Prompt + ' by {artist}'")), negative)
        sampled = g.add("BlendspaceStrengthSweep", BLOG_SAMPLING.widgets(strength_mode="diffusers (source)",
                                                                         strength_list="0.8"),
                        title=f"img2img 0.8, {artist}", inputs=_sampler_links(checkpoint.model, prompts, "latent",
                                                                             (latent, 0)))
        _decode_save(g, checkpoint, (sampled, 0), f"Blendspace/flowers_{artist.replace(' ', '_')}")
    return ("The img2img blog post's 'Example' (flowers_variations): one flowers photo, img2img at "
            "strength 0.8 with one fixed seed, the prompt varied by the artist appended as ' by <artist>'; SD-2.1 768 "
            "with Euler, 50 steps, CFG 9, empty negative, image resized to 768x768 (aspect not kept). The blog gives "
            "neither its prompts nor its seed: 'flowers by <artist>' with four artists the seed names elsewhere and "
            "seed 343 are used; change them freely.")


def img2img_strength_grid(g: UIGraph) -> str:
    prompts = _prompted(g, SD21_768, Prompt("superman by carl rungius, paul hedley", "Prompt + ' by <artist>'"),
                        EMPTY_BLOG_NEGATIVE)
    sweep = _strength_sweep(g, prompts, "superman.jpg", "Your image (superman)",
                            BLOG_SAMPLING.widgets(start=0.05, stop=1.0, step=0.25), node_title="Strength sweep")
    _decode_save(g, prompts.checkpoint, (sweep, 0), "Blendspace/superman_strengths")
    return ("The img2img blog post's 'Strength parameter' (superman_varystrength): one image, one fixed "
            "seed, increasing strength. The notebook run: prompt 'superman' with style 'carl rungius, paul hedley', "
            "seed 343, strengths 0.05, 0.30, 0.55, 0.80 (numpy arange 0.05 to 1 step 0.25); the blog's figure goes "
            "from 0.1 to 0.95 (set start/stop/step or strength_list). SD-2.1 768 with Euler, 50 steps, CFG 9, empty "
            "negative, 768x768.")


def _guidance_scale(g: UIGraph, checkpoint: Checkpoint, scale: float, title: str | None = None) -> int:
    """Blendspace's guidance scale patch with StableFused's rescale 0.7."""
    return g.add("BlendspaceGuidanceScale", {"guidance_scale": scale, "guidance_rescale": 0.7}, title=title,
                 inputs={"model": checkpoint.model})


def image_to_image_replay(g: UIGraph) -> str:
    prompts = _prompted(g, SD15, Prompt("Cartoon-like portrait, drawn by a child, of a male astronaut in space, "
                                        "colorful, funky, crazy", "Prompt"), STABLEFUSED_NEGATIVE)
    checkpoint = prompts.checkpoint
    guided = _guidance_scale(g, checkpoint, 15.0)
    latent = _image_latent(g, checkpoint, "the-renaissance-astronaut.png", "Your image")
    replay = g.add("BlendspaceDenoisingReplay", Sampling(seed=31337, steps=30, cfg=15.0).widgets(denoise=0.83),
                   inputs=_sampler_links((guided, 0), prompts, "latent_image", (latent, 0)))
    _decode_save(g, checkpoint, (replay, 0), "Blendspace/i2i_result")
    _decode_gif(g, checkpoint, (replay, 2), "Blendspace/i2i_xt", frame_duration_ms=200)
    return ("StableFused's image_to_image example with its denoising process shown: SD-1.5, 30 steps, guidance 15 with "
            "StableFused's rescale 0.7, StableFused's negative, seed 31337; start_step 5 of 30 is about denoise 0.83 "
            "(StableFused's image_to_image fed unnormalised pixels to the VAE, a bug not reproduced here).")


def latent_walk(g: UIGraph) -> str:
    checkpoint = _checkpoint(g, SD15)
    prompt_a = _encode_text(g, checkpoint, Prompt("A dog chasing a cat in a garden, photorealistic, high quality",
                                                  "Prompt A"))
    prompt_b = _encode_text(g, checkpoint, Prompt("A cat escaping into outer space in a rocket, photorealistic, "
                                                  "high quality", "Prompt B"))
    negative = _encode_text(g, checkpoint, STABLEFUSED_NEGATIVE)
    empty = _empty_latent_512(g)
    walk = g.add("BlendspaceLatentWalk", {"seed_a": 123456, "steps": 20, "cfg": 15.0, "sampler_name": "dpmpp_2m",
                                          "scheduler": "karras", "seed_b": 123457, "frames": 24,
                                          "noise_interpolation": "slerp", "prompt_interpolation": "lerp",
                                          "max_batch": 4},
                 inputs={"model": checkpoint.model, "positive_a": (prompt_a, 0), "positive_b": (prompt_b, 0),
                         "negative": (negative, 0), "latent": (empty, 0)})
    _decode_gif(g, checkpoint, (walk, 0), "Blendspace/latent_walk", frame_duration_ms=125)
    return ("StableFused's latent walk (the story of the latent_walk notebook): SD-1.5, two of the story prompts, 24 "
            "interpolation frames (both ends included), noise slerped and prompt embeddings lerped, 20 steps, CFG 15, seeds "
            "123456/123457, 8 fps (125 ms). StableFused also applies guidance rescale 0.7; add Any Guidance Scale for it.")


def denoising_replay(g: UIGraph) -> str:
    prompts = _prompted(g, SD15, Prompt("Cyberpunk cityscape with towering skyscrapers, neon signs, and flying cars.",
                                        "Prompt"), Prompt("", "Negative"))
    checkpoint = prompts.checkpoint
    guided = _guidance_scale(g, checkpoint, 7.5)
    empty = _empty_latent_512(g)
    replay = g.add("BlendspaceDenoisingReplay", Sampling(seed=1337, steps=20, cfg=7.5).widgets(denoise=1.0),
                   inputs=_sampler_links((guided, 0), prompts, "latent_image", (empty, 0)))
    _decode_save(g, checkpoint, (replay, 0), "Blendspace/replay_result")
    _decode_gif(g, checkpoint, (replay, 1), "Blendspace/replay_x0", frame_duration_ms=200)
    _decode_gif(g, checkpoint, (replay, 2), "Blendspace/replay_xt", frame_duration_ms=200)
    return ("StableFused's text_to_image example with its denoising process shown: SD-1.5, 20 steps, guidance 7.5 with "
            "StableFused's rescale 0.7, seed 1337; the predicted x0 and the noisy x_t of every step as animations "
            "(5 fps in the source). For image-to-image (image_to_image_replay) encode an image and lower denoise.")


def guidance_scale_study(g: UIGraph) -> str:
    prompts = _prompted(g, SD15, Prompt("Artistic image, very detailed cute cat, cinematic lighting effect, cute, "
                                        "charming, fantasy art, digital painting, photorealistic", "Prompt"),
                        STABLEFUSED_NEGATIVE)
    empty = _empty_latent_512(g)
    for scale in (-1.5, 0.0, 1.5, 7.5, 15.0):
        guided = _guidance_scale(g, prompts.checkpoint, scale)
        sampled = g.add("KSampler", Sampling(seed=2023, steps=20, cfg=7.5).widgets(denoise=1.0),
                        title=f"guidance {scale}",
                        inputs=_sampler_links((guided, 0), prompts, "latent_image", (empty, 0)))
        _decode_save(g, prompts.checkpoint, (sampled, 0), f"Blendspace/guidance_{scale}")
    return ("StableFused's effect of guidance scale: SD-1.5, 20 steps, seed 2023, StableFused's negative, "
            "guidance -1.5, 0, 1.5, 7.5 and 15 (the source sweeps -1.5 to 15 in steps of 1.5), each with rescale 0.7 "
            "as StableFused. 0 gives the negative prompt's image, below 0 the 'opposite' of the prompt.")


ALIEN = ("Photorealistic illustration of a mystical alien creature, magnificent, strong, atomic, tyrannic, predator, "
         "unforgiving, full-body image")
ROBOT = ("Large futuristic mechanical robot in the foreground of a baroque-style battle scene, photorealistic, high "
         "quality, 8k")


def guidance_steps_grid(g: UIGraph) -> str:
    prompts = _prompted(g, SD15, Prompt(ALIEN, "Prompt"), STABLEFUSED_NEGATIVE)
    empty = _empty_latent_512(g)
    grid = g.add("BlendspaceGuidanceGrid", {"seed": 42, "sampler_name": "euler", "scheduler": "normal",
                                            "steps_list": "3, 6, 12, 20, 25", "guidance_scales": "-1.5:15:1.5",
                                            "guidance_rescale": 0.7},
                 inputs={**_sampler_links(prompts.checkpoint.model, prompts, "latent", (empty, 0)),
                         "vae": prompts.checkpoint.vae})
    g.add("SaveImage", {"filename_prefix": "Blendspace/guidance_vs_steps"}, title="Grid (rows: steps, columns: scale)",
          inputs={"images": (grid, 1)})
    return ("StableFused's guidance scale against steps ('effect-of-guidance-scale-vs-steps'): SD-1.5, seed 42, the alien "
            "creature prompt, StableFused's negative, steps 3, 6, 12, 20, 25 (rows) x guidance -1.5 to 15 in steps of 1.5 "
            "(12 columns), guidance rescale 0.7 as StableFused: 60 runs on one labelled sheet. Euler stands in for the "
            "source's PNDM.")


def latent_variations(g: UIGraph) -> str:
    prompts = _prompted(g, SD15, Prompt(ROBOT, "Prompt"), STABLEFUSED_NEGATIVE)
    checkpoint = prompts.checkpoint
    empty = _empty_latent_512(g)
    base_model = _guidance_scale(g, checkpoint, 10.0, "Base image: guidance 10")
    base = g.add("KSampler", Sampling(seed=44, steps=20, cfg=10.0).widgets(denoise=1.0), title="Base image (seed 44)",
                 inputs=_sampler_links((base_model, 0), prompts, "latent_image", (empty, 0)))
    _decode_save(g, checkpoint, (base, 0), "Blendspace/walk_base")
    walk_model = _guidance_scale(g, checkpoint, 7.5, "Variations: guidance 7.5")
    varied = g.add("BlendspaceLatentVariations", Sampling(seed=44, steps=20, cfg=7.5).widgets(
        strength=0.25, count=4, variation_seed=45), inputs=_sampler_links((walk_model, 0), prompts, "latent", (empty, 0)))
    _decode_save(g, checkpoint, (varied, 0), "Blendspace/walk_variations")
    return ("StableFused's walk around one latent (the latent_walk notebook): SD-1.5, the robot prompt, "
            "StableFused's negative, seed 44; the base image at 20 steps, guidance 10; four variations of the same "
            "starting noise at strength 0.25 ((1 - 0.25)·z + 0.25·fresh noise, standardised), 20 steps, guidance "
            "7.5; guidance rescale 0.7 throughout, as StableFused. Euler stands in for the source's PNDM.")


# --- SDXL and Flux --------------------------------------------------------------------------------------------------

SDXL_BASE = "sd_xl_base_1.0.safetensors"
VIT_G = "clip_vision_g.safetensors"
FLUX_DEV = "flux1-dev.safetensors"
FLUX_CLIP_L = "clip_l.safetensors"
FLUX_T5 = "t5xxl_fp16.safetensors"
FLUX_VAE = "ae.safetensors"
SIGCLIP = "sigclip_vision_patch14_384.safetensors"
FLUX_REDUX = "flux1-redux-dev.safetensors"
STRETCH_1024 = Resize("lanczos", 1024, "disabled")


def sdxl_images_mixing(g: UIGraph) -> str:
    checkpoint = _checkpoint(g, SDXL_BASE)
    content_prompt = _encode_text(g, checkpoint, Prompt("boromir", "Content prompt"))
    style_prompt = _encode_text(g, checkpoint, Prompt("gigachad", "Style prompt"))
    mixed_prompt = g.add("SlerpConditioning", {"t": 0.2, "mode": "whole tensor (source)", "method": "slerp"},
                         title="slerp_prompt_style_strength",
                         inputs={"conditioning_a": (content_prompt, 0), "conditioning_b": (style_prompt, 0)})
    negative = _encode_text(g, checkpoint, Prompt("", "Negative"))
    loaded, latents = [], []
    for name, role in (("boromir.jpg", "Content"), ("gigachad.jpg", "Style")):
        image = _load_image(g, name, f"{role} image")
        loaded.append(image)
        latents.append(_scale_and_encode(g, checkpoint, image, STRETCH_1024)[1])
    vision = g.add("CLIPVisionLoader", {"clip_name": VIT_G}, title="Guidance CLIP (ViT-G vision model)")
    target = g.add("BlendspaceSlerpClipImageEmbeds", {"slerp_clip_image_style_strength": 0.2},
                   title="CLIP target from the original images",
                   inputs={"clip_vision": (vision, 0), "content_image": (loaded[0], 0),
                           "style_image": (loaded[1], 0)})
    sampled = g.add("ClipImageGuidanceSampler", {
        "seed": 117, "steps": 30, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 0.5,
        "strength_mode": "diffusers (source)", "clip_guidance_scale": 100.0, "gradient": "fast (decoder only)",
        "slerp_latent_style_strength": 0.8,
    }, title="CLIP Image Guidance Sampler",
        inputs={"model": checkpoint.model, "positive": (mixed_prompt, 0), "negative": (negative, 0),
                "latent_image": (latents[0], 0), "vae": checkpoint.vae, "clip_vision": (vision, 0),
                "target": (target, 0), "latent_style": (latents[1], 0)})
    _decode_save(g, checkpoint, (sampled, 0), "Blendspace/sdxl_images_mixing")
    return ("The diffusers images-mixing pipeline's CLIP-guided mixing on SDXL: SDXL base, content boromir, style gigachad, "
            "prompts slerped at 0.2, latents from the images scaled to 1024x1024 and slerped at 0.8, the CLIP target "
            "from the original images at 0.2 with a ViT-G vision model (clip_vision_g), noise_strength 0.5 "
            "(diffusers rule), CLIP guidance 100 with the fast gradient (decoder only: SDXL's U-Net backward is "
            "costly), 30 Euler steps, CFG 7, seed 117.")


def _flux_loaders(g: UIGraph) -> tuple[int, int, int]:
    """Flux dev's U-Net, its two text encoders (clip_l + t5xxl) and its VAE (ae)."""
    unet = g.add("UNETLoader", {"unet_name": FLUX_DEV, "weight_dtype": "default"}, title="Flux dev")
    clip = g.add("DualCLIPLoader", {"clip_name1": FLUX_CLIP_L, "clip_name2": FLUX_T5, "type": "flux"},
                 title="Flux text encoders (clip_l + t5xxl)")
    vae = g.add("VAELoader", {"vae_name": FLUX_VAE}, title="Flux VAE (ae)")
    return unet, clip, vae


def _flux_sample(g: UIGraph, unet: int, vae: int, positive: int, negative: int, latent: int, prefix: str) -> None:
    sampled = g.add("KSampler", Sampling(seed=42, steps=20, cfg=1.0, sampler_name="euler", scheduler="simple")
                    .widgets(denoise=1.0), inputs={"model": (unet, 0), "positive": (positive, 0),
                                                   "negative": (negative, 0), "latent_image": (latent, 0)})
    decoded = g.add("VAEDecode", inputs={"samples": (sampled, 0), "vae": (vae, 0)})
    g.add("SaveImage", {"filename_prefix": prefix}, inputs={"images": (decoded, 0)})


def _empty_flux_latent(g: UIGraph) -> int:
    return g.add("EmptySD3LatentImage", {"width": 1024, "height": 1024, "batch_size": 1})


def flux_redux_images_mixing(g: UIGraph) -> str:
    unet, clip, vae = _flux_loaders(g)
    vision = g.add("CLIPVisionLoader", {"clip_name": SIGCLIP}, title="SigLIP vision (patch14, 384)")
    encoded = []
    for name, role in (("boromir.jpg", "Image A"), ("gigachad.jpg", "Image B")):
        image = _load_image(g, name, role)
        encoded.append(g.add("CLIPVisionEncode", {"crop": "center"}, title=f"{role}, encoded",
                             inputs={"clip_vision": (vision, 0), "image": (image, 0)}))
    mixed = g.add("BlendspaceSlerpClipVisionOutput", {"weight": 0.5},
                  inputs={"clip_vision_output_a": (encoded[0], 0), "clip_vision_output_b": (encoded[1], 0)})
    text = g.add("CLIPTextEncode", {"text": ""}, title="Prompt (optional)", inputs={"clip": (clip, 0)})
    redux = g.add("StyleModelLoader", {"style_model_name": FLUX_REDUX}, title="Flux Redux")
    styled = g.add("StyleModelApply", inputs={"conditioning": (text, 0), "style_model": (redux, 0),
                                              "clip_vision_output": (mixed, 0)})
    guided = g.add("FluxGuidance", {"guidance": 3.5}, inputs={"conditioning": (styled, 0)})
    negative = g.add("ConditioningZeroOut", inputs={"conditioning": (text, 0)})
    _flux_sample(g, unet, vae, guided, negative, _empty_flux_latent(g), "Blendspace/flux_redux_mix")
    return ("The diffusers images-mixing pipeline's image mix for Flux: two images encoded with SigLIP, their CLIP vision "
            "outputs slerped at 0.5 (Slerp CLIP Vision Output), fed to Flux Redux (Apply Style Model) on the "
            "prompt; Flux dev, guidance 3.5, 20 Euler steps (simple), CFG 1, negative zeroed, 1024x1024, seed 42. "
            "Needs a current ComfyUI.")


def flux_dual_style(g: UIGraph) -> str:
    unet, clip, vae = _flux_loaders(g)
    guided = []
    for text, title in ((MINECRAFT, "Style A (left)"), (VAN_GOGH, "Style B (right)")):
        encoded = g.add("CLIPTextEncode", {"text": text}, title=title, inputs={"clip": (clip, 0)})
        guided.append(g.add("FluxGuidance", {"guidance": 3.5}, inputs={"conditioning": (encoded, 0)}))
    latent = _empty_flux_latent(g)
    mix = g.add("DualStyleEpsilonMix", {"width": 1024, "height": 1024, "direction": "left-right", "shape": "sigmoid",
                                        "center": 0.5, "sharpness": 20.0},
                inputs={"positive_a": (guided[0], 0), "positive_b": (guided[1], 0), "latent": (latent, 0)})
    negative = g.add("ConditioningZeroOut", inputs={"conditioning": (guided[0], 0)})
    _flux_sample(g, unet, vae, mix, negative, latent, "Blendspace/flux_dual_style")
    return ("dual-style-image-gen's epsilon blend on Flux: Minecraft left / Van Gogh right, each prompt with Flux "
            "guidance 3.5, blended by a sigmoid-20 mask over the latent width (centre 0.5); Flux dev, 20 Euler steps "
            "(simple), CFG 1, negative zeroed, 1024x1024 text-to-image, seed 42. Needs a current ComfyUI.")


MIXING, FLEX, DUAL, BLOG, FUSED = "images-mixing", "flexdiffuse", "dual-style", "img2img-blog", "stablefused"
WORKFLOWS: dict[str, tuple[Callable[[UIGraph], str], str, str]] = {
    "images_mixing_style_to_content": (images_mixing_style_to_content,
                                       "CLIP-guided mixing, style to content (the pipeline's README example)", MIXING),
    "images_mixing_content_to_style": (images_mixing_content_to_style,
                                       "CLIP-guided mixing, content to style (its example without CoCa)", MIXING),
    "images_mixing_coca": (images_mixing_coca, "CLIP-guided mixing with CoCa captions as prompts", MIXING),
    "images_mixing_sd2_base": (images_mixing_sd2_base, "CLIP-guided mixing on SD-2-base, cat and bread", MIXING),
    "images_mixing_load_by_parts": (images_mixing_load_by_parts, "CLIP-guided mixing, boromir and vazovskiy", MIXING),
    "images_mixing_colab": (images_mixing_colab, "CLIP-guided mixing with the colab's printed CoCa prompts", MIXING),
    "images_mixing_presets_compared": (images_mixing_presets_compared,
                                       "Style-to-content vs content-to-style presets side by side", MIXING),
    "images_mixing_grid_search": (images_mixing_grid_search, "Find the best mix: parameter grid scored by CLIP",
                                  MIXING),
    "dual_style_epsilon": (dual_style_epsilon, "Dual-style epsilon interpolation", DUAL),
    "dual_style_cross_attention": (dual_style_cross_attention, "Dual-style cross-attention interpolation", DUAL),
    "dual_style_baselines": (dual_style_baselines, "Prompt concatenation and pixel interpolation baselines", DUAL),
    "dual_style_mask_shapes": (dual_style_mask_shapes, "Cross-attention with the exp vs the linear mask, two style "
                                                       "pairs", DUAL),
    "flexdiffuse_txt2img_baseline": (flexdiffuse_txt2img_baseline, "FlexDiffuse's text-to-image baseline, no guide",
                                     FLEX),
    "flexdiffuse_defaults": (flexdiffuse_defaults, "FlexDiffuse Linear + Threshold + Clustered at the defaults, img2img",
                             FLEX),
    "flexdiffuse_threshold": (flexdiffuse_threshold, "FlexDiffuse tuned Threshold, img2img", FLEX),
    "flexdiffuse_concepts": (flexdiffuse_concepts, "FlexDiffuse concept mapping", FLEX),
    "flexdiffuse_text_tween": (flexdiffuse_text_tween, "FlexDiffuse text-to-text tweening", FLEX),
    "flexdiffuse_turtle_strong_guide": (flexdiffuse_turtle_strong_guide, "FlexDiffuse turtle with a strong guide", FLEX),
    "img2img_artist_variations": (img2img_artist_variations, "img2img artist-style variations at strength 0.8", BLOG),
    "img2img_strength_grid": (img2img_strength_grid, "img2img strength grid", BLOG),
    "img2img_strength_sweep_gif": (strength_sweep_gif, "img2img strength sweep to a morph GIF", BLOG),
    "sketch_to_picture": (sketch_to_picture, "Sketch to picture with img2img", BLOG),
    "image_to_image_replay": (image_to_image_replay, "Image-to-image with the denoising process shown", FUSED),
    "latent_walk": (latent_walk, "Latent walk between seeds and prompts", FUSED),
    "denoising_replay": (denoising_replay, "Text-to-image with the denoising process shown", FUSED),
    "guidance_scale_study": (guidance_scale_study, "Zero and negative guidance", FUSED),
    "guidance_steps_grid": (guidance_steps_grid, "Guidance scale x steps grid", FUSED),
    "latent_variations": (latent_variations, "Variations around one latent", FUSED),
    "sdxl_images_mixing": (sdxl_images_mixing, "CLIP-guided image mixing on SDXL", MIXING),
    "flux_redux_images_mixing": (flux_redux_images_mixing, "Two-image mix through Flux Redux", MIXING),
    "flux_dual_style": (flux_dual_style, "Dual-style epsilon blend on Flux", DUAL),
}

# Built from (and tested on) a current ComfyUI's node definitions only: the 2024 one lacks their Flux nodes.
NEEDS_CURRENT_COMFYUI = frozenset({"flux_redux_images_mixing", "flux_dual_style"})
CURRENT_COMFYUI_REASON = "needs a current ComfyUI (Flux nodes)"


def buildable(is_current: bool) -> list[str]:
    """The workflows a ComfyUI builds: the current-only ones on a current ComfyUI, the others on the 2024 one."""
    return [name for name in WORKFLOWS if (name in NEEDS_CURRENT_COMFYUI) == is_current]


def build(name: str, node_defs, outputs) -> dict:
    """The UI-format workflow ``name``, with a Note naming its source and settings and, on every loader, the model
    files it names (``properties.models``, from ``model_files.CATALOG``)."""
    builder, _, _ = WORKFLOWS[name]
    g = UIGraph(node_defs, outputs)
    note = builder(g)
    g.add("Note", {"text": note}, title="Source and settings")
    workflow = g.to_json()
    declare_models(workflow, lambda node: dict(zip(widget_names(node_defs[node["type"]]), node["widgets_values"],
                                                   strict=False)))
    return workflow


def nodes_used(workflow: dict) -> list[str]:
    """The node types of a UI workflow, Notes left out."""
    return sorted({n["type"] for n in workflow["nodes"] if n["type"] != "Note"})


SOURCES = {MIXING: "the diffusers images-mixing pipeline", FLEX: "FlexDiffuse", DUAL: "dual-style-image-gen",
           BLOG: "the img2img blog post", FUSED: "StableFused"}


def readme_table(workflows: dict[str, dict]) -> str:
    """The README's workflow table from the built workflows (name → UI JSON), in WORKFLOWS order."""
    lines = ["| workflow | technique | source document | nodes used |", "|---|---|---|---|"]
    for name, (_, what, source) in WORKFLOWS.items():
        nodes = ", ".join(f"`{n}`" for n in nodes_used(workflows[name]))
        lines.append(f"| `{name}.json` | {what} | {SOURCES[source]} | {nodes} |")
    return "\n".join(lines)


# --- two styles, two prompts inside joint attention ----------------------------------------------------

SD35_LARGE = "sd3.5_large_fp8_scaled.safetensors"
CHROMA_HD = "Chroma1-HD.safetensors"
LIGHTHOUSE_WATERCOLOR = ("A soft watercolor painting of a lighthouse on a rocky cliff at dawn, loose washes of pale "
                         "blue and peach, visible paper texture")
LIGHTHOUSE_NEON = ("A neon cyberpunk lighthouse on a rocky cliff at night, glowing magenta and cyan lights, rain, "
                   "sharp reflections, cinematic")
CHROMA_NEGATIVE = ("low quality, blurry, jpeg artifacts, deformed, oversaturated, unfinished sketch, watermark, "
                   "text")


def _files_note(*names: str) -> str:
    return "Model files: " + "; ".join(f"{n} in models/{CATALOG[n].directory}" for n in names) + "."


def flux_dual_style_attention(g: UIGraph) -> str:
    unet, clip, vae = _flux_loaders(g)
    style_a = g.add("CLIPTextEncode", {"text": MINECRAFT}, title="Style A (left): the sampled prompt",
                    inputs={"clip": (clip, 0)})
    style_b = g.add("CLIPTextEncode", {"text": VAN_GOGH}, title="Style B (right)", inputs={"clip": (clip, 0)})
    guided = g.add("FluxGuidance", {"guidance": 3.5}, inputs={"conditioning": (style_a, 0)})
    blended = g.add("CrossAttnInterpolate", {"direction": "left-right", "shape": "sigmoid", "center": 0.5,
                                             "sharpness": 30.0, "strength": 1.0, "blocks": "all"},
                    title="Cross-Attention Interpolate (joint attention)",
                    inputs={"model": (unet, 0), "conditioning_b": (style_b, 0)})
    negative = g.add("ConditioningZeroOut", inputs={"conditioning": (guided, 0)})
    _flux_sample(g, blended, vae, guided, negative, _empty_flux_latent(g), "Blendspace/flux_dual_style_attention")
    return ("dual-style-image-gen's cross-attention blend inside Flux's joint attention: "
            "Minecraft left / Van Gogh right; prompt B's text is carried beside A's through every block and each image "
            "token's attention output is m·(with A) + (1-m)·(with B), m a sigmoid-30 mask over the token grid; pooled "
            "vector and guidance 3.5 from A; Flux dev, 20 Euler steps (simple), CFG 1, negative zeroed, 1024x1024, "
            "seed 42. Needs a current ComfyUI. " + _files_note(FLUX_DEV, FLUX_CLIP_L, FLUX_T5, FLUX_VAE))


def sd35_dual_style_attention(g: UIGraph) -> str:
    checkpoint = Checkpoint(g.add("CheckpointLoaderSimple", {"ckpt_name": SD35_LARGE},
                                  title="SD3.5 Large (fp8, text encoders included)"))
    style_a = _encode_text(g, checkpoint, Prompt(MINECRAFT, "Style A (left): the sampled prompt"))
    style_b = _encode_text(g, checkpoint, Prompt(VAN_GOGH, "Style B (right)"))
    negative = _encode_text(g, checkpoint, Prompt("", "Negative"))
    blended = g.add("CrossAttnInterpolate", {"direction": "left-right", "shape": "sigmoid", "center": 0.5,
                                             "sharpness": 30.0, "strength": 1.0, "blocks": "all"},
                    title="Cross-Attention Interpolate (joint attention)",
                    inputs={"model": checkpoint.model, "conditioning_b": (style_b, 0)})
    latent = g.add("EmptySD3LatentImage", {"width": 1024, "height": 1024, "batch_size": 1})
    sampled = g.add("KSampler", Sampling(seed=42, steps=28, cfg=4.5, sampler_name="euler", scheduler="sgm_uniform")
                    .widgets(denoise=1.0), inputs={"model": (blended, 0), "positive": (style_a, 0),
                                                   "negative": (negative, 0), "latent_image": (latent, 0)})
    _decode_save(g, checkpoint, (sampled, 0), "Blendspace/sd35_dual_style_attention")
    return ("dual-style-image-gen's cross-attention blend inside SD3.5's joint attention: "
            "Minecraft left / Van Gogh right, sigmoid-30 mask over the token grid, every joint block; SD3.5's pooled "
            "CLIP vector from prompt A (set pooled_and_guidance to 'mask average' to mix it by the mask's mean); "
            "SD3.5 Large, 28 Euler steps "
            "(sgm_uniform), CFG 4.5, empty negative, 1024x1024, seed 42. Needs a current ComfyUI. "
            + _files_note(SD35_LARGE))


def chroma_prompt_mix_attention(g: UIGraph) -> str:
    unet = g.add("UNETLoader", {"unet_name": CHROMA_HD, "weight_dtype": "default"}, title="Chroma1-HD")
    clip = g.add("CLIPLoader", {"clip_name": FLUX_T5, "type": "chroma"}, title="T5-XXL (Chroma)")
    vae = g.add("VAELoader", {"vae_name": FLUX_VAE}, title="Flux VAE (ae)")
    prompt_a = g.add("CLIPTextEncode", {"text": LIGHTHOUSE_WATERCOLOR}, title="Prompt A (t = 0)",
                     inputs={"clip": (clip, 0)})
    prompt_b = g.add("CLIPTextEncode", {"text": LIGHTHOUSE_NEON}, title="Prompt B (t = 1)", inputs={"clip": (clip, 0)})
    negative = g.add("CLIPTextEncode", {"text": CHROMA_NEGATIVE}, title="Negative", inputs={"clip": (clip, 0)})
    latent = _empty_flux_latent(g)
    for t in (0.25, 0.5, 0.75):
        mixed = g.add("SlerpConditioning", {"t": t, "mode": "attention weight (joint attention)", "method": "slerp"},
                      title=f"Prompt mix by attention weight, t = {t}",
                      inputs={"conditioning_a": (prompt_a, 0), "conditioning_b": (prompt_b, 0)})
        sampled = g.add("KSampler", Sampling(seed=7, steps=26, cfg=4.0, sampler_name="euler", scheduler="beta")
                        .widgets(denoise=1.0), inputs={"model": (unet, 0), "positive": (mixed, 0),
                                                       "negative": (negative, 0), "latent_image": (latent, 0)})
        decoded = g.add("VAEDecode", inputs={"samples": (sampled, 0), "vae": (vae, 0)})
        g.add("SaveImage", {"filename_prefix": f"Blendspace/chroma_prompt_mix_t{int(t * 100)}"},
              inputs={"images": (decoded, 0)})
    return ("The diffusers images-mixing pipeline's prompt mix (it slerps its two prompts), by attention weight on "
            "Chroma's T5-only prompts: a watercolor and a neon lighthouse side by side in the prompt, the "
            "image's attention weighting A's tokens by 1-t and B's by t (t = 0.25, 0.5, 0.75; the weights travel in "
            "the conditioning's own attention bias, no model patch on Chroma); Chroma1-HD, 26 Euler steps (beta), "
            "CFG 4, 1024x1024, seed 7. Needs a current ComfyUI. " + _files_note(CHROMA_HD, FLUX_T5, FLUX_VAE))


WORKFLOWS.update({
    "flux_dual_style_attention": (flux_dual_style_attention, "Dual-style blend inside Flux's joint attention", DUAL),
    "sd35_dual_style_attention": (sd35_dual_style_attention, "Dual-style blend inside SD3.5's joint attention", DUAL),
    "chroma_prompt_mix_attention": (chroma_prompt_mix_attention, "Two-prompt mix by attention weight on Chroma",
                                    MIXING),
})
NEEDS_CURRENT_COMFYUI = NEEDS_CURRENT_COMFYUI | {"flux_dual_style_attention", "sd35_dual_style_attention",
                                                 "chroma_prompt_mix_attention"}


# --- two references, one dial (Flux Kontext, Qwen-Image-Edit) ------------------------------------------------

KONTEXT = "flux1-kontext-dev.safetensors"
QWEN_EDIT = "qwen_image_edit_2509_fp8_e4m3fn.safetensors"
QWEN_TE = "qwen_2.5_vl_7b_fp8_scaled.safetensors"
QWEN_VAE = "qwen_image_vae.safetensors"
MIX_PROMPT = "A portrait photo of one man who has the face of both people, natural light, sharp focus"
QWEN_MIX_PROMPT = ("One man who combines the man in picture 1 and the man in picture 2, portrait photo, natural "
                   "light, sharp focus")


@dataclass(frozen=True)
class KontextPair:
    """Flux Kontext with the prompt carrying two references, its negative and an empty latent."""

    unet: int
    vae: int
    conditioning: int
    negative: int
    latent: int


def _kontext_pair(g: UIGraph) -> KontextPair:
    """Kontext dev, two photos scaled to 1024x1024 and chained as references on the prompt (offset layout),
    Flux guidance 2.5, the negative zeroed, an empty 1024x1024 latent."""
    unet = g.add("UNETLoader", {"unet_name": KONTEXT, "weight_dtype": "default"}, title="Flux Kontext dev")
    clip = g.add("DualCLIPLoader", {"clip_name1": FLUX_CLIP_L, "clip_name2": FLUX_T5, "type": "flux"},
                 title="Flux text encoders (clip_l + t5xxl)")
    vae = g.add("VAELoader", {"vae_name": FLUX_VAE}, title="Flux VAE (ae)")
    text = g.add("CLIPTextEncode", {"text": MIX_PROMPT}, title="Prompt", inputs={"clip": (clip, 0)})
    cond = text
    for name, role in (("boromir.jpg", "Reference A"), ("gigachad.jpg", "Reference B")):
        image = _load_image(g, name, role)
        scaled = g.add("ImageScale", {"upscale_method": "lanczos", "width": 1024, "height": 1024, "crop": "center"},
                       inputs={"image": (image, 0)})
        latent = g.add("VAEEncode", inputs={"pixels": (scaled, 0), "vae": (vae, 0)})
        cond = g.add("ReferenceLatent", title=f"{role} as a reference",
                     inputs={"conditioning": (cond, 0), "latent": (latent, 0)})
    method = g.add("FluxKontextMultiReferenceLatentMethod", {"reference_latents_method": "offset"},
                   inputs={"conditioning": (cond, 0)})
    guided = g.add("FluxGuidance", {"guidance": 2.5}, inputs={"conditioning": (method, 0)})
    negative = g.add("ConditioningZeroOut", inputs={"conditioning": (text, 0)})
    return KontextPair(unet, vae, guided, negative, _empty_flux_latent(g))


def kontext_two_reference_mix(g: UIGraph) -> str:
    pair = _kontext_pair(g)
    mix = g.add("BlendspaceReferenceMix", {"weight": 0.35}, inputs={
        "model": (pair.unet, 0), "conditioning": (pair.conditioning, 0), "negative": (pair.negative, 0)})
    sampled = g.add("KSampler", Sampling(seed=42, steps=20, cfg=1.0, scheduler="simple").widgets(denoise=1.0),
                    inputs={"model": (mix, 0), "positive": (mix, 1), "negative": (mix, 2),
                            "latent_image": (pair.latent, 0)})
    decoded = g.add("VAEDecode", inputs={"samples": (sampled, 0), "vae": (pair.vae, 0)})
    g.add("SaveImage", {"filename_prefix": "Blendspace/kontext_reference_mix"}, inputs={"images": (decoded, 0)})
    return ("The diffusers images-mixing pipeline's continuous two-image mix, on Flux Kontext's references: two "
            "photos scaled to 1024x1024, chained with ReferenceLatent (offset layout; index and uxo/uno work too), "
            "Flux guidance 2.5, "
            "Mix Two References at weight 0.35 (0 = reference A only, 1 = B only, both exactly core's one-reference "
            "results; 0.5 = core's two-reference result), strengths 1; Kontext dev, 20 Euler steps (simple), CFG 1, "
            "negative zeroed, 1024x1024, seed 42. Files: diffusion_models/flux1-kontext-dev.safetensors, "
            "text_encoders/clip_l.safetensors and t5xxl_fp16.safetensors, vae/ae.safetensors (the loaders list "
            "their URLs). For other aspect ratios use FluxKontextImageScale instead of Image Scale. Needs a current "
            "ComfyUI.")


def _qwen_encode(g: UIGraph, clip: int, vae: int, prompt: str, title: str, images: dict[str, int]) -> int:
    return g.add("TextEncodeQwenImageEditPlus", {"prompt": prompt}, title=title,
                 inputs={"clip": (clip, 0), "vae": (vae, 0), **{slot: (node, 0) for slot, node in images.items()}})


def qwen_image_edit_two_image_mix(g: UIGraph) -> str:
    unet = g.add("UNETLoader", {"unet_name": QWEN_EDIT, "weight_dtype": "default"}, title="Qwen-Image-Edit 2509")
    clip = g.add("CLIPLoader", {"clip_name": QWEN_TE, "type": "qwen_image"}, title="Qwen2.5-VL text encoder")
    vae = g.add("VAELoader", {"vae_name": QWEN_VAE}, title="Qwen-Image VAE")
    shifted = g.add("ModelSamplingAuraFlow", {"shift": 3.0}, inputs={"model": (unet, 0)})
    a, b = _load_image(g, "boromir.jpg", "Image A (picture 1)"), _load_image(g, "gigachad.jpg", "Image B (picture 2)")
    enc = {}
    for key, prompt, label in (("conditioning", QWEN_MIX_PROMPT, "Prompt"), ("negative", "", "Negative (empty)")):
        enc[key] = _qwen_encode(g, clip, vae, prompt, f"{label}, both images", {"image1": a, "image2": b})
        enc[f"{key}_a_only"] = _qwen_encode(g, clip, vae, prompt, f"{label}, image A only", {"image1": a})
        enc[f"{key}_b_only"] = _qwen_encode(g, clip, vae, prompt, f"{label}, image B only", {"image2": b})
    mix = g.add("BlendspaceReferenceMix", {"weight": 0.35},
                inputs={"model": (shifted, 0), **{name: (node, 0) for name, node in enc.items()}})
    latent = _empty_flux_latent(g)
    sampled = g.add("KSampler", Sampling(seed=42, steps=20, cfg=2.5, scheduler="simple").widgets(denoise=1.0),
                    inputs={"model": (mix, 0), "positive": (mix, 1), "negative": (mix, 2), "latent_image": (latent, 0)})
    decoded = g.add("VAEDecode", inputs={"samples": (sampled, 0), "vae": (vae, 0)})
    g.add("SaveImage", {"filename_prefix": "Blendspace/qwen_edit_reference_mix"}, inputs={"images": (decoded, 0)})
    return ("The diffusers images-mixing pipeline's continuous two-image mix, on Qwen-Image-Edit-2509: the prompt "
            "and the empty negative encoded with both images (TextEncodeQwenImageEditPlus), and each again with image A only "
            "(picture 1) and image B only (picture 2) so both ends are exact: Mix Two References at weight 0.35 "
            "blends the references and the encodings (0 = the image-A-only workflow, 1 = the image-B-only one, 0.5 = "
            "both images as core samples them). ModelSamplingAuraFlow shift 3, 20 Euler steps (simple), CFG 2.5 "
            "(the fp8 model's setting), 1024x1024, seed 42. Files: diffusion_models/"
            "qwen_image_edit_2509_fp8_e4m3fn.safetensors, text_encoders/qwen_2.5_vl_7b_fp8_scaled.safetensors, "
            "vae/qwen_image_vae.safetensors (the loaders list their URLs). Needs a current ComfyUI.")


def reference_morph_gif(g: UIGraph) -> str:
    pair = _kontext_pair(g)
    frames = g.add("BlendspaceReferenceSweep", {"seed": 42, "steps": 20, "cfg": 1.0, "scheduler": "simple",
                                                "frames": 9}, inputs={
        "model": (pair.unet, 0), "conditioning": (pair.conditioning, 0), "negative": (pair.negative, 0),
        "latent": (pair.latent, 0)})
    decoded = g.add("VAEDecode", inputs={"samples": (frames, 0), "vae": (pair.vae, 0)})
    g.add("BlendspaceSaveAnimatedGIF", {"filename_prefix": "Blendspace/reference_morph", "frame_duration_ms": 400,
                                        "ping_pong": True}, inputs={"images": (decoded, 0)})
    return ("The img2img blog post's morph GIF over the images-mixing pipeline's two-image mix, on Flux Kontext's "
            "references: the Reference Sweep renders weight 0, 0.125, ..., 1 (9 frames) from one seed, the first frame exactly "
            "core's result with reference A only, the middle one with both, the last with B only; Save Animated GIF "
            "at 400 ms a frame, ping-pong. Kontext dev, two photos scaled to 1024x1024 (offset layout), Flux "
            "guidance 2.5, 20 Euler steps (simple), CFG 1, negative zeroed, 1024x1024, seed 42. Needs a current "
            "ComfyUI.")


REFERENCE_WORKFLOWS = {
    "kontext_two_reference_mix": (kontext_two_reference_mix, "Two references, one dial, on Flux Kontext", "edit"),
    "qwen_image_edit_two_image_mix": (qwen_image_edit_two_image_mix,
                                      "Two images, one dial, on Qwen-Image-Edit (exact ends)", "edit"),
    "reference_morph_gif": (reference_morph_gif, "Reference morph GIF: the dial swept from A to B", "edit morph"),
}
WORKFLOWS.update(REFERENCE_WORKFLOWS)
NEEDS_CURRENT_COMFYUI = NEEDS_CURRENT_COMFYUI | frozenset(REFERENCE_WORKFLOWS)
CURRENT_COMFYUI_REASON = "needs a current ComfyUI (Flux, Kontext and Qwen-Image-Edit nodes)"
SOURCES["edit"] = "the diffusers images-mixing pipeline, on edit models' references"
SOURCES["edit morph"] = "the img2img blog post's morph over the images-mixing pipeline, on edit models' references"
