"""Blendspace: ComfyUI nodes that mix two images, two styles or two prompts.

ComfyUI imports this file as a custom node pack. Importing it registers node classes only: it
touches no network, loads no weights and changes no ComfyUI global.
"""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
