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


def temporary_name(path: Path) -> Path:
    """A hidden name beside `path` to write to before renaming over it."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def write_partitions(files: list[tuple[Path, pl.DataFrame]]) -> int:
    """Write every file under a temporary name first, then rename them all over their targets;
    return the bytes written.

    A reader sees each old file or its new one, never half of either; a write that fails (disk
    full, a folder not writable) leaves no new file at all; a re-run of the same partitions
    replaces exactly their files.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for path, frame in files:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = temporary_name(path)
            staged.append((tmp, path))
            frame.write_parquet(tmp, compression="zstd", statistics=True)
        for tmp, path in staged:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    return sum(path.stat().st_size for _, path in staged)


def write_atomic(frame: pl.DataFrame, path: Path) -> int:
    """One partition, as write_partitions writes many."""
    return write_partitions([(path, frame)])


def asset_glob(lake: Path, asset: str, cluster: str = "*") -> str:
    return str(lake.resolve() / asset / f"cluster={cluster}" / "date=*" / "hour=*.parquet")


def has_files(lake: Path, asset: str, cluster: str = "*") -> bool:
    return any((lake / asset).glob(f"cluster={cluster}/date=*/hour=*.parquet"))


def lake_clusters(lake: Path, asset: str) -> list[str]:
    """Clusters with a folder under the asset."""
    return sorted(p.name.removeprefix("cluster=") for p in (lake / asset).glob("cluster=*"))
