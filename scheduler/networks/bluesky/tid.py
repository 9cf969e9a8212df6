"""Timestamp identifiers (TIDs): the record keys of `app.bsky.feed.post`.

The atproto SDK validates TIDs but has no generator (https://atproto.com/specs/tid). A TID is a
64-bit integer, top bit 0, then 53 bits of microseconds since the Unix epoch, then a 10-bit clock
id, written in base32-sortable (13 characters), as in bluesky-social/atproto
`packages/common-web/src/tid.ts`. Herald chooses the rkey itself so a retry can find the record.
"""

from __future__ import annotations

import re
import secrets
import threading
import time

ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
LENGTH = 13
TID_RE = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")

_MAX_MICROS = (1 << 53) - 1
# A random clock id per process makes two processes minting in the same microsecond differ.
_CLOCK_ID = secrets.randbelow(1024)
_lock = threading.Lock()
_last_micros = 0


def encode(micros: int, clock_id: int) -> str:
    """The TID for a timestamp in microseconds and a clock id (0-1023)."""
    if not 0 <= micros <= _MAX_MICROS or not 0 <= clock_id < 1024:
        raise ValueError("a TID holds 53 bits of microseconds and a 10-bit clock id")
    value = (micros << 10) | clock_id
    chars = []
    for _ in range(LENGTH):
        chars.append(ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def decode(tid: str) -> tuple[int, int]:
    """(microseconds since the epoch, clock id) of a TID; raises ValueError if it is not one."""
    if not is_tid(tid):
        raise ValueError(f"not a TID: {tid!r}")
    value = 0
    for char in tid:
        value = (value << 5) | ALPHABET.index(char)
    return value >> 10, value & 1023


def is_tid(value: str) -> bool:
    return bool(TID_RE.match(value))


def next_tid() -> str:
    """A new TID, strictly greater than every TID this process minted before."""
    global _last_micros
    with _lock:
        micros = max(time.time_ns() // 1000, _last_micros + 1)
        _last_micros = micros
    return encode(micros, _CLOCK_ID)
