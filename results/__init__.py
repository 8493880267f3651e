"""Run records, roofline arithmetic, plots, reports. Never imports torch: a record from a Jetson can be
analysed on a laptop."""
from __future__ import annotations

import os

from results.record import RecordError, read_record

_DROP = ("times_s", "telemetry", "extra")


def load(path: str | os.PathLike):
    """All measurements of a record as a pandas DataFrame, one row per measurement.

    Raw repetition times stay in the ``times_s`` column (a list per row); ``extra.*`` and ``telemetry.*`` are
    flattened into columns; record-level facts (run_id, platform name) are added to every row."""
    import pandas as pd

    record = read_record(path)
    frame = pd.json_normalize(record["measurements"], sep=".")
    frame.insert(0, "run_id", record["run_id"])
    frame.insert(1, "platform", record["platform"].get("name"))
    return frame


__all__ = ["load", "read_record", "RecordError"]
