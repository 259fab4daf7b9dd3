"""Work the launching process repeats while a run goes on (refreshing the lock, logging progress)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def repeated_every(seconds: float, action: Callable[[], None], name: str) -> Iterator[None]:
    """Call `action` every `seconds` on a daemon thread while the block runs; stop and join at its end."""
    stop = threading.Event()

    def repeat() -> None:
        while not stop.wait(seconds):
            action()

    thread = threading.Thread(target=repeat, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
