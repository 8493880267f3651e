"""The run record: one JSON file per run, versioned, written atomically, never overwriting another run."""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from results.stats import summarise

SCHEMA = "roofline-run"
SCHEMA_VERSION = 1
REQUIRED = ("schema", "schema_version", "run_id", "platform", "measurements")


class RecordError(ValueError):
    """A record file that cannot be read; the message names the file and what is wrong."""


class RecordSaveError(OSError):
    """The record could not be written (disk full, folder gone); the message says what the last good file holds."""


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


def _writer() -> dict:
    """Which process writes the record (so a reader can tell a live run from one whose process died)."""
    try:
        import psutil

        started = psutil.Process().create_time()
    except Exception:
        started = None
    return {"pid": os.getpid(), "started": started}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:40] or "x"


#: while a run measures, the record on disk is at most this far behind it: rewriting the whole file after every
#: point costs O(points) each time (55 ms at 200 rows, indented; 5 s of a 60 s --quick run). The run's end, Ctrl-C,
#: a failure and every explicit save() write everything; only a hard kill (SIGKILL) can lose the last second.
SAVE_INTERVAL_S = 1.0


class RunRecord:
    """Collects measurements of one run and saves them as it goes (at most SAVE_INTERVAL_S behind, and whole at
    the end), so an interrupted run keeps its data."""

    def __init__(self, directory: str | os.PathLike, platform_info: dict[str, Any], options: dict[str, Any]):
        self.directory = Path(directory)
        now = _dt.datetime.now(_dt.timezone.utc)
        self.data: dict[str, Any] = {
            "schema": SCHEMA, "schema_version": SCHEMA_VERSION,
            "run_id": f"{now:%Y%m%dT%H%M%SZ}-{_slug(socket.gethostname())}-{_slug(platform_info.get('device', 'x'))}",
            "created": now.isoformat(timespec="seconds"), "finished": None, "status": "running",
            "host": socket.gethostname(), "writer": _writer(), "platform": platform_info, "options": options,
            "telemetry": {}, "measurements": [],
        }
        self.path: Path | None = None

    @property
    def measurements(self) -> list[dict]:
        return self.data["measurements"]

    def add(self, row: dict) -> None:
        self.measurements.append(row)
        if self.path is None or time.monotonic() - self._saved_clock >= SAVE_INTERVAL_S:
            self.save()

    def save(self, final: bool = False) -> Path:
        """Write the whole record (atomically): compact while the run goes on (json's C encoder, ~3x faster), one
        field per line when ``final`` (the file people read and commit). A failure raises RecordSaveError saying
        what the last good file on disk holds; the data in memory is untouched."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            text = json.dumps(self.data, indent=1 if final else None, default=_json_default)
            if self.path is None:
                self.path = claim_new_path(self.directory, self.data["run_id"], text)
            else:
                atomic_write(self.path, text)
        except OSError as exc:
            raise RecordSaveError(self._save_failure(exc)) from exc
        self.saved_measurements = len(self.measurements)
        self.saved_at = _dt.datetime.now().strftime("%H:%M:%S")
        self._saved_clock = time.monotonic()
        return self.path

    saved_measurements = 0
    saved_at: str | None = None
    _saved_clock = -math.inf

    def _save_failure(self, exc: OSError) -> str:
        why = exc.strerror or str(exc)
        if self.path is None:
            return f"the record could not be written to {self.directory} ({why}); nothing of this run is on disk"
        lost = len(self.measurements) - self.saved_measurements
        return (f"the record could not be saved ({why}): the last good record is {self.path} with "
                f"{self.saved_measurements} measurements (saved at {self.saved_at}); the {lost} measured since are "
                "not on disk")


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
        # an interrupt (a signal handler's KeyboardInterrupt) can land after the rename: the temporary is then
        # gone and the write is whole; the interrupt, not a FileNotFoundError, is what must propagate
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_savefig(fig, path, **kwargs) -> None:
    """``fig.savefig(path)`` through a temporary file renamed over ``path``: a signal or a full disk mid-write
    leaves the earlier PNG (or none), never a truncated one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600: a plot is meant to be shared, like the record beside it
    os.close(fd)
    try:
        fig.savefig(tmp, format=kwargs.pop("format", path.suffix.lstrip(".") or "png"), **kwargs)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
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


#: what the start-up check writes: about the size of a full run's record (1.5 MB) and its plots
WRITE_CHECK_BYTES = 4 << 20


def check_writable(directory: str | os.PathLike) -> Path:
    """Fail early (before any measurement) if the results folder cannot be written."""
    if not str(directory).strip():  # Path("") is the current folder: records, PNGs and pages would land there
        raise RecordError("--results-dir is empty: give a folder for the records (the default is results/runs)")
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise RecordError(f"results folder {path} is a file, not a folder: pass --results-dir with a folder "
                          "(it is created if missing)")
    tmp = None
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".write-test.", dir=path)
        with os.fdopen(fd, "wb") as handle:  # real bytes, flushed to disk: a full disk fails here, not mid-run
            handle.write(b"\0" * WRITE_CHECK_BYTES)
            handle.flush()
            os.fsync(handle.fileno())
        os.unlink(tmp)
    except OSError as exc:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
        raise RecordError(f"results folder {path} cannot be written: {exc.strerror or exc}. "
                          "Pass --results-dir with a writable folder.") from exc
    return path


def read_record(path: str | os.PathLike) -> dict:
    """Read and check a record; a corrupt, foreign or mistyped file raises RecordError naming the file, the field
    and what is wrong (never a bare traceback)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RecordError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(f"{path}: not UTF-8 text (byte {exc.start}); a record is JSON written by this suite") from None
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
    version = data["schema_version"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise RecordError(f"{path}: field 'schema_version' must be an integer, got {type(version).__name__} "
                          f"({version!r})")
    if version > SCHEMA_VERSION:
        raise RecordError(f"{path}: schema version {version} is newer than this code understands "
                          f"({SCHEMA_VERSION}); update the suite")
    if version < 1:
        raise RecordError(f"{path}: schema version {version} is not a version this suite ever wrote (1..{SCHEMA_VERSION})")
    for key, kind in (("run_id", str), ("platform", dict), ("measurements", list)):
        if not isinstance(data[key], kind):
            raise RecordError(f"{path}: field '{key}' must be a {_kind(kind)}, got {_kind(type(data[key]))}")
    if "options" in data and not isinstance(data["options"], dict):  # this suite always writes an object
        raise RecordError(f"{path}: field 'options' must be an object, got {_shown(data['options'])}")
    for key in ("telemetry", "load_at_start"):
        if key in data and data[key] is not None and not isinstance(data[key], dict):
            raise RecordError(f"{path}: field '{key}' must be an object, got {_kind(type(data[key]))}")
    for key in ("created", "finished", "host", "status", "note"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise RecordError(f"{path}: field '{key}' must be a string, got {_shown(data[key])}")
    for key in ("name", "kind", "device"):
        value = data["platform"].get(key)
        if value is not None and not isinstance(value, str):
            raise RecordError(f"{path}: field 'platform.{key}' must be a string, got {_shown(value)}")
    for i, row in enumerate(data["measurements"]):
        _check_row(path, i, row)
    caches = data["platform"].get("caches")
    if caches is not None and (not isinstance(caches, list) or not all(
            isinstance(c, dict) and type(c.get("size_bytes")) is int and c["size_bytes"] > 0 for c in caches)):
        raise RecordError(f"{path}: field 'platform.caches' must be a list of objects with a positive integer "
                          "size_bytes")
    data["status"] = effective_status(data)
    data["repeated_rows"] = repeated_rows(data["measurements"])
    return data


#: numbers a measurement row may hold (None where not applicable), and those that must be > 0 in a row measured ok
ROW_NUMBERS = ("best_s", "median_s", "flops", "bytes", "size_bytes", "flop_per_s", "bytes_per_s",
               "flop_per_s_median", "bytes_per_s_median", "cv")
ROW_POSITIVE_WHEN_OK = ("best_s", "median_s")


def _shown(value) -> str:
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return f"{_kind(type(value))} {text[:60]}"


_NUMBERS = frozenset(ROW_NUMBERS)
_INF = float("inf")


def _check_row(path: Path, i: int, row) -> None:
    """One measurement row: every field a reader touches has its type, numbers are finite, an ok row has a
    positive time (a zero best_s once removed the whole bandwidth table of a record still shown as complete).
    Written for speed (a long run's record holds ten thousand rows): only the keys present are looked at."""
    if type(row) is not dict:
        raise RecordError(f"{path}: measurements[{i}] must be an object, got {_kind(type(row))}")
    where = f"{path}: measurements[{i}]"
    get = row.get
    for key in ("group", "kernel", "status"):
        if type(get(key)) is not str:
            raise RecordError(f"{where}.{key} must be a string, got {_shown(get(key))}")
    for key in _NUMBERS.intersection(row):
        value = row[key]
        kind = type(value)
        if kind is float:
            if value != value or value == _INF or value == -_INF:
                raise RecordError(f"{where}.{key} must be a finite number, got {value!r}")
        elif kind is not int and value is not None:
            raise RecordError(f"{where}.{key} must be a number, got {_shown(value)}")
    if row["status"] == "ok":
        for key in ROW_POSITIVE_WHEN_OK:
            value = get(key)
            if value is not None and value <= 0:
                raise RecordError(f"{where}.{key} must be a positive number of seconds in a row measured ok, got "
                                  f"{value!r}")
    for key, kinds in (("dtype", str), ("impl", str), ("reason", str), ("extra", dict), ("telemetry", dict),
                       ("interference", dict), ("disturbed", bool), ("verified", bool), ("superseded", bool),
                       ("shape", list)):
        value = get(key)
        if value is not None and type(value) is not kinds:
            what = {str: "a string", dict: "an object", bool: "true or false", list: "a list"}[kinds]
            raise RecordError(f"{where}.{key} must be {what}, got {_shown(value)}")
    times = get("times_s")
    if times is not None and (type(times) is not list or not all(type(t) in (int, float) for t in times)
                              or not math.isfinite(sum(times))):  # a NaN or an infinity makes the sum one too
        raise RecordError(f"{where}.times_s must be a list of finite numbers")


def repeated_rows(rows: list[dict]) -> int:
    """Rows that repeat an earlier row exactly (same point, same times): a record appended to itself or merged
    twice. Flagged, not removed: the best and median of a point do not change."""
    seen, repeats = set(), 0
    for row in rows:
        times = row.get("times_s")
        if not times:
            continue
        key = (row["group"], row["kernel"], row.get("dtype"), row.get("impl"), repr(row.get("shape")),
               row.get("size_bytes"), tuple(times))
        if key in seen:
            repeats += 1
        else:
            seen.add(key)
    return repeats


def _kind(kind) -> str:
    return {dict: "object", list: "list", str: "string", int: "integer", float: "number",
            type(None): "null"}.get(kind, kind.__name__)


#: rows that check the machine (the DRAM sentinel, the dispatch cost), not figures of the run
MACHINE_CHECKS = ("sentinel", "overhead")


def measured_rows(rows: list[dict]) -> list[dict]:
    """The rows that measured a figure of the run (ok, and not a check of the machine)."""
    return [m for m in rows if m.get("status") == "ok" and m.get("group") not in MACHINE_CHECKS]


def effective_status(record: dict) -> str:
    """The record's status, except that a record still "running" whose writer has died (same host, its pid no longer
    alive or now another process) reads "did not finish (the process died)". From another host it cannot be told:
    the status stays, with that said."""
    status = str(record.get("status") or "unknown")
    if status.startswith("complete") and not measured_rows(record.get("measurements", [])):
        return "nothing measured (the record holds no measured point)"  # never "complete" with nothing in it
    if status != "running":
        return status
    writer = record.get("writer") or {}
    pid, started = writer.get("pid"), writer.get("started")
    if not isinstance(pid, int) or record.get("host") != socket.gethostname():
        return status if not isinstance(pid, int) else "running (or died) on another host"
    try:
        import psutil

        alive = psutil.pid_exists(pid) and (started is None or abs(psutil.Process(pid).create_time() - started) < 1.0)
    except Exception:  # psutil missing, or the process vanished between the two calls
        alive = False
    return status if alive else "did not finish (the process died)"


def example_stem(record: dict) -> str:
    """``DATE_KIND_DEVICE`` for a committed example, e.g. ``2026-12-01_cuda_nvidia-h200``."""
    info = record.get("platform") or {}
    world = record.get("distributed")
    job = f"_{world.get('backend', 'x')}-{world.get('world_size', 0)}ranks" if isinstance(world, dict) else ""
    return f"{str(record.get('created', ''))[:10] or 'undated'}_{_slug(str(info.get('kind') or 'x'))}_" \
           f"{_slug(str(info.get('name') or 'device'))}{job}"


def export_record(path: str | os.PathLike, record: dict, directory: str | os.PathLike) -> list[Path]:
    """Copy a record, the plots beside it (``STEM.png``, ``STEM.*.png``) and its report page to ``directory`` under
    :func:`example_stem`; an existing example of the same name gets ``-2``, ``-3``, ... (never overwritten)."""
    source = Path(path)
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    stem = example_stem(record)
    for attempt in range(1, 1000):
        name = stem if attempt == 1 else f"{stem}-{attempt}"
        if not any(target.glob(f"{name}.*")):
            break
    base = source.with_suffix("")
    files = [source] + sorted(p for p in source.parent.glob(base.name + ".*png")) + \
        [p for p in [base.with_suffix(".html")] if p.exists()]
    out = []
    for file in files:
        dest = target / (name + file.name[len(base.name):])
        shutil.copyfile(file, dest)
        out.append(dest)
    return out
