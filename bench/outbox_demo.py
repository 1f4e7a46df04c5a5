"""Run one tree's ``dbarchitect run`` until its demo audit finished, keeping the outbox.

Usage::

    python bench/outbox_demo.py TREE DATA_DIR [--seeded SNAPSHOT] [--port N]
    python bench/outbox_demo.py TREE SNAPSHOT --seed-only

``TREE`` is a checkout of this project (its ``app`` is imported: ``PYTHONPATH=TREE``), run
with this interpreter. ``DATA_DIR`` is emptied, then ``dbarchitect run`` starts there on
embedded defaults (store, demo target, a private redis-server: ``DBARCH_REDIS_URL`` points
at a free loopback port) with no App credentials, so the demo's ``/audit`` is a dry run that
writes ``DATA_DIR/outbox``. When stdout says "Demo audit finished" the process gets SIGINT
and the command prints the elapsed seconds. Compare two outboxes with bench/outbox_diff.py.

``--seed-only`` seeds the demo shop once into ``SNAPSHOT/demo-pg18`` (its ``VACUUM
ANALYZE`` included) and stops; ``--seeded SNAPSHOT`` copies that cluster into ``DATA_DIR``
instead of seeding again, so that runs share the planner statistics (and with them the
parameter values chosen from them and every cost estimate): what still differs then comes
from timings.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

FINISHED = "Demo audit finished"


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(tree: Path, data_dir: Path, web_port: int) -> dict[str, str]:
    """The run's environment: this tree's code, embedded defaults, no App credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBARCH_")}
    env.update(
        PYTHONPATH=str(tree),
        DBARCH_DATA_DIR=str(data_dir),
        DBARCH_WEB_PORT=str(web_port),
        DBARCH_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
    )
    model = os.environ.get("DBARCH_MODEL_DIR")
    if model:
        env["DBARCH_MODEL_DIR"] = model
    return env


def seed_only(tree: Path, snapshot: Path) -> int:
    """Seed the demo shop into ``snapshot/demo-pg18`` with ``tree``'s code, then stop."""
    shutil.rmtree(snapshot, ignore_errors=True)
    snapshot.mkdir(parents=True)
    code = (
        "import sys; from pathlib import Path; import psycopg\n"
        "from app.demo.run import DATABASE, demo_server\n"
        "from app.demo.shop import seed\n"
        "server = demo_server(Path(sys.argv[1])); server.start()\n"
        "try:\n"
        "    dsn = server.create_database(DATABASE, extensions=('pg_stat_statements',))\n"
        "    with psycopg.connect(dsn, autocommit=True) as conn:\n"
        "        seed(conn)\n"
        "finally:\n"
        "    server.stop()\n"
    )
    env = environment(tree, snapshot, free_port())
    done = subprocess.run([sys.executable, "-c", code, str(snapshot)], env=env, check=False)
    return done.returncode


def run(tree: Path, data_dir: Path, *, seeded: Path | None, port: int, timeout_s: float) -> int:
    """One demo run; 0 when its audit finished and the process stopped."""
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    if seeded is not None:
        # cp -a keeps the owner: the server runs as another account when we are root.
        subprocess.run(["cp", "-a", str(seeded / "demo-pg18"), str(data_dir)], check=True)
    env = environment(tree, data_dir, port)
    started = time.monotonic()
    with (data_dir / "stdout.log").open("w") as out, (data_dir / "stderr.log").open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "run"], env=env, cwd=data_dir, stdout=out, stderr=err
        )
        finished = False
        while time.monotonic() - started < timeout_s and proc.poll() is None:
            if FINISHED in (data_dir / "stdout.log").read_text():
                finished = True
                break
            time.sleep(1)
        time.sleep(2)  # the audit job has returned; let the worker settle before stopping
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.terminate()
                proc.wait(timeout=30)
    elapsed = time.monotonic() - started
    summary = [x for x in (data_dir / "stdout.log").read_text().splitlines() if FINISHED in x]
    print(f"{data_dir}: {summary[0] if summary else 'no demo audit result'} ({elapsed:.0f} s)")
    return 0 if finished else 1


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run (or seed)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("tree", type=Path)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--seeded", type=Path, default=None)
    parser.add_argument("--seed-only", action="store_true")
    parser.add_argument("--port", type=int, default=0, help="web port (default: a free one)")
    parser.add_argument("--timeout", type=float, default=1200.0)
    args = parser.parse_args(argv)
    tree, data_dir = args.tree.resolve(), args.data_dir.resolve()
    if args.seed_only:
        return seed_only(tree, data_dir)
    seeded = args.seeded.resolve() if args.seeded else None
    return run(tree, data_dir, seeded=seeded, port=args.port or free_port(), timeout_s=args.timeout)


if __name__ == "__main__":
    sys.exit(main())
