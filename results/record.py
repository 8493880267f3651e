"""The run record: one JSON file per run, versioned, written atomically, never overwriting another run."""
from __future__ import annotations

import datetime as _dt
import json
import os
import re
import socket
import tempfile
from pathlib import Path
from typing import Any

from results.stats import summarise

SCHEMA = "roofline-run"
SCHEMA_VERSION = 1
REQUIRED = ("schema", "schema_version", "run_id", "platform", "measurements")


class RecordError(ValueError):
    """A record file that cannot be read; the message names the file and what is wrong."""


def measurement(*, group: str, kernel: str, dtype: str, status: str, impl: str = "", shape=None,
                size_bytes: int | None = None, flops: int = 0, bytes: int = 0, times_s: list[float] | None = None,
                number_per_run: int = 1, verified: bool | None = None, reason: str = "", convention: str = "",
                statistic: str = "best", telemetry: dict | None = None, extra: dict | None = None) -> dict:
    """One row of a record. ``times_s`` are per-call seconds, one per repetition (a repetition averages
    ``number_per_run`` back-to-back calls). Rates are derived from the best and the median time."""
    times_s = list(times_s or [])
    row = {"group": group, "kernel": kernel, "dtype": dtype, "impl": impl, "shape": shape, "size_bytes": size_bytes,
           "flops": int(flops), "bytes": int(bytes), "status": status, "verified": verified, "reason": reason,
           "convention": convention, "statistic": statistic, "number_per_run": number_per_run, "times_s": times_s}
    row.update(summarise(times_s))
    best, median = row["best_s"], row["median_s"]
    ok = status == "ok" and best
    row["flop_per_s"] = flops / best if ok and flops else None
    row["bytes_per_s"] = bytes / best if ok and bytes else None
    row["flop_per_s_median"] = flops / median if ok and flops else None
    row["bytes_per_s_median"] = bytes / median if ok and bytes else None
    row["telemetry"] = telemetry or {}
    row["extra"] = extra or {}
    return row


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:40] or "x"


class RunRecord:
    """Collects measurements of one run and saves them after each one, so an interrupted run keeps its data."""

    def __init__(self, directory: str | os.PathLike, platform_info: dict[str, Any], options: dict[str, Any]):
        self.directory = Path(directory)
        now = _dt.datetime.now(_dt.timezone.utc)
        self.data: dict[str, Any] = {
            "schema": SCHEMA, "schema_version": SCHEMA_VERSION,
            "run_id": f"{now:%Y%m%dT%H%M%SZ}-{_slug(socket.gethostname())}-{_slug(platform_info.get('device', 'x'))}",
            "created": now.isoformat(timespec="seconds"), "finished": None, "status": "running",
            "host": socket.gethostname(), "platform": platform_info, "options": options,
            "telemetry": {}, "measurements": [],
        }
        self.path: Path | None = None

    @property
    def measurements(self) -> list[dict]:
        return self.data["measurements"]

    def add(self, row: dict) -> None:
        self.measurements.append(row)
        self.save()

    def save(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.data, indent=1, default=_json_default)
        if self.path is None:
            self.path = claim_new_path(self.directory, self.data["run_id"], text)
        else:
            atomic_write(self.path, text)
        return self.path


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def _write_temp(directory: Path, prefix: str, text: str) -> str:
    """A complete, fsynced, world-readable temporary file in ``directory`` (mkstemp makes 0600; a record is meant
    to be shared, so the umask decides as for any new file)."""
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=directory)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def atomic_write(path: Path, text: str) -> None:
    """Write to a temporary file beside ``path``, then rename it over ``path``."""
    tmp = _write_temp(path.parent, f".{path.name}.", text)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def claim_new_path(directory: Path, stem: str, text: str) -> Path:
    """Write ``text`` to a NEW file ``stem.json`` (or ``stem-2.json``, ...): os.link refuses to replace an
    existing name, so an earlier run is never overwritten, and the file appears complete or not at all."""
    tmp = _write_temp(directory, f".{stem}.", text)
    try:
        for attempt in range(1, 1000):
            path = directory / (f"{stem}.json" if attempt == 1 else f"{stem}-{attempt}.json")
            try:
                os.link(tmp, path)
                return path
            except FileExistsError:
                continue
        raise RecordError(f"could not find a free record name for {stem} in {directory}")
    finally:
        os.unlink(tmp)


def check_writable(directory: str | os.PathLike) -> Path:
    """Fail early (before any measurement) if the results folder cannot be written."""
    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".write-test.", dir=path)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise RecordError(f"results folder {path} cannot be written: {exc.strerror or exc}. "
                          "Pass --results-dir with a writable folder.") from exc
    return path


def read_record(path: str | os.PathLike) -> dict:
    """Read and check a record; a corrupt or foreign file raises RecordError naming the file and the problem."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise RecordError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
                          "the file is corrupt or truncated") from exc
    if not isinstance(data, dict):
        raise RecordError(f"{path}: a record is a JSON object, this file holds a {type(data).__name__}")
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise RecordError(f"{path}: not a run record of this suite (missing {', '.join(missing)})")
    if data["schema"] != SCHEMA:
        raise RecordError(f"{path}: schema {data['schema']!r} is not {SCHEMA!r}")
    if data["schema_version"] > SCHEMA_VERSION:
        raise RecordError(f"{path}: schema version {data['schema_version']} is newer than this code understands "
                          f"({SCHEMA_VERSION}); update the suite")
    if not isinstance(data["measurements"], list):
        raise RecordError(f"{path}: 'measurements' must be a list")
    return data


def example_stem(record: dict) -> str:
    """``DATE_KIND_DEVICE`` for a committed example, e.g. ``2026-12-01_cuda_nvidia-h200``."""
    info = record.get("platform") or {}
    return f"{str(record.get('created', ''))[:10] or 'undated'}_{_slug(str(info.get('kind') or 'x'))}_" \
           f"{_slug(str(info.get('name') or 'device'))}"


def export_record(path: str | os.PathLike, record: dict, directory: str | os.PathLike) -> list[Path]:
    """Copy a record and the plots beside it (``STEM.png``, ``STEM.*.png``) to ``directory`` under
    :func:`example_stem`; an existing example of the same name gets ``-2``, ``-3``, ... (never overwritten)."""
    import shutil

    source = Path(path)
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    stem = example_stem(record)
    for attempt in range(1, 1000):
        name = stem if attempt == 1 else f"{stem}-{attempt}"
        if not any(target.glob(f"{name}.*")):
            break
    base = source.with_suffix("")
    files = [source] + sorted(p for p in source.parent.glob(base.name + ".*png"))
    out = []
    for file in files:
        dest = target / (name + file.name[len(base.name):])
        shutil.copyfile(file, dest)
        out.append(dest)
    return out
