"""Reduced precision on CPU: bf16 is only fast where the CPU has bf16 instructions.

With AMX or AVX512-BF16, bf16 matrix products run at least twice as fast as fp32. Without them (AVX2 and older
AVX512 parts), PyTorch emulates bf16 and a forward pass can run tens of times slower than in fp32, with nothing
saying so. `warn_if_slow_bf16` says it once per process, the first time a model runs in bf16 on such a CPU.
"""

from __future__ import annotations

import platform
import warnings

import torch

_warned = False


def native_bf16_cpu() -> bool:
    """Whether this CPU has bf16 instructions (AMX tiles or AVX512-BF16); True off x86, where there is no
    reliable probe and the check would only cry wolf."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return True
    if "AMX" in torch.backends.cpu.get_cpu_capability().upper():
        return True
    probes = (getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"))
    return any(probe() for probe in probes if probe is not None)


def warn_if_slow_bf16(weight: torch.Tensor) -> None:
    """Warn once if `weight` (a model's) is bf16 on a CPU that emulates bf16."""
    global _warned
    if _warned or weight.dtype != torch.bfloat16 or weight.device.type != "cpu":
        return
    _warned = True
    if not native_bf16_cpu():
        warnings.warn(
            f"running in bfloat16 on a CPU without bf16 instructions (torch CPU capability "
            f"{torch.backends.cpu.get_cpu_capability()}, no AMX or AVX512-BF16): PyTorch emulates bf16 here, which "
            "is many times slower than float32. Load the model with dtype=torch.float32 on this machine.",
            RuntimeWarning,
            stacklevel=3,
        )
