"""Complete GitHub objects (users, repositories, apps, labels) as REST and webhooks send them.

Every required field of GitHub's published schemas is here (checked by the contract tests),
so the fake GitHub and the webhook fixtures hand the App what GitHub would, not an abridged
object that only happens to hold the fields the App reads today.
"""

from __future__ import annotations

from typing import Any

__all__ = ["app", "label", "repository", "user"]

API = "https://api.github.com"
WEB = "https://github.com"
CREATED = "2024-01-05T10:00:00Z"


def user(
    login: str, uid: int, kind: str = "User", *, api: str = API, web: str = WEB
) -> dict[str, Any]:
    """A user, organisation or bot (``simple-user``; the webhooks' ``user`` takes the same)."""
    base = f"{api}/users/{login}"
    return {
        "login": login,
        "id": uid,
        "node_id": f"MDQ6VXNlcj{uid}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
        "gravatar_id": "",
        "url": base,
        "html_url": f"{web}/{login}",
        "followers_url": f"{base}/followers",
        "following_url": f"{base}/following{{/other_user}}",
        "gists_url": f"{base}/gists{{/gist_id}}",
        "starred_url": f"{base}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{base}/subscriptions",
        "organizations_url": f"{base}/orgs",
        "repos_url": f"{base}/repos",
        "events_url": f"{base}/events{{/privacy}}",
        "received_events_url": f"{base}/received_events",
        "type": kind,
        "site_admin": False,
    }


_REPO_LINKS = {
    "forks_url": "/forks",
    "keys_url": "/keys{/key_id}",
    "collaborators_url": "/collaborators{/collaborator}",
    "teams_url": "/teams",
    "hooks_url": "/hooks",
    "issue_events_url": "/issues/events{/number}",
    "events_url": "/events",
    "assignees_url": "/assignees{/user}",
    "branches_url": "/branches{/branch}",
    "tags_url": "/tags",
    "blobs_url": "/git/blobs{/sha}",
    "git_tags_url": "/git/tags{/sha}",
    "git_refs_url": "/git/refs{/sha}",
    "trees_url": "/git/trees{/sha}",
    "statuses_url": "/statuses/{sha}",
    "languages_url": "/languages",
    "stargazers_url": "/stargazers",
    "contributors_url": "/contributors",
    "subscribers_url": "/subscribers",
    "subscription_url": "/subscription",
    "commits_url": "/commits{/sha}",
    "git_commits_url": "/git/commits{/sha}",
    "comments_url": "/comments{/number}",
    "issue_comment_url": "/issues/comments{/number}",
    "contents_url": "/contents/{+path}",
    "compare_url": "/compare/{base}...{head}",
    "merges_url": "/merges",
    "archive_url": "/{archive_format}{/ref}",
    "downloads_url": "/downloads",
    "issues_url": "/issues{/number}",
    "pulls_url": "/pulls{/number}",
    "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}",
    "labels_url": "/labels{/name}",
    "releases_url": "/releases{/id}",
    "deployments_url": "/deployments",
}


def repository(
    owner: dict[str, Any],
    name: str,
    rid: int,
    *,
    private: bool = True,
    default_branch: str = "main",
    updated_at: str = CREATED,
    api: str = API,
    web: str = WEB,
) -> dict[str, Any]:
    """A repository as webhooks and pull requests carry it (the REST ``repository`` fields
    plus the webhooks' required ones; ``GET /repos`` adds two counts, see the fake)."""
    full_name = f"{owner['login']}/{name}"
    base = f"{api}/repos/{full_name}"
    host = web.split("://", 1)[1]
    return {
        "id": rid,
        "node_id": f"R_kgDO{rid}",
        "name": name,
        "full_name": full_name,
        "private": private,
        "owner": owner,
        "html_url": f"{web}/{full_name}",
        "description": None,
        "fork": False,
        "url": base,
        **{key: base + suffix for key, suffix in _REPO_LINKS.items()},
        "created_at": CREATED,
        "updated_at": updated_at,
        "pushed_at": updated_at,
        "git_url": f"git://{host}/{full_name}.git",
        "ssh_url": f"git@{host}:{full_name}.git",
        "clone_url": f"{web}/{full_name}.git",
        "svn_url": f"{web}/{full_name}",
        "homepage": None,
        "size": 108,
        "stargazers_count": 0,
        "watchers_count": 0,
        "language": "Python",
        "has_issues": True,
        "has_projects": True,
        "has_downloads": True,
        "has_wiki": True,
        "has_pages": False,
        "has_discussions": False,
        "forks_count": 0,
        "mirror_url": None,
        "archived": False,
        "disabled": False,
        "open_issues_count": 0,
        "license": None,
        "allow_forking": True,
        "is_template": False,
        "web_commit_signoff_required": False,
        "topics": [],
        "visibility": "private" if private else "public",
        "forks": 0,
        "open_issues": 0,
        "watchers": 0,
        "default_branch": default_branch,
        "custom_properties": {},
    }


def app(
    app_id: int,
    slug: str,
    owner: dict[str, Any],
    permissions: dict[str, str],
    *,
    web: str = WEB,
) -> dict[str, Any]:
    """The App as check runs carry it (``integration``)."""
    return {
        "id": app_id,
        "slug": slug,
        "node_id": f"A_kwDO{app_id}",
        "owner": owner,
        "name": "DB Architect",
        "description": "",
        "external_url": "https://example.invalid",
        "html_url": f"{web}/apps/{slug}",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
        "permissions": dict(permissions),
        "events": ["check_run", "issue_comment", "pull_request"],
    }


def label(name: str, lid: int, repo_api: str) -> dict[str, Any]:
    """A label on an issue or pull request."""
    return {
        "id": lid,
        "node_id": f"LA_kwDO{lid}",
        "url": f"{repo_api}/labels/{name}",
        "name": name,
        "color": "ededed",
        "default": False,
        # pull-request-simple's labels want a string here (null elsewhere): "" fits both
        "description": "",
    }
