"""What every benchmark script shares: memory and load measurement, fresh-process workers, the machine's
description. Imported by the scripts in this folder (`python benchmarks/<script>.py` puts it on the path).

Timings on a shared machine are only worth keeping when the machine was quiet: `os.getloadavg()` is recorded
with every measurement, and `LoadGuard` flags (or waits out) runs taken under other load.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

RESULT_PREFIX = "RESULT "
CHILD_ENV = {
    "TRANSFORMERS_VERBOSITY": "error",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_OFFLINE": "1",
    "TQDM_DISABLE": "1",
    "PYTHONWARNINGS": "ignore",
}


def status_kib(field: str) -> int | None:
    """A `Vm*` line of /proc/self/status, in KiB (None off Linux)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def maxrss_kib() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB on Linux


class PeakMemory:
    """Peak RSS growth over a block: VmHWM after resetting it through /proc/self/clear_refs (Linux), else the
    process's lifetime ru_maxrss (which cannot be reset, so a higher peak earlier hides the block's)."""

    def __init__(self) -> None:
        self.method = "none"
        self.baseline_kib = 0
        self.peak_kib = 0

    def __enter__(self) -> PeakMemory:
        import gc

        gc.collect()
        try:  # hand freed heap back to the OS, so the baseline is what is really in use
            import ctypes

            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
        self.baseline_kib = status_kib("VmRSS") or maxrss_kib()
        try:
            with open("/proc/self/clear_refs", "w") as clear_refs:
                clear_refs.write("5")  # resets VmHWM to the current RSS
            self.method = "VmHWM after clear_refs"
        except OSError:
            self.method = "ru_maxrss (lifetime peak)"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.method == "VmHWM after clear_refs":
            self.peak_kib = status_kib("VmHWM") or 0
        else:
            self.peak_kib = maxrss_kib()

    @property
    def growth_mib(self) -> float:
        return max(self.peak_kib - self.baseline_kib, 0) / 1024


def quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, median, q3


def run_command(command: list[str], timeout: float, parse: bool = False) -> tuple[Any, float, int]:
    """Run a command, reaping it with wait4 for its own peak RSS; (parsed result or stdout, wall s, peak KiB)."""
    env = {**os.environ, **CHILD_ENV}
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env)
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > timeout:
                process.kill()
                process.wait()
                raise RuntimeError(f"{' '.join(command[:4])} ... ran past {timeout:.0f} s")
            time.sleep(0.02)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        out, err = stdout.read(), stderr.read()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} ... failed ({process.returncode}):\n{err[-4000:]}")
    peak_kib = usage.ru_maxrss // 1024 if sys.platform == "darwin" else usage.ru_maxrss
    if not parse:
        return out, wall, peak_kib
    lines = [line for line in out.splitlines() if line.startswith(RESULT_PREFIX)]
    if not lines:
        raise RuntimeError(f"the worker printed no result:\n{out[-2000:]}\n{err[-2000:]}")
    return json.loads(lines[-1].removeprefix(RESULT_PREFIX)), wall, peak_kib


def machine() -> dict[str, str]:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cores (os.sched_getaffinity)": str(cores()),
        "torch CPU capability": cpu_capability(),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in lscpu.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "Flags"):
                value = value.strip()
                if key.strip() == "Flags":
                    value = " ".join(flag for flag in value.split() if flag.startswith(("avx", "amx", "fma")))
                info[f"lscpu {key.strip()}"] = value
    except (OSError, subprocess.CalledProcessError):
        info["cpu"] = platform.processor() or "unknown"
    for package in ("torch", "transformers", "rna-fm", "multimolecule"):
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[package] = "not installed"
    return info


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as file:
            return " ".join(file.read().split()[:3])
    except OSError:
        return "unknown"


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def cpu_capability() -> str:
    """torch's CPU capability (`AVX2`, `AVX512`, ...): whether bf16 has native kernels (AMX / AVX512-BF16)."""
    import torch

    return torch.backends.cpu.get_cpu_capability()


def load_average() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


class LoadGuard:
    """Whether the machine is quiet enough for a timing: the 1-minute load average minus what this benchmark
    itself runs (`own` threads) below `limit`. `wait` sleeps up to `patience` seconds for that."""

    def __init__(self, limit: float = 1.0, own: float = 0.0) -> None:
        self.limit, self.own = limit, own

    def quiet(self) -> bool:
        return load_average()[0] - self.own < self.limit

    def wait(self, patience: float, step: float = 10.0) -> bool:
        deadline = time.monotonic() + patience
        while not self.quiet() and time.monotonic() < deadline:
            time.sleep(step)
        return self.quiet()

    def flag(self) -> str:
        """'' when quiet, else a marker for the report."""
        return "" if self.quiet() else f" (under load {load_average()[0]:.1f})"


def run_worker(script: str, kind: str, spec: dict[str, Any], timeout: float) -> tuple[dict[str, Any], float, int]:
    """Run `script --worker kind --spec JSON` in a fresh process: (its result, wall s, its peak RSS KiB)."""
    command = [sys.executable, str(Path(script).resolve()), "--worker", kind, "--spec", json.dumps(spec)]
    return run_command(command, timeout, parse=True)


def add_worker_arguments(parser: Any, workers: dict[str, Any], timeout: float) -> None:
    """--threads, --timeout, and the hidden --worker / --spec every script's fresh-process workers take."""
    import argparse

    parser.add_argument("--threads", type=int, default=cores(), help="torch threads (default: every core)")
    parser.add_argument("--timeout", type=float, default=timeout, help="seconds one worker process may take")
    parser.add_argument("--worker", choices=sorted(workers), help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)


def worker_main(workers: dict[str, Any], kind: str, spec: str) -> int:
    """The child side of `run_worker`: run one worker and print its result on the marked line."""
    result = workers[kind](json.loads(spec))
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


def median(values: list[float]) -> float:
    return statistics.median(values)


def time_calls(call, repeats: int, min_cpu_use: float = 0.9, max_discards: int = 3) -> dict[str, Any]:
    """Wall times of `repeats` calls; a call whose CPU time / wall / threads is below `min_cpu_use` was
    descheduled by other load and is dropped and redone (at most `max_discards` times)."""
    import torch

    threads = torch.get_num_threads()
    kept: list[float] = []
    cpu: list[float] = []
    dropped = 0
    while len(kept) < repeats:
        begin, begin_cpu = time.perf_counter(), time.process_time()
        call()
        wall, used = time.perf_counter() - begin, time.process_time() - begin_cpu
        if used / wall / threads < min_cpu_use and dropped < max_discards:
            dropped += 1
            continue
        kept.append(wall)
        cpu.append(used)
    return {"times": kept, "dropped": dropped, "cpu_use": sum(cpu) / sum(kept) / threads}
