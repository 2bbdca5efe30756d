"""Faults the phone emulator can inject, set from the command line or changed by tests
while it runs (``emulator.faults.hang_next_command = True``).

One-shot faults (``drop_after_bytes``, ``fail_next_push``, ``hang_next_command``,
``crash_next_command``) disarm themselves when they fire; ``reply_delay_s`` and
``hot_zones`` stay until changed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class FaultPlan:
    drop_after_bytes: int | None = None
    """Close the connection abruptly once this many more bytes have crossed it (both
    directions, all connections). Counts down while armed."""

    fail_next_push: str | None = None
    """Refuse the next file sent with this message (e.g. ``"No space left on device"``);
    the data is consumed and discarded, no file is left behind."""

    reply_delay_s: float = 0.0
    """Wait this long before every message the emulator sends."""

    hang_next_command: bool = False
    """The next ``shell:``/``exec:`` stream is accepted but never runs, prints or ends."""

    crash_next_command: bool = False
    """The next shell command's first program (or its first program named
    ``crash_match``) is killed with SIGSEGV, so the shell reports status 139."""

    crash_match: str | None = None
    """A program name (base name of argv[0]), e.g. ``mobilebench_runner``."""

    hot_zones: dict[str, float] = field(default_factory=dict)
    """Thermal zone type (``cpu-1-6-usr``) or name (``thermal_zone9``) -> temperature in
    degrees C reported instead of the simulated one."""

    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def consume_bytes(self, count: int) -> bool:
        """Count bytes against ``drop_after_bytes``; True once when the drop is due."""
        if self.drop_after_bytes is None:
            return False
        with self._lock:
            if self.drop_after_bytes is None:
                return False
            self.drop_after_bytes -= count
            if self.drop_after_bytes > 0:
                return False
            self.drop_after_bytes = None
            return True

    def take_push_failure(self) -> str | None:
        with self._lock:
            message, self.fail_next_push = self.fail_next_push, None
            return message

    def take_hang(self) -> bool:
        with self._lock:
            hang, self.hang_next_command = self.hang_next_command, False
            return hang

    def take_crash(self) -> tuple[bool, str | None]:
        with self._lock:
            crash, self.crash_next_command = self.crash_next_command, False
            return crash, self.crash_match

    @classmethod
    def parse_hot_zone(cls, text: str) -> tuple[str, float]:
        """``"cpu-1-6-usr=95"`` -> ``("cpu-1-6-usr", 95.0)`` (for the command line)."""
        zone, sep, temp = text.partition("=")
        try:
            if not sep or not zone:
                raise ValueError
            return zone.strip(), float(temp)
        except ValueError:
            raise ValueError(f"expected ZONE=TEMP_C like cpu-1-6-usr=95, got {text!r}") from None
