"""``python -m blendspace evaluate``: dual-style-image-gen's evaluation of a folder of results.

Every path is checked before a model is built, so a mistyped ``--open-clip`` or a missing folder
is one line naming the option, not a traceback after a minute of loading. The scores themselves
are ``blendspace/evaluation.py``'s; ``python -m blendspace models --evaluate`` names the weights
the source used and where to get them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import UsageError

WEIGHTS_HINT = ("open_clip weights, e.g. OpenAI's ViT-B/32 as the source used (python -m blendspace models --evaluate "
                "says where to get them)")


def _file(option: str, value: str | None, what: str) -> Path | None:
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        raise UsageError(f"{option} {value}: {'there is no such file' if not path.exists() else 'not a file'}; "
                         f"give {what}")
    return path


def _folder(option: str, value: str | None, what: str) -> Path | None:
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise UsageError(f"{option} {value}: {'there is no such folder' if not path.exists() else 'not a folder'}; "
                         f"give {what}")
    return path


def check_arguments(args: argparse.Namespace) -> None:
    """Every file and folder the options name exists, and the options go together."""
    if not args.manifest and not (args.results and args.originals and args.encode_text and args.decode_text):
        raise UsageError("give --manifest, or --results, --originals, --encode-text and --decode-text")
    if args.vgg19 and not args.style_refs:
        raise UsageError("--vgg19 needs --style-refs (a folder of the style's reference images)")
    _file("--open-clip", args.open_clip, WEIGHTS_HINT)
    _file("--manifest", args.manifest, "a JSON list of {result, original, encode_text, decode_text}")
    _folder("--results", args.results, "the folder of the images to score")
    _folder("--originals", args.originals, "the folder of the source images (same file names as the results)")
    _file("--vgg19", args.vgg19, "torchvision's VGG19 weights (vgg19-dcbb9e9d.pth)")
    _folder("--style-refs", args.style_refs, "a folder of the style's reference images")


def _vgg19(path: Path):
    """torchvision's VGG19 feature layers with the weights at ``path``."""
    import torchvision

    from blendspace.open_clip_models import read_state_dict
    net = torchvision.models.vgg19()
    try:
        net.load_state_dict(read_state_dict(path))
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise UsageError(f"--vgg19 {path}: not torchvision's VGG19 weights ({first})") from None
    return net.features.eval()


def evaluate(args: argparse.Namespace) -> int:
    """Score the results and write the CSV table (``--out``, else standard output)."""
    from blendspace.evaluation import IMAGE_SUFFIXES, load_image, samples_from_folders, samples_from_manifest, to_csv
    from blendspace.evaluation import evaluate as run_evaluation
    from blendspace.open_clip_models import load_open_clip
    check_arguments(args)
    if args.manifest:
        samples = samples_from_manifest(Path(args.manifest))
    else:
        samples = samples_from_folders(Path(args.results), Path(args.originals), args.encode_text, args.decode_text,
                                       args.decode_text_left, args.decode_text_right)
    model = load_open_clip(Path(args.open_clip).expanduser(), args.architecture)
    vgg, refs = None, []
    if args.vgg19:
        vgg = _vgg19(Path(args.vgg19).expanduser())
        refs = [load_image(p) for p in sorted(Path(args.style_refs).expanduser().iterdir())
                if p.suffix.lower() in IMAGE_SUFFIXES]
    rows = run_evaluation(samples, model.encode_images, model.encode_texts, vgg, refs, args.gram == "faithful")
    table = to_csv(rows)
    if args.out:
        Path(args.out).write_text(table)
        print(f"blendspace: {len(rows)} result(s) evaluated, table in {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(table)
    return 0
