"""The raw lake: one Parquet file per asset, cluster and hour, written atomically."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import polars as pl


def partition_path(lake: Path, asset: str, cluster: str, hour: datetime) -> Path:
    """Hive-style folders, e.g. allocation/cluster=idc-fra/date=2026-11-02/hour=05.parquet."""
    hour = hour.astimezone(UTC)
    return lake / asset / f"cluster={cluster}" / f"date={hour:%Y-%m-%d}" / f"hour={hour:%H}.parquet"


def write_atomic(frame: pl.DataFrame, path: Path) -> int:
    """Write to a temporary name in the same folder and rename over the target; return bytes.

    A reader sees the old file or the new one, never half of either, and a re-run of the same
    partition replaces exactly its own file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        frame.write_parquet(tmp, compression="zstd", statistics=True)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path.stat().st_size


def asset_glob(lake: Path, asset: str, cluster: str = "*") -> str:
    return str(lake.resolve() / asset / f"cluster={cluster}" / "date=*" / "hour=*.parquet")


def has_files(lake: Path, asset: str, cluster: str = "*") -> bool:
    return any((lake / asset).glob(f"cluster={cluster}/date=*/hour=*.parquet"))


def lake_clusters(lake: Path, asset: str) -> list[str]:
    """Clusters with a folder under the asset."""
    return sorted(p.name.removeprefix("cluster=") for p in (lake / asset).glob("cluster=*"))
