"""Sources: which partner sites to crawl, read from ``data/sources.yaml``.

The file has a ``defaults`` mapping (optional) and a ``sources`` list. Each source needs
``name`` and ``start_urls``; the rest falls back to the defaults::

    defaults:
      schedule: "0 3 * * *"
      page_limit: 200
    sources:
      - name: demo
        start_urls: ["http://127.0.0.1:8765/"]
        allowed_hosts: ["127.0.0.1"]
        allow_private: true
    cluster:                       # optional: where the per-page work runs
      dask: tcp://scheduler:8786   # a Dask scheduler (default: threads in this process)
      staging: /shared/staging     # Parquet staging that workers and the loader share
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from cronsim import CronSim, CronSimError

from pipeline.records import Source

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

DEFAULT_SOURCES_FILE = Path(__file__).resolve().parent.parent / "data" / "sources.yaml"

_FIELDS = {
    "name": str,
    "start_urls": list,
    "allowed_hosts": list,
    "schedule": str,
    "page_limit": int,
    "allow_private": bool,
    "max_depth": int,
    "delay": float,
}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class ConfigError(ValueError):
    """A sources file that cannot be used; the message names the source and the field."""


def load_sources(path: str | Path = DEFAULT_SOURCES_FILE) -> list[Source]:
    """Read and validate a sources file.

    Raises:
        ConfigError: the file is missing, is not YAML, or a source has a bad field.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_sources(raw, origin=str(path))


def parse_sources(raw: Any, origin: str = "sources") -> list[Source]:
    """Validate an already parsed sources mapping and return the sources."""
    if not isinstance(raw, dict) or not isinstance(raw.get("sources"), list):
        raise ConfigError(f"{origin}: expected a mapping with a 'sources' list")
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ConfigError(f"{origin}: 'defaults' must be a mapping")
    sources, names = [], set()
    for position, entry in enumerate(raw["sources"], start=1):
        label = entry.get("name") if isinstance(entry, dict) else None
        where = f"{origin}: source {label!r}" if label else f"{origin}: source #{position}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a mapping")
        source = _parse_source({**defaults, **entry}, where)
        if source.name in names:
            raise ConfigError(f"{where}: field 'name': duplicate source name")
        names.add(source.name)
        sources.append(source)
    return sources


@dataclass(frozen=True)
class ClusterSettings:
    """Where the per-page work runs: a Dask scheduler address, and the shared staging folder."""

    dask: str | None = None
    staging: str | None = None
    keep_staging: bool = False


_CLUSTER_FIELDS = {"dask": str, "staging": str, "keep_staging": bool}


def load_cluster(path: str | Path = DEFAULT_SOURCES_FILE) -> ClusterSettings:
    """Read the optional ``cluster`` mapping of a sources file.

    Raises:
        ConfigError: the mapping has an unknown field or a value of the wrong type.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (FileNotFoundError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    cluster = raw.get("cluster") or {} if isinstance(raw, dict) else {}
    if not isinstance(cluster, dict):
        raise ConfigError(f"{path}: 'cluster' must be a mapping")
    for key, value in cluster.items():
        if key not in _CLUSTER_FIELDS:
            raise ConfigError(f"{path}: cluster: unknown field {key!r} (known: {', '.join(_CLUSTER_FIELDS)})")
        if not isinstance(value, _CLUSTER_FIELDS[key]):
            raise ConfigError(f"{path}: cluster: field {key!r}: expected {_CLUSTER_FIELDS[key].__name__}")
    if cluster.get("dask") and not re.match(r"^(tcp|tls|inproc|ucx)://", cluster["dask"]):
        raise ConfigError(f"{path}: cluster: field 'dask': expected a scheduler address like tcp://host:8786")
    return ClusterSettings(**cluster)


def get_source(sources: list[Source], name: str) -> Source:
    """Return the source called ``name``, or raise ConfigError listing the known ones."""
    for source in sources:
        if source.name == name:
            return source
    known = ", ".join(s.name for s in sources) or "none"
    raise ConfigError(f"unknown source {name!r} (configured: {known})")


def _parse_source(entry: dict[str, Any], where: str) -> Source:
    unknown = sorted(set(entry) - set(_FIELDS) - {"description"})
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r} (known: {', '.join(_FIELDS)})")
    for key in ("name", "start_urls"):
        if key not in entry:
            raise ConfigError(f"{where}: field {key!r} is required")
    for key, kind in _FIELDS.items():
        if key in entry and not _is(entry[key], kind):
            raise ConfigError(f"{where}: field {key!r} must be {kind.__name__}, got {entry[key]!r}")

    name = entry["name"]
    if not _NAME.match(name):
        raise ConfigError(f"{where}: field 'name' must be lowercase letters, digits, '-' or '_'")
    start_urls = tuple(entry["start_urls"])
    if not start_urls:
        raise ConfigError(f"{where}: field 'start_urls' must list at least one URL")
    for url in start_urls:
        parts = urlsplit(str(url))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{where}: field 'start_urls' has an invalid URL {url!r}")
    hosts = tuple(str(h).lower() for h in entry.get("allowed_hosts") or ())
    if not hosts:
        hosts = tuple(dict.fromkeys(urlsplit(u).hostname for u in start_urls))
    for url in start_urls:
        if urlsplit(url).hostname not in hosts:
            raise ConfigError(f"{where}: field 'allowed_hosts' does not include the host of {url!r}")
    schedule = entry.get("schedule", "0 3 * * *")
    if not _valid_cron(schedule):
        raise ConfigError(f"{where}: field 'schedule' is not a cron expression: {schedule!r}")
    page_limit = entry.get("page_limit", 200)
    if page_limit < 1:
        raise ConfigError(f"{where}: field 'page_limit' must be at least 1")
    max_depth = entry.get("max_depth", 5)
    if max_depth < 0:
        raise ConfigError(f"{where}: field 'max_depth' must be 0 or more")
    delay = float(entry.get("delay", 1.0))
    if delay < 0:
        raise ConfigError(f"{where}: field 'delay' must be 0 or more seconds")
    return Source(
        name=name,
        start_urls=start_urls,
        allowed_hosts=hosts,
        schedule=schedule,
        page_limit=page_limit,
        allow_private=entry.get("allow_private", False),
        max_depth=max_depth,
        delay=delay,
    )


def _is(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is list:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, kind)


def _valid_cron(expr: str) -> bool:
    try:
        CronSim(expr, datetime.now())
    except CronSimError:
        return False
    return len(expr.split()) == 5


def next_run(source: Source, after: datetime | None = None) -> datetime:
    """When the source's schedule next fires (server-local time)."""
    return next(CronSim(source.schedule, after or datetime.now()))
