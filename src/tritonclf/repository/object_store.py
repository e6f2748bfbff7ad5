"""Upload a built model repository to S3-compatible storage without ever showing Triton half a version.

    python build/upload_repository.py model_repository s3://127.0.0.1:9000/models/prod

The URL is Triton's own (``s3://bucket/path`` on AWS, ``s3://host:port/bucket/path``
for another S3-compatible server, ``s3://https://host:port/bucket/path`` over TLS),
so the string that uploads is the string that serves. Credentials and region come
from the standard AWS variables, which Triton reads too.

Object stores have no rename: a version directory cannot appear at once as it does
on a local disk. So the writes are ordered:

1. every new version's files, dependencies before ensembles, each version's
   ``manifest.json`` last: a version whose manifest is in the store is complete;
2. then the model-level files, ``config.pbtxt`` last, ensembles last of all: a
   new config never describes a version that is not there yet;
3. then, with ``prune``, the versions the build removed, manifest first.

Versions are immutable: a complete version already in the store is skipped, a
different one with the same number is refused. Triton reads a model's directory
when it loads that model, so a server that loads while an upload runs can still
meet a new version being written: docs/DEPLOYING.md shows the two ways to roll out
with zero downtime (a fresh prefix per release, or explicit model control).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from tritonclf import contract
from tritonclf.files import sha256_file

CONFIG = "config.pbtxt"
# Triton's own pattern for an S3 URL with an endpoint (core/src/filesystem/implementations/s3.h):
# a URL it does not match is read as s3://BUCKET/..., so "host:port" would become a bucket name.
_TRITON_ENDPOINT_URL = re.compile(
    r"s3://(http://|https://|)([0-9a-zA-Z\-.]+):([0-9]+)/([0-9a-z.\-]+)((?:/[0-9a-zA-Z.\-_]+)*)"
)
_ENSEMBLE = re.compile(r'^platform:\s*"ensemble"\s*$', re.MULTILINE)


class UploadError(RuntimeError):
    """The repository cannot be uploaded as asked; the message says how to fix it."""


@dataclasses.dataclass(frozen=True)
class S3Location:
    """Where a repository lives: bucket, key prefix, and the endpoint of a non-AWS server."""

    bucket: str
    prefix: str = ""  # no leading or trailing slash; "" is the bucket's root
    endpoint_url: str | None = None  # e.g. "http://127.0.0.1:9000"; None for AWS itself

    def key(self, relative: str) -> str:
        """The object key of a path relative to the repository root."""
        return f"{self.prefix}/{relative}" if self.prefix else relative


def parse_s3_url(url: str) -> S3Location:
    """Triton's ``--model-repository`` S3 URL -> bucket, prefix and endpoint, read the way Triton reads it."""
    if not url.startswith("s3://"):
        raise UploadError(f"{url!r} is not an s3:// URL (s3://bucket/path or s3://host:port/bucket/path)")
    rest = url.removeprefix("s3://")
    scheme = next((s for s in ("https://", "http://") if rest.startswith(s)), "")
    parts = [p for p in rest.removeprefix(scheme).split("/") if p]
    if not parts:
        raise UploadError(f"{url!r} names no bucket")
    match = _TRITON_ENDPOINT_URL.fullmatch("s3://" + scheme + "/".join(parts))
    if match:
        protocol, host, port, bucket, path = match.groups()
        endpoint = f"{'https' if protocol == 'https://' else 'http'}://{host}:{port}"
        return S3Location(bucket, path.strip("/"), endpoint)
    if scheme or re.fullmatch(r"[^:]+:[0-9]+", parts[0]):
        raise UploadError(
            f"Triton would not read {url!r} as host:port/bucket/path: bucket names take lower-case letters, "
            "digits, '.' and '-'; path segments letters, digits, '.', '-' and '_'"
        )
    return S3Location(parts[0], "/".join(parts[1:]))


@dataclasses.dataclass(frozen=True)
class Version:
    """One version directory: its file names and its manifest (None if the manifest is missing)."""

    files: frozenset[str]  # relative to the version directory, manifest included when present
    manifest: bytes | None


@dataclasses.dataclass(frozen=True)
class Model:
    """One model directory: the files beside ``config.pbtxt`` (with their content) and its versions."""

    files: Mapping[str, bytes]
    versions: Mapping[int, Version]

    @property
    def is_ensemble(self) -> bool:
        """Whether its config says ``platform: "ensemble"``."""
        return bool(_ENSEMBLE.search(self.files.get(CONFIG, b"").decode(errors="replace")))


@dataclasses.dataclass(frozen=True)
class Operation:
    """One write to the store, in plan order: ``put`` a local file, or ``delete`` an object."""

    action: str  # "put" | "delete"
    path: str  # relative to the repository root, with "/"


def _check_manifest(version_dir: Path, manifest: bytes) -> None:
    """Every file the build recorded is there, unchanged: we never upload a version the build did not make."""
    try:
        recorded = json.loads(manifest).get("files", {})
    except json.JSONDecodeError:
        raise UploadError(f"{version_dir / contract.MANIFEST_FILENAME} is not JSON: rebuild the repository") from None
    for name, digest in recorded.items():
        path = version_dir / name
        if not path.is_file() or sha256_file(path) != digest:
            raise UploadError(f"{path} is missing or differs from its manifest: rebuild the repository")


def read_local(repository: Path) -> dict[str, Model]:
    """The models of a built repository (every directory with a ``config.pbtxt``), manifests checked."""
    repository = Path(repository)
    if not repository.is_dir():
        raise UploadError(f"{repository} is not a directory: build it first (make repository)")
    models = {}
    for model_dir in sorted(p for p in repository.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not (model_dir / CONFIG).is_file():
            continue
        # Model-level files include folders beside the versions, e.g. warmup/ with the warmup inputs.
        files = {
            p.relative_to(model_dir).as_posix(): p.read_bytes()
            for p in model_dir.rglob("*")
            if p.is_file() and not p.relative_to(model_dir).parts[0].isdigit() and "__pycache__" not in p.parts
        }
        versions = {}
        for version_dir in (p for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()):
            names = frozenset(
                p.relative_to(version_dir).as_posix()
                for p in version_dir.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts
            )
            manifest_path = version_dir / contract.MANIFEST_FILENAME
            if not manifest_path.is_file():
                # Also what keeps every version non-empty: object stores drop empty directories.
                raise UploadError(f"{version_dir} has no {contract.MANIFEST_FILENAME}: rebuild the repository")
            manifest = manifest_path.read_bytes()
            _check_manifest(version_dir, manifest)
            versions[int(version_dir.name)] = Version(names, manifest)
        models[model_dir.name] = Model(files, versions)
    if not models:
        raise UploadError(f"{repository} has no models (no */{CONFIG}): build it first (make repository)")
    return models


def models_from_paths(
    relative_paths: Iterable[str], read: Callable[[str], bytes], wanted_files: Mapping[str, Model]
) -> dict:
    """Object paths (relative to the prefix) -> models, reading manifests and the model files we compare."""
    layout: dict[str, tuple[dict[str, bytes], dict[int, set[str]]]] = {}
    for path in relative_paths:
        parts = path.split("/")
        if len(parts) < 2 or not all(parts):
            continue  # files at the repository root and "folder/" marker objects are not part of a model
        files, versions = layout.setdefault(parts[0], ({}, {}))
        if parts[1].isdigit() and len(parts) > 2:
            versions.setdefault(int(parts[1]), set()).add("/".join(parts[2:]))
        elif "/".join(parts[1:]) in wanted_files.get(parts[0], Model({}, {})).files:
            files["/".join(parts[1:])] = read(path)
    return {
        name: Model(
            files,
            {
                number: Version(
                    frozenset(names),
                    read(f"{name}/{number}/{contract.MANIFEST_FILENAME}")
                    if contract.MANIFEST_FILENAME in names
                    else None,
                )
                for number, names in versions.items()
            },
        )
        for name, (files, versions) in layout.items()
    }


def _put_version(model: str, number: int, version: Version) -> list[Operation]:
    body = sorted(version.files - {contract.MANIFEST_FILENAME})
    return [Operation("put", f"{model}/{number}/{name}") for name in [*body, contract.MANIFEST_FILENAME]]


def _delete_version(model: str, number: int, version: Version) -> list[Operation]:
    first = [contract.MANIFEST_FILENAME] if version.manifest is not None else []
    rest = sorted(version.files - set(first))
    return [Operation("delete", f"{model}/{number}/{name}") for name in [*first, *rest]]


def plan_upload(local: Mapping[str, Model], remote: Mapping[str, Model], *, prune: bool = False) -> list[Operation]:
    """The ordered writes that bring ``remote`` up to ``local`` (see the module docstring for the order)."""
    # Ensembles last: the models they call must be complete first. (Ensembles of ensembles are not built here.)
    order = sorted(local, key=lambda name: (local[name].is_ensemble, name))
    empty = Model({}, {})
    cleanup: list[Operation] = []
    versions: list[Operation] = []
    configs: list[Operation] = []
    pruned: list[Operation] = []
    for name in order:
        mine, theirs = local[name], remote.get(name, empty)
        for number, version in sorted(mine.versions.items()):
            stored = theirs.versions.get(number)
            if stored is not None and stored.manifest is not None:
                if stored.manifest != version.manifest:
                    raise UploadError(
                        f"{name}/{number} in the store differs from the local build and versions are immutable: "
                        "rebuild to get a new version number, or upload to a new prefix"
                    )
                if version.files <= stored.files:
                    continue
            versions += _put_version(name, number, version)
        for number, stored in sorted(theirs.versions.items()):
            if number in mine.versions:
                continue
            if stored.manifest is None:
                # Left by an interrupted upload: never complete, and the highest number is what Triton loads.
                cleanup += _delete_version(name, number, stored)
            elif prune:
                pruned += _delete_version(name, number, stored)
        for file_name in sorted(mine.files, key=lambda f: (f == CONFIG, f)):
            if theirs.files.get(file_name) != mine.files[file_name]:
                configs.append(Operation("put", f"{name}/{file_name}"))
        if prune:
            pruned += [Operation("delete", f"{name}/{f}") for f in sorted(set(theirs.files) - set(mine.files))]
    return cleanup + versions + configs + pruned


def make_client(location: S3Location, region: str | None = None):
    """A boto3 S3 client for the location, credentials from the standard AWS variables or profile."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=location.endpoint_url,
        # Triton signs for us-east-1 when no region is set; an S3-compatible server accepts any.
        region_name=region or session.region_name or "us-east-1",
        # Triton addresses buckets by path; do the same so a server that serves Triton serves us.
        config=Config(s3={"addressing_style": "path"} if location.endpoint_url else {}, retries={"mode": "standard"}),
    )


def read_remote(client, location: S3Location, local: Mapping[str, Model]) -> dict[str, Model]:
    """What the store holds under the location's prefix, as models."""
    from botocore.exceptions import ClientError

    where = f"s3://{location.bucket} at {location.endpoint_url or 'AWS'}"
    try:
        client.head_bucket(Bucket=location.bucket)
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchBucket"):
            raise UploadError(f"bucket {where} does not exist: create it first (aws s3 mb)") from None
        raise UploadError(f"cannot use bucket {where} ({code}): check the AWS credentials and region") from None
    base = location.key("")
    paths = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=base):
        paths += [item["Key"][len(base) :] for item in page.get("Contents", [])]

    def read(relative: str) -> bytes:
        return client.get_object(Bucket=location.bucket, Key=location.key(relative))["Body"].read()

    return models_from_paths(paths, read, local)


def apply_plan(
    client,
    location: S3Location,
    repository: Path,
    operations: Iterable[Operation],
    progress: Callable[[Operation], None] = lambda op: None,
) -> None:
    """Carry out the writes one at a time, in order (each object appears whole: S3 writes are atomic per object)."""
    for op in operations:
        progress(op)
        if op.action == "put":
            client.upload_file(str(Path(repository) / op.path), location.bucket, location.key(op.path))
        else:
            client.delete_object(Bucket=location.bucket, Key=location.key(op.path))


def upload_repository(
    repository: Path,
    location: S3Location,
    *,
    client=None,
    prune: bool = False,
    dry_run: bool = False,
    progress: Callable[[Operation], None] = lambda op: None,
) -> list[Operation]:
    """Bring the store up to the local repository; returns the writes (only planned with ``dry_run``)."""
    local = read_local(repository)
    client = client or make_client(location)
    operations = plan_upload(local, read_remote(client, location, local), prune=prune)
    if not dry_run:
        apply_plan(client, location, repository, operations, progress)
    return operations
