"""ComfyUI's folders as the nodes use them: Blendspace's own ``models/open_clip`` folder and the output folder."""

from __future__ import annotations

import os

from ...blendspace.errors import BlendspaceInputError

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


MAX_NAME = 200
"""The longest file or folder name a ``filename_prefix`` may hold (file systems stop at 255 bytes, and the counter
and extension are added)."""


def check_prefix(filename_prefix: str, output_dir: str, name: str = "filename_prefix") -> None:
    """A prefix that names a file inside ``output_dir``: no NUL character, no part longer than ``MAX_NAME``
    bytes, no way out of the folder (``..``, an absolute path)."""
    normal = os.path.normpath(filename_prefix) if filename_prefix else ""
    too_long = [p for p in normal.split(os.sep) if len(p.encode("utf-8", "surrogatepass")) > MAX_NAME]
    if "\0" in filename_prefix or too_long:
        why = "holds a NUL character" if "\0" in filename_prefix else f"has a part of {len(too_long[0])} characters"
        raise BlendspaceInputError(f"{name} {why}: expected a file name prefix such as 'Blendspace/morph', each "
                                   f"folder or file name at most {MAX_NAME} characters.")
    folder = os.path.abspath(os.path.join(output_dir, os.path.dirname(normal)))
    if os.path.commonpath((os.path.abspath(output_dir), folder)) != os.path.abspath(output_dir):
        raise BlendspaceInputError(f"{name} {filename_prefix[:60]!r} points outside ComfyUI's output folder: give a "
                                   "relative name such as 'Blendspace/morph'.")


def output_file(filename_prefix: str, width: int, height: int, extension: str) -> tuple[str, dict]:
    """A new file in ComfyUI's output folder for ``filename_prefix`` (its own counter and subfolder rules, as Save
    Image): ``(full path, the UI entry that shows it)``; a prefix that cannot name a file there is refused."""
    import folder_paths
    output_dir = folder_paths.get_output_directory()
    check_prefix(filename_prefix, output_dir)
    try:
        full, name, counter, subfolder, _ = folder_paths.get_save_image_path(filename_prefix, output_dir, width, height)
    except OSError as err:
        raise BlendspaceInputError(f"filename_prefix {filename_prefix[:60]!r} cannot name a file in ComfyUI's output "
                                   f"folder ({err.strerror}): give a name such as 'Blendspace/morph'.") from err
    file = f"{name}_{counter:05}_.{extension}"
    return os.path.join(full, file), {"filename": file, "subfolder": subfolder, "type": "output"}
