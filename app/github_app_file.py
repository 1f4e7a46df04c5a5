"""``<data_dir>/github-app.json``: the App credentials the setup flow stores and Settings reads."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic_settings import SettingsError

from app.github_key import key_problem

__all__ = [
    "GITHUB_APP_FILE",
    "AppFile",
    "AppFileError",
    "app_file_path",
    "parse_app",
    "read_app_file",
]

GITHUB_APP_FILE = "github-app.json"
"""The file's name under ``data_dir``."""

_MODE = 0o600


class AppFileError(SettingsError):
    """The credentials file exists but cannot be read or does not hold an App."""


@dataclass(frozen=True, slots=True, repr=False)
class AppFile:
    """A registered App as GitHub's manifest conversion returned it (secrets included).

    Its ``repr`` shows the id, slug and owner only: never a secret.
    """

    id: int
    slug: str
    pem: str
    webhook_secret: str | None
    client_id: str
    client_secret: str
    html_url: str
    """The App's page on GitHub (``https://github.com/apps/<slug>``); installs go under it."""
    owner: str | None = None
    """The account that owns the registration (a user or an organisation login)."""

    def __repr__(self) -> str:
        return f"AppFile(id={self.id}, slug={self.slug!r}, owner={self.owner!r})"

    @property
    def install_url(self) -> str:
        """Where an owner installs the App on accounts and repositories."""
        return f"{self.html_url.rstrip('/')}/installations/new"

    def write(self, data_dir: Path) -> Path:
        """Write the file atomically with mode 0600 (never readable by others) and return it.

        The JSON goes to a private temporary file beside the target, is flushed to disk and
        then renamed over it: a reader sees the old file or the new one, never half of one.
        """
        data_dir.mkdir(parents=True, exist_ok=True)
        path = app_file_path(data_dir)
        fd, tmp = tempfile.mkstemp(prefix=f".{GITHUB_APP_FILE}.", dir=data_dir)  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                os.fchmod(out.fileno(), _MODE)
                json.dump(asdict(self), out, indent=2)
                out.write("\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return path


def app_file_path(data_dir: Path) -> Path:
    """``<data_dir>/github-app.json``."""
    return data_dir / GITHUB_APP_FILE


def read_app_file(path: Path) -> AppFile | None:
    """The App stored at ``path``; None when there is no such file.

    Raises:
        AppFileError: the file is unreadable, not JSON, or lacks the App's id, slug or key
            (the message names the file and what to do; it never quotes its contents).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise AppFileError(f"cannot read {path} ({_why(err)}); {_REDO}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise AppFileError(f"{path} is not valid JSON (line {err.lineno}); {_REDO}") from None
    return parse_app(data, where=str(path), remedy=_REDO)


def parse_app(data: object, *, where: str, remedy: str) -> AppFile:
    """The App in ``data``: the file's JSON object, or GitHub's manifest conversion response
    (whose ``owner`` is an account object; its ``login`` is kept).

    Raises:
        AppFileError: a required key is missing or has the wrong type (named, with ``remedy``).
    """
    if not isinstance(data, dict):
        raise AppFileError(f"{where} does not hold a JSON object; {remedy}")
    owner = data.get("owner")
    if isinstance(owner, dict):
        owner = owner.get("login")
    problems = [
        f"{key} ({kind.__name__})"
        for key, kind in _REQUIRED.items()
        if not isinstance(data.get(key), kind) or isinstance(data.get(key), bool)
    ]
    problems += [
        f"{key} (str or null)"
        for key, value in (("webhook_secret", data.get("webhook_secret")), ("owner", owner))
        if value is not None and not isinstance(value, str)
    ]
    if problems:
        raise AppFileError(f"{where} lacks or mistypes {', '.join(problems)}; {remedy}")
    key_said = key_problem(data["pem"])
    if key_said is not None:
        raise AppFileError(f"the private key (pem) in {where} {key_said}; or {remedy}")
    return AppFile(
        id=data["id"],
        slug=data["slug"],
        pem=data["pem"],
        webhook_secret=data.get("webhook_secret"),
        client_id=data["client_id"],
        client_secret=data["client_secret"],
        html_url=data["html_url"],
        owner=owner,
    )


_REQUIRED: dict[str, type] = {
    "id": int,
    "slug": str,
    "pem": str,
    "client_id": str,
    "client_secret": str,
    "html_url": str,
}
_REDO = "fix it, or delete it and register the App again at /setup"


def _why(err: Exception) -> str:
    return err.strerror if isinstance(err, OSError) and err.strerror else type(err).__name__
