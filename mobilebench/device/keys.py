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

from adb_shell.auth.keygen import ANDROID_PUBKEY_MODULUS_SIZE_WORDS, ANDROID_RSAPUBLICKEY_STRUCT, encode_pubkey, get_user_info
from adb_shell.auth.sign_cryptography import CryptographySigner
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from mobilebench import paths
from mobilebench.errors import MobilebenchError
from mobilebench.files import write_bytes_atomic


def default_key_path() -> Path:
    """``<config dir>/adbkey``: the private key this computer authenticates with."""
    return paths.config_dir() / "adbkey"


def ensure_key_pair(path: Path | None = None) -> Path:
    """Return the private key path, creating the pair (0600) if it does not exist yet.

    A user-given ``path`` must already exist (we never generate keys outside the config
    dir behind the user's back); its ``.pub`` is regenerated if missing. Each file is
    written atomically, the private key first, so an interrupted run leaves either
    nothing or a private key whose ``.pub`` the next run rebuilds.
    """
    user_given = path is not None
    key = Path(path) if user_given else default_key_path()
    pub = key.with_name(key.name + ".pub")
    if key.is_file() and pub.is_file():
        return key
    if not key.is_file():
        if user_given:
            raise MobilebenchError(
                f"ADB key {key} does not exist; pass an existing private key or omit it to use {default_key_path()}"
            )
        key.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(key.parent, 0o700)
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        write_bytes_atomic(key, pem, mode=0o600)
    try:
        public = base64.b64encode(encode_pubkey(str(key))) + get_user_info().encode()
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise MobilebenchError(f"cannot load ADB key {key}: {_one_line(exc)}") from None
    write_bytes_atomic(pub, public, mode=0o600)
    return key


def load_signer(path: Path) -> CryptographySigner:
    """adb-shell's signer for the private key at ``path`` (and its ``.pub``), for
    ``AdbDevice.connect(rsa_keys=...)``; a missing, encrypted or non-RSA key is one line."""
    try:
        signer = CryptographySigner(str(path))
    except (OSError, ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise MobilebenchError(f"cannot load ADB key {path}: {_one_line(exc)}") from None
    if not isinstance(signer.rsa_key, rsa.RSAPrivateKey):
        raise MobilebenchError(f"cannot load ADB key {path}: not an RSA key (ADB keys are 2048-bit RSA)")
    return signer


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def decode_android_pubkey(text: bytes | str) -> rsa.RSAPublicKey:
    """Parse one ``adbkey.pub`` line into a ``cryptography`` RSA public key.

    Raises ``ValueError`` for anything that is not a well-formed 2048-bit key.
    """
    if isinstance(text, str):
        text = text.encode()
    blob_b64 = text.strip().split(None, 1)[0] if text.strip() else b""
    try:
        blob = base64.b64decode(blob_b64, validate=True)
        words, _n0inv, modulus, _rr, exponent = struct.unpack(ANDROID_RSAPUBLICKEY_STRUCT, blob)
    except (ValueError, struct.error) as exc:
        raise ValueError(f"not an Android ADB public key ({exc})") from None
    if words != ANDROID_PUBKEY_MODULUS_SIZE_WORDS:
        raise ValueError(f"unsupported key size ({words * 32} bits)")
    return rsa.RSAPublicNumbers(exponent, int.from_bytes(modulus, "little")).public_key()


def read_public_keys(path: Path) -> list[rsa.RSAPublicKey]:
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


def verify_token_signature(public_key: rsa.RSAPublicKey, token: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``token`` signed the way adb signs AUTH tokens.

    adb treats the 20-byte token as an already computed SHA-1 digest and signs it with
    PKCS#1 v1.5 (``RSA_sign(NID_sha1, token, ...)``).
    """
    try:
        public_key.verify(signature, token, padding.PKCS1v15(), utils.Prehashed(hashes.SHA1()))
    except (InvalidSignature, ValueError):
        return False
    return True
