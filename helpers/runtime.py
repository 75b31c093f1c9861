"""Where are we running (and is the hub reachable), which profile, versions, time and peak memory."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from helpers import colab, t4
from helpers.switches import env_flag

try:  # Unix only (Linux, macOS): the process's peak resident memory
    import resource
except ImportError:  # Windows: psutil's peak working set instead (peak_rss_mb)
    resource = None  # type: ignore[assignment]

VERSIONED_PACKAGES = ("torch", "transformers", "trl", "peft", "unsloth", "unsloth_zoo", "datasets", "accelerate")


def hub_reachable(timeout: float = 3.0) -> bool:
    """True when the Hugging Face hub answers and HF_HUB_OFFLINE is not set. The env var is read on every call; the
    network answer is asked once per process (and timeout) and cached."""
    if hub_offline_set():
        return False
    return _hub_answers(timeout)


DATA_SOURCES = ("auto", "hub", "local")


def use_hub_data(source: str = "auto") -> bool:
    """Whether a notebook's (or recipe's) DATA_SOURCE means the hub's dataset: "hub" always, "auto" where the hub is
    reachable, "local" (the files in data/) never. Anything else raises ValueError."""
    if source not in DATA_SOURCES:
        raise ValueError(f"DATA_SOURCE={source!r}: use one of {', '.join(DATA_SOURCES)}")
    return source == "hub" or (source == "auto" and hub_reachable())


def hub_offline_set() -> bool:
    """True when HF_HUB_OFFLINE is set to one of huggingface_hub's on values."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


HUB_API = "https://huggingface.co/api/models?limit=1"  # any answer from the hub's API will do


@functools.lru_cache(maxsize=None)
def _hub_answers(timeout: float) -> bool:
    try:
        urllib.request.urlopen(HUB_API, timeout=timeout)
    except Exception:
        return False
    return True


def has_gpu() -> bool:
    """True when torch sees a CUDA device."""
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def environment() -> str:
    """One of 'colab', 'local-gpu', 'cpu'."""
    if colab.in_colab():
        return "colab"
    return "local-gpu" if has_gpu() else "cpu"


def device_name() -> str:
    """A short human-readable name of the device that trains (the real GPU's, also under T4 emulation)."""
    if has_gpu():
        if t4.active():
            return f"{t4.real_device_name()} (emulating a T4)"
        import torch

        return torch.cuda.get_device_name(0)
    if has_mps():
        return "Apple GPU (mps)"
    return f"CPU ({cpu_model()}, {os.cpu_count()} cores)"


@functools.lru_cache(maxsize=None)
def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's model as the system names it: on Linux /proc/cpuinfo's model name with its family and model numbers
    ("AMD EPYC, family 25 model 17": CPUs sold under one name differ in their instruction sets), elsewhere
    platform.processor(); "unknown CPU" when neither says."""
    if cpuinfo is None and sys.platform.startswith("linux"):
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as file:
                cpuinfo = file.read()
        except OSError:
            cpuinfo = None
    if cpuinfo:
        first = cpuinfo.split("\n\n")[0]  # the first processor's block
        fields = {}
        for line in first.splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
        name = fields.get("model name") or fields.get("Model") or fields.get("cpu model") or ""
        numbers = " ".join(f"{key.replace('cpu ', '')} {fields[key]}" for key in ("cpu family", "model")
                            if fields.get(key))
        if name:
            return f"{name}, {numbers}" if numbers else name
    return platform.processor() or "unknown CPU"


def cpu_kernels() -> dict[str, object]:
    """What decides the CPU's floating-point results besides the code: the CPU model, the number of threads torch
    computes with, and the instruction set its kernels were dispatched to (torch.backends.cpu.get_cpu_capability:
    AVX512, AVX2 or DEFAULT; ATEN_CPU_CAPABILITY changes it). The same seed gives other numbers when any of these
    differ."""
    import torch

    return {"cpu_model": cpu_model(), "torch_threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def has_mps() -> bool:
    """True when torch sees an Apple-silicon GPU (macOS only)."""
    try:
        import torch
    except ImportError:
        return False
    backend = getattr(torch.backends, "mps", None)
    return backend is not None and backend.is_available()


def emulate_t4_if_asked() -> list[str]:
    """With SMOL_EMULATE_T4=1 on a CUDA GPU, take a T4's precision and memory paths (see helpers.t4); call it before
    `import unsloth`. Does nothing otherwise. Returns what it changed."""
    return t4.emulate()


def emulated() -> str | None:
    """The emulated GPU ("T4") while helpers.t4 is on, else None."""
    return "T4" if t4.active() else None


def profile(env: dict[str, str] | None = None) -> str:
    """The run profile: 'smoke' when SMOKE_TEST is set to 1/true/yes, else 'full'."""
    return "smoke" if env_flag("SMOKE_TEST", env, " for the smoke profile") else "full"


def versions(packages: tuple[str, ...] = VERSIONED_PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that matter ('not installed' when missing)."""
    found = {"python": sys.version.split()[0]}
    for name in packages:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def print_versions() -> dict[str, str]:
    """Print the versions table (for the versions cell) and return it."""
    found = versions()
    width = max(len(k) for k in found)
    for name, version in found.items():
        print(f"{name:<{width}}  {version}")
    print(f"{'device':<{width}}  {device_name()}  [{environment()}]")
    kernels = cpu_kernels()
    print(f"{'cpu':<{width}}  {kernels['cpu_model']}; torch uses {kernels['torch_threads']} thread(s), "
          f"{kernels['cpu_capability']} kernels")
    return found


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB: getrusage on Linux (KiB) and macOS (bytes); on Windows,
    which has no `resource` module, psutil's peak working set (bytes)."""
    if resource is None:
        import psutil

        return psutil.Process().memory_info().peak_wset / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20


def peak_memory_mb() -> float:
    """This process's peak memory so far, in MB: torch.cuda.max_memory_allocated on a GPU, else the peak RSS (the
    kinds measure() reports)."""
    if has_gpu():
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    return peak_rss_mb()


@dataclass
class Measurement:
    """Wall time and peak memory of one block of work."""

    seconds: float = 0.0
    peak_memory_mb: float = 0.0
    memory_kind: str = ""

    def as_dict(self) -> dict[str, float | str]:
        return {
            "seconds": round(self.seconds, 2),
            "peak_memory_mb": round(self.peak_memory_mb, 1),
            "memory_kind": self.memory_kind,
        }


@contextmanager
def measure() -> Iterator[Measurement]:
    """Time a block; record peak GPU memory on a GPU, else the process's peak RSS.

    On CPU the process peak RSS can only grow, so it includes everything loaded before the block.
    """
    result = Measurement()
    gpu = has_gpu()
    if gpu:
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    try:
        yield result
    finally:
        if gpu:
            import torch

            torch.cuda.synchronize()
        result.peak_memory_mb = peak_memory_mb()
        result.memory_kind = "GPU max allocated" if gpu else "process peak RSS"
        result.seconds = time.perf_counter() - start
