"""Signing ADB AUTH tokens with RSA (PKCS#1 v1.5) using only the standard library.

What this computes: adb's ``RSA_sign(NID_sha1, token, 20, ...)``. The phone sends a
20-byte random token; adb does **not** hash it, it uses the token as if it were an
already computed SHA-1 digest and signs it with RSASSA-PKCS1-v1_5 (RFC 8017 section
8.2.1, encoding EMSA-PKCS1-v1_5 section 9.2). So the ``digest`` taken by
:func:`sign_sha1_digest` is the token itself, exactly 20 bytes. Conventions: all
integers are unsigned big-endian (RFC 8017 I2OSP/OS2IP); a signature is exactly
``key.size_bytes`` long, left-padded with zero bytes. PKCS#1 v1.5 signatures are
deterministic, so the output is byte-identical to OpenSSL's / ``cryptography``'s.

Why this exists instead of ``cryptography``: every ``mobilebench profile`` call connects
to a phone once, in a fresh process, and importing the ``cryptography`` modules needed to
load and sign (with their Rust/OpenSSL bindings) costs ~23 ms of CPU on the 2-core
development VM. Signing with Python integers is slower than OpenSSL (2048-bit key:
~10-14 ms vs ~0.4 ms; CPython does the two 1024-bit modular exponentiations of CRT
with plain long division), but import + parse + sign is still cheaper overall.
Measured in fresh processes, ``mobilebench.device.keys`` import + ``load_signer`` + one
``Sign`` of a 2048-bit key, 30 interleaved runs, min / median: with ``cryptography``
29 / 35 ms, with this module 19 / 25 ms (whole process wall 120 / 141 ms vs 90 / 125 ms).

Scope, deliberately narrow: unencrypted two-prime RSA private keys in PEM, either PKCS#8
(``BEGIN PRIVATE KEY``: what adb writes to ``~/.android/adbkey``, and what adb-shell's
keygen writes) or PKCS#1 (``BEGIN RSA PRIVATE KEY``). Everything else (encrypted keys,
other algorithms, malformed DER) is a ``ValueError`` whose short message says what is
wrong. Key *generation* still uses adb-shell / ``cryptography``
(:func:`mobilebench.device.keys.ensure_key_pair`, first run only), and the phone
emulator *verifies* signatures with ``cryptography``
(:func:`mobilebench.device.keys.verify_token_signature`), an independent implementation
the tests compare against.

Side channels: Python's big-integer arithmetic is not constant time, so the private
operation uses RSA blinding (the input is multiplied by r^e for a fresh random r and the
result by r^-1), which decorrelates timing from the token. Each signature is checked
with the public exponent before it is returned, so a computation fault never releases a
wrong signature (a faulty CRT signature would leak a factor of n).
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

# Contents of the DER OBJECT IDENTIFIER 1.2.840.113549.1.1.1 (rsaEncryption).
_RSA_ENCRYPTION_OID = bytes.fromhex("2a864886f70d010101")
# DER DigestInfo for SHA-1 up to the 20 digest bytes: SEQUENCE { SEQUENCE { OID 1.3.14.3.2.26, NULL },
# OCTET STRING (20) } (RFC 8017 section 9.2, note 1).
_SHA1_DIGEST_INFO = bytes.fromhex("3021300906052b0e03021a05000414")
_SHA1_SIZE = 20
# EMSA-PKCS1-v1_5 needs 0x00 0x01, at least 8 bytes 0xff, 0x00, then the DigestInfo.
_MIN_MODULUS_BYTES = len(_SHA1_DIGEST_INFO) + _SHA1_SIZE + 11

_INTEGER, _OCTET_STRING, _NULL, _OID, _SEQUENCE = 0x02, 0x04, 0x05, 0x06, 0x30
_TAG_NAMES = {_INTEGER: "INTEGER", _OCTET_STRING: "OCTET STRING", _NULL: "NULL", _OID: "OBJECT IDENTIFIER",
              _SEQUENCE: "SEQUENCE"}
# Algorithms a user might plausibly point us at, for a readable error.
_OTHER_ALGORITHMS = {"1.2.840.10045.2.1": "EC", "1.3.101.112": "Ed25519", "1.3.101.113": "Ed448",
                     "1.2.840.10040.4.1": "DSA", "1.2.840.113549.1.1.10": "RSASSA-PSS"}


@dataclass(frozen=True, repr=False)
class RsaPrivateKey:
    """A two-prime RSA private key in PKCS#1 terms (RFC 8017 section 3.2, second form).

    ``n = p*q`` modulus, ``e`` public and ``d`` private exponent, ``dp = d mod (p-1)``,
    ``dq = d mod (q-1)``, ``qinv = q^-1 mod p``. Construction checks that these agree,
    so a corrupt key fails here, with the check that failed, not at the phone.
    """

    n: int
    e: int
    d: int
    p: int
    q: int
    dp: int
    dq: int
    qinv: int

    def __post_init__(self) -> None:
        problem = self._inconsistency()
        if problem:
            raise ValueError(f"inconsistent RSA key: {problem}")

    def _inconsistency(self) -> str | None:
        """What is wrong with the numbers, or None. All cheap (a few multiplications and reductions);
        no primality tests, which are what makes OpenSSL's full check slow. Each one guards a step
        of the CRT signature, whose result is verified with e anyway."""
        n, e, d, p, q = self.n, self.e, self.d, self.p, self.q
        if not (p > 2 and q > 2):
            return "p and q must be greater than 2"
        if n != p * q:
            return "n != p*q"
        if not (1 < e < n and e % 2 == 1):
            return "public exponent e must be odd and 1 < e < n"
        if not 0 < d < n:
            return "private exponent d must be in 0 < d < n"
        if self.dp != d % (p - 1):
            return "dp != d mod (p-1)"
        if e * self.dp % (p - 1) != 1:
            return "e*dp != 1 mod (p-1)"
        if self.dq != d % (q - 1):
            return "dq != d mod (q-1)"
        if e * self.dq % (q - 1) != 1:
            return "e*dq != 1 mod (q-1)"
        if q * self.qinv % p != 1:
            return "q*qinv != 1 mod p"
        if self.size_bytes < _MIN_MODULUS_BYTES:
            return f"a {n.bit_length()}-bit modulus is too small for a PKCS#1 v1.5 SHA-1 signature"
        return None

    @property
    def size_bytes(self) -> int:
        """k in RFC 8017: the modulus length in bytes, which is also the signature length."""
        return (self.n.bit_length() + 7) // 8

    def __repr__(self) -> str:  # never print the private numbers into a log or traceback
        return f"RsaPrivateKey({self.n.bit_length()} bits, e={self.e})"


def sign_sha1_digest(key: RsaPrivateKey, digest: bytes) -> bytes:
    """RSASSA-PKCS1-v1_5 signature of an already computed 20-byte SHA-1 ``digest``.

    ``digest`` is not hashed again (adb passes its AUTH token here). Returns ``key.size_bytes``
    bytes, big-endian. Raises ``ValueError`` for a digest that is not 20 bytes and
    ``RuntimeError`` if the signature fails its own verification (a computation fault).
    """
    if not isinstance(digest, (bytes, bytearray, memoryview)):
        raise TypeError(f"digest must be bytes, not {type(digest).__name__}")
    digest = bytes(digest)
    if len(digest) != _SHA1_SIZE:
        raise ValueError(f"a SHA-1 digest is {_SHA1_SIZE} bytes, got {len(digest)}")
    k, n = key.size_bytes, key.n
    # EMSA-PKCS1-v1_5: EM = 0x00 || 0x01 || PS (0xff bytes) || 0x00 || DigestInfo(digest).
    t = _SHA1_DIGEST_INFO + digest
    em = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    m = int.from_bytes(em, "big")  # < n: EM starts with 0x00 and has k bytes
    # Blinding: sign m*r^e instead of m, then divide by r. r must be invertible mod n; a
    # random r that is not would reveal a factor, which happens with negligible probability.
    while True:
        r = secrets.randbelow(n - 2) + 2
        try:
            r_inv = pow(r, -1, n)
            break
        except ValueError:
            continue
    blinded = m * pow(r, key.e, n) % n
    # CRT (RFC 8017 section 5.1.2, 2.b): two half-size exponentiations instead of one full one.
    s1 = pow(blinded % key.p, key.dp, key.p)
    s2 = pow(blinded % key.q, key.dq, key.q)
    s = (s2 + key.q * (key.qinv * (s1 - s2) % key.p)) * r_inv % n
    if pow(s, key.e, n) != m:
        raise RuntimeError("RSA signature failed its verification (computation fault); not using it")
    return s.to_bytes(k, "big")


def load_private_key_pem(data: bytes) -> RsaPrivateKey:
    """Parse an unencrypted RSA private key in PEM: PKCS#8 ``PRIVATE KEY`` or PKCS#1 ``RSA PRIVATE KEY``.

    Raises ``ValueError`` with a short reason for anything else.
    """
    label, der = _pem_block(data)
    if label == "PRIVATE KEY":
        return _parse_pkcs1(_pkcs8_rsa_key(der))
    if label == "RSA PRIVATE KEY":
        return _parse_pkcs1(der)
    if label == "ENCRYPTED PRIVATE KEY":
        raise ValueError("encrypted private keys are not supported (adb keys have no passphrase)")
    raise ValueError(f"expected an RSA private key, found PEM '{label}'")


def _pem_block(data: bytes) -> tuple[str, bytes]:
    """The label and DER bytes of the single PEM block that ``data`` must consist of (RFC 7468)."""
    try:
        lines = [line.strip() for line in data.decode("ascii").strip().splitlines()]
    except UnicodeDecodeError:
        raise ValueError("not a PEM file (non-ASCII bytes)") from None
    if not lines or not (lines[0].startswith("-----BEGIN ") and lines[0].endswith("-----")):
        raise ValueError("not a PEM file (no -----BEGIN line at the start)")
    label = lines[0][len("-----BEGIN "):-len("-----")]
    end = f"-----END {label}-----"
    if end not in lines:
        raise ValueError(f"PEM '{label}' has no {end} line")
    if lines.index(end) != len(lines) - 1:
        raise ValueError(f"unexpected text after {end}")
    body = lines[1:-1]
    if any(":" in line for line in body):  # RFC 1421 headers: only legacy-encrypted keys have them
        if any(line.startswith("Proc-Type:") and "ENCRYPTED" in line for line in body):
            raise ValueError("encrypted private keys are not supported (adb keys have no passphrase)")
        raise ValueError(f"PEM '{label}' has unexpected header lines")
    try:
        return label, base64.b64decode("".join(body), validate=True)
    except ValueError:
        raise ValueError(f"PEM '{label}' body is not valid base64") from None


def _pkcs8_rsa_key(der: bytes) -> bytes:
    """The PKCS#1 RSAPrivateKey inside a PKCS#8 PrivateKeyInfo (RFC 5208 section 5)."""
    info = _Der.outer_sequence(der, "PrivateKeyInfo")
    if info.integer("PKCS#8 version") != 0:
        raise ValueError("unsupported PKCS#8 version")
    algorithm = info.sequence()
    oid = algorithm.read(_OID)
    if oid != _RSA_ENCRYPTION_OID:
        dotted = _oid_to_str(oid)
        raise ValueError(f"not an RSA key: algorithm {_OTHER_ALGORITHMS.get(dotted, 'OID ' + dotted)}")
    if algorithm.read(_NULL) != b"":
        raise ValueError("rsaEncryption parameters must be NULL")
    algorithm.end()
    key = info.read(_OCTET_STRING)
    info.end()  # optional attributes / public key: never written for adb keys, so not accepted
    return key


def _parse_pkcs1(der: bytes) -> RsaPrivateKey:
    """A PKCS#1 RSAPrivateKey (RFC 8017 appendix A.1.2), two-prime version 0 only."""
    seq = _Der.outer_sequence(der, "RSAPrivateKey")
    version = seq.integer("RSAPrivateKey version")
    if version != 0:
        raise ValueError(
            "multi-prime RSA keys are not supported" if version == 1 else "unsupported RSAPrivateKey version"
        )
    fields = {name: seq.integer(name) for name in ("n", "e", "d", "p", "q", "dp", "dq", "qinv")}
    seq.end()
    return RsaPrivateKey(**fields)


class _Der:
    """A cursor over DER bytes that reads exactly the definite-length, single-byte-tag TLVs RSA keys use."""

    def __init__(self, data: bytes, what: str) -> None:
        self._data, self._pos, self._what = data, 0, what

    def read(self, tag: int) -> bytes:
        """The contents of the next TLV, which must have ``tag``."""
        data, pos, what = self._data, self._pos, self._what
        if pos + 2 > len(data):
            raise ValueError(f"truncated DER in {what}")
        name = _TAG_NAMES[tag]
        if data[pos] != tag:
            raise ValueError(f"malformed DER in {what}: expected {name}, found tag 0x{data[pos]:02x}")
        length, pos = data[pos + 1], pos + 2
        if length & 0x80:  # long form: the low 7 bits count the length bytes
            count = length & 0x7F
            if count == 0 or count > 4:  # 0 is BER's indefinite length; > 4 would be gigabytes
                raise ValueError(f"malformed DER in {what}: bad length of {name}")
            if pos + count > len(data):
                raise ValueError(f"truncated DER in {what}")
            length, pos = int.from_bytes(data[pos:pos + count], "big"), pos + count
            if length < 0x80 or length.bit_length() <= 8 * (count - 1):  # DER: the shortest form only
                raise ValueError(f"malformed DER in {what}: non-minimal length of {name}")
        if pos + length > len(data):
            raise ValueError(f"truncated DER in {what}")
        self._pos = pos + length
        return data[pos:pos + length]

    @classmethod
    def outer_sequence(cls, der: bytes, what: str) -> _Der:
        """A cursor inside the SEQUENCE that must be all of ``der``."""
        outer = cls(der, what)
        inner = outer.sequence()
        outer.end()
        return inner

    def sequence(self) -> _Der:
        return _Der(self.read(_SEQUENCE), self._what)

    def integer(self, name: str) -> int:
        """A non-negative INTEGER in minimal two's complement (X.690 8.3); every key field is one."""
        body = self.read(_INTEGER)
        if not body:
            raise ValueError(f"malformed DER in {self._what}: empty INTEGER {name}")
        if len(body) > 1 and body[0] == 0 and body[1] < 0x80:
            raise ValueError(f"malformed DER in {self._what}: non-minimal INTEGER {name}")
        if body[0] & 0x80:
            raise ValueError(f"malformed DER in {self._what}: negative INTEGER {name}")
        return int.from_bytes(body, "big")

    def end(self) -> None:
        """Require that everything was read: no trailing bytes after the last expected field."""
        if self._pos != len(self._data):
            raise ValueError(f"malformed DER in {self._what}: {len(self._data) - self._pos} unexpected trailing bytes")


def _oid_to_str(body: bytes) -> str:
    """Dotted form of an OBJECT IDENTIFIER's contents (base-128 arcs; the first byte packs two arcs), for messages."""
    arcs, value = [], 0
    for byte in body:
        value = value << 7 | byte & 0x7F
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        return "(empty)"
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])
