"""ADB RSA keys: the client's key pair, and reading public keys in Android's format.

The client key pair lives in ``<config dir>/adbkey`` (PEM private key) and
``adbkey.pub`` (Android's binary ``RSAPublicKey`` struct, base64, then `` user@host``),
the same format ``adb`` keeps in ``~/.android``. It is created on first use with 0600
permissions. The phone emulator reads public keys in the same format to decide whom to
let in.
"""

from __future__ import annotations

import base64
import os
import struct
from pathlib import Path

from mobilebench import paths
from mobilebench.device.rsa_pkcs1 import load_private_key_pem, sign_sha1_digest
from mobilebench.errors import MobilebenchError
from mobilebench.files import write_bytes_atomic

# Android's RSAPublicKey: modulus_size_words, n0inv, modulus (little-endian bytes),
# rr (Montgomery constant), exponent. Only 2048-bit keys exist in practice.
_MODULUS_BYTES = 2048 // 8
_PUBKEY_STRUCT = struct.Struct(f"<II{_MODULUS_BYTES}s{_MODULUS_BYTES}sI")


def default_key_path() -> Path:
    """``<config dir>/adbkey``: the private key this computer authenticates with."""
    return paths.config_dir() / "adbkey"


def ensure_key_pair(path: Path | None = None) -> Path:
    """Return the private key path, creating the pair (0600) if it does not exist yet.

    A user-given ``path`` must already exist (we never generate keys outside the config
    dir behind the user's back); its ``.pub`` is regenerated if missing.
    """
    user_given = path is not None
    key = Path(path) if user_given else default_key_path()
    pub = key.with_name(key.name + ".pub")
    if key.is_file() and pub.is_file():
        return key  # every run but the first: no key code imported
    import tempfile

    from adb_shell.auth.keygen import keygen, write_public_keyfile

    if key.is_file():
        with tempfile.TemporaryDirectory(dir=key.parent, prefix=".keygen-") as tmp:
            write_public_keyfile(str(key), f"{tmp}/adbkey.pub")
            write_bytes_atomic(pub, Path(tmp, "adbkey.pub").read_bytes(), mode=0o600)
        return key
    if user_given:
        raise MobilebenchError(f"ADB key {key} does not exist; pass an existing private key or omit it to use {default_key_path()}")
    key.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(key.parent, 0o700)
    # keygen writes both files at the path it is given: generate into a private temp
    # dir and move them into place, so a crash never leaves half a key pair.
    with tempfile.TemporaryDirectory(dir=key.parent, prefix=".keygen-") as tmp:
        tmp_key = Path(tmp) / "adbkey"
        keygen(str(tmp_key))
        for file in (tmp_key, tmp_key.with_name("adbkey.pub")):
            os.chmod(file, 0o600)
        os.replace(tmp_key.with_name("adbkey.pub"), pub)
        os.replace(tmp_key, key)
    return key


class AdbKeySigner:
    """Signs ADB AUTH tokens with the private key at ``path`` (the ``signer`` interface
    adb-shell's ``AdbDevice.connect(rsa_keys=...)`` expects: ``Sign``, ``GetPublicKey``).

    Loading and signing use :mod:`mobilebench.device.rsa_pkcs1` (standard library only):
    every connection does this, and importing ``cryptography`` for it costs ~23 ms of each
    short CLI call, more than our slower pure-Python signature (~12 ms; see that module
    for the measurements). The key's numbers are checked for consistency at load (cheap
    checks, no primality tests), and every signature is verified before it is returned.
    """

    def __init__(self, path: Path) -> None:
        self.public_key = Path(f"{path}.pub").read_bytes()
        self._key = load_private_key_pem(Path(path).read_bytes())

    def Sign(self, data: bytes) -> bytes:  # noqa: N802 - adb-shell's method name
        """``data`` is adb's 20-byte token, used as an already computed SHA-1 digest."""
        return sign_sha1_digest(self._key, data)

    def GetPublicKey(self) -> bytes:  # noqa: N802 - adb-shell's method name
        return self.public_key


def load_signer(path: Path) -> AdbKeySigner:
    """A signer for the private key at ``path``, for adb-shell's connect."""
    try:
        return AdbKeySigner(path)
    except (OSError, ValueError, TypeError) as exc:
        raise MobilebenchError(f"cannot load ADB key {path}: {' '.join(str(exc).split())}") from None


def decode_android_pubkey(text: bytes | str):
    """Parse one ``adbkey.pub`` line into a ``cryptography`` RSA public key.

    Raises ``ValueError`` for anything that is not a well-formed 2048-bit key.
    """
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicNumbers

    if isinstance(text, str):
        text = text.encode()
    blob_b64 = text.strip().split(None, 1)[0] if text.strip() else b""
    try:
        blob = base64.b64decode(blob_b64, validate=True)
        words, _n0inv, modulus, _rr, exponent = _PUBKEY_STRUCT.unpack(blob)
    except (ValueError, struct.error) as exc:
        raise ValueError(f"not an Android ADB public key ({exc})") from None
    if words != _MODULUS_BYTES // 4:
        raise ValueError(f"unsupported key size ({words * 32} bits)")
    return RSAPublicNumbers(exponent, int.from_bytes(modulus, "little")).public_key()


def read_public_keys(path: Path) -> list:
    """All keys in an ``adbkey.pub`` / ``adb_keys`` file (one per line); [] if missing."""
    try:
        lines = Path(path).read_bytes().splitlines()
    except FileNotFoundError:
        return []
    keys = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith(b"#"):
            continue
        try:
            keys.append(decode_android_pubkey(line))
        except ValueError as exc:
            raise MobilebenchError(f"{path}:{number}: {exc}") from None
    return keys


def verify_token_signature(public_key, token: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``token`` signed the way adb signs AUTH tokens.

    adb treats the 20-byte token as an already computed SHA-1 digest and signs it with
    PKCS#1 v1.5 (``RSA_sign(NID_sha1, token, ...)``).
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, utils

    try:
        public_key.verify(signature, token, padding.PKCS1v15(), utils.Prehashed(hashes.SHA1()))
    except (InvalidSignature, ValueError):
        return False
    return True
