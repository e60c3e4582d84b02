"""A served checkout for tests: `python -m assistant serve` of this repository over a copy of the seeds
with the hash embedder, on a free localhost port, its output in a log file."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """One `serve` process in `folder` (corpus/, index/, data/ and serve.log inside it)."""

    def __init__(self, folder: Path, **settings: str):
        self.folder = folder
        self.corpus = folder / "corpus"
        shutil.copytree(ROOT / "corpus", self.corpus)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = folder / "serve.log"
        env = {
            **os.environ,
            # This checkout's code, whatever the environment has installed.
            "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
            "ASSISTANT_EMBEDDER": "hash",
            "ASSISTANT_CORPUS_DIR": str(self.corpus),
            "ASSISTANT_INDEX_DIR": str(folder / "index"),
            "ASSISTANT_DATA_DIR": str(folder / "data"),
            "HF_HUB_OFFLINE": "1",
            **{f"ASSISTANT_{k.upper()}": v for k, v in settings.items()},
        }
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "assistant", "serve", "--port", str(self.port)],
                                         cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout_s: float = 90) -> "Service":
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.base}/api/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.3)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
