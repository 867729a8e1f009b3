"""Blendspace node classes (classic V1 API), thin adapters over the pure modules in ``blendspace/``.

One ``nodes_<technique>.py`` per technique, each exporting a ``NODES`` list; the display name of a node
is its ``DISPLAY_NAME``. Node modules never import each other and never import ComfyUI: what several need
lives in ``inputs.py`` (common input declarations) and ``checks.py`` (the entry checks), and everything that
talks to ComfyUI at run time lives in the runtime layer, ``runtime/`` (model facts, sampling hooks, attention
patches, gradient twins), which works on the 2024 and the current ComfyUI. Every node's FUNCTION first checks
its inputs by their declared socket types (``checks.checked``), before any work.
"""

from . import (
    nodes_clip_scores,
    nodes_cycle_diffusion,
    nodes_dual_style,
    nodes_experiments,
    nodes_flex,
    nodes_image_mixing,
    nodes_open_clip,
    nodes_reference_mix,
    nodes_slerp,
)
from .checks import checked

NODE_MODULES = (nodes_slerp, nodes_open_clip, nodes_image_mixing, nodes_flex, nodes_dual_style, nodes_cycle_diffusion,
                nodes_experiments, nodes_clip_scores, nodes_reference_mix)

NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}
for _module in NODE_MODULES:
    for _cls in _module.NODES:
        _id = _cls.NODE_ID
        if _id in NODE_CLASS_MAPPINGS:
            raise RuntimeError(f"Blendspace: node id {_id} is defined twice")
        NODE_CLASS_MAPPINGS[_id] = checked(_cls)
        NODE_DISPLAY_NAME_MAPPINGS[_id] = _cls.DISPLAY_NAME
