"""How figures are written for a person: decimal prefixes for rates (G = 1e9, as the design asks), binary prefixes
for sizes that are powers of two (labelled GiB/MiB/KiB), percentages. Formatting only; every module that prints
a figure takes it from here."""
from __future__ import annotations

DECIMAL = (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3))
BINARY = (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10))


def si(value: float | None, unit: str) -> str:
    """A rate or count with a decimal prefix and three significant digits ("4.1 GB/s"); "-" for None."""
    if value is None:
        return "-"
    for prefix, scale in DECIMAL:
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def pct(value: float | None) -> str:
    """A fraction as a percentage with one decimal ("12.5%"); "-" for None."""
    return "-" if value is None else f"{100 * value:.1f}%"


def binary_size(n: float | None, digits: str = ".3g") -> str:
    """A size in bytes with a binary prefix ("1.5 MiB"), ``digits`` the format of the number; "-" for None."""
    if n is None:
        return "-"
    for unit, scale in BINARY:
        if n >= scale:
            return f"{n / scale:{digits}} {unit}"
    return f"{n:.0f} B"


def us(seconds: float | None) -> str:
    """Seconds as microseconds, three significant digits; "-" for None."""
    return "-" if seconds is None else f"{seconds * 1e6:.3g} us"
