"""The house rules, checked on the code itself: math apart from ComfyUI, thin nodes that never import each
other, node methods that take node inputs only, short functions, and no pointers to documents outside the
repository."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMFYUI_MODULES = {"comfy", "comfy_extras", "comfy_api", "comfy_execution", "folder_paths", "nodes", "execution",
                   "server", "latent_preview", "node_helpers", "app"}
MAX_FUNCTION_LINES = 60
# The one place the current ComfyUI laid beside every checkout is named: the Makefile's default, which a user's
# clone without it never reaches (tests/run_suite.py says how to set COMFYUI_PATH instead).
ALLOWED_SHARED_PATH = ("Makefile", "CURRENT_COMFYUI ?= ../" + "shared/comfyui/current")


def _source_files(*folders: str) -> list[Path]:
    files = []
    for folder in folders:
        files += sorted((REPO / folder).rglob("*.py"))
    return files


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """(level, dotted name) of every import in the file, relative ones with their level."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found += [(node.level, node.module or "")]
    return found


def test_the_math_package_never_imports_comfyui_or_the_tooling():
    for path in _source_files("blendspace"):
        for level, name in _imported_modules(path):
            top = name.split(".")[0]
            assert level > 0 or top not in COMFYUI_MODULES, f"{path.name} imports ComfyUI's {name}"
            if path.name != "__main__.py":  # the documented `python -m blendspace` forwards to the tooling
                assert top != "blendspace_tools", f"{path.name} imports the tooling"


def _imports_comfyui(path: Path) -> list[str]:
    """The ComfyUI modules ``path`` imports, at any depth (inside functions too) or through importlib by name."""
    found = [name for level, name in _imported_modules(path) if level == 0 and name.split(".")[0] in COMFYUI_MODULES]
    text = path.read_text()
    for module in re.findall(r"import_module\(\s*[\"']([\w.]+)", text):
        if module.split(".")[0] in COMFYUI_MODULES:
            found.append(module)
    return found


def test_only_the_runtime_layer_imports_comfyui():
    """Within ``nodes/``, ComfyUI is imported by ``nodes/runtime/`` only; node modules, their shared input
    declarations and entry checks make thin calls into it."""
    runtime = REPO / "nodes" / "runtime"
    outside = {str(p.relative_to(REPO)): _imports_comfyui(p) for p in _source_files("nodes")
               if runtime not in p.parents}
    assert {p: names for p, names in outside.items() if names} == {}
    inside = [p for p in _source_files("nodes/runtime") if _imports_comfyui(p)]
    assert len(inside) >= 5, "the runtime layer is where ComfyUI is imported"


def test_node_modules_never_import_each_other():
    for path in (REPO / "nodes").glob("nodes_*.py"):
        for level, name in _imported_modules(path):
            if level == 1:  # `from .x import ...` / `from . import x`
                assert not name.startswith("nodes_"), f"{path.name} imports the node module {name}"
        text = path.read_text()
        assert not re.search(r"from \. import [^\n]*nodes_", text), f"{path.name} imports a node module"


def test_node_methods_take_node_inputs_only(comfy):
    for node_id, cls in comfy.pack.NODE_CLASS_MAPPINGS.items():
        spec = cls.INPUT_TYPES()
        names = {n for section in ("required", "optional") for n in spec.get(section, {})}
        params = inspect.signature(getattr(cls, cls.FUNCTION)).parameters.values()
        extra = [p.name for p in params if p.name not in names and p.name != "self"
                 and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
        assert not extra, f"{node_id}.{cls.FUNCTION} takes arguments that are not node inputs: {extra}"


def test_no_function_is_longer_than_sixty_lines():
    too_long = []
    folders = [f for f in ("blendspace", "blendspace_tools", "nodes", "benchmarks") if (REPO / f).is_dir()]
    for path in _source_files(*folders):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines} lines)")
    assert not too_long, too_long


def test_comments_point_only_at_documents_in_the_repository():
    outside = ("SEEDS" + ".md", "REFERENCE" + ".md", "checklist" + " item", "../" + "shared/")  # split: not cited here
    pattern = re.compile("|".join(re.escape(name) for name in outside))
    files = [p for p in REPO.rglob("*") if (p.suffix in (".py", ".md", ".toml", ".txt", ".ini") or p.name == "Makefile"
                                            or p.parent.name == ".ci") and p.is_file()
             and not {".venv", ".git", "node_modules"} & set(p.relative_to(REPO).parts)]
    cited = [f"{p.relative_to(REPO)}: {line.strip()}" for p in files for line in p.read_text().splitlines()
             if pattern.search(line) and (p.name, line.strip()) != ALLOWED_SHARED_PATH]
    assert not cited, cited
    techniques = REPO / "docs" / "techniques.md"
    headings = set(re.findall(r"^## (.+)$", techniques.read_text(), re.M))
    for p in _source_files("blendspace", "nodes"):
        for heading in re.findall(r'docs/techniques\.md, "([^"]+)"', p.read_text()):
            assert heading in headings, f"{p.name} points at a missing section {heading!r} of docs/techniques.md"
