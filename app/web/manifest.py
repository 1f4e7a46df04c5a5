"""The GitHub App manifest flow: the manifest from ``app.yml``, GitHub's URLs, the conversion.

GitHub's "Registering a GitHub App from a manifest": a form POSTs the manifest (and a
``state``) to ``<github>/settings/apps/new`` or ``<github>/organizations/ORG/settings/apps/new``;
GitHub creates the App and sends the browser to the manifest's ``redirect_url`` with
``?code=…&state=…``; ``POST /app-manifests/{code}/conversions`` (no authentication, within an
hour) then returns the App's id, slug, private key and webhook secret.
"""

from __future__ import annotations

import copy
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import yaml  # type: ignore[import-untyped,unused-ignore]

from app.adapters.github.operations import APPS_CREATE_FROM_MANIFEST
from app.github_app_file import AppFile, AppFileError, parse_app
from app.web.webhooks import WEBHOOK_PATH

__all__ = [
    "APP_YML",
    "CALLBACK_PATH",
    "INSTALLED_APP_YML",
    "SETUP_PATH",
    "ConversionError",
    "ManifestError",
    "build_manifest",
    "convert_code",
    "github_web_url",
    "load_template",
    "registration_url",
    "valid_org",
]

APP_YML = Path(__file__).resolve().parents[2] / "app.yml"
"""The manifest template at the top of the checkout."""
INSTALLED_APP_YML = Path(sys.prefix) / "share" / "db-architect" / "app.yml"
"""Where an installation without the checkout (the container image) keeps a copy."""

SETUP_PATH = "/setup"
CALLBACK_PATH = "/setup/callback"
"""Where GitHub sends the browser back with the code (the manifest's ``redirect_url``)."""

_ORG = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}")
_TIMEOUT_S = 15.0


class ManifestError(Exception):
    """``app.yml`` is missing or is not a manifest."""


class ConversionError(Exception):
    """GitHub did not turn the code into an App.

    ``status`` is the page's HTTP status; ``retry`` says whether the same code may still work
    (GitHub was unreachable or failed, so it has not used the code up).
    """

    def __init__(self, message: str, status: int, *, retry: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retry = retry


def load_template(path: Path | None = None) -> dict[str, Any]:
    """The manifest template (a YAML mapping with ``default_permissions``): ``path``, else
    :data:`APP_YML` in the checkout, else :data:`INSTALLED_APP_YML`.

    Raises:
        ManifestError: the file is missing, unreadable or not such a mapping.
    """
    if path is None:
        path = APP_YML if APP_YML.exists() or not INSTALLED_APP_YML.exists() else INSTALLED_APP_YML
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(
            f"the App manifest {path} is missing: run DB Architect from its checkout, or "
            f"copy the checkout's app.yml to {path}"
        ) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ManifestError(f"cannot read the App manifest {path}: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("default_permissions"), dict):
        raise ManifestError(
            f"{path} is not a GitHub App manifest (a mapping with default_permissions)"
        )
    return data


def build_manifest(template: Mapping[str, Any], base_url: str) -> dict[str, Any]:
    """The manifest to POST: ``template`` with this deployment's URLs, always private.

    ``url`` (the App's homepage) is ``base_url``; webhooks go to ``<base_url>/webhooks/github``;
    GitHub returns the browser to ``<base_url>/setup/callback``; a ``setup_url`` (after an
    installation) becomes ``<base_url>/setup``. Other keys (name, permissions, events) are kept.

    >>> m = build_manifest({"name": "X", "hook_attributes": {"active": True}}, "https://d.io/")
    >>> m["hook_attributes"], m["redirect_url"], m["public"]
    ({'active': True, 'url': 'https://d.io/webhooks/github'}, 'https://d.io/setup/callback', False)
    """
    base = base_url.rstrip("/")
    manifest = copy.deepcopy(dict(template))
    hook = manifest.get("hook_attributes")
    manifest["url"] = base
    manifest["hook_attributes"] = {
        **(hook if isinstance(hook, dict) else {}),
        "url": base + WEBHOOK_PATH,
    }
    manifest["redirect_url"] = base + CALLBACK_PATH
    if "setup_url" in manifest:
        manifest["setup_url"] = base + SETUP_PATH
    manifest["public"] = False
    return manifest


def github_web_url(api_url: str) -> str:
    """GitHub's web address for its REST API address (github.com, or a GHES host).

    >>> github_web_url("https://api.github.com"), github_web_url("https://ghe.corp/api/v3/")
    ('https://github.com', 'https://ghe.corp')
    """
    parts = urlsplit(api_url.rstrip("/"))
    if parts.hostname == "api.github.com":
        return "https://github.com"
    path = parts.path.removesuffix("/api/v3")
    return f"{parts.scheme}://{parts.netloc}{path}"


def valid_org(name: str) -> bool:
    """Whether ``name`` can be a GitHub organisation login (letters, digits, single hyphens)."""
    return _ORG.fullmatch(name) is not None


def registration_url(web_url: str, state: str, org: str | None = None) -> str:
    """Where the manifest form POSTs: the personal account's or the organisation's new-App page.

    Raises:
        ValueError: ``org`` is not an organisation login.
    """
    if org is not None and not valid_org(org):
        raise ValueError(f"{org!r} is not a GitHub organisation name")
    where = f"/organizations/{org}" if org else ""
    return f"{web_url.rstrip('/')}{where}/settings/apps/new?state={quote(state, safe='')}"


async def convert_code(
    api_url: str, code: str, *, client: httpx.AsyncClient | None = None
) -> AppFile:
    """Exchange the manifest flow's code for the App and its credentials (no authentication).

    Raises:
        ConversionError: GitHub refused the code (used, expired after an hour, or unknown),
            answered something else, or could not be reached; the message says what to do.
    """
    url = api_url.rstrip("/") + APPS_CREATE_FROM_MANIFEST.path(code=code)
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    try:
        if client is None:
            async with httpx.AsyncClient(timeout=_TIMEOUT_S) as own:
                response = await own.post(url, headers=headers)
        else:
            response = await client.post(url, headers=headers)
    except httpx.HTTPError as err:
        raise ConversionError(
            f"cannot reach GitHub at {api_url} ({type(err).__name__}); check the network and "
            "DBARCH_GITHUB_API_URL, then reload this page within the hour",
            502,
            retry=True,
        ) from None
    if response.status_code in (404, 422):
        raise ConversionError(
            f"GitHub did not accept the code ({response.status_code}: {_said(response)}): "
            "codes work once and for one hour. Start again at /setup (and delete any App "
            "GitHub created meanwhile under Settings → Developer settings → GitHub Apps)",
            400,
        )
    if response.status_code != 201:
        raise ConversionError(
            f"GitHub answered {response.status_code} ({_said(response)}); reload this page "
            "to try again within the hour",
            502,
            retry=response.status_code >= 500,
        )
    remedy = (
        "the App was created but cannot be used: delete it on GitHub (Settings → Developer "
        "settings → GitHub Apps) and start again at /setup"
    )
    try:
        data = response.json()
    except ValueError:
        raise ConversionError(f"GitHub's answer was not JSON; {remedy}", 502) from None
    try:
        return parse_app(data, where="GitHub's answer", remedy=remedy)
    except AppFileError as err:
        raise ConversionError(str(err), 502) from None


def _said(response: httpx.Response) -> str:
    """GitHub's ``message`` (short; never a body that might hold a secret)."""
    try:
        message = response.json().get("message")
    except (ValueError, AttributeError):
        message = None
    return str(message)[:200] if message else response.reason_phrase or "no message"
