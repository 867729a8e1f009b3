"""Test-only ComfyUI node pack: tiny model loaders and capture sinks for graph tests.

The harness installs it beside Blendspace in a temporary ``custom_nodes`` folder, so graphs run
by ComfyUI's own executor can load tiny random models and hand their results back to the test.
"""

from . import tiny

CAPTURED: dict = {}


class TinyCheckpoint:
    CATEGORY = "BlendspaceTest"
    DESCRIPTION = "Tiny random SD1.x-shaped model, CLIP and VAE for tests."
    RETURN_TYPES = ("MODEL", "CLIP", "VAE")
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"weights_seed": ("INT", {"default": 0, "min": 0, "max": 2**31 - 1,
                                                      "tooltip": "Seed of the random weights."})}}

    def load(self, weights_seed):
        return (tiny.tiny_unet(weights_seed), tiny.tiny_clip(weights_seed + 1), tiny.tiny_vae(weights_seed + 2))


def _capture_class(type_name: str):
    class Capture:
        CATEGORY = "BlendspaceTest"
        DESCRIPTION = f"Stores its {type_name} input for the test that runs the graph."
        RETURN_TYPES = ()
        OUTPUT_NODE = True
        FUNCTION = "capture"

        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"value": (type_name, {"tooltip": "What to capture."}),
                                 "key": ("STRING", {"default": "out", "tooltip": "Name under which it is stored."})}}

        def capture(self, value, key):
            CAPTURED[key] = value
            return {"ui": {"captured": [key]}}

    Capture.__name__ = f"Capture{type_name.title()}"
    return Capture


CAPTURE_TYPES = ("LATENT", "CONDITIONING", "IMAGE", "MODEL", "MASK", "STRING", "FLOAT")

NODE_CLASS_MAPPINGS = {"BlendspaceTest_TinyCheckpoint": TinyCheckpoint}
NODE_CLASS_MAPPINGS.update({f"BlendspaceTest_Capture_{t}": _capture_class(t) for t in CAPTURE_TYPES})
NODE_DISPLAY_NAME_MAPPINGS = {k: k for k in NODE_CLASS_MAPPINGS}


class TinyClipVision:
    CATEGORY = "BlendspaceTest"
    DESCRIPTION = "Tiny random CLIP vision model (32-d projection) for tests and --smoke runs."
    RETURN_TYPES = ("CLIP_VISION",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"weights_seed": ("INT", {"default": 3, "min": 0, "max": 2**31 - 1,
                                                      "tooltip": "Seed of the random weights."})}}

    def load(self, weights_seed):
        return (tiny.tiny_clip_vision(weights_seed),)


class RandomImage:
    CATEGORY = "BlendspaceTest"
    DESCRIPTION = "A random IMAGE and an empty MASK, standing in for Load Image in --smoke runs."
    RETURN_TYPES = ("IMAGE", "MASK")
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"width": ("INT", {"default": 64, "min": 8, "max": 4096, "tooltip": "Width in pixels."}),
                             "height": ("INT", {"default": 64, "min": 8, "max": 4096, "tooltip": "Height in pixels."}),
                             "seed": ("INT", {"default": 0, "min": 0, "max": 2**31 - 1, "tooltip": "Pixel seed."})}}

    def make(self, width, height, seed):
        import torch
        g = torch.Generator().manual_seed(seed)
        return (torch.rand(1, height, width, 3, generator=g), torch.zeros(1, height, width))


class TinyOpenClip:
    CATEGORY = "BlendspaceTest"
    DESCRIPTION = "Tiny random open_clip CLIP or CoCa, written to a temporary folder and loaded by Blendspace's loader."
    RETURN_TYPES = ("BLENDSPACE_OPEN_CLIP",)
    FUNCTION = "load"
    _folder = None

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"weights_seed": ("INT", {"default": 5, "min": 0, "max": 2**31 - 1,
                                                      "tooltip": "Seed of the random weights."}),
                             "coca": ("BOOLEAN", {"default": False, "tooltip": "A CoCa captioner instead of a CLIP."})}}

    def load(self, weights_seed, coca):
        import tempfile

        import nodes
        if TinyOpenClip._folder is None:
            TinyOpenClip._folder = tempfile.mkdtemp(prefix="blendspace-open-clip-")
        path = tiny.write_tiny_open_clip(TinyOpenClip._folder, weights_seed, coca)
        return (nodes.NODE_CLASS_MAPPINGS["BlendspaceOpenClipLoader"].load_file(path),)


NODE_CLASS_MAPPINGS["BlendspaceTest_TinyClipVision"] = TinyClipVision
NODE_CLASS_MAPPINGS["BlendspaceTest_TinyOpenClip"] = TinyOpenClip
NODE_CLASS_MAPPINGS["BlendspaceTest_RandomImage"] = RandomImage
NODE_DISPLAY_NAME_MAPPINGS.update({k: k for k in ("BlendspaceTest_TinyClipVision", "BlendspaceTest_RandomImage",
                                                   "BlendspaceTest_TinyOpenClip")})


def _tiny_loader(return_type: str, description: str, make, default_seed: int):
    """A test node returning ``make(weights_seed)`` as ``return_type`` (a --smoke stand-in for a core loader)."""
    class TinyLoader:
        CATEGORY = "BlendspaceTest"
        DESCRIPTION = description
        RETURN_TYPES = (return_type,)
        FUNCTION = "load"

        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"weights_seed": ("INT", {"default": default_seed, "min": 0, "max": 2**31 - 1,
                                                          "tooltip": "Seed of the random weights."})}}

        def load(self, weights_seed):
            return (make(weights_seed),)

    return TinyLoader


# Flux stand-ins (current ComfyUI only): a tiny Flux prompted by the tiny CLIP, a 16-channel VAE, a tiny Redux
NODE_CLASS_MAPPINGS["BlendspaceTest_TinyFluxUnet"] = _tiny_loader(
    "MODEL", "Tiny random Flux (32-d pooled input, for the tiny CLIP).", tiny.tiny_flux_for_tiny_clip, 0)
NODE_CLASS_MAPPINGS["BlendspaceTest_TinyFluxClip"] = _tiny_loader(
    "CLIP", "Tiny random CLIP text encoder standing in for Flux's clip_l + t5xxl.", tiny.tiny_clip, 1)
NODE_CLASS_MAPPINGS["BlendspaceTest_TinyVAE16"] = _tiny_loader(
    "VAE", "Tiny random 16-channel VAE (Flux / SD3 latents).", tiny.tiny_vae16, 2)
NODE_CLASS_MAPPINGS["BlendspaceTest_TinyRedux"] = _tiny_loader(
    "STYLE_MODEL", "Tiny random Flux Redux for the tiny CLIP vision model.", tiny.tiny_redux, 7)
NODE_DISPLAY_NAME_MAPPINGS.update({k: k for k in NODE_CLASS_MAPPINGS})
