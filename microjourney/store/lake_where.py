"""Where a lake is, and the parts every lake operation shares: its layout, finding an
``s3://`` lake's file system and current copy, and local folders made private.

The layout and the two ways in are described in :mod:`.lake`. Local folders and files of a
lake are created ``0700`` and ``0600`` (:mod:`.private`): they hold events.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs

from ..errors import LakeError
from .private import DIR_MODE, narrow

#: Tables a lake may hold, in export order; those missing from the store are skipped.
TABLES: tuple[str, ...] = ("events", "identities", "responses", "texts")

#: The Arrow schema of an event file (every field nullable: Parquet keeps no NOT NULL).
EVENTS = pa.schema([
    ("event_id", pa.string()), ("seq", pa.int64()), ("timestamp", pa.timestamp("us", tz="UTC")),
    ("event", pa.string()), ("anonymous_id", pa.string()), ("user_id", pa.string()),
    ("channel", pa.string()), ("session_id", pa.string()), ("properties", pa.string()),
    ("context", pa.string()), ("source", pa.string()),
])
#: URL schemes of object storage a lake may be on (``s3a`` is Hadoop's name for S3).
SCHEMES = ("s3", "s3a")
_DAY = pa.schema([("day", pa.string())])
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+):/(?P<rest>.*)", re.S)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_DATA_FILE = re.compile(r"day=[^/]+/[^/._][^/]*\.parquet")
#: How the object store's answers map to error codes (the AWS SDK's error names).
_S3_ERRORS = (
    ("lake/no-bucket", ("NO_SUCH_BUCKET",)),
    ("lake/denied", ("ACCESS_DENIED", "INVALID_ACCESS_KEY_ID", "SIGNATURE_DOES_NOT_MATCH",
                     "EXPIRED_TOKEN", "INVALID_CLIENT_TOKEN_ID", "HTTP status 403")),
    ("lake/unreachable", ("NETWORK_CONNECTION", "curlCode", "Could not connect", "REQUEST_TIMEOUT")),
)


@dataclass(frozen=True)
class Location:
    """Where a lake is: a folder (``fs`` is None) or ``bucket/prefix`` on S3 (``fs``).

    ``url`` is what messages show (the folder, or ``s3://bucket/prefix``); ``path`` is the
    folder, or ``bucket/prefix`` in ``fs``; ``settings`` holds the S3 endpoint, region and
    credentials :func:`locate` found, for engines that reach the store themselves (Spark).
    """

    url: str
    path: str
    fs: pafs.FileSystem | None = None
    settings: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def local(self) -> bool:
        return self.fs is None

    @property
    def bucket(self) -> str:
        return self.path.split("/", 1)[0]

    def join(self, *parts: str) -> str:
        return "/".join([self.path, *parts])


def locate(lake: str | os.PathLike[str] | Location, env: Mapping[str, str] | None = None) -> Location:
    """The lake at ``lake``: a folder, or an ``s3://bucket/prefix`` URL (``s3a://`` too).

    For a URL, the standard AWS variables of ``env`` (default: the environment) say how to
    reach it: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (and ``AWS_SESSION_TOKEN``),
    ``AWS_REGION`` or ``AWS_DEFAULT_REGION``, and ``AWS_ENDPOINT_URL`` (or
    ``AWS_ENDPOINT_URL_S3``) for an S3-compatible store such as MinIO. A path that pathlib
    folded from ``s3://`` to ``s3:/`` is read as the URL.
    """
    if isinstance(lake, Location):
        return lake
    text = os.fspath(lake)
    match = _URL.fullmatch(text)
    if match is None or (match["scheme"].lower() not in SCHEMES and "://" not in text):
        return Location(url=text, path=text)
    scheme = match["scheme"].lower()
    if scheme not in SCHEMES:
        raise LakeError(f"the lake {text} is a {scheme}:// URL; a lake is a folder or an s3:// URL "
                        "(S3 or an S3-compatible store)", code="lake/bad-url")
    parts = match["rest"].removeprefix("/").rstrip("/").split("/")
    if (not _BUCKET.fullmatch(parts[0]) or "" in parts or {".", ".."} & set(parts)
            or any(c in text for c in "?#")):
        raise LakeError(f"the lake URL {text} is not s3://bucket/prefix (a bucket of 3-63 lower-case "
                        "letters, digits, dots and hyphens; no empty or relative parts, no query)",
                        code="lake/bad-url")
    path = "/".join(parts)
    fs, settings = _s3(path, os.environ if env is None else env)
    return Location(url=f"s3://{path}", path=path, fs=fs, settings=settings)


def _s3(path: str, env: Mapping[str, str]) -> tuple[pafs.S3FileSystem, dict[str, str]]:
    """The S3 file system for ``bucket/prefix`` as the AWS variables of ``env`` describe it.

    Given an endpoint and keys, nothing is looked up elsewhere: the region defaults to
    us-east-1 (S3-compatible stores ignore it) instead of the SDK's search, which would ask
    the instance metadata address. Without keys the SDK's own chain applies (files, roles).
    """
    key, secret, token = (env.get(k) or None for k in
                          ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"))
    if bool(key) != bool(secret):
        raise LakeError("set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither (then the "
                        "AWS configuration files or the machine's role give the credentials)",
                        code="lake/credentials")
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    options: dict[str, Any] = {}
    settings: dict[str, str] = {}
    if endpoint:
        url = urlsplit(endpoint)
        if url.scheme not in ("http", "https") or not url.netloc or url.path not in ("", "/"):
            raise LakeError(f"AWS_ENDPOINT_URL={endpoint!r} is not an endpoint like "
                            "http://127.0.0.1:9000 or https://s3.example.com", code="lake/bad-url")
        options.update(endpoint_override=url.netloc, scheme=url.scheme)
        settings["endpoint"] = f"{url.scheme}://{url.netloc}"
        region = region or "us-east-1"
    elif not region:  # the bucket says where it is (one request to AWS)
        bucket = path.split("/", 1)[0]
        try:
            region = pafs.resolve_s3_region(bucket)
        except OSError as exc:
            raise LakeError(f"cannot find the region of the bucket {bucket} ({exc}); set AWS_REGION",
                            code="lake/unreachable") from None
    options["region"] = settings["region"] = region
    if key and secret:
        options.update(access_key=key, secret_key=secret, session_token=token)
        settings.update(access_key=key, secret_key=secret)
        if token:
            settings["session_token"] = token
    # Delayed open: a small object is one PUT when it is closed, not three requests.
    return pafs.S3FileSystem(**options, allow_delayed_open=True), settings


@contextmanager
def _remote(where: Location, doing: str) -> Iterator[None]:
    """Turn the object store's errors into a LakeError with a stable code and a hint."""
    try:
        yield
    except OSError as exc:
        text = str(exc)
        code = next((c for c, names in _S3_ERRORS if any(n in text for n in names)), "lake/object-store")
        server = where.settings.get("endpoint", "AWS S3")
        hint = {
            "lake/no-bucket": f"the bucket {where.bucket} does not exist at {server}; create it "
                              "first (microjourney creates no buckets)",
            "lake/denied": "access was refused: check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and "
                           "AWS_SESSION_TOKEN) and the bucket's policy",
            "lake/unreachable": f"cannot reach {server}: check AWS_ENDPOINT_URL and the network",
            "lake/object-store": "the object store answered with an error",
        }[code]
        detail = text[text.find("AWS Error"):] if "AWS Error" in text else text
        detail = detail.split(" (Request ID")[0]
        raise LakeError(f"cannot {doing} the lake {where.url}: {hint} ({detail})", code=code) from None


def _marker(where: Location, table: str) -> dict[str, Any] | None:
    """The publish marker of ``table`` (generation, files), or None when no export publishes."""
    try:
        with where.fs.open_input_stream(where.join(f".{table}.publishing")) as f:
            return json.loads(f.read())
    except FileNotFoundError:
        return None


def _objects(where: Location, prefix: str) -> list[str]:
    """Every object under ``prefix``, sorted."""
    infos = where.fs.get_file_info(pafs.FileSelector(prefix, recursive=True, allow_not_found=True))
    return sorted(i.path for i in infos if i.type == pafs.FileType.File)


def _snapshot(where: Location, table: str = "events") -> tuple[str, list[str]]:
    """The prefix holding the whole current copy of ``table`` and its data files.

    That is ``<table>/``, or while an export publishes its staging prefix; the marker is
    read before and after listing, so a publish starting meanwhile is noticed."""
    with _remote(where, "read"):
        for _ in range(3):
            before = _marker(where, table)
            base = where.join(f".{table}.staging-{before['generation']}" if before else table)
            files = [p for p in _objects(where, base) if _DATA_FILE.fullmatch(p[len(base) + 1:])]
            if _marker(where, table) == before:
                if not files:
                    _bucket(where, "read")  # an empty listing may hide a missing bucket
                return base, files
    raise LakeError(f"exports keep publishing into {where.url}; read it when they are done",
                    code="lake/busy")


def _bucket(where: Location, doing: str) -> None:
    """A LakeError unless the lake's bucket exists and answers."""
    with _remote(where, doing):
        found = where.fs.get_file_info(where.bucket).type != pafs.FileType.NotFound
    if not found:
        raise LakeError(f"cannot {doing} the lake {where.url}: the bucket {where.bucket} does not exist "
                        f"at {where.settings.get('endpoint', 'AWS S3')}; create it first (microjourney "
                        "creates no buckets)", code="lake/no-bucket")


# -- local folders -------------------------------------------------------------------

def _folder(lake: Path) -> Path:
    """The lake folder, created if missing and made ``0700``, or a LakeError saying why it
    cannot be."""
    root = _not_a_file(lake)
    try:
        _make_dir(root)
    except OSError as exc:
        raise LakeError(f"cannot create the lake folder {root}: {exc.strerror or exc}",
                        code="lake/not-writable") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise LakeError(f"the lake folder {root} is not writable", code="lake/not-writable")
    narrow(root, DIR_MODE)  # it holds events, whoever made it (``serve --lake`` makes it first)
    return root


def _not_a_file(root: Path) -> Path:
    """``root``, unless it or the nearest existing folder above it is a file."""
    found = next((p for p in (root, *root.parents) if p.exists()), None)
    if found is not None and not found.is_dir():
        where = "" if found == root else f" ({found} is a file)"
        raise LakeError(f"the lake {root} is not a folder{where}; give a folder",
                        code="lake/not-a-folder")
    return root


def _make_dir(path: Path) -> None:
    """Create ``path`` and missing parents, ``0700`` (they will hold events); each new
    folder's entry is fsynced in its parent. Existing folders are left as they are."""
    if path.is_dir():
        return
    _make_dir(path.parent)
    # Another writer may have made it meanwhile; a file raises.
    path.mkdir(mode=DIR_MODE, exist_ok=True)
    _fsync(path.parent)


def _fsync(path: Path) -> None:
    """Flush a file or folder to disk (folders only where the OS allows it)."""
    if path.is_dir() and os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
