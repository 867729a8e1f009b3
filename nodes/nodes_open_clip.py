"""open_clip models (the images-mixing pipeline's LAION ViT-B-32 guidance CLIP and coca_ViT-L-14 captioner) and CoCa captions.

Loading and captioning: ``blendspace/open_clip_models.py`` and ``blendspace/coca_caption.py``. The
``models/open_clip`` folder is registered with ComfyUI's ``folder_paths`` when the loader's inputs are
first listed (not at import), like the folders of other model packs; ``extra_model_paths.yaml`` can
add more under the key ``open_clip``.
"""

from __future__ import annotations

from ..blendspace.errors import BlendspaceInputError
from ..blendspace.open_clip_models import AUTO, PRECISIONS, architectures, load_open_clip
from .inputs import OPEN_CLIP_TYPE
from .runtime.clip_vision import offload_device, on_compute_device, require_open_clip
from .runtime.files import OPEN_CLIP_FOLDER, open_clip_files, open_clip_path
from .runtime.sampling import check_interrupted


class OpenClipLoader:
    NODE_ID = "BlendspaceOpenClipLoader"
    DISPLAY_NAME = "Load open_clip Model"
    SEARCH_ALIASES = ["open clip", "openclip", "load clip", "laion clip", "coca", "clip loader"]
    CATEGORY = "Blendspace/loaders"
    DESCRIPTION = (
        "Loads an open_clip model (CLIP or CoCa) from models/open_clip, without any download. The images-mixing pipeline "
        "guides with the "
        "LAION ViT-B-32 (laion2B-s34B-b79K: architecture ViT-B-32) and captions with coca_ViT-L-14 (laion2B-s13B-b90k). "
        "Files from a Hugging Face open_clip repository work as they are: keep its open_clip_config.json beside the "
        "weights and leave architecture on auto.")
    RETURN_TYPES = (OPEN_CLIP_TYPE,)
    RETURN_NAMES = ("open_clip",)
    OUTPUT_TOOLTIPS = ("The model, for CLIP guidance, CLIP scores and CoCa captions.",)
    FUNCTION = "load"
    FILE_INPUTS = ("clip_name",)  # a file of models/open_clip: a missing one is reported with the folders searched

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "clip_name": (open_clip_files(), {"tooltip": "Weights in models/open_clip (.safetensors, or .bin/.pt/.pth holding "
                                                "plain tensors), any file name."}),
            "architecture": (architectures(), {"default": AUTO,
                                               "tooltip": "auto: read open_clip_config.json (or <file name>.json) "
                                                          "beside the weights. Otherwise the open_clip architecture "
                                                          "the file was trained as (ViT-B-32, coca_ViT-L-14, ...)."}),
            "precision": (list(PRECISIONS), {"default": "fp32",
                                             "tooltip": "Weight precision (the source ran fp16 on CUDA; fp32 is the "
                                                        "safe choice on CPU)."}),
        }}

    def load(self, clip_name, architecture, precision="fp32"):
        path, searched = open_clip_path(clip_name)
        if path is None:
            raise BlendspaceInputError(f"clip_name: open_clip model {clip_name!r} not found in the '{OPEN_CLIP_FOLDER}' folders "
                                       f"{searched}: "
                                       "put the file there (with its open_clip_config.json) or pick another.")
        return (self.load_file(path, architecture, precision),)

    @staticmethod
    def load_file(path, architecture=AUTO, precision="fp32"):
        ocm = load_open_clip(path, architecture, precision)
        ocm.model.to(offload_device())
        return ocm


class CocaCaption:
    NODE_ID = "BlendspaceCocaCaption"
    DISPLAY_NAME = "CoCa Caption (prompt from image)"
    SEARCH_ALIASES = ["caption", "image to prompt", "image to text", "interrogate", "describe image", "image prompt"]
    CATEGORY = "Blendspace/clip_guidance"
    DESCRIPTION = (
        "The images-mixing pipeline's prompt generation: captions an image with an open_clip CoCa model (the source: "
        "coca_ViT-L-14, "
        "laion2B-s13B-b90k) using open_clip's beam search and its defaults, then cleans the caption as the source does "
        "(cut at <end_of_text>, drop <start_of_text>, strip trailing ' .,'). A non-empty prompt is passed through "
        "instead, as the source only captions missing prompts. One caption per image of the batch.")
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("prompt",)
    OUTPUT_IS_LIST = (True,)
    OUTPUT_TOOLTIPS = ("The caption (or the given prompt), one per image; connect it to a text encoder's text.",)
    FUNCTION = "caption"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "open_clip": (OPEN_CLIP_TYPE, {"tooltip": "A CoCa model from Load open_clip Model."}),
                "image": ("IMAGE", {"tooltip": "The image(s) to caption."}),
                "prompt": ("STRING", {"default": "", "multiline": True,
                                      "tooltip": "If not empty, returned instead of a caption (the source's "
                                                 "content_prompt / style_prompt)."}),
                "num_beams": ("INT", {"default": 6, "min": 2, "max": 64, "tooltip": "Beams (open_clip default 6)."}),
                "num_beam_groups": ("INT", {"default": 3, "min": 1, "max": 64,
                                            "tooltip": "Beam groups; num_beams must be a multiple (default 3)."}),
                "min_seq_len": ("INT", {"default": 5, "min": 1, "max": 75,
                                        "tooltip": "Shortest caption in tokens, start token included (default 5)."}),
                "seq_len": ("INT", {"default": 30, "min": 2, "max": 76,
                                    "tooltip": "Longest caption in tokens, start token included (default 30)."}),
                "repetition_penalty": ("FLOAT", {"default": 1.0, "min": 1.0, "max": 10.0, "step": 0.05,
                                                 "tooltip": "Above 1 discourages repeated tokens (default 1: off)."}),
            }
        }

    def caption(self, open_clip, image, prompt, num_beams, num_beam_groups, min_seq_len, seq_len, repetition_penalty):
        if prompt.strip():
            return ([prompt] * image.shape[0],)
        ocm = require_open_clip(open_clip)
        if num_beams % num_beam_groups:
            raise BlendspaceInputError(f"num_beams ({num_beams}) must be a multiple of num_beam_groups "
                                       f"({num_beam_groups}).")
        if seq_len <= min_seq_len:
            raise BlendspaceInputError(f"seq_len ({seq_len}) must be larger than min_seq_len ({min_seq_len}).")
        check_interrupted()
        with on_compute_device(ocm):
            return (ocm.caption(image, num_beams=num_beams, num_beam_groups=num_beam_groups, min_seq_len=min_seq_len,
                                seq_len=seq_len, repetition_penalty=repetition_penalty),)


NODES = [OpenClipLoader, CocaCaption]
