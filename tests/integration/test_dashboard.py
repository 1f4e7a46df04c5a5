"""The dashboard over real HTTP (app under uvicorn, store on PostgreSQL 18) and in Chromium.

The store is filled through Store and Memory as audits and reviews fill it; the pages are
read with httpx (status codes, login flow, escaping) and rendered by headless Chromium
(Debian ``chromium``), whose screenshot must show the speed-up chart's bars.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image  # installed with fastembed

from app.adapters.memory import FeedbackRow, LedgerEntry, Memory
from app.adapters.pgserver import free_port
from app.adapters.store import open_store
from app.settings import Settings
from app.web.auth import ADMIN_COOKIE
from tests.integration.webhook_app import AppServer
from tests.report_json import measured_query

TOKEN = "dashboard-admin-token-0123456789"
REPO, OTHER = "acme/webshop", "acme/blog"
TITLE = "1 pull request opened"
FAILED_TITLE = "Audit failed: target unreachable"
HOSTILE = "<script>alert('pwned')</script> the write load on accounts is too high"
CITATION_TRAP = "<img src=x onerror=alert(1)>"
CHROMIUM_TIMEOUT_S = 90
WIDTH, HEIGHT = 1280, 1600
FAST_GREEN = (0x2F, 0x85, 0x5A)  # app/web/ui/charts.py: the bars of faster reads


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


REPORT = {
    "version": 1,
    "min_confidence": 0.8,
    "recommendations": [
        {
            "id": "create_index:aa",
            "action": "create_index",
            "table": "public.accounts",
            "columns": ["email"],
            "ddl": "CREATE INDEX CONCURRENTLY accounts_email_idx ON public.accounts (email)",
            "confidence": 0.91,
            "confidence_breakdown": {"measured_speedup": 0.35, "reviewer_memory": -0.04},
            "reviewer_memory": [
                "Reviewer memory moved the confidence by −0.04 (bounded to −0.25 … +0.10):",
                f"- a similar index on `accounts` was rejected: {CITATION_TRAP} (similarity 0.88)",
            ],
            "eligible": True,
            "queries": [measured_query(12.0, 0.3), measured_query(2.0, 2.1, write=True)],
            "reasons": ["seq scan on accounts filtered by email"],
        },
        {
            "id": "create_index:bb",
            "action": "create_index",
            "table": "public.members",
            "columns": ["team_id"],
            "confidence": 0.62,
            "confidence_breakdown": {"measured_speedup": 0.2},
            "eligible": False,
            "queries": [measured_query(6.0, 1.5)],
        },
    ],
    "rejected": [{"candidate": "orders(id)", "reason": "already indexed"}],
    "skipped_queries": [],
}


async def _seed(dsn: str) -> dict[str, int]:
    async with await open_store(dsn, max_size=2) as store:
        done = await store.start_audit(REPO, 42, "comment", "alice", dry_run=False)
        summary = {
            "title": TITLE,
            "conclusion": "neutral",
            "results": {"create_index:aa": "opened pull request #12"},
        }
        await store.finish_audit(done, "done", summary, REPORT)
        failed = await store.start_audit(OTHER, 42, "schedule", None, dry_run=False)
        await store.finish_audit(failed, "failed", {"title": FAILED_TITLE}, None)
        running = await store.start_audit(REPO, 42, "dispatch", "bob", dry_run=True)

        memory = Memory(store)
        await memory.upsert_recommendation(LedgerEntry(
            REPO, "aa", "create_index:aa", "create_index", "public.accounts", "pr_open", 0.91,
            {"measured_speedup": 0.35}, 12, descriptor="add index on accounts (email)",
        ))  # fmt: skip
        await memory.upsert_recommendation(LedgerEntry(
            REPO, "bb", "create_index:bb", "create_index", "public.members", "proposed", 0.82,
            None, None,
        ))  # fmt: skip
        await memory.upsert_recommendation(LedgerEntry(
            OTHER, "cc", "create_index:cc", "create_index", "public.posts", "merged", 0.86,
            None, 3, descriptor="add index on posts (author_id)",
        ))  # fmt: skip
        await memory.upsert_recommendation(
            LedgerEntry(
                REPO, "dd", "drop_index:dd", "drop_index", "public.orders", "ignored", 0.8, None, 7
            )
        )
        await memory.add_feedback(
            [
                FeedbackRow(REPO, "review", fingerprint="dd", source_id="review:1",
                            author="mallory", body=HOSTILE, classification="reject",
                            reason="changes requested: write load"),
                FeedbackRow(OTHER, "merge", fingerprint="cc", source_id="merge:3",
                            author="carol", classification="accept", reason="merged",
                            embedding=[1.0] + [0.0] * 383),
            ]
        )  # fmt: skip
        await memory.add_ignore(REPO, "fingerprint", "dd", "mallory")
    return {"done": done, "failed": failed, "running": running}


@pytest.fixture(scope="module")
def store_dsn(module_store: str) -> str:
    return module_store


@pytest.fixture(scope="module")
def audits(store_dsn: str) -> dict[str, int]:
    return asyncio.run(_seed(store_dsn))


@pytest.fixture(scope="module")
def app(store_dsn: str, redis_url: str, audits: dict[str, int]) -> Iterator[AppServer]:
    settings = Settings(admin_token=TOKEN, redis_url=redis_url, github_webhook_secret="s3cret")
    with AppServer(settings, store_dsn) as server:
        yield server


@pytest.fixture
def anonymous(app: AppServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=app.url, follow_redirects=False, timeout=10) as client:
        yield client


@pytest.fixture
def admin(app: AppServer) -> Iterator[httpx.Client]:
    """A client holding the session cookie, got through the login form."""
    with httpx.Client(base_url=app.url, follow_redirects=False, timeout=10) as client:
        response = client.post("/ui/login", data={"token": TOKEN, "next": "/ui/"})
        assert response.status_code == 303, response.text
        assert client.cookies.get(ADMIN_COOKIE)
        yield client


# ---------------------------------------------------------------- login and the session


def test_root_and_pages_redirect_to_login_without_a_session(anonymous: httpx.Client) -> None:
    root = anonymous.get("/")
    assert root.status_code == 302 and root.headers["location"] == "/ui/"
    for path in ("/ui/", "/ui/audits/1", "/ui/recommendations?state=closed", "/ui/memory"):
        response = anonymous.get(path)
        assert response.status_code == 303, path
        location = httpx.URL(response.headers["location"])
        assert location.path == "/ui/login"
        assert location.params["next"] == path
        assert REPO not in response.text


def test_login_form_sets_a_lax_httponly_session_cookie_and_goes_on(
    anonymous: httpx.Client,
) -> None:
    form = anonymous.get("/ui/login", params={"next": "/ui/memory"})
    assert form.status_code == 200
    assert 'name="token"' in form.text and 'value="/ui/memory"' in form.text

    wrong = anonymous.post("/ui/login", data={"token": "guess", "next": "/ui/memory"})
    assert wrong.status_code == 401
    assert "not the admin token" in wrong.text and 'name="token"' in wrong.text
    assert ADMIN_COOKIE not in wrong.headers.get("set-cookie", "")

    right = anonymous.post("/ui/login", data={"token": TOKEN, "next": "/ui/memory"})
    assert right.status_code == 303 and right.headers["location"] == "/ui/memory"
    cookie = right.headers["set-cookie"]
    assert cookie.startswith(f"{ADMIN_COOKIE}=")
    assert TOKEN not in cookie  # a random session id, never the token
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=lax" in lowered and "path=/;" in lowered
    assert "secure" not in lowered  # plain http, and no https public URL
    page = anonymous.get("/ui/memory")
    assert page.status_code == 200 and "What reviewer memory has learned" in page.text


def test_login_never_redirects_off_the_dashboard(anonymous: httpx.Client) -> None:
    for target in (
        "https://evil.example/",
        "//evil.example/ui",
        "/schema",
        "/ui\\@evil",
        "/uiother",
        "",
    ):
        response = anonymous.post("/ui/login", data={"token": TOKEN, "next": target})
        assert response.status_code == 303 and response.headers["location"] == "/ui/", target


def test_a_token_in_the_query_logs_in_once_and_leaves_the_url(anonymous: httpx.Client) -> None:
    response = anonymous.get("/ui/recommendations", params={"state": "closed", "token": TOKEN})
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/recommendations?state=closed"
    assert anonymous.cookies.get(ADMIN_COOKIE)
    assert anonymous.get(response.headers["location"]).status_code == 200

    anonymous.cookies.clear()
    refused = anonymous.get("/ui/", params={"token": "wrong"})
    assert refused.status_code == 401 and 'name="token"' in refused.text
    assert not anonymous.cookies.get(ADMIN_COOKIE)


def test_a_bearer_token_also_opens_the_pages(anonymous: httpx.Client) -> None:
    ok = anonymous.get("/ui/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and REPO in ok.text
    assert anonymous.get("/ui/", headers={"Authorization": "Bearer nope"}).status_code == 303


def test_logout_forgets_the_session(admin: httpx.Client) -> None:
    response = admin.post("/ui/logout")
    assert response.status_code == 303 and response.headers["location"] == "/ui/login"
    assert not admin.cookies.get(ADMIN_COOKIE)
    assert admin.get("/ui/").status_code == 303


def test_without_a_configured_token_the_dashboard_says_how_to_turn_it_on(
    store_dsn: str, redis_url: str
) -> None:
    settings = Settings(redis_url=redis_url, github_webhook_secret="s3cret")
    with AppServer(settings, store_dsn) as server, httpx.Client(base_url=server.url) as client:
        for path in ("/ui/", "/ui/login", f"/ui/?token={TOKEN}"):
            response = client.get(path)
            assert response.status_code == 403, path
            assert "DBARCH_ADMIN_TOKEN" in response.text and REPO not in response.text


def test_an_unreachable_store_gives_a_503_page(redis_url: str) -> None:
    settings = Settings(admin_token=TOKEN, redis_url=redis_url, github_webhook_secret="s3cret")
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere?connect_timeout=1"
    with AppServer(settings, closed) as server, httpx.Client(base_url=server.url) as client:
        response = client.get("/ui/", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=15)
    assert response.status_code == 503
    assert "The store did not answer" in response.text and "nowhere" not in response.text


def test_without_redis_login_says_so_and_the_api_still_answers(store_dsn: str) -> None:
    """Sessions live in Redis: while it is down, the dashboard cannot log in; /api can."""
    settings = Settings(
        admin_token=TOKEN,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        github_webhook_secret="s3cret",
    )
    with AppServer(settings, store_dsn) as server, httpx.Client(base_url=server.url) as client:
        login = client.post("/ui/login", data={"token": TOKEN, "next": "/ui/"}, timeout=15)
        api = client.get("/api/audits", headers={"Authorization": f"Bearer {TOKEN}"})
    assert login.status_code == 503
    assert "Redis" in login.text and "admin API" in login.text
    assert not login.cookies.get(ADMIN_COOKIE)
    assert api.status_code == 200


# ---------------------------------------------------------------- the pages


def test_overview_counts_audits_and_charts_speedups(admin: httpx.Client) -> None:
    response = admin.get("/ui/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page = response.text
    assert REPO in page and OTHER in page and TITLE in page and FAILED_TITLE in page
    for status in ("done", "failed", "running"):
        assert f'<div class="figure">1</div><div class="what">audits {status}</div>' in page
    assert '<div class="figure">1</div><div class="what"><a href="/ui/recommendations' in page
    assert "reviewer verdicts learned</a> (1 searchable)" in page
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="chart speedups"' in page
    assert "12 ms → 0.30 ms (40×)" in page  # the write statement is not a speed-up
    assert "6.00 ms → 1.50 ms (4.0×)" in page


def test_overview_filters_by_repository(admin: httpx.Client) -> None:
    page = admin.get("/ui/", params={"repository": OTHER}).text
    assert FAILED_TITLE in page and TITLE not in page
    assert "No measured speed-ups yet" in page


def test_audit_page_shows_confidence_evidence_and_escaped_citations(
    admin: httpx.Client, audits: dict[str, int]
) -> None:
    response = admin.get(f"/ui/audits/{audits['done']}")
    assert response.status_code == 200
    page = response.text
    assert TITLE in page and "alice" in page and "opened pull request #12" in page
    assert 'aria-label="confidence 91 % (bar at 80 %)"' in page
    assert 'aria-label="confidence 62 % (bar at 80 %)"' in page
    assert 'measured speedup</td><td class="num">+0.35' in page
    assert 'reviewer memory</td><td class="num">-0.04' in page
    assert "Reviewer memory moved the confidence by −0.04" in page
    assert CITATION_TRAP not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "CREATE INDEX CONCURRENTLY accounts_email_idx" in page
    for figure in ("12 ms", "0.30 ms", "40×", "2.00 ms", "2.10 ms", "6.00 ms", "1.50 ms"):
        assert f'<td class="num">{figure}</td>' in page, figure
    assert "1 candidate rejected" in page


def test_audit_without_a_report_and_unknown_audits(
    admin: httpx.Client, audits: dict[str, int]
) -> None:
    failed = admin.get(f"/ui/audits/{audits['failed']}")
    assert failed.status_code == 200
    assert FAILED_TITLE in failed.text and "stored no report" in failed.text
    missing = admin.get(f"/ui/audits/{audits['running'] + 1000}")
    assert missing.status_code == 404 and "There is no audit" in missing.text
    assert admin.get("/ui/audits/not-a-number").status_code in (400, 404)


def test_audits_history_page(admin: httpx.Client, audits: dict[str, int]) -> None:
    page = admin.get("/ui/audits").text
    order = ("running", "failed", "done")
    positions = [page.index(f'href="/ui/audits/{audits[k]}"') for k in order]
    assert positions == sorted(positions)  # newest first
    assert "dry run" in page and "bob" in page


def test_recommendations_open_and_closed(admin: httpx.Client) -> None:
    open_ = admin.get("/ui/recommendations").text
    assert "add index on accounts (email)" in open_ and "create_index:bb" in open_
    assert f'href="https://github.com/{REPO}/pull/12">#12</a>' in open_
    assert 'aria-label="confidence 82 %' in open_ and "posts" not in open_

    closed = admin.get("/ui/recommendations", params={"state": "closed"}).text
    assert f'href="https://github.com/{OTHER}/pull/3">#3</a>' in closed
    assert "drop_index:dd" in closed and "accounts (email)" not in closed

    only = admin.get("/ui/recommendations", params={"state": "merged"}).text
    assert "create_index:cc" in only and "drop_index:dd" not in only
    bad = admin.get("/ui/recommendations", params={"state": "bogus"})
    assert bad.status_code == 400 and "use one of open, closed" in bad.text


def test_memory_page_escapes_what_reviewers_wrote(admin: httpx.Client) -> None:
    response = admin.get("/ui/memory")
    assert response.status_code == 200
    page = response.text
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt; the write load" in page
    assert "changes requested: write load" in page and "mallory" in page
    assert "1 searchable" in page and "carol" in page
    assert "<code>dd</code>" in page  # the ignore


def test_the_dashboard_is_not_in_the_openapi_schema(anonymous: httpx.Client) -> None:
    schema = anonymous.get("/schema/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert paths and not [p for p in paths if p == "/" or p.startswith("/ui")]


# ---------------------------------------------------------------- Chromium


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if found := shutil.which(name):
            return found
    reason = "no chromium binary: `sudo apt-get install -y chromium` (or `make deps`)"
    if _in_ci():
        pytest.fail(f"{reason}; CI must provide it", pytrace=False)
    pytest.skip(reason)


def _run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    command = [
        binary,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={WIDTH},{HEIGHT}",
        *args,
    ]
    result = subprocess.run(command, capture_output=True, timeout=CHROMIUM_TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return result


def _screenshot(binary: str, tmp_path: Path, name: str, url: str) -> Image.Image:
    out = tmp_path / f"{name}.png"
    _run_chromium(binary, tmp_path / f"profile-{name}", f"--screenshot={out}", url)
    assert out.is_file() and out.stat().st_size > 0, f"no screenshot of {url}"
    return Image.open(out).convert("RGB")


def test_chromium_renders_the_overview_with_real_data(app: AppServer, tmp_path: Path) -> None:
    binary = _chromium()
    url = f"{app.url}/ui/?token={TOKEN}"

    dom = _run_chromium(binary, tmp_path / "profile-dom", "--dump-dom", url).stdout.decode()
    assert REPO in dom and TITLE in dom, dom[:2000]
    assert "12 ms → 0.30 ms (40×)" in dom
    assert 'class="chart speedups"' in dom and "<rect" in dom
    assert "token=" not in dom  # the token left the URL (and the form)

    blank = _screenshot(binary, tmp_path, "blank", "about:blank")
    shot = _screenshot(binary, tmp_path, "overview", url)
    assert shot.size == (WIDTH, HEIGHT)
    assert len(blank.getcolors(maxcolors=WIDTH * HEIGHT) or ()) <= 2  # what blank looks like
    colours = shot.getcolors(maxcolors=WIDTH * HEIGHT)
    assert colours is not None and len(colours) > 50, "the page looks blank"
    counts = {colour: n for n, colour in colours}
    # The chart's bars are drawn in one green: two speed-ups → hundreds of green pixels.
    assert counts.get(FAST_GREEN, 0) > 500, "no speed-up bars in the screenshot"
