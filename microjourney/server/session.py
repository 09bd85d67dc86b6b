"""Dashboard sessions: a signed cookie after signing in with the secret or the viewer key,
and the tokens that keep other sites from posting the dashboard's forms (CSRF).

A session is ``role.expiry.nonce.mac``: the role (``secret`` or ``viewer``), when it ends
(epoch seconds), a random nonce, and an HMAC-SHA256 of the three under a key derived from
the workspace's secret and viewer keys. Nothing is kept on the server; rotating the keys
(``microjourney keys rotate``) ends every session, and a changed or expired cookie is no
session. The cookie is ``HttpOnly`` (no script reads it) and ``SameSite=Strict`` (another
site's page sends none).

Forms: the sign-in form (before any session) carries a random token that must equal the
``mj_csrf`` cookie set with it (double submit); the forms of a signed-in page carry a token
derived from the session, which only a page of the dashboard was given.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from ..store.keys import SECRET, VIEWER, Keys

#: The session cookie and the sign-in form's token cookie.
COOKIE, CSRF_COOKIE = "mj_session", "mj_csrf"
#: Seconds a session lasts.
LIFETIME = 12 * 3600
#: The roles that may sign in (the write key may not: it ships in web pages).
ROLES = (SECRET, VIEWER)


def _key(keys: Keys) -> bytes:
    material = f"microjourney dashboard session\0{keys.secret_key}\0{keys.viewer_key}"
    return hashlib.sha256(material.encode()).digest()


def _mac(keys: Keys, text: str) -> str:
    return hmac.new(_key(keys), text.encode(), hashlib.sha256).hexdigest()


def issue(keys: Keys, role: str, now: float | None = None) -> str:
    """A session for ``role`` (one of :data:`ROLES`), valid for :data:`LIFETIME`."""
    if role not in ROLES:
        raise ValueError(f"role {role!r} may not sign in")
    ends = int((time.time() if now is None else now) + LIFETIME)
    payload = f"{role}.{ends}.{secrets.token_urlsafe(12)}"
    return f"{payload}.{_mac(keys, payload)}"


def role_of(keys: Keys, token: str | None, now: float | None = None) -> str | None:
    """The role of a valid, unexpired session ``token``; None otherwise."""
    if not token or len(token) > 200:
        return None
    parts = token.split(".")
    if len(parts) != 4:
        return None
    role, ends, _, mac = parts
    if not hmac.compare_digest(mac, _mac(keys, ".".join(parts[:3]))):
        return None
    if role not in ROLES or not ends.isdigit() or int(ends) < (time.time() if now is None else now):
        return None
    return role


def form_token(keys: Keys, session: str) -> str:
    """The token a signed-in page's forms carry (bound to its session)."""
    return _mac(keys, f"form\0{session}")


def same(a: str | None, b: str | None) -> bool:
    """Two tokens, both present and equal (compared in constant time)."""
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


def new_token() -> str:
    """A random token for the sign-in form (and its cookie)."""
    return secrets.token_urlsafe(24)


__all__ = ["COOKIE", "CSRF_COOKIE", "LIFETIME", "ROLES", "form_token", "issue", "new_token",
           "role_of", "same"]
