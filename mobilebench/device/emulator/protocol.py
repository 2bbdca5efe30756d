"""The ADB wire protocol as a device (adbd) speaks it: framing, handshake, streams.

Every message is a 24-byte little-endian header ``command, arg0, arg1, data_length,
data_checksum, magic`` followed by ``data_length`` bytes. ``magic`` is ``command ^
0xFFFFFFFF``; the checksum is the byte sum of the data (mod 2**32). Since protocol
version 0x01000001 receivers skip the checksum check, so a client negotiating that
version may send 0 there; we always send correct checksums and verify them when the
negotiated version is older.

A :class:`Connection` serves one client: its reader thread parses messages and
dispatches them, and every open stream (``shell:``, ``exec:``, ``sync:``) gets its own
worker thread running the service's handler, so several streams run at once. Flow
control follows adbd: after a WRTE the sender waits for the peer's OKAY before the next
WRTE on that stream, and the client's WRTEs are OKAYed only once their data has been
consumed (written to a command's stdin or handled by the sync service).

Handshake: the client's CNXN is answered with AUTH TOKEN (20 random bytes) unless
``auth="none"``; an AUTH SIGNATURE is checked against the accepted public keys (a new
token on failure, like adbd); an AUTH RSAPUBLICKEY for a key we do not accept closes the
connection (a phone would show a prompt; the emulator refuses at once).

Reference: AOSP ``packages/modules/adb/protocol.txt`` (and ``SYNC.TXT`` for the file
sync service, implemented in :mod:`.sync`).
"""

from __future__ import annotations

import logging
import queue
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from mobilebench.device.emulator.faults import FaultPlan
from mobilebench.device.keys import decode_android_pubkey, verify_token_signature

log = logging.getLogger("mobilebench.emulator")


def _cmd(name: bytes) -> int:
    return struct.unpack("<I", name)[0]


A_CNXN = _cmd(b"CNXN")
A_AUTH = _cmd(b"AUTH")
A_OPEN = _cmd(b"OPEN")
A_OKAY = _cmd(b"OKAY")
A_CLSE = _cmd(b"CLSE")
A_WRTE = _cmd(b"WRTE")
A_SYNC = _cmd(b"SYNC")
A_STLS = _cmd(b"STLS")
COMMANDS = {A_CNXN, A_AUTH, A_OPEN, A_OKAY, A_CLSE, A_WRTE, A_SYNC, A_STLS}

AUTH_TOKEN = 1
AUTH_SIGNATURE = 2
AUTH_RSAPUBLICKEY = 3
TOKEN_SIZE = 20

VERSION_MIN = 0x01000000
VERSION_SKIP_CHECKSUM = 0x01000001
MAX_PAYLOAD = 1024 * 1024  # what modern adbd offers; the client may ask for less
OKAY_TIMEOUT_S = 120.0  # a client that stops acknowledging for this long is dropped
MAX_AUTH_ATTEMPTS = 10
FEATURES = ("fixed_push_mkdir",)

HEADER = struct.Struct("<6I")


class ProtocolError(Exception):
    """The peer sent something that is not ADB; the connection is closed."""


def command_name(command: int) -> str:
    try:
        return struct.pack("<I", command).decode("ascii")
    except (UnicodeDecodeError, struct.error):
        return f"0x{command:08x}"


def checksum(data: bytes) -> int:
    """Byte sum mod 2**32 (numpy for big payloads: ``sum()`` takes ~30 ms per MiB, a
    second and a half of every 50 MB push)."""
    if len(data) < 4096:
        return sum(data) & 0xFFFFFFFF
    return int(np.frombuffer(data, dtype=np.uint8).sum(dtype=np.uint64)) & 0xFFFFFFFF


@dataclass(frozen=True)
class Message:
    command: int
    arg0: int
    arg1: int
    data: bytes = b""

    @property
    def name(self) -> str:
        return command_name(self.command)

    def pack(self) -> bytes:
        header = HEADER.pack(
            self.command, self.arg0, self.arg1, len(self.data), checksum(self.data), self.command ^ 0xFFFFFFFF
        )
        return header + self.data


def recv_exact(sock: socket.socket, size: int) -> bytes:
    """Read exactly ``size`` bytes; ConnectionError if the peer closes first."""
    chunks = []
    remaining = size
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            raise ConnectionError("peer closed the connection")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_message(sock: socket.socket, *, verify_checksum: bool, max_payload: int) -> Message:
    command, arg0, arg1, length, data_checksum, magic = HEADER.unpack(recv_exact(sock, HEADER.size))
    if magic != command ^ 0xFFFFFFFF or command not in COMMANDS:
        raise ProtocolError(f"not an ADB message header (command {command_name(command)})")
    if length > max_payload:
        raise ProtocolError(f"{command_name(command)} carries {length} bytes, more than the {max_payload} agreed")
    data = recv_exact(sock, length) if length else b""
    if verify_checksum and length and checksum(data) != data_checksum:
        raise ProtocolError(f"bad checksum on {command_name(command)}")
    return Message(command, arg0, arg1, data)


Service = Callable[["Stream", str], None]
"""A service's handler: called in its own thread with the stream and the text after
``name:`` in the OPEN request; the stream is closed when it returns."""


@dataclass
class DeviceSide:
    """What a connection needs from the device it leads to."""

    auth: Literal["keys", "none"]
    accepted_public_keys: Callable[[], list]
    """The RSA public keys let in (read again for every connection attempt)."""
    props: Mapping[str, str]
    """The phone's properties (``ro.product.*`` go into the CNXN banner)."""
    services: Mapping[str, Service]
    """``shell``, ``exec``, ``sync``, ...: anything else is refused like adbd does."""
    faults: FaultPlan
    on_closed: Callable[["Connection"], None]


class Stream:
    """One ADB stream: our id, the client's id, flow control and the inbound queue."""

    def __init__(self, conn: "Connection", local_id: int, remote_id: int, service: str) -> None:
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
            if not self.conn.send(A_WRTE, self.local_id, self.remote_id, bytes(view[start : start + size])):
                return False
        return True

    def ack(self) -> None:
        """OKAY the client's last WRTE (its data has been consumed)."""
        if not self.closed:
            self.conn.send(A_OKAY, self.local_id, self.remote_id)

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
            self.conn.send(A_CLSE, self.local_id, self.remote_id)
        self.conn.forget(self)


class Connection:
    """One client's session: handshake, then streams to the ``device``'s services."""

    def __init__(self, device: "DeviceSide", sock: socket.socket, peer: str) -> None:
        self.device = device
        self.sock = sock
        self.peer = peer
        self.version = VERSION_MIN
        self.max_payload = MAX_PAYLOAD
        self.online = False
        self._negotiated = False
        self._token = b""
        self._auth_attempts = 0
        self._send_lock = threading.Lock()
        self._streams: dict[int, Stream] = {}
        self._streams_lock = threading.Lock()
        self._next_id = 1
        self._dead = False

    # -- sending ------------------------------------------------------------------------

    def send(self, command: int, arg0: int, arg1: int, data: bytes = b"") -> bool:
        delay = self.device.faults.reply_delay_s
        if delay > 0:
            time.sleep(delay)
        packed = Message(command, arg0, arg1, data).pack()
        with self._send_lock:
            if self._dead:
                return False
            if self.device.faults.consume_bytes(len(packed)):
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
                message = read_message(
                    self.sock,
                    verify_checksum=self._negotiated and self.version < VERSION_SKIP_CHECKSUM,
                    max_payload=max(self.max_payload, MAX_PAYLOAD),
                )
                if self.device.faults.consume_bytes(HEADER.size + len(message.data)):
                    self.abort("fault: dropping the connection")
                    break
                self._dispatch(message)
        except ProtocolError as exc:
            log.warning("%s: protocol error: %s", self.peer, exc)
        except OSError:
            pass  # the client went away or we aborted
        finally:
            self.abort("connection ended")
            self._close_all_streams()
            self.sock.close()
            self.device.on_closed(self)

    def _dispatch(self, m: Message) -> None:
        if m.command == A_CNXN:
            self._on_cnxn(m)
        elif m.command == A_AUTH:
            self._on_auth(m)
        elif not self.online:
            return  # adbd ignores everything else before the handshake
        elif m.command == A_OPEN:
            self._on_open(m)
        elif m.command in (A_OKAY, A_WRTE, A_CLSE):
            with self._streams_lock:
                stream = self._streams.get(m.arg1)
            if stream is None or (m.arg0 != stream.remote_id and m.arg0 != 0):
                if m.command == A_WRTE:
                    self.send(A_CLSE, 0, m.arg0)
                return
            if m.command == A_OKAY:
                stream.got_okay()
            elif m.command == A_WRTE:
                stream.got_data(m.data)
            else:
                stream.got_close()

    def _on_cnxn(self, m: Message) -> None:
        if self.online:  # a new CNXN restarts the session
            self._close_all_streams()
            self.online = False
        self.version = max(VERSION_MIN, min(m.arg0, VERSION_SKIP_CHECKSUM))
        self.max_payload = max(4096, min(m.arg1 or 4096, MAX_PAYLOAD))
        self._negotiated = True
        if self.device.auth == "none":
            self._go_online("no authentication")
        else:
            self._send_token()

    def _send_token(self) -> None:
        self._token = secrets.token_bytes(TOKEN_SIZE)
        self.send(A_AUTH, AUTH_TOKEN, 0, self._token)

    def _on_auth(self, m: Message) -> None:
        if self.online or not self._token:
            return
        if m.arg0 == AUTH_SIGNATURE:
            if any(verify_token_signature(key, self._token, m.data) for key in self.device.accepted_public_keys()):
                self._go_online("key accepted")
                return
            self._auth_attempts += 1
            if self._auth_attempts > MAX_AUTH_ATTEMPTS:
                self.abort("too many failed signatures")
                return
            self._send_token()
        elif m.arg0 == AUTH_RSAPUBLICKEY:
            try:
                offered = decode_android_pubkey(m.data.rstrip(b"\0"))
            except ValueError:
                self.abort("client sent an unreadable public key")
                return
            numbers = offered.public_numbers()
            if any(k.public_numbers() == numbers for k in self.device.accepted_public_keys()):
                self._go_online("public key accepted")
            else:
                comment = m.data.rstrip(b"\0").split(b" ", 1)[1:] or [b"?"]
                self.abort(f"refused unknown ADB key ({comment[0].decode(errors='replace')})")

    def _go_online(self, why: str) -> None:
        props = self.device.props
        banner = (
            f"device::ro.product.name={props['ro.product.name']};ro.product.model={props['ro.product.model']};"
            f"ro.product.device={props['ro.product.device']};features={','.join(FEATURES)}"
        )
        self.online = True
        log.info("%s: online (%s)", self.peer, why)
        self.send(A_CNXN, self.version, MAX_PAYLOAD, banner.encode() + b"\0")

    # -- streams ------------------------------------------------------------------------

    def _on_open(self, m: Message) -> None:
        service = m.data.rstrip(b"\0").decode("utf-8", "surrogateescape")
        name, _, arg = service.partition(":")
        handler = self.device.services.get(name)
        if handler is None or m.arg0 == 0:
            # Unknown service ("shell,v2", "reboot", ...): refuse like adbd, CLSE(0, id).
            log.info("%s: refused service %r", self.peer, service)
            self.send(A_CLSE, 0, m.arg0)
            return
        with self._streams_lock:
            local_id = self._next_id
            self._next_id += 1
            stream = Stream(self, local_id, m.arg0, service)
            self._streams[local_id] = stream
        self.send(A_OKAY, local_id, m.arg0)
        worker = threading.Thread(target=self._run_handler, args=(handler, stream, arg), name=f"adb-{name}-{local_id}", daemon=True)
        worker.start()

    def _run_handler(self, handler: Service, stream: Stream, arg: str) -> None:
        try:
            handler(stream, arg)
        except Exception:  # noqa: BLE001 - one broken stream must not take the emulator down
            log.exception("%s: stream %r failed", self.peer, stream.service)
        finally:
            stream.close()

    def forget(self, stream: Stream) -> None:
        with self._streams_lock:
            self._streams.pop(stream.local_id, None)

    def _close_all_streams(self) -> None:
        with self._streams_lock:
            streams = list(self._streams.values())
        for stream in streams:
            stream._mark_closed()
            self.forget(stream)
