"""``installation`` and ``installation_repositories``: onboard, pause, purge, follow repos."""

from __future__ import annotations

from app.flows.events.common import Event

__all__ = ["handle"]


async def handle(d: Event) -> str:
    """Keep the store's installations and their repositories in step with GitHub."""
    installation = d.payload.get("installation") or {}
    installation_id = installation.get("id")
    store = d.deps.lifecycle
    if installation_id is None or store is None:
        return "ignored: no installation or no store"
    iid = int(installation_id)
    account = str((installation.get("account") or {}).get("login") or "")
    action = d.action
    if d.event == "installation":
        if action == "deleted":
            await store.purge_installation(iid)
            return "purged"
        if action in ("suspend", "unsuspend"):
            await store.suspend_installation(iid, action == "suspend")
            return "paused" if action == "suspend" else "resumed"
        await store.upsert_installation(iid, account)
        repos = _repos(d.payload.get("repositories"))
        if repos:
            await store.add_repositories(iid, repos)
        return f"onboarded {len(repos)} repositories"
    await store.upsert_installation(iid, account)
    if action == "added":
        added = _repos(d.payload.get("repositories_added"))
        await store.add_repositories(iid, added)
        return f"added {len(added)} repositories"
    removed = [rid for rid, _ in _repos(d.payload.get("repositories_removed"))]
    await store.remove_repositories(iid, removed)
    return f"removed {len(removed)} repositories"


def _repos(items: object) -> list[tuple[int, str]]:
    if not isinstance(items, list):
        return []
    return [
        (int(r["id"]), str(r["full_name"]))
        for r in items
        if isinstance(r, dict) and "id" in r and "full_name" in r
    ]
