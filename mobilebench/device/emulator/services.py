"""The emulated phone's ADB services: ``shell:`` and ``exec:`` run commands in the
sandbox, ``sync:`` moves files (protocol in :mod:`.sync`).

Each handler runs in its stream's own thread (see :class:`.protocol.Connection`).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from mobilebench.device.emulator.faults import FaultPlan
from mobilebench.device.emulator.physics import descendants
from mobilebench.device.emulator.protocol import Stream
from mobilebench.device.emulator.sandbox import PathMap, Sandbox
from mobilebench.device.emulator.sync import SyncClosed, SyncSession

log = logging.getLogger("mobilebench.emulator")

IDLE_TIMEOUT_S = 600.0  # a sync stream silent for this long is closed


class Processes:
    """The sandbox processes running commands now (the physics model samples their CPU
    time; stopping the emulator kills them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[int, subprocess.Popen] = {}

    def add(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._running[proc.pid] = proc

    def remove(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._running.pop(proc.pid, None)

    def pids(self) -> list[int]:
        with self._lock:
            return list(self._running)

    def kill_all(self) -> None:
        with self._lock:
            running = list(self._running.values())
        for proc in running:
            kill(proc)


class CommandService:
    """``shell:COMMAND`` (stdout and stderr merged, like adbd's raw shell) and
    ``exec:COMMAND`` (stdout only); an empty command is an interactive shell."""

    def __init__(self, sandbox: Sandbox, faults: FaultPlan, processes: Processes) -> None:
        self.sandbox = sandbox
        self.faults = faults
        self.processes = processes

    def shell(self, stream: Stream, command: str) -> None:
        self._serve(stream, command, exec_mode=False)

    def exec(self, stream: Stream, command: str) -> None:
        self._serve(stream, command, exec_mode=True)

    def _serve(self, stream: Stream, command: str, *, exec_mode: bool) -> None:
        if self.faults.take_hang():
            log.info("fault: hanging command %r", command[:80])
            while stream.read(timeout_s=None) is not None:  # swallow input until the client gives up
                pass
            return
        proc = self.sandbox.spawn(command if command.strip() else None, merge_stderr=not exec_mode)
        self.processes.add(proc)
        stream.on_close.append(lambda: kill(proc))
        aimed = self.faults.program_faults()
        if aimed:
            threading.Thread(target=_fire_program_faults, args=(proc, aimed, self.faults), daemon=True).start()
        threading.Thread(target=_feed_stdin, args=(stream, proc), daemon=True).start()
        try:
            fd = proc.stdout.fileno()  # type: ignore[union-attr]
            while True:
                chunk = os.read(fd, stream.conn.max_payload)
                if not chunk or not stream.write(chunk):
                    break
            while proc.poll() is None and not stream.closed:
                try:
                    proc.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            kill(proc)
            proc.stdout.close()  # type: ignore[union-attr]
            self.processes.remove(proc)


class SyncService:
    """``sync:``: one :class:`.sync.SyncSession` per stream."""

    def __init__(self, paths: PathMap, faults: FaultPlan) -> None:
        self.paths = paths
        self.faults = faults

    def __call__(self, stream: Stream, _arg: str) -> None:
        io = _SyncIO(stream)
        session = SyncSession(io.read, io.write, io.flush, self.paths, self.faults)
        try:
            session.serve()
            io.flush()
        except SyncClosed:
            pass


class _SyncIO:
    """Byte-level reads and buffered writes over a stream, for the sync service."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self._in = bytearray()
        self._out = bytearray()

    def read(self, size: int) -> bytes:
        while len(self._in) < size:
            chunk = self.stream.read(IDLE_TIMEOUT_S)
            if chunk is None:
                raise SyncClosed()
            self._in += chunk
        data = bytes(self._in[:size])
        del self._in[:size]
        return data

    def write(self, data: bytes) -> None:
        self._out += data
        if len(self._out) >= self.stream.conn.max_payload:
            self.flush()

    def flush(self) -> None:
        if self._out:
            data, self._out = bytes(self._out), bytearray()
            if not self.stream.write(data):
                raise SyncClosed()


def kill(proc: subprocess.Popen) -> None:
    """Kill the sandbox and, through its PID namespace, everything it started."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.warning("sandbox process %d did not exit after SIGKILL", proc.pid)


def _feed_stdin(stream: Stream, proc: subprocess.Popen) -> None:
    """Client WRTE data -> the command's stdin (adb's raw shell has no EOF: the client
    closing the stream ends the command)."""
    stdin = proc.stdin
    assert stdin is not None
    try:
        while True:
            data = stream.read(timeout_s=None)
            if data is None:
                break
            try:
                stdin.write(data)
            except OSError:
                continue  # the command closed its stdin; keep acknowledging
    finally:
        try:
            stdin.close()
        except OSError:
            pass


_SIGNALS = {"crash": signal.SIGSEGV, "hang": signal.SIGSTOP}


def _fire_program_faults(proc: subprocess.Popen, aimed: list[tuple[str, str | None]], faults: FaultPlan) -> None:
    """Watch the programs a command starts and hit each aimed fault's target: SIGSEGV for
    a crash (the shell reports 139), SIGSTOP for a hang (the command never ends). A fault
    with a name fires on the first program of that name (see :func:`program_name`); one
    without, on the command's first program. Named faults the command never reaches stay
    armed for later commands."""
    aimed = list(aimed)
    while aimed and proc.poll() is None:
        for pid, parent in descendants(proc.pid):
            # bwrap (outer and namespace init) and the shell right below it are plumbing.
            if parent == proc.pid or _read_proc(pid, "comm").strip() == "bwrap" or _read_proc(parent, "comm").strip() == "bwrap":
                continue
            argv = _read_proc(pid, "cmdline").split("\0")
            name = program_name(argv)
            for kind, match in list(aimed):
                if match is not None and name != match:
                    continue
                aimed.remove((kind, match))
                if not faults.take_program_fault(kind, match):
                    continue  # another command's program took it first
                try:
                    os.kill(pid, _SIGNALS[kind])
                    log.info("fault: %s of %r (%s)", kind, " ".join(argv).strip()[:80], _SIGNALS[kind].name)
                except ProcessLookupError:
                    pass
        time.sleep(0.005)


def program_name(argv: list[str]) -> str:
    """The base name of the program an argv runs, looking through the two launchers a
    phone's runner is started with: qemu (``qemu-aarch64-static -cpu C -0 ARGV0 PATH ...``,
    as the emulator's exec shim calls it) and a glibc loader
    (``ld-linux-aarch64.so.1 --library-path lib ./mobilebench_runner ...``)."""
    argv = [a for a in argv if a]
    if argv and os.path.basename(argv[0]).startswith("qemu-") and "-0" in argv:
        argv = argv[argv.index("-0") + 2 :]
    if argv and os.path.basename(argv[0]).startswith("ld-linux"):
        rest = argv[1:]
        while rest and rest[0].startswith("--"):
            takes_value = rest[0] in ("--library-path", "--preload", "--argv0", "--audit", "--glibc-hwcaps-mask")
            rest = rest[2:] if takes_value else rest[1:]
        argv = rest
    return os.path.basename(argv[0]) if argv else ""


def _read_proc(pid: int, name: str) -> str:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes().decode(errors="replace")
    except OSError:
        return ""
