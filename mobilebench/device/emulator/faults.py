"""Faults the phone emulator can inject, set from the command line or changed by tests
while it runs (``emulator.faults.hang_next_command = True``).

One-shot faults (``drop_after_bytes``, ``fail_next_push``, ``hang_next_command``,
``crash_next_command``) disarm themselves when they fire; ``reply_delay_s`` and
``hot_zones`` stay until changed. A command fault with a program name
(``crash_match``, ``hang_match``) stays armed through every command that does not run
that program and fires on the first one that does: ``--crash-next-command --crash-match
mobilebench_runner`` hits the runner, not the state read before it.
"""

from __future__ import annotations

import math
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
    """The next ``shell:``/``exec:`` stream is accepted but never runs, prints or ends;
    with ``hang_match``, the first program of that name is stopped (SIGSTOP) instead, so
    its command never ends."""

    hang_match: str | None = None
    """A program name (base name of argv[0]), e.g. ``mobilebench_runner``."""

    crash_next_command: bool = False
    """The next shell command's first program (or, with ``crash_match``, the first
    program of that name in any later command) is killed with SIGSEGV, so the shell
    reports status 139."""

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
        """True once for the next command when a hang without a program name is armed."""
        with self._lock:
            if not self.hang_next_command or self.hang_match:
                return False
            self.hang_next_command = False
            return True

    def program_faults(self) -> list[tuple[str, str | None]]:
        """The armed faults aimed at programs, as (``"crash"`` or ``"hang"``, program name
        or None for the first program). A crash without a name is the next command's:
        it is taken here. The named ones stay armed until :meth:`take_program_fault`."""
        with self._lock:
            aimed: list[tuple[str, str | None]] = []
            if self.crash_next_command:
                aimed.append(("crash", self.crash_match))
                if not self.crash_match:
                    self.crash_next_command = False
            if self.hang_next_command and self.hang_match:
                aimed.append(("hang", self.hang_match))
            return aimed

    def take_program_fault(self, kind: str, match: str | None) -> bool:
        """Disarm a named fault as it fires; False if another command took it first."""
        if match is None:
            return True  # taken by program_faults already
        with self._lock:
            if kind == "crash" and self.crash_next_command and self.crash_match == match:
                self.crash_next_command = False
                return True
            if kind == "hang" and self.hang_next_command and self.hang_match == match:
                self.hang_next_command = False
                return True
            return False

    @classmethod
    def parse_hot_zone(cls, text: str) -> tuple[str, float]:
        """``"cpu-1-6-usr=95"`` -> ``("cpu-1-6-usr", 95.0)`` (for the command line)."""
        zone, sep, temp = text.partition("=")
        try:
            value = float(temp)
            if not sep or not zone or not math.isfinite(value):
                raise ValueError
            return zone.strip(), value
        except ValueError:
            raise ValueError(f"expected ZONE=TEMP_C like cpu-1-6-usr=95, got {text!r}") from None
