"""What /proc/cpuinfo says about this CPU: its name, family and model, and the instruction
sets that decide int8 (VNNI) and bf16 (AVX512-BF16, AMX) speed. Standard library only; read
by run records (train/report.py) and by the benchmarks' machine stamp."""
from __future__ import annotations

import platform

FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def cpuinfo(key: str) -> str | None:
    """The value of the first /proc/cpuinfo line whose name is ``key`` (None if unreadable)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                name, sep, value = line.partition(":")
                if sep and name.strip() == key:
                    return value.strip()
    except OSError:
        pass
    return None


def cpu_name() -> str:
    """The CPU's model name (platform.processor() or the machine type where unreadable)."""
    return cpuinfo("model name") or platform.processor() or platform.machine()


def cpu_features() -> list[str]:
    """Which of ``FEATURES`` /proc/cpuinfo lists (empty where it cannot be read)."""
    flags = set((cpuinfo("flags") or "").split())
    return [f for f in FEATURES if f in flags]


def family_model() -> str | None:
    """"family F model M": hypervisors often name every AMD EPYC or Intel Xeon alike, while
    a family 25 (Zen 4) and a family 26 (Zen 5) ran these models 1.9-2.7x apart."""
    fam, mod = cpuinfo("cpu family"), cpuinfo("model")
    return f"family {fam} model {mod}" if fam and mod else None


def cpu_stamp() -> dict:
    """{"cpu": name, "cpu_family_model": family and model}: what run records and benchmark
    results say about the CPU they ran on."""
    return {"cpu": cpu_name(), "cpu_family_model": family_model()}
