"""The standard-library RSA signer against ``cryptography``, an independent implementation."""

from __future__ import annotations

import base64
import dataclasses
import os

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from mobilebench.device.keys import verify_token_signature
from mobilebench.device.rsa_pkcs1 import (
    RsaPrivateKey,
    load_private_key_pem,
    sign_sha1_digest,
)

PKCS8 = serialization.PrivateFormat.PKCS8
PKCS1 = serialization.PrivateFormat.TraditionalOpenSSL
_KEY_CACHE: dict[tuple[int, int], rsa.RSAPrivateKey] = {}


def generated_key(bits: int, e: int = 65537) -> rsa.RSAPrivateKey:
    """A fresh key per (bits, e), shared by the tests of this module (4096-bit generation is slow)."""
    if (bits, e) not in _KEY_CACHE:
        _KEY_CACHE[bits, e] = rsa.generate_private_key(public_exponent=e, key_size=bits)
    return _KEY_CACHE[bits, e]


def pem(key, fmt=PKCS8, encryption=None) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, fmt, encryption or serialization.NoEncryption())


def der_to_pem(der: bytes, label: str) -> bytes:
    body = base64.encodebytes(der).decode()
    return f"-----BEGIN {label}-----\n{body}-----END {label}-----\n".encode()


def cryptography_signature(key: rsa.RSAPrivateKey, digest: bytes) -> bytes:
    return key.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA1()))


# A minimal DER encoder, only for building malformed variants of a key below.
def tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    size = (n.bit_length() + 7) // 8
    length = bytes([n]) if n < 0x80 else bytes([0x80 | size]) + n.to_bytes(size, "big")
    return bytes([tag]) + length + body


def der_int(value: int) -> bytes:
    return tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))  # +1 byte: room for the sign bit


def pkcs1_der(numbers: rsa.RSAPrivateNumbers, version: bytes = der_int(0), **raw: bytes) -> bytes:
    """PKCS#1 RSAPrivateKey; ``raw`` replaces a field's encoded TLV (n, e, d, p, q, dp, dq, qinv)."""
    values = dict(n=numbers.public_numbers.n, e=numbers.public_numbers.e, d=numbers.d, p=numbers.p, q=numbers.q,
                  dp=numbers.dmp1, dq=numbers.dmq1, qinv=numbers.iqmp)
    return tlv(0x30, version + b"".join(raw.get(name, der_int(value)) for name, value in values.items()))


@pytest.mark.parametrize(("bits", "e"), [(1024, 65537), (2048, 65537), (2048, 3), (3072, 65537), (4096, 3)])
@pytest.mark.parametrize("fmt", [PKCS8, PKCS1], ids=["pkcs8", "pkcs1"])
def test_signatures_are_byte_identical_to_cryptography(bits: int, e: int, fmt) -> None:
    theirs = generated_key(bits, e)
    ours = load_private_key_pem(pem(theirs, fmt))
    numbers = theirs.private_numbers()
    assert (ours.n, ours.e, ours.d, ours.p, ours.q) == (numbers.public_numbers.n, e, numbers.d, numbers.p, numbers.q)
    assert ours.size_bytes == bits // 8
    digests = [os.urandom(20) for _ in range(5)] + [b"\0" * 20, b"\xff" * 20]
    for digest in digests:
        signature = sign_sha1_digest(ours, digest)
        assert len(signature) == bits // 8
        assert signature == cryptography_signature(theirs, digest)
        assert verify_token_signature(theirs.public_key(), digest, signature)


def test_short_signatures_are_left_padded_to_the_key_size() -> None:
    """About 1 signature in 256 starts with a zero byte; it must still be k bytes long."""
    theirs = generated_key(1024)
    ours = load_private_key_pem(pem(theirs))
    for _ in range(2000):
        digest = os.urandom(20)
        signature = sign_sha1_digest(ours, digest)
        if signature[0] == 0:
            assert len(signature) == 128 and signature == cryptography_signature(theirs, digest)
            return
    pytest.fail("no signature with a leading zero byte in 2000 tries (probability ~4e-4)")


def test_our_der_encoder_matches_cryptographys() -> None:
    """The malformed-key tests below start from this encoder's output; it must be the real format."""
    key = generated_key(1024)
    assert pkcs1_der(key.private_numbers()) == key.private_bytes(serialization.Encoding.DER, PKCS1,
                                                                 serialization.NoEncryption())


@pytest.mark.parametrize("fmt", [PKCS8, PKCS1], ids=["pkcs8", "pkcs1"])
def test_a_corrupted_prime_fails_at_load(fmt) -> None:
    key = generated_key(2048)
    der = key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())
    p = key.private_numbers().p.to_bytes(128, "big")
    at = der.index(p) + 64
    corrupt = der[:at] + bytes([der[at] ^ 0x01]) + der[at + 1:]
    label = "PRIVATE KEY" if fmt is PKCS8 else "RSA PRIVATE KEY"
    load_private_key_pem(der_to_pem(der, label))  # the re-PEM'd original loads
    with pytest.raises(ValueError, match=r"^inconsistent RSA key: n != p\*q$"):
        load_private_key_pem(der_to_pem(corrupt, label))


@pytest.mark.parametrize(("field", "message"), [
    ("n", r"n != p\*q"),
    ("d", r"dp != d mod \(p-1\)"),
    ("dp", r"dp != d mod \(p-1\)"),
    ("dq", r"dq != d mod \(q-1\)"),
    ("qinv", r"q\*qinv != 1 mod p"),
])
def test_each_inconsistency_is_named(field: str, message: str) -> None:
    good = load_private_key_pem(pem(generated_key(1024)))
    with pytest.raises(ValueError, match=f"^inconsistent RSA key: {message}$"):
        dataclasses.replace(good, **{field: getattr(good, field) + 2})


def test_a_private_exponent_that_does_not_invert_e_is_rejected() -> None:
    """d, dp, dq agree with each other, but d is not e's inverse: a wrong signature, caught at load."""
    good = load_private_key_pem(pem(generated_key(1024)))
    d = good.d + 2
    with pytest.raises(ValueError, match=r"^inconsistent RSA key: e\*dp != 1 mod \(p-1\)$"):
        dataclasses.replace(good, d=d, dp=d % (good.p - 1), dq=d % (good.q - 1))


def test_bad_public_exponents_and_tiny_keys_are_rejected() -> None:
    good = load_private_key_pem(pem(generated_key(1024)))
    for e in (1, 65538, good.n + 1):
        with pytest.raises(ValueError, match="public exponent e must be odd"):
            dataclasses.replace(good, e=e)
    # p=61, q=53: a textbook key, consistent but far too small for a SHA-1 DigestInfo.
    with pytest.raises(ValueError, match="12-bit modulus is too small"):
        RsaPrivateKey(n=3233, e=17, d=413, p=61, q=53, dp=413 % 60, dq=413 % 52, qinv=pow(53, -1, 61))


def test_the_key_is_not_printed() -> None:
    key = load_private_key_pem(pem(generated_key(1024)))
    assert repr(key) == "RsaPrivateKey(1024 bits, e=65537)" and str(key.d) not in str(key)


def test_only_20_byte_digests_are_signed() -> None:
    key = load_private_key_pem(pem(generated_key(1024)))
    for digest in (b"", b"x" * 19, b"x" * 21, b"x" * 32):
        with pytest.raises(ValueError, match=f"SHA-1 digest is 20 bytes, got {len(digest)}"):
            sign_sha1_digest(key, digest)
    with pytest.raises(TypeError):
        sign_sha1_digest(key, "x" * 20)  # type: ignore[arg-type]
    assert sign_sha1_digest(key, bytearray(20)) == sign_sha1_digest(key, bytes(20))


def test_a_computation_fault_is_never_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong CRT half (as a hardware fault would make) is caught by the verification."""
    import mobilebench.device.rsa_pkcs1 as module

    key = load_private_key_pem(pem(generated_key(1024)))
    real_pow = pow
    monkeypatch.setattr(module, "pow", lambda b, x, m: real_pow(b, x, m) ^ 1 if m == key.p else real_pow(b, x, m),
                        raising=False)
    with pytest.raises(RuntimeError, match="failed its verification"):
        sign_sha1_digest(key, bytes(20))


def test_each_signature_is_blinded_with_a_fresh_random_number(monkeypatch: pytest.MonkeyPatch) -> None:
    import mobilebench.device.rsa_pkcs1 as module

    drawn = []
    real = module.secrets.randbelow
    monkeypatch.setattr(module.secrets, "randbelow", lambda bound: drawn.append(real(bound)) or drawn[-1])
    key = load_private_key_pem(pem(generated_key(1024)))
    assert sign_sha1_digest(key, bytes(20)) == sign_sha1_digest(key, bytes(20))  # blinding does not change s
    assert len(drawn) == 2 and drawn[0] != drawn[1] and all(d.bit_length() > 1000 for d in drawn)


def test_encrypted_keys_are_refused() -> None:
    key = generated_key(1024)
    for fmt in (PKCS8, PKCS1):  # "ENCRYPTED PRIVATE KEY" and the legacy "Proc-Type: 4,ENCRYPTED" header
        data = pem(key, fmt, serialization.BestAvailableEncryption(b"secret"))
        with pytest.raises(ValueError, match=r"^encrypted private keys are not supported"):
            load_private_key_pem(data)


def test_other_algorithms_are_refused() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(ValueError, match="^not an RSA key: algorithm EC$"):
        load_private_key_pem(pem(ec_key, PKCS8))
    with pytest.raises(ValueError, match="^expected an RSA private key, found PEM 'EC PRIVATE KEY'$"):
        load_private_key_pem(pem(ec_key, PKCS1))
    from cryptography.hazmat.primitives.asymmetric import ed25519

    with pytest.raises(ValueError, match="^not an RSA key: algorithm Ed25519$"):
        load_private_key_pem(pem(ed25519.Ed25519PrivateKey.generate(), PKCS8))


@pytest.mark.parametrize("fmt", [PKCS8, PKCS1], ids=["pkcs8", "pkcs1"])
def test_truncated_or_extended_der_is_refused(fmt) -> None:
    der = generated_key(1024).private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())
    label = "PRIVATE KEY" if fmt is PKCS8 else "RSA PRIVATE KEY"
    for cut in (1, 2, 100, len(der) - 2):
        with pytest.raises(ValueError, match="^truncated DER in (PrivateKeyInfo|RSAPrivateKey)$"):
            load_private_key_pem(der_to_pem(der[:-cut], label))
    with pytest.raises(ValueError, match="1 unexpected trailing bytes"):
        load_private_key_pem(der_to_pem(der + b"\0", label))


def test_malformed_der_integers_and_lengths_are_refused() -> None:
    numbers = generated_key(1024).private_numbers()
    e = numbers.public_numbers.e
    n = numbers.public_numbers.n

    def load(der: bytes) -> RsaPrivateKey:
        return load_private_key_pem(der_to_pem(der, "RSA PRIVATE KEY"))

    assert load(pkcs1_der(numbers)).e == e
    cases = {
        "non-minimal INTEGER e": pkcs1_der(numbers, e=tlv(0x02, b"\0" + e.to_bytes(3, "big"))),
        "negative INTEGER n": pkcs1_der(numbers, n=tlv(0x02, n.to_bytes(128, "big"))),  # no 0x00 before the top bit
        "empty INTEGER e": pkcs1_der(numbers, e=tlv(0x02, b"")),
        "non-minimal length of INTEGER": pkcs1_der(numbers, e=b"\x02\x81\x03" + e.to_bytes(3, "big")),
        "bad length of INTEGER": pkcs1_der(numbers, e=b"\x02\x80" + e.to_bytes(3, "big") + b"\0\0"),  # BER indefinite
        "expected INTEGER, found tag 0x04": pkcs1_der(numbers, e=tlv(0x04, e.to_bytes(3, "big"))),
        "multi-prime RSA keys are not supported": pkcs1_der(numbers, version=der_int(1)),
    }
    for message, der in cases.items():
        with pytest.raises(ValueError, match=message.replace("*", r"\*")):
            load(der)


def test_malformed_pem_is_refused() -> None:
    good = pem(generated_key(1024))
    assert load_private_key_pem(good.replace(b"\n", b"\r\n")).size_bytes == 128  # Windows line ends are fine
    cases = {
        "not a PEM file": b"hello",
        "no -----END PRIVATE KEY----- line": good.replace(b"-----END PRIVATE KEY-----", b""),
        "unexpected text after -----END PRIVATE KEY-----": good + b"junk\n",
        "body is not valid base64": good.replace(b"\n", b"\n!", 1),
        "has unexpected header lines": good.replace(b"-----\n", b"-----\nComment: x\n\n", 1),
        "non-ASCII": good.replace(b"\n", b"\n\xc3\xa9", 1),
        "found PEM 'PUBLIC KEY'": generated_key(1024).public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
    }
    for message, data in cases.items():
        with pytest.raises(ValueError, match=message):
            load_private_key_pem(data)
