"""Blendspace: ComfyUI nodes that mix two images, two styles or two prompts.

ComfyUI imports this file as a custom node pack. Importing it registers node classes only: it
touches no network, loads no weights and changes no ComfyUI global.

``WEB_DIRECTORY``: ComfyUI serves ``web/`` at ``/extensions/<pack folder>/``; the current frontend's
help panel reads ``web/docs/<NodeId>.md`` there (``web/docs/<NodeId>/<locale>.md`` first, for
translations). The folder holds no scripts, so older frontends load nothing from it.
"""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
