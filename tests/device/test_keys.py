"""The client's ADB key pair and adb's token signatures."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from mobilebench import paths
from mobilebench.device.keys import (
    decode_android_pubkey,
    ensure_key_pair,
    load_signer,
    read_public_keys,
    verify_token_signature,
)
from mobilebench.errors import MobilebenchError


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MOBILEBENCH_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path / "config"


def test_key_pair_is_created_once_with_private_permissions(config: Path) -> None:
    key = ensure_key_pair()
    assert key == paths.config_dir() / "adbkey"
    pub = config / "adbkey.pub"
    for file in (key, pub):
        assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.stat().st_mode) == 0o700
    before, before_pub = key.read_bytes(), pub.read_bytes()
    assert ensure_key_pair() == key and key.read_bytes() == before  # reused, not regenerated
    assert sorted(p.name for p in config.iterdir()) == ["adbkey", "adbkey.pub"]  # no temp files
    pub.unlink()
    ensure_key_pair()
    # Rebuilt from the private key, private, and nothing left behind.
    assert pub.read_bytes() == before_pub and stat.S_IMODE(pub.stat().st_mode) == 0o600
    assert sorted(p.name for p in config.iterdir()) == ["adbkey", "adbkey.pub"]


def test_user_given_key_must_exist(config: Path, tmp_path: Path) -> None:
    with pytest.raises(MobilebenchError, match="ADB key .*missing does not exist"):
        ensure_key_pair(tmp_path / "missing")


def test_signatures_verify_only_with_the_matching_key(config: Path, tmp_path: Path) -> None:
    key = ensure_key_pair()
    (public,) = read_public_keys(key.with_name("adbkey.pub"))
    token = os.urandom(20)
    signature = load_signer(key).Sign(token)
    assert verify_token_signature(public, token, signature)
    assert not verify_token_signature(public, os.urandom(20), signature)
    assert not verify_token_signature(public, token, b"\0" * len(signature))


def test_unreadable_private_key_is_one_line_error(tmp_path: Path) -> None:
    key = tmp_path / "adbkey"
    key.write_text("-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n")
    key.with_name("adbkey.pub").write_text("x user@host\n")
    with pytest.raises(MobilebenchError, match=r"^cannot load ADB key .*adbkey: ") as info:
        load_signer(key)
    assert "\n" not in str(info.value)
    with pytest.raises(MobilebenchError, match="cannot load ADB key"):
        load_signer(tmp_path / "absent")


def test_encrypted_or_foreign_keys_are_one_line_errors(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    def pkcs8(key, encryption=serialization.NoEncryption()) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)

    cases = {
        "Password was not given but private key is encrypted": pkcs8(
            rsa.generate_private_key(public_exponent=65537, key_size=1024), serialization.BestAvailableEncryption(b"pw")
        ),
        "not an RSA key": pkcs8(ec.generate_private_key(ec.SECP256R1())),
    }
    key = tmp_path / "adbkey"
    key.with_name("adbkey.pub").write_text("x user@host\n")
    for reason, data in cases.items():
        key.write_bytes(data)
        with pytest.raises(MobilebenchError, match=f"^cannot load ADB key {re.escape(str(key))}: {reason}") as info:
            load_signer(key)
        assert "\n" not in str(info.value)


def test_malformed_public_keys_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        decode_android_pubkey("bm90IGEga2V5 user@host")
    bad = tmp_path / "adb_keys"
    bad.write_text("# comment\n\nQUFBQQ== x@y\n")
    with pytest.raises(MobilebenchError, match=r"adb_keys:3: not an Android ADB public key"):
        read_public_keys(bad)
    assert read_public_keys(tmp_path / "absent.pub") == []
