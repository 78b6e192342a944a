"""The broker address of `--mqtt`: `mqtt://[USER[:PASSWORD]@]HOST[:PORT][/PREFIX]`, checked and
parsed before anything starts (no paho import here: bad input is reported before libraries load).

The user name and password may be percent-encoded (`p%40ss` for `p@ss`); a raw `@` in the
password also works, as it does in camera URLs (the host follows the last `@`). PORT defaults to
1883 and PREFIX, the first level(s) of every topic, to `livefaces`. The password never appears in
`repr`, messages or `shown()`, which masks the credentials as `livefaces.redact` does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from livefaces.redact import redact_url

SCHEME = "mqtt"
DEFAULT_PORT = 1883
DEFAULT_PREFIX = "livefaces"
FORM = "mqtt://[USER:PASSWORD@]HOST[:PORT]/PREFIX"
_PREFIX = re.compile(r"[^+#\x00]+")


@dataclass(frozen=True)
class MqttTarget:
    """A broker and the topic prefix to publish under; the password stays out of `repr`."""

    host: str
    port: int = DEFAULT_PORT
    prefix: str = DEFAULT_PREFIX
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def shown(self) -> str:
        """The address as it may be shown: credentials masked."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        credentials = "***@" if self.username is not None else ""
        return f"{SCHEME}://{credentials}{host}:{self.port}/{self.prefix}"


def parse_mqtt_url(text: str) -> MqttTarget:
    """The target `text` names; ValueError (whose message never holds the password) otherwise."""
    shown = redact_url(text.strip())
    problem = f"must be {FORM}, got {shown!r}"
    if not text.strip().lower().startswith(f"{SCHEME}://"):
        raise ValueError(problem)
    try:
        parts = urlsplit(text.strip())
        port = DEFAULT_PORT if parts.port is None else parts.port
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise ValueError(f"{problem}: the port must be a number from 1 to 65535")
    if not parts.hostname:
        raise ValueError(f"{problem}: no host")
    if parts.query or parts.fragment:
        raise ValueError(f"{problem}: a query or fragment is not understood")
    prefix = parts.path.strip("/") or DEFAULT_PREFIX
    if not _PREFIX.fullmatch(prefix) or "//" in prefix:
        raise ValueError(f"{problem}: the prefix may not hold '+', '#' or empty levels")
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return MqttTarget(parts.hostname, port, prefix, username, password)
