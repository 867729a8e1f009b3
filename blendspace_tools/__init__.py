"""Blendspace's tooling around ComfyUI: the command line and what it needs, kept apart from the math.

- ``cli``: ``python -m blendspace`` (or ``python -m blendspace_tools``): run, serve, build-workflows, evaluate.
- ``runner``: boots a ComfyUI in this process with the pack loaded and executes API prompts headlessly.
- ``workflow``: the UI-graph ↔ API-prompt conversion and a small UI-graph builder.
- ``bundled_workflows``: the definitions behind ``workflows/*.json``.
- ``comfyui_locator``: finds the ComfyUI to use (``$COMFYUI_PATH`` or a cached 2024 copy).

These modules may import ``blendspace`` (the math); ``blendspace`` never imports them. ComfyUI itself is
imported only inside functions, at run time, so importing this package is cheap.
"""
