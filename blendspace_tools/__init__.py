"""Blendspace's tooling around ComfyUI: the command line and what it needs, kept apart from the math.

- ``cli``: ``python -m blendspace`` (or ``python -m blendspace_tools``): run, serve, models, evaluate, and the
  developer commands (``developer_commands``: build-workflows, thumbnails, regenerate); ``run_command`` and
  ``evaluate_command`` hold the two larger commands.
- ``runner``: boots a ComfyUI in this process with the pack loaded and executes API prompts headlessly.
- ``fanout``, ``server_client``, ``sweep``: jobs of a sweep, here or spread over ComfyUI servers.
- ``workflow``: the UI-graph ↔ API-prompt conversion and a small UI-graph builder; ``workflow_checks``: the shape
  of a workflow file, checked first; ``comfyui_versions``: core nodes that need a newer ComfyUI.
- ``bundled_workflows``: the definitions behind ``workflows/*.json``; ``thumbnails``: their pictures;
  ``model_files``: the model files each needs, with the publishers' download URLs.
- ``comfyui_locator``: finds the ComfyUI to use (``$COMFYUI_PATH`` or a cached 2024 copy).

These modules may import ``blendspace`` (the math); ``blendspace`` never imports them. ComfyUI itself is
imported only inside functions, at run time, so importing this package is cheap.
"""
