"""Arrays as JSON, and length-prefixed JSON frames over pipes (between the harness's processes
inside one kernel)."""

from __future__ import annotations

import base64
import json
import os
import select
import struct
import time
from collections.abc import Callable
from typing import Any

__all__ = ["decode_array", "drain", "encode_array", "recv", "send"]

_HEADER = struct.Struct("<Q")
MAX_FRAME = 256 * 2**20


def encode_array(a: Any) -> dict[str, Any]:
    import numpy as np

    a = np.ascontiguousarray(a)
    return {
        "dtype": str(a.dtype),
        "shape": list(a.shape),
        "b64": base64.b64encode(a.tobytes()).decode(),
    }


def decode_array(d: dict[str, Any]) -> Any:
    import numpy as np

    return np.frombuffer(base64.b64decode(d["b64"]), dtype=d["dtype"]).reshape(d["shape"]).copy()


def send(fd: int, payload: dict[str, Any]) -> None:
    data = json.dumps(payload).encode()
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def recv(
    fd: int,
    deadline: float,
    give_up: Callable[[], bool] | None = None,
    *,
    tick: Callable[[], None] | None = None,
    poll_s: float = 0.1,
) -> dict[str, Any] | None:
    """One frame; None on end of file, garbage, the deadline, or when ``give_up()`` says so
    while nothing is arriving (asked every ``poll_s``). ``tick()`` runs before every wait, so
    at least every ``poll_s`` however the frame's bytes arrive."""
    buf = b""
    need, header_done = _HEADER.size, False
    while len(buf) < need:
        if tick is not None:
            tick()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], min(remaining, poll_s))
        if not ready:
            if give_up is not None and give_up():
                return None
            continue
        chunk = os.read(fd, min(1 << 20, need - len(buf)))
        if not chunk:
            return None
        buf += chunk
        if not header_done and len(buf) >= _HEADER.size:
            (size,) = _HEADER.unpack(buf[: _HEADER.size])
            if size > MAX_FRAME:
                return None
            buf, need, header_done = buf[_HEADER.size :], size, True
    try:
        msg = json.loads(buf.decode())
    except ValueError:
        return None
    return msg if isinstance(msg, dict) else None


def drain(fd: int) -> None:
    """Discard whatever is waiting in ``fd`` (bytes, possibly half a frame)."""
    while select.select([fd], [], [], 0)[0] and os.read(fd, 1 << 20):
        pass
