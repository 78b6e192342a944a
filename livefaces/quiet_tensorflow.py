"""TensorFlow, imported without its native start-up notes on the user's terminal.

`import livefaces` and the first detection should print nothing. Unless the user chose a level
with `TF_CPP_MIN_LOG_LEVEL` (set it to 0 to see TensorFlow's logs) or set
`LIVEFACES_NATIVE_LOGS=1`, TensorFlow's C++ logging is limited to fatal errors and fd 2 is
silenced while it loads (its first lines are printed before that setting takes effect).
"""

from __future__ import annotations

import contextlib
import os

from livefaces import native_logs

_user_chose_level = "TF_CPP_MIN_LOG_LEVEL" in os.environ
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

with contextlib.nullcontext() if _user_chose_level else native_logs.silenced():
    import tensorflow as tf

__all__ = ["tf"]
