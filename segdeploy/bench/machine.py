"""Facts about the machine a number was taken on: CPU, cores, memory, GPU and clocks, Jetson mode."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ..libraries import library_versions

# The vector and matrix features CPU inference speed hangs on (/proc/cpuinfo names): AVX2/FMA and AVX-512
# for FP32, VNNI (AVX512 or AVX) for INT8 dot products, AVX512-BF16 for BF16, AMX tiles for both; ARM's asimd.
_CPU_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "asimd",
)


def _cpuinfo() -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return info


def _command(*args: str) -> str | None:
    if shutil.which(args[0]) is None:
        return None
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def gpu_info() -> list[dict[str, Any]]:
    query = _command(
        "nvidia-smi",
        "--query-gpu=name,compute_cap,clocks.sm,clocks.max.sm,clocks.mem,driver_version",
        "--format=csv,noheader",
    )
    gpus = []
    for line in (query or "").splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) == 6:
            gpus.append(
                dict(zip(("name", "compute_capability", "sm_clock", "max_sm_clock", "memory_clock", "driver"), fields))
            )
    return gpus


def jetson_info() -> dict[str, Any] | None:
    model = Path("/proc/device-tree/model")
    if not model.exists():
        return None
    return {
        "model": model.read_text(errors="ignore").strip("\x00 \n"),
        "power_mode": _command("nvpmodel", "-q"),
        "jetson_clocks": _command("jetson_clocks", "--show"),
    }


def machine_info() -> dict[str, Any]:
    cpu = _cpuinfo()
    flags = set(cpu.get("flags", cpu.get("Features", "")).split())
    return {
        "cpu": cpu.get("model name") or platform.processor() or platform.machine(),
        "cpu_mhz": cpu.get("cpu MHz"),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_flags": [flag for flag in _CPU_FLAGS if flag in flags],
        "memory_gib": _memory_gib(),
        "platform": platform.platform(),
        "gpus": gpu_info(),
        "jetson": jetson_info(),
        "versions": library_versions(),
    }
