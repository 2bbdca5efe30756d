"""The ADB wire protocol as a device (adbd) speaks it: message framing and constants.

Every message is a 24-byte little-endian header ``command, arg0, arg1, data_length,
data_checksum, magic`` followed by ``data_length`` bytes. ``magic`` is ``command ^
0xFFFFFFFF``; the checksum is the byte sum of the data (mod 2**32). Since protocol
version 0x01000001 receivers skip the checksum check, so a client negotiating that
version may send 0 there; we always send correct checksums and verify them when the
negotiated version is older.

Reference: AOSP ``packages/modules/adb/protocol.txt`` (and ``SYNC.TXT`` for the file
sync service, implemented in :mod:`.sync`).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass


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

HEADER = struct.Struct("<6I")


class ProtocolError(Exception):
    """The peer sent something that is not ADB; the connection is closed."""


def command_name(command: int) -> str:
    try:
        return struct.pack("<I", command).decode("ascii")
    except (UnicodeDecodeError, struct.error):
        return f"0x{command:08x}"


def checksum(data: bytes) -> int:
    """Byte sum mod 2**32 (numpy for big payloads: ``sum()`` costs ~30 ms per MiB)."""
    if len(data) < 4096:
        return sum(data) & 0xFFFFFFFF
    import numpy as np

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
