"""Core ComfyUI nodes the bundled workflows use that older ComfyUIs lack, and the release that has them.

A workflow built on a current ComfyUI names core nodes (or inputs of core nodes) that a 2024
ComfyUI does not have. Without this table the only message would be "unknown node types: install
the custom node pack that provides them", which sends a user looking for a pack when what is
missing is a newer ComfyUI. ``newer_comfyui_needed`` names the nodes and the release to update to.

``RELEASE`` is a ComfyUI release that has every entry (0.3.2, 22 November 2024, the release that
brought Flux Redux); ``added`` says when each one came. The Flux workflows are tested on ComfyUI
0.3.64. Pure data and Python; no ComfyUI import.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

RELEASE = "0.3.2"


@dataclass(frozen=True)
class CoreFeature:
    """A core node, the inputs of it the workflows set that older versions lack, and when it came."""

    node: str
    inputs: tuple[str, ...]
    added: str


CORE_FEATURES: tuple[CoreFeature, ...] = (
    CoreFeature("EmptySD3LatentImage", (), "June 2024, with SD3"),
    CoreFeature("FluxGuidance", (), "August 2024, with Flux"),
    CoreFeature("DualCLIPLoader", ("type",), "August 2024, with Flux (its 'flux' type)"),
    CoreFeature("UNETLoader", ("weight_dtype",), "August 2024, with Flux"),
    CoreFeature("StyleModelApply", ("strength", "strength_type"), "November 2024, with Flux Redux"),
    CoreFeature("CLIPVisionEncode", ("crop",), "November 2024, with Flux Redux"),
)


def _declared(input_types: Mapping[str, Any]) -> set[str]:
    return {name for section in ("required", "optional") for name in (input_types.get(section) or {})}


def missing_core_features(node_types: Iterable[str], node_defs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The core nodes (or their inputs) among ``node_types`` that this ComfyUI (``node_defs``) lacks, in words."""
    used = set(node_types)
    missing = []
    for feature in CORE_FEATURES:
        if feature.node not in used:
            continue
        if feature.node not in node_defs:
            missing.append(f"{feature.node} ({feature.added})")
            continue
        lacking = [name for name in feature.inputs if name not in _declared(node_defs[feature.node])]
        if lacking:
            missing.append(f"{feature.node}'s input {', '.join(map(repr, lacking))} ({feature.added})")
    return missing


def newer_comfyui_needed(node_types: Iterable[str], node_defs: Mapping[str, Mapping[str, Any]]) -> str | None:
    """Why this ComfyUI is too old for a workflow using ``node_types`` (the core nodes and the release to update
    to), or None when it has them all."""
    missing = missing_core_features(node_types, node_defs)
    if not missing:
        return None
    return (f"this workflow needs core ComfyUI nodes that this ComfyUI is too old to have: {'; '.join(missing)}. "
            f"Update ComfyUI ({RELEASE} and newer have them all) or point --comfyui at a newer one; no custom node "
            "pack provides them.")
