"""A throwaway PostgreSQL cluster for the tests (Debian's server binaries, `make postgres-deps`).

initdb in a temporary folder, run as an unprivileged user (`nobody` when the suite runs as root,
since PostgreSQL refuses root), listening on a free port on 127.0.0.1 and on a private socket
folder; stopped and removed afterwards. Durability is switched off: the data is thrown away.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from serving import free_port

UNPRIVILEGED = "nobody"


def server_bin() -> Path | None:
    """The newest installed server's bin folder (holding initdb, pg_ctl), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def unavailable() -> str | None:
    """Why no cluster can be started here, or None."""
    if server_bin() is None:
        return ("PostgreSQL's server is not installed and the suite does not install it: run `make postgres-deps` "
                "(Debian's postgresql package; `make test` does)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: PostgreSQL refuses to run as root"
    return None


class Cluster:
    """One running PostgreSQL server; `url` reaches its `postgres` database as the `postgres` user."""

    def __init__(self):
        self.bin = server_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="assistant-pg-"))
        self.data, self.sockets, self.log = self.dir / "data", self.dir / "sockets", self.dir / "server.log"
        self.sockets.mkdir()
        self.port = 0
        self._as_user = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, UNPRIVILEGED)
            shutil.chown(self.sockets, UNPRIVILEGED)
            self._as_user = ["runuser", "-u", UNPRIVILEGED, "--"]

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self._as_user, str(self.bin / args[0]), *args[1:]], cwd=self.dir,
                              capture_output=True, text=True, timeout=120)

    def start(self) -> "Cluster":
        done = self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                         "--locale=C", "--no-sync")
        assert done.returncode == 0, f"initdb failed: {done.stderr}"
        for _ in range(5):  # another process may take the free port first: try another
            self.port = free_port()
            options = (f"-h 127.0.0.1 -p {self.port} -k {self.sockets} -F -c max_connections=300 "
                       "-c synchronous_commit=off -c full_page_writes=off -c shared_buffers=16MB")
            done = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options, "start")
            if done.returncode == 0:
                return self
        raise AssertionError(f"PostgreSQL did not start: {done.stdout}{done.stderr}\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def new_database(self) -> str:
        """The URL of a fresh, empty database: a schema of its own that the URL puts first on the
        search path (creating a whole database takes half a second)."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        return f"{self.url}?options=-csearch_path%3D{name}"

    def stop(self) -> None:
        if self.port:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)
