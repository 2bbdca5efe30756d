"""Models named by an import path ``package.module:callable``: resolve, cards, flops,
export to both runtimes with parity, and the errors for paths that do not resolve."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from mobilebench.errors import UsageError
from mobilebench.export import ExportOptions, export_model
from mobilebench.export.cache import key_of
from mobilebench.export.pipeline import key_material
from mobilebench.zoo.cards import load_cards
from mobilebench.files import file_sha256
from mobilebench.zoo.outside import state_dict_sha256
from mobilebench.zoo.resolve import resolve_model

SIZE = 64


def test_resolve_builds_once_and_pins_the_weights(import_path, no_cards) -> None:
    state = torch.get_rng_state()
    resolved = resolve_model(import_path, input_size=SIZE)
    assert torch.equal(torch.get_rng_state(), state)  # built under its own seed
    assert (resolved.kind, resolved.name, resolved.arch) == ("import", import_path, import_path)
    assert resolved.input_shape == (1, 3, SIZE, SIZE) and resolved.checkpoint is None
    first, second = resolved.build(), resolved.build()
    assert first is not second and not first.training
    assert type(first).__name__ == "TinyNet"
    # No checkpoint bytes: the weights are identified by their state_dict hash.
    assert resolved.checkpoint_sha256 == state_dict_sha256(first) == resolved.fingerprint["state_dict_sha256"]
    assert set(resolved.fingerprint) == {"import_path", "state_dict_sha256", "structure_sha256", "source_sha256"}
    # Resolving again builds bit-identical weights (seed 0), so the identity is stable.
    assert resolve_model(import_path, input_size=SIZE).checkpoint_sha256 == resolved.checkpoint_sha256
    # A copy without the built module rebuilds and checks it got the same weights.
    rebuilt = replace(resolved, options=dict(resolved.options)).build()
    assert state_dict_sha256(rebuilt) == resolved.checkpoint_sha256


def test_a_checkpoint_is_loaded_into_what_the_callable_built(import_path, no_cards, tmp_path: Path) -> None:
    from mb_outside_nets.models import build_net

    torch.manual_seed(7)
    trained = build_net()
    path = tmp_path / "trained.pth"
    torch.save({"state_dict": trained.state_dict()}, path)
    resolved = resolve_model(import_path, checkpoint=path, input_size=SIZE)
    assert resolved.checkpoint_sha256 == file_sha256(path)
    assert resolved.fingerprint["state_dict_sha256"] == state_dict_sha256(trained)
    assert torch.equal(resolved.build().fc.weight, trained.fc.weight)


def test_card_with_an_import_path_passes_its_options(import_path, no_cards: Path) -> None:
    (no_cards / "tiny_card.toml").write_text(
        f'arch = "{import_path}"\ninput_size = 64\nnum_classes = 5\n[options]\nwidth = 4\nnum_classes = 5\n'
    )
    assert load_cards()["tiny_card"].arch == import_path  # listing does not import the module
    resolved = resolve_model("tiny_card")
    assert (resolved.kind, resolved.name, resolved.arch, resolved.num_classes) == ("import", "tiny_card", import_path, 5)
    model = resolved.build()
    assert model.conv.out_channels == 4 and model(resolved.example_input()).shape == (1, 5)

    (no_cards / "typo.toml").write_text(f'arch = "{import_path}"\n[options]\nwidht = 4\n')
    with pytest.raises(UsageError, match=r"calling mb_outside_nets.models:build_net\(widht=4\) failed: TypeError: .*widht"):
        resolve_model("typo")


def test_flops_through_the_cli(import_path, no_cards, cli) -> None:
    result = cli("flops", import_path, "--input-size", SIZE, "--format", "json")
    assert result.exit_code == 0, result.stderr
    (report,) = json.loads(result.stdout)
    out = SIZE // 2
    conv, bn, pool, fc = 3 * 3 * 3 * 8 * out * out, 2 * 8 * out * out, 8 * out * out, 8 * 10
    assert report["flops"] == conv + bn + pool + fc
    assert report["conv_linear_flops"] == conv + fc
    assert report["params"] == (3 * 9 * 8 + 8) + 2 * 8 + (8 * 10 + 10)
    assert (report["model"], report["arch"]) == (import_path, import_path)


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["executorch", "onnx"])
def test_export_both_runtimes_with_parity(import_path, no_cards, runtime: str) -> None:
    resolved = resolve_model(import_path, input_size=SIZE)
    artifact = export_model(resolved, ExportOptions(runtime=runtime))
    prov = artifact.provenance
    assert artifact.path.is_file() and artifact.path.suffix == (".pte" if runtime == "executorch" else ".onnx")
    assert prov["parity"]["passed"] and prov["parity"]["relative_max_abs_diff"] <= prov["parity"]["tolerance"]
    assert prov["model"]["kind"] == "import" and prov["model"]["weights"] == f"built by {import_path}"
    assert prov["model"]["state_dict_sha256"] == resolved.checkpoint_sha256
    assert artifact.input_shape == (1, 3, SIZE, SIZE)
    # The key holds the fingerprint, so a second resolve hits the cache without exporting.
    again = export_model(resolve_model(import_path, input_size=SIZE), ExportOptions(runtime=runtime))
    assert again.cached and again.sha256 == artifact.sha256


def test_the_cache_key_follows_weights_options_and_source(import_path, no_cards) -> None:
    resolved = resolve_model(import_path, input_size=SIZE)
    base = key_of(key_material(resolved, ExportOptions(), None))
    other_options = replace(resolved, options={"width": 4})
    other_source = replace(resolved, fingerprint={**resolved.fingerprint, "source_sha256": "0" * 64})
    other_weights = replace(resolved, fingerprint={**resolved.fingerprint, "state_dict_sha256": "1" * 64})
    keys = {key_of(key_material(m, ExportOptions(), None)) for m in (other_options, other_source, other_weights)}
    assert base not in keys and len(keys) == 3


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("no_such_pkg_xyz.models:build", "import path no_such_pkg_xyz.models:build: no module named 'no_such_pkg_xyz'"),
        ("mb_outside_nets.nope:build", "no module named 'mb_outside_nets.nope'"),
        ("mb_outside_nets.models:build_nett", "module mb_outside_nets.models has no attribute 'build_nett'; did you mean 'build_net'"),
        ("mb_outside_nets.models:TinyNet.small", "mb_outside_nets.models:TinyNet has no attribute 'small'"),
        ("mb_outside_nets.models:torch", "names a module, not a function or class"),
        (
            "mb_outside_nets.models:not_a_module",
            "import path mb_outside_nets.models:not_a_module returned a builtins.dict, not a torch.nn.Module",
        ),
    ],
)
@pytest.mark.parametrize("command", ["flops", "export", "profile"])
def test_import_paths_that_do_not_resolve_are_one_line_errors(
    outside_package, no_cards, cli, error_line, command: str, name: str, message: str
) -> None:
    line = error_line(cli(command, name))
    assert message in line
