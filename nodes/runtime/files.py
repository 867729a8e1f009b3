"""ComfyUI's folders as the nodes use them: Blendspace's own ``models/open_clip`` folder and the output folder."""

from __future__ import annotations

import os

OPEN_CLIP_FOLDER = "open_clip"


def register_open_clip_folder() -> list[str]:
    """Add ``models/open_clip`` to ComfyUI's model folders (once) and return the folders searched;
    ``extra_model_paths.yaml`` can add more under the key ``open_clip``."""
    import folder_paths
    default = os.path.join(folder_paths.models_dir, OPEN_CLIP_FOLDER)
    if OPEN_CLIP_FOLDER not in folder_paths.folder_names_and_paths:
        folder_paths.folder_names_and_paths[OPEN_CLIP_FOLDER] = ([default], set(folder_paths.supported_pt_extensions))
    elif default not in folder_paths.get_folder_paths(OPEN_CLIP_FOLDER):
        folder_paths.add_model_folder_path(OPEN_CLIP_FOLDER, default)
    return list(folder_paths.get_folder_paths(OPEN_CLIP_FOLDER))


def open_clip_files() -> list[str]:
    """The files in the open_clip folders, as a loader's choice list."""
    import folder_paths
    register_open_clip_folder()
    return folder_paths.get_filename_list(OPEN_CLIP_FOLDER)


def open_clip_path(name: str) -> tuple[str | None, list[str]]:
    """``(full path or None, folders searched)`` of the open_clip file ``name``."""
    import folder_paths
    searched = register_open_clip_folder()
    return folder_paths.get_full_path(OPEN_CLIP_FOLDER, name), searched


def output_file(filename_prefix: str, width: int, height: int, extension: str) -> tuple[str, dict]:
    """A new file in ComfyUI's output folder for ``filename_prefix`` (its own counter and subfolder rules, as Save
    Image): ``(full path, the UI entry that shows it)``."""
    import folder_paths
    full, name, counter, subfolder, _ = folder_paths.get_save_image_path(filename_prefix,
                                                                         folder_paths.get_output_directory(),
                                                                         width, height)
    file = f"{name}_{counter:05}_.{extension}"
    return os.path.join(full, file), {"filename": file, "subfolder": subfolder, "type": "output"}
