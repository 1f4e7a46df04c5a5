"""GitHub's answer to ``POST /app-manifests/{code}/conversions``, shaped like docs.github.com's."""

from __future__ import annotations

import functools
from typing import Any

from tests import github_shapes
from tests.github_fake import private_key_pem

APP_ID = 1
SLUG = "octoapp"
CLIENT_SECRET = "1726be1638095a19edd134c77bde3aa2ece1e5d8"
WEBHOOK_SECRET = "e340154128314309424b7c8e90325147d99fdafa"


@functools.cache
def _pem() -> str:
    return private_key_pem()


def conversion(**overrides: Any) -> dict[str, Any]:
    """The REST docs' example response ("Create a GitHub App from a manifest", 201)."""
    body: dict[str, Any] = {
        "id": APP_ID,
        "slug": SLUG,
        "node_id": "MDxOkludGVncmF0aW9uMQ==",
        "owner": github_shapes.user("github", 1, "Organization"),
        "name": "Octocat App",
        "description": "",
        "external_url": "https://example.com",
        "html_url": f"https://github.com/apps/{SLUG}",
        "created_at": "2017-07-08T16:18:44-04:00",
        "updated_at": "2017-07-08T16:18:44-04:00",
        "permissions": {"metadata": "read", "contents": "read", "issues": "write"},
        "events": ["push", "pull_request"],
        "client_id": "Iv1.8a61f9b3a7aba766",
        "client_secret": CLIENT_SECRET,
        "webhook_secret": WEBHOOK_SECRET,
        "pem": _pem(),
    }
    return body | overrides
