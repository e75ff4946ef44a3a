"""The deterministic noise every simulator draws from: the same integers give the same number
on every run and machine, so a simulated house is a function of its seed and the time."""

from __future__ import annotations

MASK64 = (1 << 64) - 1


def splitmix(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def unit_noise(*parts: int) -> float:
    """A deterministic pseudo-random number in [0, 1) for the given integers."""
    x = 0x243F6A8885A308D3
    for part in parts:
        x = splitmix(x ^ (part & MASK64))
    return (x >> 11) / float(1 << 53)
