"""Run-to-run spread: the same ceilings over earlier records of the same machine and options."""
from __future__ import annotations

import os
import statistics
from pathlib import Path

from results.analysis import analyse
from results.record import RecordError, read_record


def _key(record: dict) -> tuple:
    info, options = record.get("platform", {}), record.get("options", {})
    return (record.get("host"), info.get("name"), info.get("device"), bool(options.get("quick")),
            tuple(options.get("dtypes") or ()), info.get("torch_threads"))


def comparable_runs(directory: str | os.PathLike, record: dict, limit: int = 10,
                    notes: list[str] | None = None) -> list[dict]:
    """Finished records in ``directory`` from the same host, device, options and thread count (newest last), this
    one included. Unreadable files are passed over (they are not this run's business), each with a line in
    ``notes`` saying which file and why."""
    out = []
    for path in sorted(Path(directory).glob("*.json")):
        try:
            other = read_record(path)
        except RecordError as exc:
            if notes is not None:
                notes.append(f"skipped {exc}")
            continue
        except Exception as exc:  # a record that parses but breaks the comparison: same treatment
            if notes is not None:
                notes.append(f"skipped {path}: {type(exc).__name__}: {exc}")
            continue
        if other.get("run_id") == record.get("run_id") or not str(other.get("status", "")).startswith("complete"):
            continue
        if _key(other) == _key(record):
            out.append(other)
    return out[-(limit - 1):] + [record] if limit > 1 else [record]


def run_to_run(records: list[dict]) -> dict[str, dict]:
    """Per ceiling (compute dtype, memory level): the values over runs, and spread = (max - min) / median."""
    values: dict[str, list[float]] = {}
    for record in records:
        try:
            result = analyse(record)
        except Exception:  # an old or odd record must never break this run's summary
            continue
        for kind in ("compute", "memory"):
            for name, ceiling in getattr(result, kind).items():
                values.setdefault(f"{kind}:{name}", []).append(ceiling.value)
    out = {}
    for key, vals in values.items():
        median = statistics.median(vals)
        out[key] = {"values": vals, "n": len(vals), "spread": (max(vals) - min(vals)) / median if median else None}
    return out
