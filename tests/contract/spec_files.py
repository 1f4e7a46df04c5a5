"""GitHub's description files for the contract tests, provisioned from pinned npm packages.

``python -m tests.contract.spec_files`` (``make github-spec``) runs ``npm pack`` on two pinned
packages, checks each tarball against its pinned sha512 (npm's ``integrity``), and extracts
three JSON files into the spec dir (``DBARCH_GITHUB_SPEC_DIR``, else
``.dbarchitect/github-spec`` in the checkout), each checked against its pinned sha256.
Idempotent: a complete, verified dir is left alone (~0.1 s). The tests never download.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from app.adapters.model_files import check_pinned

__all__ = [
    "ENV_VAR",
    "FILES",
    "PACKAGES",
    "SpecFile",
    "SpecMissing",
    "check_spec_dir",
    "provision",
    "spec_dir",
]

ENV_VAR = "DBARCH_GITHUB_SPEC_DIR"
HINT = "run `make github-spec` (npm pack of the pinned @octokit packages)"
NPM_TIMEOUT_S = 300.0
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Package:
    """One npm tarball: ``name@version`` and its sha512 as npm's ``integrity`` string."""

    spec: str
    integrity: str

    @property
    def tarball(self) -> str:
        """The file name ``npm pack`` writes (``@scope/name`` → ``scope-name-version.tgz``)."""
        name, _, version = self.spec.rpartition("@")
        return f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"


@dataclass(frozen=True, slots=True)
class SpecFile:
    """One extracted file: its name in the spec dir, where it comes from, what it hashes to."""

    name: str
    package: Package
    member: str
    sha256: str
    size: int


#: A new version is a code change: update the spec, integrity and the files' hashes together.
OPENAPI = Package(
    "@octokit/openapi@23.0.2",
    "sha512-pV8M7L9GY23AybNvTmo2nyjmpmnt6+2sRE/tqr0ZLQcPS4lnw7u5eZGNmwRNkBC3D7gZXbFx5AHzLUVRBXGDhg==",
)
WEBHOOKS = Package(
    "@octokit/webhooks-schemas@7.6.1",
    "sha512-qW0Bwtb76r4m2WzVhKDyfEeEnt1GEQoRjkCqmq2ZeB0nNVDJ+Z2LBDS9FDPyduuMXf/ZTWiCJp9PFFHgRfBe3A==",
)
PACKAGES = (OPENAPI, WEBHOOKS)

#: The GitHub Enterprise Server release checked beside api.github.com (the newest published).
GHES_VERSION = "3.19"

FILES = (
    SpecFile(
        "api.github.com.json",
        OPENAPI,
        "package/generated/api.github.com.json",
        "829b4bebb19a53133289f7b0bc819f4f1118115821db2ca9f25e9ee995a7da2a",
        13_001_822,
    ),
    SpecFile(
        f"ghes-{GHES_VERSION}.json",
        OPENAPI,
        f"package/generated/ghes-{GHES_VERSION}.json",
        "8c852cf1bde4d40ee19dffd9cdd18650bfad09f9dd0cd5039b9d775056104139",
        11_279_885,
    ),
    SpecFile(
        "webhooks-schema.json",
        WEBHOOKS,
        "package/schema.json",
        "ff15ae017ba3b877a44f636806155f986f7b707b31aa7eebde6da1d3366f2840",
        629_797,
    ),
)


class SpecMissing(Exception):
    """The spec dir is incomplete or does not match the pins; the message says what to do."""


def spec_dir() -> Path:
    """Where the files live: ``DBARCH_GITHUB_SPEC_DIR``, else ``.dbarchitect/github-spec``."""
    configured = os.environ.get(ENV_VAR, "").strip()
    if configured:
        return Path(configured).expanduser().absolute()
    return Path(__file__).resolve().parents[2] / ".dbarchitect" / "github-spec"


def _digest(path: Path, algorithm: str) -> bytes:
    digest = hashlib.new(algorithm)
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.digest()


def check_spec_dir(directory: Path) -> list[str]:
    """Every problem with ``directory`` (empty: all files present and matching their pins)."""
    return check_pinned(directory, FILES)


def verify(directory: Path) -> None:
    """Raise :class:`SpecMissing` unless ``directory`` holds every pinned file."""
    if problems := check_spec_dir(directory):
        raise SpecMissing(
            f"GitHub description files in {directory} are not usable ({'; '.join(problems)}): "
            f"{HINT}"
        )


def _npm_pack(package: Package, dest: Path) -> Path:
    """``npm pack`` one tarball into ``dest`` (npm's own cache makes reruns cheap)."""
    npm = shutil.which("npm")
    if npm is None:
        raise SpecMissing(
            "npm is not installed: `make deps` installs nodejs and npm (apt), or install them "
            "yourself, then run `make github-spec` again"
        )
    command = [npm, "pack", package.spec, "--pack-destination", str(dest), "--silent"]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=NPM_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise SpecMissing(
            f"npm pack {package.spec} did not finish within {NPM_TIMEOUT_S:.0f} s: check the "
            "connection to the npm registry (or npm's registry/proxy config) and retry"
        ) from None
    tarball = dest / package.tarball
    if done.returncode != 0 or not tarball.is_file():
        last = (done.stderr.strip().splitlines() or ["no error output"])[-1]
        raise SpecMissing(
            f"npm pack {package.spec} failed ({last}): check the connection to the npm registry "
            "and that the pinned version still exists"
        )
    algorithm, _, expected = package.integrity.partition("-")
    actual = base64.b64encode(_digest(tarball, algorithm)).decode()
    if actual != expected:
        raise SpecMissing(
            f"{package.tarball} has {algorithm} {actual}, pinned {expected}: the package "
            "changed upstream; check it and update the pins in tests/contract/spec_files.py"
        )
    return tarball


def _extract(tarball: Path, member: str, target: Path) -> None:
    with tarfile.open(tarball, "r:gz") as archive:
        try:
            source = archive.extractfile(member)
        except KeyError:
            source = None
        if source is None:
            raise SpecMissing(
                f"{member} is not in {tarball.name}: the package layout changed; update "
                "tests/contract/spec_files.py"
            )
        with source, target.open("wb") as out:
            shutil.copyfileobj(source, out, _CHUNK)


def provision(directory: Path) -> bool:
    """Make ``directory`` hold the verified files; True if anything had to be fetched."""
    if not check_spec_dir(directory):
        return False
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".github-spec-", dir=directory) as scratch:
        staging = Path(scratch)
        tarballs = {package: _npm_pack(package, staging) for package in PACKAGES}
        for spec in FILES:
            staged = staging / spec.name
            _extract(tarballs[spec.package], spec.member, staged)
            if _digest(staged, "sha256").hex() != spec.sha256:
                raise SpecMissing(
                    f"{spec.member} of {spec.package.spec} does not match its pinned sha256: "
                    "update the pins in tests/contract/spec_files.py after checking the package"
                )
            staged.replace(directory / spec.name)  # same filesystem: atomic per file
    return True


def main() -> int:
    """Provision :func:`spec_dir`; exit 1 with the reason when that fails."""
    directory = spec_dir()
    try:
        fetched = provision(directory)
    except SpecMissing as exc:
        print(f"github-spec: {exc}", file=sys.stderr)
        return 1
    print(f"github-spec: {'provisioned' if fetched else 'verified'} {directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
