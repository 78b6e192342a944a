"""Reading what the app wrote to a stderr that is not a terminal (service mode).

There every line the app says is a log record: `<ISO 8601 time> <LEVEL> <message>`, where the
message is the very line a terminal shows (`livefaces: wrote out.mp4: ...`). A few lines stay
plain: errors before the run starts (exit code 2) and what the interrupt handler writes.
"""

from __future__ import annotations

import re

TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d"
RECORD = re.compile(rf"^(?P<time>{TIME}) (?P<level>INFO|WARNING|ERROR) (?P<message>.*)$")


def messages(err: str) -> list[str]:
    """Each line of `err` as a terminal would show it: a record's message, a plain line as is."""
    found = []
    for line in err.splitlines():
        record = RECORD.match(line)
        found.append(record.group("message") if record else line)
    return found
