"""What users find before they run a node: search aliases, help pages, registry metadata and the publish workflow.

- Every registered node has ``SEARCH_ALIASES`` (current ComfyUI feeds them to the node search; older versions
  ignore the attribute) and a help page ``web/docs/<NodeId>.md``, served through ``WEB_DIRECTORY`` at
  ``/extensions/<pack folder>/docs/<NodeId>.md``, where the current frontend's help panel looks for it.
- ``pyproject.toml`` is read the way comfy-cli reads it for ``comfy node publish`` (plain TOML, the same keys),
  with the registry's rules on names, versions, URLs and the icon.
- ``.github/workflows/publish.yml`` publishes with the registry's GitHub Action.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import tomllib
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "web" / "docs"
PYPROJECT = REPO / "pyproject.toml"
WORKFLOW = REPO / ".github" / "workflows" / "publish.yml"
# What the issue says artists type and find nothing for: each must reach at least one node.
TYPED = ("mix images", "blend two images", "style blend", "morph", "interpolate prompts", "prompt mix", "image prompt",
         "latent walk", "strength sweep", "gif", "clip score")
# The [project.urls] keys comfy-cli copies into the registry; any other key is dropped without a word.
REGISTRY_URL_KEYS = {"Homepage", "Documentation", "Repository", "Issues"}
ICON_SUFFIXES = {".png", ".svg", ".jpg", ".jpeg", ".gif"}
# The five source documents, by the names their projects go by (lower case, as matched).
SOURCE_PROJECTS = ("images-mixing pipeline", "flexdiffuse", "dual-style-image-gen", "img2img blog post", "stablefused")


def _nodes(comfy) -> dict:
    return dict(comfy.pack.NODE_CLASS_MAPPINGS)


def _inputs(cls) -> list[str]:
    spec = cls.INPUT_TYPES()
    return [*spec.get("required", {}), *spec.get("optional", {})]


def _sections(text: str) -> dict[str, str]:
    """``{"": the part before the first '## ' heading, "Inputs": ..., ...}`` of a Markdown page."""
    out: dict[str, str] = {}
    name = ""
    for line in text.splitlines():
        if line.startswith("## "):
            name = line[3:].strip()
            out[name] = ""
        else:
            out[name] = out.get(name, "") + line + "\n"
    return out


# ---------------------------------------------------------------------------------------------- search aliases

def test_every_node_has_search_aliases(comfy):
    problems = []
    for node_id, cls in _nodes(comfy).items():
        aliases = getattr(cls, "SEARCH_ALIASES", None)
        if not isinstance(aliases, list) or len(aliases) < 3:
            problems.append(f"{node_id}: SEARCH_ALIASES must be a list of at least 3 search terms, got {aliases!r}")
            continue
        if not all(isinstance(a, str) and a.strip() == a and a for a in aliases):
            problems.append(f"{node_id}: every alias must be a non-empty string without outer spaces: {aliases}")
        if len({a.lower() for a in aliases}) != len(aliases):
            problems.append(f"{node_id}: duplicate aliases in {aliases}")
        if cls.DISPLAY_NAME.lower() in {a.lower() for a in aliases}:
            problems.append(f"{node_id}: an alias repeats the display name, which search finds anyway")
    assert not problems, "\n".join(problems)


def test_what_users_type_finds_a_node(comfy):
    found = {term: sorted(node_id for node_id, cls in _nodes(comfy).items()
                          if term in (a.lower() for a in cls.SEARCH_ALIASES)) for term in TYPED}
    assert all(found.values()), f"search terms that reach no node: {[t for t, ids in found.items() if not ids]}"
    assert {"SlerpLatents", "ClipImageGuidanceSampler"} <= set(found["mix images"])
    assert "SlerpConditioning" in found["interpolate prompts"]


# ---------------------------------------------------------------------------------------------- help pages

def _page_problems(node_id: str, cls) -> list[str]:
    """What is wrong with (or missing from) one node's help page, in words a page author can act on."""
    path = DOCS / f"{node_id}.md"
    if not path.is_file():
        return [f"{node_id}: no help page {path.relative_to(REPO)}"]
    text = path.read_text(encoding="utf-8")
    parts = _sections(text)
    problems = []
    if not text.startswith(f"# {cls.DISPLAY_NAME}\n"):
        problems.append(f"{node_id}: the page must start with '# {cls.DISPLAY_NAME}' (the display name)")
    if f"`{node_id}`" not in parts.get("", ""):
        problems.append(f"{node_id}: the page must name the node id `{node_id}` under its title")
    if not re.search(r"^\*\*Math:\*\* \S", parts.get("", ""), re.MULTILINE):
        problems.append(f"{node_id}: no '**Math:** ...' line")
    rows = re.findall(r"^\| `(\w+)` \|", parts.get("Inputs", ""), re.MULTILINE)
    if rows != _inputs(cls):
        problems.append(f"{node_id}: the Inputs table lists {rows}; the node's inputs, in order, are {_inputs(cls)}")
    outputs = parts.get("Outputs", "")
    missing_out = [n for n in getattr(cls, "RETURN_NAMES", ()) if f"`{n}`" not in outputs]
    if "Outputs" not in parts or missing_out:
        problems.append(f"{node_id}: the Outputs section does not name {missing_out or 'anything'}")
    for section in ("Typical wiring", "Source"):
        if not parts.get(section, "").strip():
            problems.append(f"{node_id}: no '## {section}' section")
    for project in SOURCE_PROJECTS:
        if project in cls.DESCRIPTION.lower() and project not in parts.get("Source", "").lower():
            problems.append(f"{node_id}: the description cites {project} but the Source section does not")
    if re.search(r"seed 00\d", cls.DESCRIPTION + text, re.IGNORECASE):
        problems.append(f"{node_id}: a source is named by a code ('seed 00N'), which reads as a random seed: name its "
                        "project")
    return problems


def test_every_node_has_a_help_page_naming_every_input(comfy):
    problems = [p for node_id, cls in _nodes(comfy).items() for p in _page_problems(node_id, cls)]
    assert not problems, "\n".join(problems)


def test_every_help_page_belongs_to_a_registered_node(comfy):
    """A renamed or removed node must take its page along (``<NodeId>.md``, or ``<NodeId>/<locale>.md``)."""
    ids = set(_nodes(comfy))
    pages = {p.stem for p in DOCS.glob("*.md")} | {p.parent.name for p in DOCS.glob("*/*.md")}
    assert pages and pages <= ids, f"help pages without a node: {sorted(pages - ids)}"


def test_comfyui_registers_the_web_directory(comfy):
    """Both the 2024 and the current loader pick up WEB_DIRECTORY and serve it at /extensions/<pack folder>/;
    the attribute and SEARCH_ALIASES change nothing else (every node is registered, see the harness)."""
    from blendspace_tools.runner import PACK_NAME
    assert comfy.pack.WEB_DIRECTORY == "./web" and "WEB_DIRECTORY" in comfy.pack.__all__
    web_dirs = comfy.nodes.EXTENSION_WEB_DIRS
    assert PACK_NAME in web_dirs, f"ComfyUI registered no web folder for {PACK_NAME}: {sorted(web_dirs)}"
    assert Path(web_dirs[PACK_NAME]).resolve() == (REPO / "web").resolve()
    assert set(_nodes(comfy)) <= set(comfy.nodes.NODE_CLASS_MAPPINGS)


# ---------------------------------------------------------------------------------------------- pyproject.toml

@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))


def _registry_name(name: str) -> str:
    """The name comfy-cli would make of ``name``: lower case, runs of other characters than a-z 0-9 . _ - turned
    into one '-', no separator at either end."""
    return re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("._-")


def test_project_table_passes_the_registry_rules(pyproject):
    project = pyproject["project"]
    name = project["name"]
    assert name == _registry_name(name) and len(name) < 100, f"{name!r} is not a valid registry id"
    assert re.fullmatch(r"[a-z][a-z0-9]*([._-][a-z0-9]+)*", name), f"{name!r}: letters first, no doubled separators"
    assert "comfyui" not in name, "the registry asks for names without 'ComfyUI'"
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"]), f"version {project['version']!r} is not semver X.Y.Z"
    assert len(project["description"]) > 20
    license_file = project["license"]["file"]
    assert (REPO / license_file).is_file(), f"license file {license_file} is missing"
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    installs = re.findall(r"comfy node install (\S+?)`", readme)
    assert installs and set(installs) == {name}, f"the README installs {installs}, the registry id is {name!r}"


def test_urls_point_at_the_repository_the_readme_clones(pyproject):
    urls = pyproject["project"]["urls"]
    assert set(urls) <= REGISTRY_URL_KEYS, f"comfy-cli ignores {sorted(set(urls) - REGISTRY_URL_KEYS)}"
    repo = urls["Repository"]
    parsed = urlparse(repo)
    assert parsed.scheme == "https" and parsed.netloc == "github.com" and len(parsed.path.strip("/").split("/")) == 2
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"git clone {repo} " in readme, "the README's git clone URL differs from [project.urls] Repository"
    assert {"Documentation", "Issues"} <= set(urls)
    for key, url in urls.items():
        assert url.startswith(repo), f"{key} = {url} is not under {repo}"
    assert urls["Issues"] == repo + "/issues"


def test_tool_comfy_is_complete(pyproject):
    comfy = pyproject["tool"]["comfy"]
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", comfy["PublisherId"]), comfy["PublisherId"]
    assert comfy["DisplayName"].strip()
    assert "web" not in comfy, "a [tool.comfy] web folder would be served a second time, under the project name"
    includes = comfy["includes"]
    assert isinstance(includes, list) and all(isinstance(i, str) for i in includes)
    for folder in includes:
        assert (REPO / folder).is_dir(), f"includes names {folder!r}, which is not a folder of the repository"
    assert {"web", "workflows"} <= set(includes)
    for model in comfy.get("Models", []):
        assert set(model) == {"location", "model_url"}


def test_icon_is_a_small_square_image_of_this_repository(pyproject):
    icon = pyproject["tool"]["comfy"]["Icon"]
    repo_path = urlparse(pyproject["project"]["urls"]["Repository"]).path.strip("/")
    parsed = urlparse(icon)
    assert parsed.scheme == "https" and parsed.netloc == "raw.githubusercontent.com", f"Icon {icon!r}"
    owner, name, branch, *rest = parsed.path.strip("/").split("/")
    assert f"{owner}/{name}" == repo_path, f"the icon is served from {owner}/{name}, the repository is {repo_path}"
    assert branch == "main" and rest
    path = REPO.joinpath(*rest)
    assert path.is_file(), f"Icon points at {'/'.join(rest)}, which is not in the repository"
    assert path.suffix.lower() in ICON_SUFFIXES
    if path.suffix.lower() != ".svg":
        with Image.open(path) as img:
            assert img.width == img.height <= 400, f"the icon is {img.size}; the registry wants square, at most 400 px"


def _requires_parts(spec: str) -> list[tuple[str, str]]:
    """``[(operator, version), ...]`` of a requires-comfyui value, in the form comfy-cli accepts: comma-separated
    parts, each an optional comparison operator and a major.minor.patch version; anything else raises."""
    parts = []
    for part in (p.strip() for p in spec.split(",")):
        m = re.fullmatch(r"(==|>=|<=|!=|~=|>|<)?\s*(\d+\.\d+\.\d+)", part)
        if m is None:
            raise ValueError(f"requires-comfyui part {part!r} is not [operator]major.minor.patch")
        parts.append((m.group(1) or "==", m.group(2)))
    return parts


def test_requires_comfyui_covers_every_numbered_release(pyproject):
    from packaging.specifiers import SpecifierSet
    spec = pyproject["tool"]["comfy"]["requires-comfyui"]
    assert _requires_parts(spec)
    allowed = SpecifierSet(spec)
    # 0.0.1 is ComfyUI's first numbered release (the March 2024 code the suite runs on predates numbers);
    # 0.3.64 is the current ComfyUI the suite runs on.
    assert {"0.0.1", "0.3.64", "0.4.0"} <= set(allowed.filter(["0.0.1", "0.3.64", "0.4.0"]))
    with pytest.raises(ValueError):
        _requires_parts("1.0")


def test_this_comfyui_version_is_allowed(pyproject, comfy):
    from packaging.specifiers import SpecifierSet
    version_file = comfy.root / "comfyui_version.py"
    if not version_file.is_file():
        pytest.skip("this ComfyUI (the March 2024 code) has no version number to check requires-comfyui against")
    version = re.search(r"__version__\s*=\s*\"([^\"]+)\"", version_file.read_text()).group(1)
    assert version in SpecifierSet(pyproject["tool"]["comfy"]["requires-comfyui"])


def test_current_comfyui_reads_the_same_metadata(pyproject, comfy):
    """ComfyUI's own pyproject parser (current versions, kept in step with comfy-cli's) reads the same values."""
    try:
        from comfy_config import config_parser
    except ImportError:
        pytest.skip("this ComfyUI (the March 2024 code) has no comfy_config; it does not read pyproject.toml")
    config = config_parser.extract_node_configuration(str(REPO))
    tool = pyproject["tool"]["comfy"]
    assert config.project.name == pyproject["project"]["name"]
    assert config.project.version == pyproject["project"]["version"]
    assert config.project.urls.repository == pyproject["project"]["urls"]["Repository"]
    assert config.project.urls.issues == pyproject["project"]["urls"]["Issues"]
    assert config.project.supported_comfyui_version == tool["requires-comfyui"]
    assert (config.tool_comfy.publisher_id, config.tool_comfy.icon) == (tool["PublisherId"], tool["Icon"])
    assert config.tool_comfy.includes == tool["includes"] and not config.tool_comfy.web


def test_registry_security_check_finds_nothing():
    """``comfy node publish`` runs ruff's exec / eval / one-line-statements rules over the pack and warns."""
    res = subprocess.run([sys.executable, "-m", "ruff", "check", ".", "-q", "--select", "S102,S307,E702"],
                         cwd=str(REPO), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and not res.stdout.strip(), res.stdout + res.stderr


# ---------------------------------------------------------------------------------------------- publish workflow

def test_publish_workflow_uses_the_registry_action():
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    triggers = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` key as True
    push = triggers["push"]
    assert "pyproject.toml" in push["paths"], "a version bump in pyproject.toml must trigger a release"
    assert push["branches"] == ["main"]
    steps = [step for job in data["jobs"].values() for step in job["steps"]]
    uses = [step.get("uses", "") for step in steps]
    checkout = [i for i, u in enumerate(uses) if u.startswith("actions/checkout@")]
    publish = [i for i, u in enumerate(uses) if re.fullmatch(r"Comfy-Org/publish-node-action@v\d+", u)]
    assert len(publish) == 1, f"no step uses Comfy-Org/publish-node-action: {uses}"
    assert checkout and checkout[0] < publish[0], "the code must be checked out before publishing"
    token = steps[publish[0]]["with"]["personal_access_token"]
    assert re.fullmatch(r"\$\{\{\s*secrets\.REGISTRY_ACCESS_TOKEN\s*\}\}", token), token
