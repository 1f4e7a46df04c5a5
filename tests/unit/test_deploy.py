"""The container files, read as text: Dockerfile, .dockerignore, compose.yml, .env.example."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "deploy" / "compose.yml"
ENV_EXAMPLE = ROOT / "deploy" / ".env.example"

APP_SERVICES = ("migrate", "web", "worker")
MODEL_DIR = "/opt/dbarchitect/model"
SECRET_WORDS = ("KEY", "SECRET", "TOKEN", "PASSWORD", "PASSWD", "CREDENTIAL")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def parse_dockerfile(text: str) -> list[list[Instruction]]:
    """Instructions by build stage (comments dropped, ``\\`` continuations joined)."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # comments may sit between continued lines too
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    stages: list[list[Instruction]] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        instruction = Instruction(keyword.upper(), args.strip())
        if instruction.keyword == "FROM":
            stages.append([])
        assert stages, f"{instruction.keyword} before the first FROM"
        stages[-1].append(instruction)
    return stages


def env_pairs(args: str) -> dict[str, str]:
    """``ENV A=1 B="two"`` (the key=value form; the legacy ``ENV A 1`` is rejected)."""
    pairs = {}
    for token in shlex.split(args):
        key, sep, value = token.partition("=")
        assert sep, f"ENV {args!r}: use the KEY=value form"
        pairs[key] = value
    return pairs


def image_ref(from_args: str) -> tuple[str, str]:
    """(image, tag) of ``FROM [--platform=…] image[:tag] [AS name]``."""
    words = [word for word in from_args.split() if not word.startswith("--")]
    image = words[0]
    assert "$" not in image, f"FROM {image}: spell the image out (the checks cannot see ARGs)"
    name, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    return name, tag


@pytest.fixture(scope="module")
def stages() -> list[list[Instruction]]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final(stages: list[list[Instruction]]) -> list[Instruction]:
    return stages[-1]


def _all(stage: list[Instruction], keyword: str) -> list[str]:
    return [i.args for i in stage if i.keyword == keyword]


def _final_env(final: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in _all(final, "ENV"):
        env.update(env_pairs(args))
    return env


# ---------------------------------------------------------------- Dockerfile


def test_parser_splits_stages_and_joins_continuations() -> None:
    text = "FROM a:1 AS b\n# c\nRUN x \\\n  # inside\n  && y\nFROM d:2\nUSER 5\n"
    stages = parse_dockerfile(text)
    assert [[i.keyword for i in stage] for stage in stages] == [["FROM", "RUN"], ["FROM", "USER"]]
    assert stages[0][1].args == "x && y"
    assert image_ref("--platform=linux/amd64 reg.io:5000/a/b:1.2 AS x") == (
        "reg.io:5000/a/b",
        "1.2",
    )
    assert image_ref("python") == ("python", "")


def test_multi_stage_on_one_pinned_base(stages: list[list[Instruction]]) -> None:
    assert len(stages) >= 2
    refs = [image_ref(stage[0].args) for stage in stages]
    for name, tag in refs:
        assert tag, f"{name}: pin a tag"
        assert tag != "latest" and "@" not in name, f"{name}:{tag}: pin a version, not latest"
    # The venv is copied across stages: its interpreter path must be the same in both.
    assert refs[0] == refs[-1]
    assert refs[-1][0] == "python" and refs[-1][1].startswith("3.11-slim")


def test_runs_as_non_root_10001(final: list[Instruction]) -> None:
    users = _all(final, "USER")
    assert users, "the final stage must switch to a non-root USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user in ("10001", "dbarchitect")
    # USER comes after everything that needs root (package installs, useradd).
    keywords = [i.keyword for i in final]
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")
    (adduser,) = (args for args in _all(final, "RUN") if "useradd" in args)
    assert "--uid 10001" in adduser and "dbarchitect" in adduser


def test_healthcheck_asks_healthz_with_python(final: list[Instruction]) -> None:
    (check,) = _all(final, "HEALTHCHECK")
    options, _, command = check.partition("CMD ")
    assert "--interval=" in options and "--timeout=" in options
    argv = json.loads(command)  # exec form
    assert argv[:2] == ["python", "-c"]
    assert "/healthz" in argv[2] and "127.0.0.1" in argv[2]
    compile(argv[2], "<healthcheck>", "exec")
    assert "8000" in _all(final, "EXPOSE")


def test_default_command_is_serve_in_exec_form(final: list[Instruction]) -> None:
    (cmd,) = _all(final, "CMD")
    assert json.loads(cmd) == ["dbarchitect", "serve"]
    # No ENTRYPOINT: `docker run IMAGE dbarchitect worker` runs the worker from the same image.
    assert not _all(final, "ENTRYPOINT")


def test_runtime_environment(final: list[Instruction]) -> None:
    env = _final_env(final)
    assert env["DBARCH_MODEL_DIR"] == MODEL_DIR
    assert env["DBARCH_WEB_HOST"] == "0.0.0.0"  # noqa: S104 - a container listens on all
    assert env["DBARCH_LOG_FORMAT"] == "json"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"].startswith("/opt/venv/bin:")
    # The image's values are valid settings.
    settings = Settings(
        **{k[len("DBARCH_") :].lower(): v for k, v in env.items() if "DBARCH_" in k}
    )
    assert settings.embedding_model_dir == Path(MODEL_DIR)


def test_no_secrets_in_the_image(stages: list[list[Instruction]]) -> None:
    for stage in stages:
        for i in stage:
            if i.keyword == "ARG":
                names = [i.args.partition("=")[0]]
            elif i.keyword == "ENV":
                names = list(env_pairs(i.args))
            else:
                continue
            for name in names:
                assert not any(word in name.upper() for word in SECRET_WORDS), (
                    f"{i.keyword} {name}: secrets are given at run time, never built in"
                )


def test_model_is_provisioned_at_build_time(stages: list[list[Instruction]]) -> None:
    builder, final = stages[0], stages[-1]
    runs = " ".join(_all(builder, "RUN"))
    assert f"dbarchitect model provision --dir {MODEL_DIR}" in runs
    # A regular install (the wheel carries migrations/), never an editable one.
    assert re.search(r"pip install \.(\s|$)", runs)
    assert "-e ." not in runs and "--editable" not in runs
    copies = _all(final, "COPY")
    assert f"--from=builder {MODEL_DIR} {MODEL_DIR}" in copies
    assert "--from=builder /opt/venv /opt/venv" in copies


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path (or a parent of it) decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern.lstrip("!").rstrip("/")
        globs = [glob, glob.removeprefix("**/")]
        if any(fnmatch.fnmatchcase(p, g) for p in prefixes for g in globs):
            ignored = not negate
    return ignored


def test_build_context_has_what_the_dockerfile_copies(stages: list[list[Instruction]]) -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = [
        src
        for stage in stages
        for args in _all(stage, "COPY")
        if not args.startswith("--from")
        for src in args.split()[:-1]
    ]
    assert sources
    for src in sources:
        assert (ROOT / src).exists(), f"COPY {src}: not in the checkout"
        assert not _ignored(src, patterns), f"COPY {src}: excluded by .dockerignore"
    for private in (".env", "deploy/.env", ".git/config", ".dbarchitect/x", ".venv/bin/python"):
        assert _ignored(private, patterns), f"{private} would be sent to the Docker daemon"
    assert _ignored("app/__pycache__/cli.cpython-311.pyc", patterns)


# ---------------------------------------------------------------- compose


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _conditions(service: dict[str, Any]) -> dict[str, str]:
    return {name: spec["condition"] for name, spec in service["depends_on"].items()}


def test_compose_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "web", "worker"}
    assert services["postgres"]["image"].startswith("pgvector/pgvector:pg")
    assert services["redis"]["image"] == "redis:7-alpine"
    for name, service in services.items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image's tag"


def test_compose_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    # web keeps the image's HEALTHCHECK; the others open no web port.
    assert "healthcheck" not in services["web"]
    assert services["worker"]["healthcheck"]["test"] == ["CMD", "dbarchitect", "worker", "--check"]
    assert services["migrate"]["healthcheck"] == {"disable": True}
    for name in ("postgres", "redis"):
        assert services[name]["volumes"], f"{name}: keep its data in a volume"


def test_compose_app_services_share_one_image(compose: dict[str, Any]) -> None:
    services = compose["services"]
    commands = {name: services[name]["command"] for name in APP_SERVICES}
    assert commands == {
        "migrate": ["dbarchitect", "store", "upgrade"],
        "web": ["dbarchitect", "serve"],
        "worker": ["dbarchitect", "worker"],
    }
    assert len({services[name]["image"] for name in APP_SERVICES}) == 1
    for name in APP_SERVICES:
        build = services[name]["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
        assert services[name]["env_file"] == ".env"


def test_compose_start_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert _conditions(services["migrate"]) == {"postgres": "service_healthy"}
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker"):
        assert _conditions(services[name]) == {
            "postgres": "service_healthy",
            "redis": "service_healthy",
            "migrate": "service_completed_successfully",
        }
    assert services["web"]["ports"][0].endswith(":8000")
    assert "ports" not in services["worker"]
    assert "ports" not in services["postgres"] and "ports" not in services["redis"]


# ---------------------------------------------------------------- .env.example


def _documented(text: str) -> dict[str, str | None]:
    """Variable → its value when set (None when only shown, commented out)."""
    found: dict[str, str | None] = {}
    for line in text.splitlines():
        match = re.match(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            value = match.group(3)
            if len(value) >= 2 and value[0] == value[-1] == "'":
                value = value[1:-1]
            found[match.group(2)] = None if match.group(1) else value
    return found


def _interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}``, innermost first."""
    pattern = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?:(:-|:\?)([^${}]*))?\}")
    while True:
        match = pattern.search(text)
        if match is None:
            return text
        name, op, arg = match.groups()
        value = env.get(name, "")
        if not value and op == ":-":
            value = arg
        elif not value and op == ":?":
            raise ValueError(f"{name}: {arg}")
        text = text[: match.start()] + value + text[match.end() :]


def test_env_example_documents_every_setting() -> None:
    documented = _documented(ENV_EXAMPLE.read_text())
    missing = [
        f"DBARCH_{name.upper()}"
        for name in Settings.model_fields
        if f"DBARCH_{name.upper()}" not in documented
    ]
    assert not missing, f"add these to deploy/.env.example with a line of explanation: {missing}"
    variables = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", COMPOSE.read_text()))
    assert variables <= set(documented), variables - set(documented)


def test_env_example_as_given_makes_valid_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    values = {k: v for k, v in _documented(ENV_EXAMPLE.read_text()).items() if v is not None}
    assert set(values) == {"POSTGRES_PASSWORD"}, "only placeholders that are safe to run with"
    with pytest.raises(ValueError, match="POSTGRES_PASSWORD"):
        _interpolate(COMPOSE.read_text(), {})
    compose = yaml.safe_load(_interpolate(COMPOSE.read_text(), values))
    env = compose["services"]["worker"]["environment"]
    store = conninfo_to_dict(env["DBARCH_STORE_DSN"])
    assert store["host"] == "postgres" and store["password"] == values["POSTGRES_PASSWORD"]
    assert store["dbname"] == compose["services"]["postgres"]["environment"]["POSTGRES_DB"]
    assert env["DBARCH_REDIS_URL"] == "redis://redis:6379/0"
    assert compose["services"]["web"]["ports"] == ["127.0.0.1:8000:8000"]
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DBARCH_DATA_DIR", str(tmp_path))  # no github-app.json from a setup run
    settings = Settings()
    assert settings.store_dsn is not None and not settings.has_app_credentials


def test_env_example_examples_are_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Uncommenting any example line gives a value the settings accept."""
    examples = re.findall(r"^#\s*(DBARCH_[A-Z0-9_]+)=(.*)$", ENV_EXAMPLE.read_text(), re.M)
    known = {f"DBARCH_{name.upper()}" for name in Settings.model_fields}
    for key, raw in examples:
        if key not in known:
            continue  # a setting another part of the app adds (metrics, setup flow)
        value = raw[1:-1] if raw.startswith("'") and raw.endswith("'") else raw
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.has_app_credentials and settings.github_private_key is not None
    pem = settings.github_private_key.get_secret_value().splitlines()
    assert pem[0] == "-----BEGIN RSA PRIVATE KEY-----" and len(pem) == 3
    assert set(settings.targets) == {"shop"}
