"""Read metrics: Triton's metrics port (Prometheus text format) or a Prometheus server's query API.

Standard library only, so ``tritonclf monitor`` runs anywhere the package is installed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?\s*$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


class ScrapeError(RuntimeError):
    """The metrics could not be read; one line for the user."""


@dataclasses.dataclass(frozen=True)
class Sample:
    """One series' value."""

    name: str
    labels: Mapping[str, str]
    value: float


def _value(text: str) -> float:
    lowered = text.lower()
    if lowered in ("nan", "+inf", "inf", "-inf"):
        return {"nan": math.nan, "+inf": math.inf, "inf": math.inf, "-inf": -math.inf}[lowered]
    return float(text)


def parse_exposition(text: str) -> list[Sample]:
    """Prometheus text exposition format -> samples (comments and malformed lines skipped)."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        name, labels_text, value = match.groups()
        labels = {
            key: re.sub(r'\\[\\"n]', lambda m: _UNESCAPE[m.group()], raw)
            for key, raw in _LABEL.findall(labels_text or "")
        }
        try:
            samples.append(Sample(name, labels, _value(value)))
        except ValueError:
            continue
    return samples


def metrics_url(address: str) -> str:
    """``host:8002`` or a URL -> the URL of its ``/metrics`` page."""
    url = address if "://" in address else f"http://{address}"
    parsed = urllib.parse.urlparse(url)
    return url if parsed.path not in ("", "/") else urllib.parse.urljoin(url, "/metrics")


def _get(url: str, timeout_s: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.read()
    except urllib.error.HTTPError as err:
        raise ScrapeError(f"{url} answered HTTP {err.code}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise ScrapeError(f"cannot read {url}: {reason}") from None


def fetch_metrics(address: str, timeout_s: float = 10.0) -> list[Sample]:
    """Every sample on a Triton metrics port."""
    return parse_exposition(_get(metrics_url(address), timeout_s).decode("utf-8", errors="replace"))


def matching(samples: Iterable[Sample], name: str, **labels: str) -> list[Sample]:
    """Samples of ``name`` whose labels include ``labels``."""
    return [s for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]


def sum_by(samples: Iterable[Sample], label: str) -> dict[str, float]:
    """Values summed per value of ``label`` (over versions, models and pods)."""
    out: dict[str, float] = {}
    for sample in samples:
        key = sample.labels.get(label, "")
        out[key] = out.get(key, 0.0) + sample.value
    return out


def query_prometheus(base_url: str, expr: str, timeout_s: float = 10.0) -> list[Sample]:
    """An instant PromQL query on a Prometheus server -> one sample per result series."""
    base = base_url if "://" in base_url else f"http://{base_url}"
    url = f"{base.rstrip('/')}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        body = json.loads(_get(url, timeout_s))
    except json.JSONDecodeError:
        raise ScrapeError(f"{base} did not answer like a Prometheus server") from None
    if body.get("status") != "success":
        raise ScrapeError(f"Prometheus refused {expr!r}: {body.get('error', body)}")
    data = body["data"]
    if data.get("resultType") != "vector":
        raise ScrapeError(f"expected a vector for {expr!r}, got {data.get('resultType')}")
    return [
        Sample(item["metric"].get("__name__", ""), dict(item["metric"]), _value(item["value"][1]))
        for item in data["result"]
    ]
