"""Where full-size images are decoded: one thread for the whole process.

A decoded 5 MB image takes tens of megabytes; decoded on many request and row threads at
once, such images pile up, and their memory stays with one allocator arena per thread.
Thumbnails, the image checks and the check of each downloaded file all decode through here,
so at most one full-size image is in memory at a time. Each decode takes tens of
milliseconds, against seconds per image.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_DECODER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="full-size-decodes")


def one_at_a_time(work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run `work`, which decodes a full-size image, on the process's one decoding thread."""
    return _DECODER.submit(work, *args, **kwargs).result()
