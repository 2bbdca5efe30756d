"""The phone emulator: an adbd that speaks the real ADB protocol on loopback.

One thread accepts TCP connections; each connection has a reader thread that parses
messages and dispatches them, and every open stream (``shell:``, ``exec:``, ``sync:``) has
its own worker thread, so several streams run at once. Flow control follows adbd: after
a WRTE the sender waits for the peer's OKAY before the next WRTE on that stream, and we
OKAY the client's WRTEs only once their data has been consumed (written to the command's
stdin or handled by the sync service).

Handshake: the client's CNXN is answered with AUTH TOKEN (20 random bytes) unless
``auth="none"``; an AUTH SIGNATURE is checked against the accepted public keys (a new
token on failure, like adbd); an AUTH RSAPUBLICKEY for a key we do not accept closes the
connection (a phone would show a prompt; the emulator refuses at once).

A physics thread advances the :class:`~.physics.ThermalModel` every 0.2 s and writes
temperatures and current frequencies into the phone's fake sysfs.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from mobilebench import paths
from mobilebench.device.emulator import protocol as p
from mobilebench.device.emulator.faults import FaultPlan
from mobilebench.device.emulator.phones import PhoneSpec, get_phone
from mobilebench.device.emulator.physics import CpuActivity, ThermalModel, descendants
from mobilebench.device.emulator.sandbox import PhoneRoot, Sandbox
from mobilebench.device.emulator.sync import SyncClosed, SyncSession
from mobilebench.device.keys import decode_android_pubkey, read_public_keys, verify_token_signature
from mobilebench.errors import MobilebenchError

log = logging.getLogger("mobilebench.emulator")

PHYSICS_TICK_S = 0.2
OKAY_TIMEOUT_S = 120.0  # a client that stops acknowledging for this long is dropped
IDLE_TIMEOUT_S = 600.0  # a sync stream silent for this long is closed
MAX_AUTH_ATTEMPTS = 10
FEATURES = ("fixed_push_mkdir",)


class _Stream:
    """One ADB stream: our id, the client's id, flow control and the inbound queue."""

    def __init__(self, conn: "_Connection", local_id: int, remote_id: int, service: str) -> None:
        self.conn = conn
        self.local_id = local_id
        self.remote_id = remote_id
        self.service = service
        self._cond = threading.Condition()
        self._awaiting_okay = False
        self._sent_close = False
        self.closed = False
        self.inbox: queue.Queue[bytes | None] = queue.Queue()
        self.on_close: list[Callable[[], None]] = []  # run once when the stream ends

    # -- from the connection's reader thread -------------------------------------------------

    def got_okay(self) -> None:
        with self._cond:
            self._awaiting_okay = False
            self._cond.notify_all()

    def got_data(self, data: bytes) -> None:
        self.inbox.put(data)

    def got_close(self) -> None:
        self._mark_closed()
        self.close()  # answer with CLSE (adb-shell waits for it), unless we already did

    # -- from worker threads ----------------------------------------------------------------

    def _mark_closed(self) -> None:
        with self._cond:
            if self.closed:
                return
            self.closed = True
            self._cond.notify_all()
        self.inbox.put(None)
        for callback in self.on_close:
            callback()

    def write(self, data: bytes) -> bool:
        """Send ``data`` as WRTE messages, each after the previous one's OKAY."""
        view = memoryview(data)
        size = self.conn.max_payload
        for start in range(0, len(view), size):
            with self._cond:
                if not self._cond.wait_for(lambda: not self._awaiting_okay or self.closed, timeout=OKAY_TIMEOUT_S):
                    self.conn.abort("client stopped acknowledging data")
                    return False
                if self.closed:
                    return False
                self._awaiting_okay = True
            if not self.conn.send(p.A_WRTE, self.local_id, self.remote_id, bytes(view[start : start + size])):
                return False
        return True

    def ack(self) -> None:
        """OKAY the client's last WRTE (its data has been consumed)."""
        if not self.closed:
            self.conn.send(p.A_OKAY, self.local_id, self.remote_id)

    def read(self, timeout_s: float | None) -> bytes | None:
        """The client's next WRTE payload (already acknowledged), None when closed."""
        try:
            data = self.inbox.get(timeout=timeout_s)
        except queue.Empty:
            return None
        if data is None:
            self.inbox.put(None)  # stay closed for later readers
            return None
        self.ack()
        return data

    def close(self) -> None:
        with self._cond:
            send = not self._sent_close
            self._sent_close = True
        self._mark_closed()
        if send:
            self.conn.send(p.A_CLSE, self.local_id, self.remote_id)
        self.conn.forget(self)


class _SyncIO:
    """Byte-level reads and buffered writes over a stream, for the sync service."""

    def __init__(self, stream: _Stream) -> None:
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


class _Connection:
    def __init__(self, emulator: "PhoneEmulator", sock: socket.socket, peer: str) -> None:
        self.emulator = emulator
        self.sock = sock
        self.peer = peer
        self.version = p.VERSION_MIN
        self.max_payload = p.MAX_PAYLOAD
        self.online = False
        self._negotiated = False
        self._token = b""
        self._auth_attempts = 0
        self._send_lock = threading.Lock()
        self._streams: dict[int, _Stream] = {}
        self._streams_lock = threading.Lock()
        self._next_id = 1
        self._dead = False

    # -- sending ------------------------------------------------------------------------

    def send(self, command: int, arg0: int, arg1: int, data: bytes = b"") -> bool:
        delay = self.emulator.faults.reply_delay_s
        if delay > 0:
            time.sleep(delay)
        packed = p.Message(command, arg0, arg1, data).pack()
        with self._send_lock:
            if self._dead:
                return False
            if self.emulator.faults.consume_bytes(len(packed)):
                self._abort_locked("fault: dropping the connection")
                return False
            try:
                self.sock.sendall(packed)
            except OSError:
                self._abort_locked("send failed")
                return False
        return True

    def abort(self, why: str) -> None:
        with self._send_lock:
            self._abort_locked(why)

    def _abort_locked(self, why: str) -> None:
        if self._dead:
            return
        self._dead = True
        log.info("%s: closing connection: %s", self.peer, why)
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- receiving ----------------------------------------------------------------------

    def serve(self) -> None:
        try:
            while not self._dead:
                message = p.read_message(
                    self.sock,
                    verify_checksum=self._negotiated and self.version < p.VERSION_SKIP_CHECKSUM,
                    max_payload=max(self.max_payload, p.MAX_PAYLOAD),
                )
                if self.emulator.faults.consume_bytes(p.HEADER.size + len(message.data)):
                    self.abort("fault: dropping the connection")
                    break
                self._dispatch(message)
        except p.ProtocolError as exc:
            log.warning("%s: protocol error: %s", self.peer, exc)
        except OSError:
            pass  # the client went away or we aborted
        finally:
            self.abort("connection ended")
            self._close_all_streams()
            self.sock.close()
            self.emulator._forget_connection(self)

    def _dispatch(self, m: p.Message) -> None:
        if m.command == p.A_CNXN:
            self._on_cnxn(m)
        elif m.command == p.A_AUTH:
            self._on_auth(m)
        elif not self.online:
            return  # adbd ignores everything else before the handshake
        elif m.command == p.A_OPEN:
            self._on_open(m)
        elif m.command in (p.A_OKAY, p.A_WRTE, p.A_CLSE):
            with self._streams_lock:
                stream = self._streams.get(m.arg1)
            if stream is None or (m.arg0 != stream.remote_id and m.arg0 != 0):
                if m.command == p.A_WRTE:
                    self.send(p.A_CLSE, 0, m.arg0)
                return
            if m.command == p.A_OKAY:
                stream.got_okay()
            elif m.command == p.A_WRTE:
                stream.got_data(m.data)
            else:
                stream.got_close()

    def _on_cnxn(self, m: p.Message) -> None:
        if self.online:  # a new CNXN restarts the session
            self._close_all_streams()
            self.online = False
        self.version = max(p.VERSION_MIN, min(m.arg0, p.VERSION_SKIP_CHECKSUM))
        self.max_payload = max(4096, min(m.arg1 or 4096, p.MAX_PAYLOAD))
        self._negotiated = True
        if self.emulator.auth == "none":
            self._go_online("no authentication")
        else:
            self._send_token()

    def _send_token(self) -> None:
        self._token = secrets.token_bytes(p.TOKEN_SIZE)
        self.send(p.A_AUTH, p.AUTH_TOKEN, 0, self._token)

    def _on_auth(self, m: p.Message) -> None:
        if self.online or not self._token:
            return
        if m.arg0 == p.AUTH_SIGNATURE:
            if any(verify_token_signature(key, self._token, m.data) for key in self.emulator.accepted_public_keys()):
                self._go_online("key accepted")
                return
            self._auth_attempts += 1
            if self._auth_attempts > MAX_AUTH_ATTEMPTS:
                self.abort("too many failed signatures")
                return
            self._send_token()
        elif m.arg0 == p.AUTH_RSAPUBLICKEY:
            try:
                offered = decode_android_pubkey(m.data.rstrip(b"\0"))
            except ValueError:
                self.abort("client sent an unreadable public key")
                return
            numbers = offered.public_numbers()
            if any(k.public_numbers() == numbers for k in self.emulator.accepted_public_keys()):
                self._go_online("public key accepted")
            else:
                comment = m.data.rstrip(b"\0").split(b" ", 1)[1:] or [b"?"]
                self.abort(f"refused unknown ADB key ({comment[0].decode(errors='replace')})")

    def _go_online(self, why: str) -> None:
        props = self.emulator.phone.all_props()
        banner = (
            f"device::ro.product.name={props['ro.product.name']};ro.product.model={props['ro.product.model']};"
            f"ro.product.device={props['ro.product.device']};features={','.join(FEATURES)}"
        )
        self.online = True
        log.info("%s: online (%s)", self.peer, why)
        self.send(p.A_CNXN, self.version, p.MAX_PAYLOAD, banner.encode() + b"\0")

    # -- streams ------------------------------------------------------------------------

    def _on_open(self, m: p.Message) -> None:
        service = m.data.rstrip(b"\0").decode("utf-8", "surrogateescape")
        name, _, arg = service.partition(":")
        handler = {"shell": self.emulator._serve_shell, "exec": self.emulator._serve_exec, "sync": self.emulator._serve_sync}.get(name)
        if handler is None or m.arg0 == 0:
            # Unknown service ("shell,v2", "reboot", ...): refuse like adbd, CLSE(0, id).
            log.info("%s: refused service %r", self.peer, service)
            self.send(p.A_CLSE, 0, m.arg0)
            return
        with self._streams_lock:
            local_id = self._next_id
            self._next_id += 1
            stream = _Stream(self, local_id, m.arg0, service)
            self._streams[local_id] = stream
        self.send(p.A_OKAY, local_id, m.arg0)
        worker = threading.Thread(target=self._run_handler, args=(handler, stream, arg), name=f"adb-{name}-{local_id}", daemon=True)
        worker.start()

    def _run_handler(self, handler, stream: _Stream, arg: str) -> None:
        try:
            handler(stream, arg)
        except Exception:  # noqa: BLE001 - one broken stream must not take the emulator down
            log.exception("%s: stream %r failed", self.peer, stream.service)
        finally:
            stream.close()

    def forget(self, stream: _Stream) -> None:
        with self._streams_lock:
            self._streams.pop(stream.local_id, None)

    def _close_all_streams(self) -> None:
        with self._streams_lock:
            streams = list(self._streams.values())
        for stream in streams:
            stream._mark_closed()
            self.forget(stream)


class PhoneEmulator:
    """An emulated phone serving ADB on ``host:port`` (port 0 picks a free one).

    ``root`` holds the phone's files (see :mod:`.sandbox`). ``profile`` names the phone
    (:data:`.phones.PHONES`). With ``auth="keys"`` only ``accepted_keys`` (adbkey.pub
    files) get in; when none are given, ``<config dir>/adbkey.pub`` and
    ``~/.android/adbkey.pub`` are accepted if present (re-read at every connection).
    ``faults`` and ``thermal`` may be changed while it runs.
    """

    def __init__(
        self,
        root: Path,
        *,
        profile: str = "pixel4",
        port: int = 0,
        auth: Literal["keys", "none"] = "keys",
        accepted_keys: Sequence[Path] = (),
        faults: FaultPlan | None = None,
        thermal: ThermalModel | None = None,
        rooted: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        if auth not in ("keys", "none"):
            raise MobilebenchError(f"--auth must be 'keys' or 'none', got {auth!r}")
        self.phone: PhoneSpec = get_phone(profile)
        self.root = PhoneRoot(Path(root), self.phone)
        self.sandbox = Sandbox(self.root, rooted=rooted)
        self.paths = self.sandbox.path_map()
        self.auth = auth
        self.accepted_keys = [Path(k) for k in accepted_keys]
        self.faults = faults if faults is not None else FaultPlan()
        self.thermal = thermal if thermal is not None else ThermalModel()
        self.host = host
        self.port = port
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._connections: set[_Connection] = set()
        self._processes: dict[int, subprocess.Popen] = {}
        self._lock = threading.Lock()
        self._activity = CpuActivity()
        self._physics_lock = threading.Lock()
        self._written: dict[tuple[str, int], str] = {}

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> "PhoneEmulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> "PhoneEmulator":
        for key in self.accepted_keys:
            if not key.is_file():
                raise MobilebenchError(f"accepted key {key} does not exist")
            read_public_keys(key)  # fail now on a malformed file
        self.root.create(initial_temp_c=self.thermal.temp_c(0))
        self.sandbox.check()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, self.port))
        except OSError as exc:
            listener.close()
            raise MobilebenchError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from None
        listener.listen(16)
        listener.settimeout(PHYSICS_TICK_S)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self.refresh()
        for target, name in ((self._accept_loop, "adb-accept"), (self._physics_loop, "emulator-physics")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("phone emulator (%s) listening on %s:%d, files in %s", self.phone.name, self.host, self.port, self.root.root)
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            connections = list(self._connections)
            processes = list(self._processes.values())
        for conn in connections:
            conn.abort("emulator stopping")
        for proc in processes:
            _kill(proc)
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def accepted_public_keys(self) -> list:
        files = self.accepted_keys or [paths.config_dir() / "adbkey.pub", Path.home() / ".android" / "adbkey.pub"]
        keys = []
        for file in files:
            try:
                keys += read_public_keys(file)
            except MobilebenchError as exc:
                log.warning("ignoring accepted key file: %s", exc)
        return keys

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                sock, addr = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(self, sock, f"{addr[0]}:{addr[1]}")
            with self._lock:
                self._connections.add(conn)
            threading.Thread(target=conn.serve, name=f"adb-conn-{addr[1]}", daemon=True).start()

    def _forget_connection(self, conn: _Connection) -> None:
        with self._lock:
            self._connections.discard(conn)

    # -- services -------------------------------------------------------------------------

    def _serve_shell(self, stream: _Stream, command: str) -> None:
        self._serve_command(stream, command, exec_mode=False)

    def _serve_exec(self, stream: _Stream, command: str) -> None:
        self._serve_command(stream, command, exec_mode=True)

    def _serve_command(self, stream: _Stream, command: str, *, exec_mode: bool) -> None:
        if self.faults.take_hang():
            log.info("fault: hanging command %r", command[:80])
            while stream.read(timeout_s=None) is not None:  # swallow input until the client gives up
                pass
            return
        proc = self.sandbox.spawn(command if command.strip() else None, merge_stderr=not exec_mode)
        with self._lock:
            self._processes[proc.pid] = proc
        stream.on_close.append(lambda: _kill(proc))
        crash, match = self.faults.take_crash()
        if crash:
            threading.Thread(target=_crash_first_program, args=(proc, match), daemon=True).start()
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
            _kill(proc)
            proc.stdout.close()  # type: ignore[union-attr]
            with self._lock:
                self._processes.pop(proc.pid, None)

    def _serve_sync(self, stream: _Stream, _arg: str) -> None:
        io = _SyncIO(stream)
        session = SyncSession(io.read, io.write, io.flush, self.paths, self.faults)
        try:
            session.serve()
            io.flush()
        except SyncClosed:
            pass

    # -- physics --------------------------------------------------------------------------

    def _physics_loop(self) -> None:
        last = time.monotonic()
        while not self._stopping.wait(PHYSICS_TICK_S):
            now = time.monotonic()
            try:
                self.refresh(now - last)
            except OSError as exc:  # ROOT removed under us: keep serving
                log.warning("cannot update the phone's sysfs: %s", exc)
            last = now

    def refresh(self, dt_s: float = 0.0) -> None:
        """Advance the thermal model by ``dt_s`` and write sysfs now (tests call this
        after changing temperatures or faults to see the effect at once)."""
        cpus = range(self.phone.cpu_count)
        with self._physics_lock:
            with self._lock:
                roots = list(self._processes)
            busy = self._activity.sample(roots, dt_s) if dt_s > 0 else {}
            if dt_s > 0:
                self.thermal.step(dt_s, cpus, busy)
            board = self.thermal.board_temp_c(cpus)
            hot = dict(self.faults.hot_zones)
            for index, zone in enumerate(self.phone.zones):
                temp = self.thermal.temp_c(zone.cpu) if zone.cpu is not None else board
                temp = hot.get(zone.type, hot.get(f"thermal_zone{index}", temp))
                self._write_if_changed(("zone", index), str(round(temp * 1000)), lambda v, i=index, t=temp: self.root.write_zone_temp(i, t))
            for cpu in cpus:
                freq = self._current_freq_khz(cpu, busy.get(cpu, 0.0))
                self._write_if_changed(("freq", cpu), freq, lambda v, c=cpu: self.root.write_cpu_file(c, "scaling_cur_freq", v))

    def _write_if_changed(self, key: tuple[str, int], value: str, write) -> None:
        if self._written.get(key) != value:
            write(value)
            self._written[key] = value

    def _current_freq_khz(self, cpu: int, busy: float) -> str:
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


def _kill(proc: subprocess.Popen) -> None:
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


def _feed_stdin(stream: _Stream, proc: subprocess.Popen) -> None:
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


def _crash_first_program(proc: subprocess.Popen, match: str | None, timeout_s: float = 60.0) -> None:
    """Fault: SIGSEGV the first program the shell starts (or the first program called
    ``match``, compared with the base name of its argv[0]), so that the shell sees it die
    like a segfault (status 139)."""
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None and time.monotonic() < deadline:
        procs = descendants(proc.pid)
        comms = {pid: _read_proc(pid, "comm").strip() for pid, _ in procs}
        for pid, parent in procs:
            # bwrap (outer and namespace init) and the shell right below it are plumbing.
            if comms.get(pid) == "bwrap" or comms.get(parent) == "bwrap" or parent == proc.pid:
                continue
            cmdline = _read_proc(pid, "cmdline")
            if match and os.path.basename(cmdline.split("\0", 1)[0]) != match:
                continue
            cmdline = cmdline.replace("\0", " ")
            try:
                os.kill(pid, signal.SIGSEGV)
                log.info("fault: crashed %r with SIGSEGV", cmdline.strip()[:80])
            except ProcessLookupError:
                continue
            return
        time.sleep(0.005)


def _read_proc(pid: int, name: str) -> str:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes().decode(errors="replace")
    except OSError:
        return ""
