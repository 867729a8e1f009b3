"""Every ``python -m blendspace`` and ``make`` command shown in README.md runs, as written, so that an example can
never drift from the code again.

The README is parsed (fenced and indented code blocks, inline code; lines ending in a backslash
joined). A command the suite cannot run (an install, a GPU, ``make test`` itself) carries a marker in
the README source, ``<!-- test_readme_commands: skip `PREFIX`: why -->``; every other command is run
in a folder that looks like a checkout (links to the repository's files, its own ``output/``), with
only what a command needs to run offline changed:

- ``make ...``: ``make -n`` gives the recipe, whose ``python -m blendspace`` lines are run;
- ``run``: ``--smoke`` added (tiny random models instead of the weights), the README's two servers
  (ports 8188 and 8189) are two servers started here with the test pack;
- ``~/ComfyUI``: the ComfyUI under test (for ``evaluate``: a folder holding random weights of the
  architecture the example names);
- commands that rewrite ``workflows/`` (``thumbnails``, ``regenerate``) write into a copy (``--dest``);
- ``serve``: a free port and its own work folder, stopped once it answers.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from comfy_servers import STARTED, ServerProcess, free_port, share_cores, start_server

from blendspace_tools.comfyui_locator import comfyui_root

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
SKIP = re.compile(r"<!-- test_readme_commands: skip `([^`]+)`: (.+?) -->")
ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")
PROGRAMS = ("make", "python", ".venv/bin/python", "pip", "git", "comfy")
TIMEOUT = 900


def _join(lines: list[str]) -> list[str]:
    """Shell lines with trailing backslashes joined."""
    out, current = [], ""
    for line in lines:
        current += line.strip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        if current:
            out.append(current)
        current = ""
    return out


def _code(text: str) -> list[str]:
    """Every candidate command: lines of fenced and indented code blocks, and inline code spans."""
    found: list[str] = []
    fenced = re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.M | re.S)
    for block in fenced:
        found += _join(block.splitlines())
    prose = re.sub(r"^```[a-z]*\n.*?^```|<!--.*?-->", "", text, flags=re.M | re.S)
    for block in re.findall(r"(?:^\n)((?:^    .*\n)+)", prose, flags=re.M):
        found += _join([line[4:] for line in block.splitlines()])
    for span in re.findall(r"`([^`]+)`", prose):
        found.append(" ".join(span.split()))
    return found


def _words(command: str) -> list[str]:
    """The command's words after its leading ``VAR=value`` assignments."""
    words = shlex.split(command)
    while words and ASSIGNMENT.match(words[0]):
        words.pop(0)
    return words


def _is_command(words: list[str]) -> bool:
    if not words or words[0] not in PROGRAMS:
        return False
    if words[0] in ("python", ".venv/bin/python"):
        return words[1:3] == ["-m", "blendspace"] and len(words) > 3
    return words[0] != "make" or len(words) > 1 and not words[1].startswith("-")


def readme_commands() -> list[str]:
    seen: dict[str, None] = {}
    for text in _code(README):
        try:
            words = _words(text)
        except ValueError:
            continue
        if _is_command(words):
            seen.setdefault(text, None)
    return list(seen)


def _skip_reason(command: str) -> str | None:
    words = " ".join(_words(command))
    for prefix, reason in SKIP.findall(README):
        if words.startswith(prefix):
            return reason
    return None


COMMANDS = readme_commands()
RUNNABLE = [c for c in COMMANDS if _skip_reason(c) is None]


def test_the_readme_commands_are_found_and_every_one_is_run_or_marked():
    assert len(COMMANDS) >= 12, COMMANDS
    for command in COMMANDS:
        words = _words(command)
        if _skip_reason(command) is None:
            assert words[0] == "make" or words[1:3] == ["-m", "blendspace"], \
                f"{command!r} is neither run here nor marked with <!-- test_readme_commands: skip `...`: why -->"
    for prefix, _ in SKIP.findall(README):
        assert any(" ".join(_words(c)).startswith(prefix) for c in COMMANDS), f"the skip marker {prefix!r} is stale"
    shown = " ".join(" ".join(_words(c)) for c in RUNNABLE)
    for command in ("make run", "make serve", "make thumbnails", "blendspace run", "blendspace evaluate",
                    "blendspace models", "blendspace regenerate"):
        assert command in shown, f"no {command} example is run"


# --- the place the commands run in --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A folder that looks like the checkout: links to the repository's files, its own output/ and the files the
    examples name (images to mix, results and photos to evaluate)."""
    from PIL import Image
    view = tmp_path_factory.mktemp("checkout")
    for entry in REPO.iterdir():
        if entry.name not in (".git", "output", "mix_sweep", "out", "photos", "my_images", "table.csv"):
            (view / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    for folder, names in (("my_images", ("boromir.jpg", "gigachad.jpg")), ("out", ("bear.png",)),
                          ("photos", ("bear.png",))):
        (view / folder).mkdir()
        for k, name in enumerate(names):
            Image.new("RGB", (64, 64), (40 * k + 30, 120, 200 - 40 * k)).save(view / folder / name)
    return view


@pytest.fixture(scope="module")
def evaluation_weights(tmp_path_factory) -> Path:
    """A ComfyUI-shaped folder with random weights of OpenAI's ViT-B/32 architecture (open_clip's
    ViT-B-32-quickgelu, the evaluation's default), at the path the README's example names."""
    import open_clip
    import torch
    from safetensors.torch import save_file
    root = tmp_path_factory.mktemp("ComfyUI-evaluate")
    target = root / "models" / "open_clip" / "ViT-B-32-openai.safetensors"
    target.parent.mkdir(parents=True)
    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32-quickgelu")
    save_file({k: v.detach().half().contiguous() for k, v in model.state_dict().items()}, str(target))
    return root


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory):
    """The README's two servers, started here with the test pack's tiny models (CPU, each with half the cores)."""
    work = tmp_path_factory.mktemp("readme_servers")
    started = [start_server(work / name, with_test_pack=True, api_only=True, env=share_cores(2)) for name in "ab"]
    try:
        for server in started:
            server.wait_ready()
        yield {"http://127.0.0.1:8188": started[0].url, "http://127.0.0.1:8189": started[1].url}
    finally:
        for server in started:
            server.stop()


# --- running one -------------------------------------------------------------------------------------------------


def _blendspace_lines(command: str, view: Path) -> list[list[str]]:
    """The ``python -m blendspace`` command lines a README command runs (``make -n`` for make)."""
    words = _words(command)
    if words[0] != "make":
        return [words]
    dry = subprocess.run(["make", "-n", *words[1:]], cwd=str(view), capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0, f"make -n {' '.join(words[1:])}: {dry.stderr}"
    lines = [shlex.split(line) for line in dry.stdout.splitlines() if "-m blendspace " in f"{line} "]
    assert lines, f"{command!r} runs no python -m blendspace command: {dry.stdout}"
    return lines


def _adapt(argv: list[str], view: Path, request) -> list[str]:
    """What the suite changes so the command runs offline (see the module docstring)."""
    sub = argv[3]
    home = request.getfixturevalue("evaluation_weights") if sub == "evaluate" else comfyui_root()
    argv = [sys.executable, *argv[1:]]
    argv = [str(home) + arg[len("~/ComfyUI"):] if arg.startswith("~/ComfyUI") else arg for arg in argv]
    if sub == "run" and "--smoke" not in argv:
        argv.append("--smoke")
    if "--server" in argv:
        urls = request.getfixturevalue("two_servers")
        argv = [urls.get(arg, arg) for arg in argv]
    if sub in ("thumbnails", "regenerate", "build-workflows") and "--dest" not in argv:
        copy = view / f"workflows-{sub}"
        shutil.copytree(REPO / "workflows", copy, dirs_exist_ok=True)
        argv += ["--dest", str(copy)]
    return argv


def _serve(argv: list[str], view: Path) -> None:
    """Start the command's server on a free port in its own folder, wait until it answers, stop it."""
    port, work = free_port(), view / f"serve-{len(STARTED)}"
    work.mkdir()
    log = work / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen([*argv, "--port", str(port), "--workdir", str(work), "--api-only"], cwd=str(view),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = ServerProcess(port, proc, work, log)
    STARTED.append(server)
    try:
        server.wait_ready()
    finally:
        server.stop()
    failed = [line for line in server.log(20000).splitlines() if "Cannot import" in line and "Blendspace" in line]
    assert not failed, failed  # it answered with the pack's nodes (wait_ready); ComfyUI's own failures may show


def _check_result(sub: str, argv: list[str], res: subprocess.CompletedProcess, view: Path) -> None:
    if sub == "run":
        printed = [Path(line) for line in res.stdout.splitlines() if line.strip()]
        assert printed and all(p.is_file() and p.is_relative_to(view) for p in printed), res.stdout
    elif sub == "evaluate":
        table = view / argv[argv.index("--out") + 1]
        assert table.read_text().splitlines()[0].startswith("result,"), table.read_text()
    elif sub == "regenerate":
        dest = Path(argv[argv.index("--dest") + 1])
        for path in sorted(dest.glob("*.json")):
            assert json.loads(path.read_text()) == json.loads((REPO / "workflows" / path.name).read_text()), path.name
    elif sub == "models":
        assert re.search(r"^  (ok|MISSING) ", res.stdout, flags=re.M), res.stdout


@pytest.mark.parametrize("command", RUNNABLE, ids=[c[:60] for c in RUNNABLE])
def test_every_readme_command_runs_as_written(command, checkout, request):
    for line in _blendspace_lines(command, checkout):
        argv = _adapt(line, checkout, request)
        sub = argv[3]
        if sub == "serve":
            _serve(argv, checkout)
            continue
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        res = subprocess.run(argv, cwd=str(checkout), env=env, capture_output=True, text=True, timeout=TIMEOUT)
        assert res.returncode == 0 and "Traceback" not in res.stderr, f"{' '.join(argv)}\n{res.stderr[-4000:]}"
        _check_result(sub, argv, res, checkout)
