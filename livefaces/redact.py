"""Hiding secrets in source URLs before they are shown, logged or used in names.

Camera users put credentials in two places: the authority (`rtsp://admin:p@ss@cam/x`, often with
an unescaped `@` in the password) and the query string (`video.mjpg?user=admin&pwd=Secr3t`).
`redact_url` masks both, so it is applied wherever a source is displayed.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
# A parameter is secret when its name contains one of these words...
SECRET_WORDS = (
    "password",
    "passwd",
    "pwd",
    "token",
    "secret",
    "signature",
    "apikey",
    "api_key",
    "credential",
)
# ...or is one of these short words, alone or between `_`/`-` (so `author` or `keyframe` stay).
SECRET_SHORT_NAMES = ("pass", "pw", "key", "auth", "sig", "session", "sid")

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<rest>.*)$", re.DOTALL)
_SECRET_NAME = re.compile(
    "|".join(SECRET_WORDS) + r"|(^|[_-])(" + "|".join(SECRET_SHORT_NAMES) + r")($|[_-])", re.IGNORECASE
)


def redact_url(url: str) -> str:
    """`url` with everything up to the authority's last `@` and secret query values as `***`.

    The authority ends at the first `/`, `?` or `#` after the last `@` that precedes them, so a
    password holding `@` (or `/`, `:`) is masked whole. Query parameters whose names look like
    secrets (password, pwd, token, key, auth, signature...) keep their name and lose their value.
    """
    match = _SCHEME.match(url)
    if match is None:
        return url
    scheme, rest = match.group("scheme"), match.group("rest")
    query_start = _first_of(rest, "?#")
    head, tail = rest[:query_start], rest[query_start:]
    if "@" in head:
        head = MASK + head[head.rindex("@") :]
    return scheme + head + _redact_query(tail)


def _first_of(text: str, characters: str) -> int:
    positions = [text.index(c) for c in characters if c in text]
    return min(positions) if positions else len(text)


def _redact_query(tail: str) -> str:
    def mask(pair: re.Match[str]) -> str:
        name = pair.group("name")
        return f"{pair.group('sep')}{name}={MASK}" if _SECRET_NAME.search(name) else pair.group(0)

    return re.sub(r"(?P<sep>[?&;#])(?P<name>[^=&;#]+)=(?P<value>[^&;#]*)", mask, tail)


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")


def redact_text(text: str) -> str:
    """`text` with every URL in it redacted (`redact_url`), for messages that may quote one."""
    return _URL_IN_TEXT.sub(lambda url: redact_url(url.group(0)), text)


def redact_values(value: Any) -> Any:
    """A JSON-ready value (dicts, lists, strings, numbers) with every URL in its strings redacted."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list):
        return [redact_values(v) for v in value]
    if isinstance(value, dict):
        return {key: redact_values(v) for key, v in value.items()}
    return value
