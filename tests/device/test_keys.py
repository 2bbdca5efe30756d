"""The client's ADB key pair and adb's token signatures."""

from __future__ import annotations

import os
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
    before = key.read_bytes()
    assert ensure_key_pair() == key and key.read_bytes() == before  # reused, not regenerated
    assert sorted(p.name for p in config.iterdir()) == ["adbkey", "adbkey.pub"]  # no temp files
    pub.unlink()
    ensure_key_pair()
    assert pub.is_file()  # rebuilt from the private key


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


def test_malformed_public_keys_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        decode_android_pubkey("bm90IGEga2V5 user@host")
    bad = tmp_path / "adb_keys"
    bad.write_text("# comment\n\nQUFBQQ== x@y\n")
    with pytest.raises(MobilebenchError, match=r"adb_keys:3: not an Android ADB public key"):
        read_public_keys(bad)
    assert read_public_keys(tmp_path / "absent.pub") == []
