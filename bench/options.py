"""The suite's own command-line options, checked before anything is measured: each wrong value is one line that
says what was wrong and what to give instead (conftest.py turns :class:`OptionError` into pytest's usage error)."""
from __future__ import annotations


class OptionError(ValueError):
    """A bad option value; the message is the whole answer."""


def dtypes(text: str | None) -> list[str]:
    """``--dtypes fp32,bf16`` -> ['fp32', 'bf16'] (each once); None: every dtype."""
    from kernels.base import ALL_GEMM_DTYPES

    chosen = list(dict.fromkeys(d.strip() for d in text.split(",") if d.strip())) if text is not None \
        else list(ALL_GEMM_DTYPES)  # dict.fromkeys: fp32,fp32 runs once
    if not chosen:
        raise OptionError(f"--dtypes {text!r} names no dtype; give a comma-separated list from "
                          f"{', '.join(ALL_GEMM_DTYPES)}, or leave the option out for all")
    unknown = [d for d in chosen if d not in ALL_GEMM_DTYPES]
    if unknown:
        raise OptionError(f"--dtypes: unknown {', '.join(unknown)}; choose from {', '.join(ALL_GEMM_DTYPES)}")
    return chosen


def budget(text: str | None) -> float | None:
    """``--budget SECONDS``: a positive, finite number of seconds (None: the platform's default)."""
    if text is None:
        return None
    try:
        value = float(text)
        if not 0 < value < 1e7:
            raise ValueError
    except ValueError:
        raise OptionError(f"--budget {text!r}: give the run's time budget in seconds, a positive number "
                          "(e.g. --budget 120)") from None
    return value


def spec(path: str | None) -> None:
    """``--spec FILE``: a sheet that loads (a malformed one fails now, before anything is measured)."""
    if not path:
        return
    from results.specs import SpecError, load_spec

    try:
        load_spec(path)
    except SpecError as exc:
        raise OptionError(f"--spec: {exc}") from None


def model(name: str | None, shape: str | None) -> None:
    """``--model NAME [--input SHAPE]``: a model the suite can build and an input shape it can parse."""
    if not name and not shape:
        return
    from kernels.count import CountError
    from kernels.layers import check_model_name
    from kernels.zoo import parse_shape

    try:
        if not name:
            raise CountError("--input needs --model (the model whose layers to time)")
        parse_shape(shape or "1,3,224,224")
        check_model_name(name)  # unknown names fail here, before any timing
    except CountError as exc:
        raise OptionError(f"--model/--input: {exc}") from None
