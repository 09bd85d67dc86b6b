"""The workspace's API keys, in ``.microjourney/keys.json`` beside the store.

A **write key** (``mjw_...``) may only send events: it is public, it ships in web pages
with the browser SDK. A **secret key** (``mjs_...``) may also read and administer (erase a
person); it stays on servers. A **viewer key** (``mjv_...``) only signs in to the dashboard,
to read it: for CX leads and moment owners, who need not hold the secret key. All three
are made on first use (a file from before the viewer key gains one) and replaced together
by :func:`rotate`. They live in a file of their own (readable by its owner only), not in the
store, so ``microjourney keys`` works while a server holds the store, and a running server
picks up rotated keys within a second (:class:`KeyFile`): the old ones stop working.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from .private import DIR_MODE, FILE_MODE, make_dir, narrow, write_atomic

WRITE, SECRET, VIEWER = "write", "secret", "viewer"
FILE = "keys.json"


@dataclass(frozen=True)
class Keys:
    write_key: str
    secret_key: str
    viewer_key: str = ""

    def role(self, key: str | None) -> str | None:
        """``"secret"``, ``"write"``, ``"viewer"`` or None for ``key`` (compared in constant
        time)."""
        if not key:
            return None
        for role, mine in ((SECRET, self.secret_key), (WRITE, self.write_key), (VIEWER, self.viewer_key)):
            if mine and hmac.compare_digest(key.encode(), mine.encode()):
                return role
        return None


def _save(path: Path, made: Keys) -> Keys:
    # A new temporary file each time (exclusive, 0600), renamed over the keys: a file left
    # under any name by a crash or by someone else never lends the keys its mode.
    make_dir(path.parent)
    write_atomic(path, orjson.dumps({"write_key": made.write_key, "secret_key": made.secret_key,
                                     "viewer_key": made.viewer_key}))
    return made


def _new() -> Keys:
    return Keys("mjw_" + secrets.token_urlsafe(24), "mjs_" + secrets.token_urlsafe(32), _viewer())


def _viewer() -> str:
    return "mjv_" + secrets.token_urlsafe(32)


def _read(path: Path) -> Keys:
    """The keys in ``path``; raises ``OSError`` (no file), ``ValueError`` or ``KeyError``."""
    data = orjson.loads(path.read_bytes())
    narrow(path.parent, DIR_MODE)  # keys written by an earlier version may be wider
    narrow(path, FILE_MODE)
    return Keys(str(data["write_key"]), str(data["secret_key"]), str(data.get("viewer_key") or ""))


def keys(path: Path) -> Keys:
    """The keys in ``path``, made on first use; a viewer key added to a file without one
    (the other two unchanged)."""
    try:
        found = _read(path)
    except FileNotFoundError:
        return _save(path, _new())
    if not found.viewer_key:
        return _save(path, Keys(found.write_key, found.secret_key, _viewer()))
    return found


def rotate(path: Path) -> Keys:
    """Replace the three keys; the old ones stop working."""
    return _save(path, _new())


class KeyFile:
    """The keys of ``path`` as a running server sees them: read again when the file
    changes, looked at no more than once a second."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._keys = keys(path)
        self._stamp = path.stat().st_mtime_ns
        self._checked = time.monotonic()

    def current(self) -> Keys:
        """The keys, read again if the file changed. A missing or unreadable file raises
        (``OSError``, ``ValueError``, ``KeyError``) and is looked at again on the next call:
        a server answers 503 then, it does not make new keys nor keep the removed ones."""
        now = time.monotonic()
        if now - self._checked >= 1.0:
            stamp = self.path.stat().st_mtime_ns
            if stamp != self._stamp:
                self._keys, self._stamp = _read(self.path), stamp
            self._checked = now
        return self._keys
