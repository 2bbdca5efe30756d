"""The phone emulator: an adbd on loopback, wired from its parts.

:mod:`.protocol` speaks ADB to each client, :mod:`.services` runs the shell and sync
services in the phone's :mod:`.sandbox`, and a physics thread advances the thermal
model (:mod:`.physics`) every 0.2 s, writing temperatures and current frequencies into
the phone's fake sysfs.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from mobilebench import paths
from mobilebench.device.emulator.arm64 import check_qemu
from mobilebench.device.emulator.faults import FaultPlan
from mobilebench.device.emulator.phones import PhoneSpec, get_phone
from mobilebench.device.emulator.physics import Sensors, ThermalModel
from mobilebench.device.emulator.protocol import Connection, DeviceSide
from mobilebench.device.emulator.sandbox import HOST_ABI, PhoneRoot, Sandbox
from mobilebench.device.emulator.services import CommandService, Processes, SyncService
from mobilebench.device.keys import read_public_keys
from mobilebench.errors import MobilebenchError, UsageError

log = logging.getLogger("mobilebench.emulator")

PHYSICS_TICK_S = 0.2
#: The ABIs an emulated phone can run: this computer's, and arm64 through qemu.
ABIS = tuple(dict.fromkeys([HOST_ABI, "arm64-v8a"]))


class PhoneEmulator:
    """An emulated phone serving ADB on ``host:port`` (port 0 picks a free one).

    ``root`` holds the phone's files (see :mod:`.sandbox`). ``profile`` names the phone
    (:data:`.phones.PHONES`). With ``auth="keys"`` only ``accepted_keys`` (adbkey.pub
    files) get in; when none are given, ``<config dir>/adbkey.pub`` and
    ``~/.android/adbkey.pub`` are accepted if present (re-read at every connection).
    ``faults`` and ``thermal`` may be changed while it runs. ``abi`` is what the phone
    runs: this computer's (the default: the host build of the runner runs natively) or
    ``arm64-v8a``, whose pushed programs run under qemu (see :mod:`.arm64`).
    ``host_cpus`` are the CPUs of this computer that back the phone's cores (phone CPU c
    runs on ``host_cpus[c % len(host_cpus)]``; default: all this process may use): give
    two emulated phones different ones, or their pinned runners measure each other.
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
        abi: str = HOST_ABI,
        host_cpus: Sequence[int] | None = None,
    ) -> None:
        if auth not in ("keys", "none"):
            raise MobilebenchError(f"--auth must be 'keys' or 'none', got {auth!r}")
        if abi not in ABIS:
            raise UsageError(f"the emulator runs {' or '.join(ABIS)} programs, not {abi!r}")
        available = sorted(os.sched_getaffinity(0))
        if host_cpus is not None and (not host_cpus or set(host_cpus) - set(available)):
            raise UsageError(
                f"--host-cpu {','.join(map(str, host_cpus)) or '(none)'}: this process may use CPUs "
                f"{','.join(map(str, available))} only"
            )
        self.phone: PhoneSpec = get_phone(profile)
        self.root = PhoneRoot(Path(root), self.phone, host_cpus=list(host_cpus or available), abi=abi)
        self.sandbox = Sandbox(self.root, rooted=rooted)
        self.auth = auth
        self.accepted_keys = [Path(k) for k in accepted_keys]
        self.faults = faults if faults is not None else FaultPlan()
        self.host = host
        self.port = port
        self.processes = Processes()
        self.sensors = Sensors(self.phone, self.root, thermal or ThermalModel(), self.faults, self.processes.pids)
        commands = CommandService(self.sandbox, self.faults, self.processes)
        self._device_side = DeviceSide(
            auth=auth,
            accepted_public_keys=self.accepted_public_keys,
            props=self.phone.all_props(abi),
            services={"shell": commands.shell, "exec": commands.exec, "sync": SyncService(self.sandbox.path_map(), self.faults)},
            faults=self.faults,
            on_closed=self._forget_connection,
        )
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._connections: set[Connection] = set()
        self._lock = threading.Lock()

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
        if self.root.foreign:
            check_qemu()
        self.root.create(initial_temp_c=self.thermal.temp_c(0), rooted=self.sandbox.rooted)
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
        for conn in connections:
            conn.abort("emulator stopping")
        self.processes.kill_all()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    @property
    def thermal(self) -> ThermalModel:
        """The thermal model; may be replaced while the emulator runs."""
        return self.sensors.thermal

    @thermal.setter
    def thermal(self, model: ThermalModel) -> None:
        self.sensors.thermal = model
        if self._threads:  # running: the sysfs shows the new model now, not at the next tick
            self.refresh()

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

    def refresh(self, dt_s: float = 0.0) -> None:
        """Advance the thermal model by ``dt_s`` and write sysfs now (tests call this
        after changing temperatures or faults to see the effect at once)."""
        self.sensors.refresh(dt_s)

    # -- threads --------------------------------------------------------------------------

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
            conn = Connection(self._device_side, sock, f"{addr[0]}:{addr[1]}")
            with self._lock:
                self._connections.add(conn)
            threading.Thread(target=conn.serve, name=f"adb-conn-{addr[1]}", daemon=True).start()

    def _forget_connection(self, conn: Connection) -> None:
        with self._lock:
            self._connections.discard(conn)

    def _physics_loop(self) -> None:
        last = time.monotonic()
        while not self._stopping.wait(PHYSICS_TICK_S):
            now = time.monotonic()
            try:
                self.refresh(now - last)
            except OSError as exc:  # ROOT removed under us: keep serving
                log.warning("cannot update the phone's sysfs: %s", exc)
            last = now
