"""Every GitHub REST operation the App calls, in one table keyed by OpenAPI ``operationId``.

The adapter builds each request's path from this table (:meth:`Operation.path`), and the
test suite checks the table against GitHub's published OpenAPI descriptions (api.github.com
and GitHub Enterprise Server), so a wrong method or a typo in a path fails a test instead of
a production call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

__all__ = ["OPERATIONS", "Operation"]

#: Parameters whose values are paths of their own (``migrations/versions``, ``heads/a/b``).
_SLASHED = frozenset({"path", "ref"})


@dataclass(frozen=True, slots=True)
class Operation:
    """One REST operation: GitHub's ``operationId``, the HTTP method and the path template."""

    operation_id: str
    method: str
    template: str
    #: Who sends it when not the adapter itself (githubkit's token minting, the setup flow).
    sent_by: str = "app.adapters.github.repo"

    def path(self, **params: str | int) -> str:
        """The template with every ``{name}`` filled in, percent-encoded.

        ``path`` and ``ref`` keep their slashes; every other value is one path segment.

        Raises:
            KeyError: a parameter of the template was not given.
        """

        def fill(found: re.Match[str]) -> str:
            name = found.group(1)
            return quote(str(params[name]), safe="/" if name in _SLASHED else "")

        return re.sub(r"\{([^}]+)\}", fill, self.template)


_REPO = "/repos/{owner}/{repo}"

REPOS_GET = Operation("repos/get", "GET", _REPO)
REPOS_GET_CONTENT = Operation("repos/get-content", "GET", f"{_REPO}/contents/{{path}}")
REPOS_GET_PERMISSION = Operation(
    "repos/get-collaborator-permission-level",
    "GET",
    f"{_REPO}/collaborators/{{username}}/permission",
)
GIT_GET_REF = Operation("git/get-ref", "GET", f"{_REPO}/git/ref/{{ref}}")
GIT_CREATE_REF = Operation("git/create-ref", "POST", f"{_REPO}/git/refs")
GIT_UPDATE_REF = Operation("git/update-ref", "PATCH", f"{_REPO}/git/refs/{{ref}}")
GIT_DELETE_REF = Operation("git/delete-ref", "DELETE", f"{_REPO}/git/refs/{{ref}}")
GIT_GET_COMMIT = Operation("git/get-commit", "GET", f"{_REPO}/git/commits/{{commit_sha}}")
GIT_CREATE_COMMIT = Operation("git/create-commit", "POST", f"{_REPO}/git/commits")
GIT_CREATE_TREE = Operation("git/create-tree", "POST", f"{_REPO}/git/trees")
GIT_GET_BLOB = Operation("git/get-blob", "GET", f"{_REPO}/git/blobs/{{file_sha}}")
PULLS_LIST = Operation("pulls/list", "GET", f"{_REPO}/pulls")
PULLS_CREATE = Operation("pulls/create", "POST", f"{_REPO}/pulls")
PULLS_GET = Operation("pulls/get", "GET", f"{_REPO}/pulls/{{pull_number}}")
PULLS_UPDATE = Operation("pulls/update", "PATCH", f"{_REPO}/pulls/{{pull_number}}")
ISSUES_ADD_LABELS = Operation(
    "issues/add-labels", "POST", f"{_REPO}/issues/{{issue_number}}/labels"
)
ISSUES_CREATE_COMMENT = Operation(
    "issues/create-comment", "POST", f"{_REPO}/issues/{{issue_number}}/comments"
)
ISSUES_UPDATE_COMMENT = Operation(
    "issues/update-comment", "PATCH", f"{_REPO}/issues/comments/{{comment_id}}"
)
REACTIONS_CREATE_FOR_ISSUE_COMMENT = Operation(
    "reactions/create-for-issue-comment",
    "POST",
    f"{_REPO}/issues/comments/{{comment_id}}/reactions",
)
CHECKS_CREATE = Operation("checks/create", "POST", f"{_REPO}/check-runs")
CHECKS_UPDATE = Operation("checks/update", "PATCH", f"{_REPO}/check-runs/{{check_run_id}}")
APPS_CREATE_INSTALLATION_ACCESS_TOKEN = Operation(
    "apps/create-installation-access-token",
    "POST",
    "/app/installations/{installation_id}/access_tokens",
    "githubkit's AppInstallationAuthStrategy (app.adapters.github.client)",
)
APPS_CREATE_FROM_MANIFEST = Operation(
    "apps/create-from-manifest",
    "POST",
    "/app-manifests/{code}/conversions",
    "app.web.manifest (the /setup flow)",
)

OPERATIONS: tuple[Operation, ...] = (
    REPOS_GET,
    REPOS_GET_CONTENT,
    REPOS_GET_PERMISSION,
    GIT_GET_REF,
    GIT_CREATE_REF,
    GIT_UPDATE_REF,
    GIT_DELETE_REF,
    GIT_GET_COMMIT,
    GIT_CREATE_COMMIT,
    GIT_CREATE_TREE,
    GIT_GET_BLOB,
    PULLS_LIST,
    PULLS_CREATE,
    PULLS_GET,
    PULLS_UPDATE,
    ISSUES_ADD_LABELS,
    ISSUES_CREATE_COMMENT,
    ISSUES_UPDATE_COMMENT,
    REACTIONS_CREATE_FOR_ISSUE_COMMENT,
    CHECKS_CREATE,
    CHECKS_UPDATE,
    APPS_CREATE_INSTALLATION_ACCESS_TOKEN,
    APPS_CREATE_FROM_MANIFEST,
)
