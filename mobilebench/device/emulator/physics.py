"""The thermal and frequency model: each emulated core warms while work pinned to it
runs and cools when idle, and its governor sets its frequency.

The model is first order, per core::

    dT/dt = heat_rate_c_per_s * busy - (T - ambient_c) / tau_s

``busy`` is the core's utilisation in [0, 1]. Over a step of length dt with constant busy
the exact solution is used, ``T(t+dt) = T_eq + (T(t) - T_eq) * exp(-dt / tau_s)`` with
``T_eq = ambient_c + heat_rate_c_per_s * busy * tau_s``, so the result does not depend
on the step size. With the defaults a fully busy core settles at 30 + 2 * 30 = 90 C and
cools with a 30 s time constant. Board sensors (battery, skin) follow at a quarter of
the mean core excess over ambient.

``busy`` comes from :class:`CpuActivity`: the CPU time consumed by processes in the
emulator's sandboxes that the emulator's ``taskset`` pinned (it marks them with the
environment variable ``MOBILEBENCH_EMU_CPUS``). Unpinned work does not heat any core.
:class:`Sensors` writes temperatures and frequencies into the phone's fake sysfs.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

PIN_ENV = "MOBILEBENCH_EMU_CPUS"
BOARD_COUPLING = 0.25


class ThermalModel:
    """Per-core temperatures; safe to change from another thread (e.g. a test)."""

    def __init__(
        self,
        *,
        ambient_c: float = 30.0,
        heat_rate_c_per_s: float = 2.0,
        tau_s: float = 30.0,
        initial_c: float | None = None,
    ) -> None:
        if tau_s <= 0:
            raise ValueError("tau_s must be positive")
        self.ambient_c = ambient_c
        self.heat_rate_c_per_s = heat_rate_c_per_s
        self.tau_s = tau_s
        self._initial_c = ambient_c if initial_c is None else initial_c
        self._temps: dict[int, float] = {}
        self._lock = threading.Lock()

    def temp_c(self, cpu: int) -> float:
        with self._lock:
            return self._temps.get(cpu, self._initial_c)

    def set_temp_c(self, temp_c: float, cpu: int | None = None) -> None:
        """Set one core's temperature, or every core's (``cpu=None``)."""
        with self._lock:
            if cpu is None:
                self._initial_c = temp_c
                for known in list(self._temps):
                    self._temps[known] = temp_c
            else:
                self._temps[cpu] = temp_c

    def set_rates(self, *, heat_rate_c_per_s: float | None = None, tau_s: float | None = None, ambient_c: float | None = None) -> None:
        with self._lock:
            if heat_rate_c_per_s is not None:
                self.heat_rate_c_per_s = heat_rate_c_per_s
            if tau_s is not None:
                if tau_s <= 0:
                    raise ValueError("tau_s must be positive")
                self.tau_s = tau_s
            if ambient_c is not None:
                self.ambient_c = ambient_c

    def step(self, dt_s: float, cpus: Iterable[int], busy: Mapping[int, float]) -> dict[int, float]:
        """Advance every core by ``dt_s`` seconds; returns the new temperatures."""
        with self._lock:
            decay = math.exp(-dt_s / self.tau_s)
            for cpu in cpus:
                load = min(1.0, max(0.0, busy.get(cpu, 0.0)))
                t_eq = self.ambient_c + self.heat_rate_c_per_s * load * self.tau_s
                current = self._temps.get(cpu, self._initial_c)
                self._temps[cpu] = t_eq + (current - t_eq) * decay
            return dict(self._temps)

    def board_temp_c(self, cpus: Iterable[int]) -> float:
        cpus = list(cpus)
        with self._lock:
            if not cpus:
                return self.ambient_c
            mean = sum(self._temps.get(c, self._initial_c) for c in cpus) / len(cpus)
            return self.ambient_c + BOARD_COUPLING * (mean - self.ambient_c)


class CpuActivity:
    """Utilisation of each emulated core, from /proc, for the processes under given roots."""

    def __init__(self) -> None:
        self._ticks_per_s = os.sysconf("SC_CLK_TCK")
        self._last: dict[int, int] = {}  # pid -> CPU ticks at the last sample

    def sample(self, roots: Iterable[int], dt_s: float) -> dict[int, float]:
        roots = set(roots)
        if not roots or dt_s <= 0:
            self._last.clear()
            return {}
        procs = _read_processes()
        children: dict[int, list[int]] = {}
        for pid, (ppid, _) in procs.items():
            children.setdefault(ppid, []).append(pid)
        busy: dict[int, float] = {}
        seen: dict[int, int] = {}
        stack = [r for r in roots if r in procs]
        while stack:
            pid = stack.pop()
            stack.extend(children.get(pid, ()))
            ticks = procs[pid][1]
            seen[pid] = ticks
            cpus = _pinned_cpus(pid)
            if not cpus or pid not in self._last:
                continue
            used = max(0, ticks - self._last[pid]) / self._ticks_per_s / dt_s
            for cpu in cpus:
                busy[cpu] = busy.get(cpu, 0.0) + used / len(cpus)
        self._last = seen
        return {cpu: min(1.0, value) for cpu, value in busy.items()}


def _read_processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, user+system CPU ticks) for every process we can see."""
    out: dict[int, tuple[int, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_bytes()
        except OSError:
            continue
        # The command name (field 2) may contain spaces and parentheses: split after it.
        fields = stat[stat.rfind(b")") + 2 :].split()
        try:
            out[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
        except (IndexError, ValueError):
            continue
    return out


def _pinned_cpus(pid: int) -> list[int]:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return []
    for item in environ.split(b"\0"):
        if item.startswith(PIN_ENV.encode() + b"="):
            value = item.split(b"=", 1)[1].decode(errors="replace")
            return [int(c) for c in value.split(",") if c.strip().isdigit()]
    return []


def descendants(root: int) -> list[tuple[int, int]]:
    """(pid, parent pid) of every process below ``root``, parents before children."""
    procs = _read_processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    order: list[tuple[int, int]] = []
    queue = [root]
    while queue:
        parent = queue.pop(0)
        for child in sorted(children.get(parent, ())):
            order.append((child, parent))
            queue.append(child)
    return order


class Sensors:
    """Writes the model's state into the phone's fake sysfs: each thermal zone's
    temperature (a core's, or the board's for battery and skin sensors; a fault's
    ``hot_zones`` win) and each core's ``scaling_cur_freq`` as its governor would set it.

    ``running()`` gives the pids of the sandboxes running commands now; their pinned
    processes are what heats the cores (see :class:`CpuActivity`).
    """

    def __init__(self, phone, root, thermal: ThermalModel, faults, running) -> None:
        self.phone = phone
        self.root = root
        self.thermal = thermal
        self.faults = faults
        self._running = running
        self._activity = CpuActivity()
        self._lock = threading.Lock()
        self._written: dict[tuple[str, int], str] = {}

    def refresh(self, dt_s: float = 0.0) -> None:
        """Advance the thermal model by ``dt_s`` seconds and write sysfs."""
        cpus = range(self.phone.cpu_count)
        with self._lock:
            busy = self._activity.sample(self._running(), dt_s) if dt_s > 0 else {}
            if dt_s > 0:
                self.thermal.step(dt_s, cpus, busy)
            board = self.thermal.board_temp_c(cpus)
            hot = dict(self.faults.hot_zones)
            for index, zone in enumerate(self.phone.zones):
                temp = self.thermal.temp_c(zone.cpu) if zone.cpu is not None else board
                temp = hot.get(zone.type, hot.get(f"thermal_zone{index}", temp))
                if self._changed(("zone", index), str(round(temp * 1000))):
                    self.root.write_zone_temp(index, temp)
            for cpu in cpus:
                freq = self.current_freq_khz(cpu, busy.get(cpu, 0.0))
                if self._changed(("freq", cpu), freq):
                    self.root.write_cpu_file(cpu, "scaling_cur_freq", freq)

    def _changed(self, key: tuple[str, int], value: str) -> bool:
        if self._written.get(key) == value:
            return False
        self._written[key] = value
        return True

    def current_freq_khz(self, cpu: int, busy: float) -> str:
        """Like a cpufreq governor: max when busy, min when idle; ``performance`` and
        ``powersave`` pin the limits; ``userspace`` uses scaling_setspeed."""
        governor = self.root.read_cpu_file(cpu, "scaling_governor")
        low = self.root.read_cpu_file(cpu, "scaling_min_freq")
        high = self.root.read_cpu_file(cpu, "scaling_max_freq")
        if governor == "userspace":
            setspeed = self.root.read_cpu_file(cpu, "scaling_setspeed")
            return setspeed if setspeed.isdigit() else high
        if governor == "performance":
            return high
        if governor == "powersave":
            return low
        return high if busy > 0.05 else low
