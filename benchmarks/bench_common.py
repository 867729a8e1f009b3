"""What the benchmarks share: command line (``--device``, ``--size``), the random U-Nets (mid-size by default,
full-size SD1.5 / SDXL configs with ``--size full``), round-robin median timing and peak memory.

No download: every model has random weights drawn in the run. Timings are for ratios measured within one run
(and, on a GPU with ``--size full``, absolute per-step times).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from comfy_harness import boot  # noqa: E402

MID_UNET = dict(use_checkpoint=False, image_size=32, out_channels=4, use_spatial_transformer=True, legacy=False,
                adm_in_channels=None, in_channels=4, model_channels=96, num_res_blocks=[1, 1, 1],
                transformer_depth=[1, 1, 1], channel_mult=[1, 2, 4], transformer_depth_middle=1,
                transformer_depth_output=[1, 1, 1, 1, 1, 1], use_linear_in_transformer=False,
                context_dim=32, num_heads=8, use_temporal_attention=False, use_temporal_resblock=False)
"""Mid-size SD1.x-shaped U-Net (the default ``--size small``; context 32 wide as the tiny test CLIP)."""

SD15_FULL = dict(use_checkpoint=False, image_size=32, out_channels=4, use_spatial_transformer=True, legacy=False,
                 adm_in_channels=None, in_channels=4, model_channels=320, num_res_blocks=[2, 2, 2, 2],
                 transformer_depth=[1, 1, 1, 1, 1, 1, 0, 0], channel_mult=[1, 2, 4, 4], transformer_depth_middle=1,
                 transformer_depth_output=[1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0], use_linear_in_transformer=False,
                 context_dim=768, num_heads=8, use_temporal_attention=False, use_temporal_resblock=False)
"""The SD1.5 U-Net's configuration (860M parameters)."""

SDXL_FULL = dict(use_checkpoint=False, image_size=32, out_channels=4, use_spatial_transformer=True, legacy=False,
                 num_classes="sequential", adm_in_channels=2816, in_channels=4, model_channels=320,
                 num_res_blocks=[2, 2, 2], transformer_depth=[0, 0, 2, 2, 10, 10], channel_mult=[1, 2, 4],
                 transformer_depth_middle=10, transformer_depth_output=[0, 0, 0, 2, 2, 2, 10, 10, 10],
                 use_linear_in_transformer=True, context_dim=2048, num_head_channels=64,
                 use_temporal_attention=False, use_temporal_resblock=False)
"""The SDXL base U-Net's configuration (2.6B parameters)."""

FULL = {"sd15": ("SD15", SD15_FULL, 64, 768), "sdxl": ("SDXL", SDXL_FULL, 128, 2048)}
"""``--size full``: family, U-Net config, latent side (512² and 1024² images) and text width."""

FULL_VAE = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
            "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}
"""The SD / SDXL VAE's configuration (83M parameters)."""


DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
"""``--dtype``: the U-Net's weights and compute dtype (``auto``: fp32 on the CPU, fp16 on CUDA)."""


def parse_args(description: str, extra=None) -> argparse.Namespace:
    """The shared options; ``extra(parser)`` adds a benchmark's own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda: ComfyUI runs on its own GPU choice")
    parser.add_argument("--size", choices=("small", "full"), default="small",
                        help="small: mid-size random U-Net (seconds on a CPU); full: SD1.5 at 512² and SDXL at "
                             "1024² with random weights (for a GPU)")
    parser.add_argument("--models", default=",".join(FULL),
                        help="with --size full: which of sd15, sdxl (comma-separated; SDXL needs about 40 GB on a CPU)")
    parser.add_argument("--image", type=int, default=None,
                        help="with --size full: image side in px, a multiple of 8 (default 512 for SD1.5, 1024 for "
                             "SDXL; smaller fits a CPU's memory: the full VAE's backward at 512 px needs over 24 GB)")
    parser.add_argument("--steps", type=int, default=None, help="sampler steps per run (default: the benchmark's)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per variant (median)")
    add_smoke(parser)
    parser.add_argument("--dtype", default="auto",
                        help="with --size full: the U-Net's dtype, one of auto, fp32, fp16, bf16 (auto: fp32 on the "
                             "CPU, fp16 on CUDA); several comma-separated measure each in turn")
    if extra is not None:
        extra(parser)
    args = parser.parse_args()
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in args.models if m not in FULL]
    if unknown:
        parser.error(f"--models: unknown {unknown}; choose from {list(FULL)}")
    args.dtypes = [d.strip() for d in args.dtype.split(",") if d.strip()]
    if not args.dtypes or any(d != "auto" and d not in DTYPES for d in args.dtypes):
        parser.error(f"--dtype: choose from {['auto', *DTYPES]} (comma-separated), got {args.dtype!r}")
    if args.image is not None and (args.image < 64 or args.image % 8):
        parser.error(f"--image must be a multiple of 8 of at least 64, got {args.image}")
    return args


SMOKE_LATENT = 16
"""The latent side of a ``--smoke`` run (128 px images)."""


def add_smoke(parser: argparse.ArgumentParser) -> None:
    """``--smoke`` (or ``BLENDSPACE_BENCH_SMOKE=1``): a seconds-long check that a benchmark still runs and
    reports every key (1 repeat, 1-2 steps, the smallest sizes); its ratios mean nothing."""
    parser.add_argument("--smoke", action="store_true", default=os.environ.get("BLENDSPACE_BENCH_SMOKE") == "1",
                        help="seconds-long check that the benchmark runs (1 repeat, 1-2 steps, smallest sizes; the "
                             "ratios mean nothing)")


def full_size(args: argparse.Namespace, name: str) -> tuple[str, dict, int, int]:
    """``FULL[name]`` with the latent side ``--image`` asks for."""
    family, config, side, width = FULL[name]
    return family, config, (args.image // 8 if args.image else side), width


def model_names(args: argparse.Namespace) -> list[str]:
    """The models one benchmark run measures: ``small``, or the chosen full-size ones."""
    return list(args.models) if args.size == "full" else ["small"]


def device_name(args: argparse.Namespace) -> str:
    """The device the numbers come from, in words (CPU model and core count, or the GPU's name)."""
    if args.device != "cpu":
        return torch.cuda.get_device_name()
    import platform
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return f"cpu: {cpu}, {torch.get_num_threads()} threads"


def start(args):
    """Boot ComfyUI on the chosen device."""
    return boot(cpu=args.device == "cpu")


def unet_dtype(args: argparse.Namespace, name: str | None = None) -> torch.dtype:
    """The U-Net dtype ``name`` (default: the first of ``--dtype``) stands for (``auto``: fp32 on the CPU, fp16 on
    CUDA)."""
    name = name or args.dtypes[0]
    if name == "auto":
        return torch.float32 if args.device == "cpu" else torch.float16
    return DTYPES[name]


def unet_patcher(h, family: str, config: dict, seed: int = 0, dtype: torch.dtype | None = None):
    """A random U-Net of ``config`` in a ModelPatcher on ComfyUI's compute device (weights in ``dtype``, else
    ComfyUI's default for a config without one: fp32)."""
    import comfy.model_management as mm
    import comfy.model_patcher
    import comfy.supported_models
    model_config = getattr(comfy.supported_models, family)(dict(config))
    if dtype is not None:
        model_config.set_inference_dtype(dtype, None)
    model = model_config.get_model({})
    h.tiny.randomize(model.diffusion_model, seed)
    return comfy.model_patcher.ModelPatcher(model, load_device=mm.get_torch_device(),
                                            offload_device=mm.unet_offload_device())


def mid_unet(h):
    """The mid-size random SD1.x-shaped U-Net shared by the benchmarks."""
    return unet_patcher(h, "SD15", MID_UNET)


def conditioning(width: int, family: str, seed: int, side: int = 1024):
    """A random CONDITIONING of 77 tokens ``width`` wide (SDXL: with its pooled vector and size keys)."""
    g = torch.Generator().manual_seed(seed)
    extra = {"pooled_output": torch.randn(1, 1280 if family == "SDXL" else 768, generator=g)}
    if family == "SDXL":
        extra.update(width=side, height=side, target_width=side, target_height=side, crop_w=0, crop_h=0)
    return [[torch.randn(1, 77, width, generator=g), extra]]


def median_times(fns: dict, repeats: int = 7, first=None) -> dict:
    """Median time of each callable, run round-robin so drift in machine load hits all alike. Each runs once
    untimed first, through ``first(name, fn)`` when given (the peak-memory measurement).
    ``BLENDSPACE_BENCH_REPEATS`` overrides ``repeats`` (the test that checks the benchmarks still run uses 1)."""
    repeats = int(os.environ.get("BLENDSPACE_BENCH_REPEATS", repeats))
    for name, fn in fns.items():
        first(name, fn) if first else fn()
    times: dict = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            start_t = time.perf_counter()
            fn()
            _sync()
            times[k].append(time.perf_counter() - start_t)
    return {k: statistics.median(v) for k, v in times.items()}


def _trim():
    """Hand freed heap memory back to the OS (glibc), so one run's peak does not carry the last run's."""
    import ctypes
    import gc
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _sync():
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


class PeakMemory:
    """Peak memory of single runs. CUDA: ``torch.cuda.max_memory_allocated`` over the run (tensors only). CPU:
    the process's resident set size (psutil), polled every millisecond by a thread during the run, minus the
    resident size when this object was made (before the models were built): the models, their copies and the
    run's activations. tracemalloc would not see torch's CPU tensors."""

    def __init__(self, device: str):
        import psutil
        self.cuda = device != "cpu"
        self.process = psutil.Process()
        self.base = 0 if self.cuda else self.process.memory_info().rss
        self.peaks: dict = {}
        self.absolute: dict = {}  # CPU: the process's peak resident size itself (bytes)

    def __call__(self, name: str, fn) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            fn()
            torch.cuda.synchronize()
            self.peaks[name] = torch.cuda.max_memory_allocated()
            return
        _trim()
        peak, done = [self.process.memory_info().rss], threading.Event()

        def poll():
            while not done.is_set():
                peak[0] = max(peak[0], self.process.memory_info().rss)
                time.sleep(0.001)
        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        try:
            fn()
        finally:
            done.set()
            thread.join()
        self.absolute[name] = max(peak[0], self.process.memory_info().rss)
        self.peaks[name] = self.absolute[name] - self.base

    def over(self, name: str, reference: str) -> float:
        return round(self.peaks[name] / self.peaks[reference], 3)

    def method(self) -> str:
        return ("torch.cuda.max_memory_allocated" if self.cuda else
                "peak process RSS (psutil, 1 ms polling) minus RSS before the models were built")
