"""``check_run``: our check run's Re-run and its buttons (open PRs, dry run) start audits."""

from __future__ import annotations

from app.flows.events.common import WRITE_ROLES, Delivery

__all__ = ["handle"]

_BUTTONS = ("open_prs", "dry_run")


async def handle(d: Delivery) -> str:
    """Queue the audit a re-run or a button asks for; opening PRs needs write access."""
    if ((d.payload.get("check_run") or {}).get("app") or {}).get("slug") not in (None, d.deps.slug):
        return "ignored: another app's check run"
    dry_run: bool | None = None
    if d.action == "requested_action":
        identifier = (d.payload.get("requested_action") or {}).get("identifier")
        if identifier not in _BUTTONS:
            return f"ignored: unknown button {identifier!r}"
        dry_run = identifier == "dry_run"
        login = str(d.sender)
        reader, _ = await d.deps.github(d.repo)
        if identifier == "open_prs" and await reader.permission(login) not in WRITE_ROLES:
            return f"refused: {login} may not open pull requests"
    return await d.audit("check_run", d.sender, dry_run=dry_run)
