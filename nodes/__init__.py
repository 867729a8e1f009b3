"""Blendspace node classes (classic V1 API), thin adapters over the pure modules in ``blendspace/``.

Each ``nodes_*.py`` exports a ``NODES`` list; the display name of a node is its ``DISPLAY_NAME``.
"""

from . import (
    nodes_clip_guidance,
    nodes_clip_scores,
    nodes_cycle_diffusion,
    nodes_dual_style,
    nodes_experiments,
    nodes_flex,
    nodes_grid_search,
    nodes_open_clip,
    nodes_slerp,
)

NODE_MODULES = (nodes_slerp, nodes_open_clip, nodes_clip_guidance, nodes_flex, nodes_dual_style, nodes_cycle_diffusion,
                nodes_experiments, nodes_clip_scores, nodes_grid_search)

NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}
for _module in NODE_MODULES:
    for _cls in _module.NODES:
        _id = _cls.NODE_ID
        if _id in NODE_CLASS_MAPPINGS:
            raise RuntimeError(f"Blendspace: node id {_id} is defined twice")
        NODE_CLASS_MAPPINGS[_id] = _cls
        NODE_DISPLAY_NAME_MAPPINGS[_id] = _cls.DISPLAY_NAME
