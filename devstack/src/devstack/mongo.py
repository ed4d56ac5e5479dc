"""The MongoDB-wire-compatible server for local runs and tests (SecantusDB, chosen in docs/decisions.md).

Production runs MongoDB; the code only uses what a standalone MongoDB 7 offers.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from devstack.paths import data_dir
from devstack.process import ManagedProcess, ProcessServer, StackError, free_port, progress


def _ping(uri: str) -> bool:
    from pymongo import MongoClient

    client: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=500)
    try:
        client.admin.command("ping")
        return True
    finally:
        client.close()


class MongoServer(ProcessServer):
    name = "mongo"

    def __init__(self, port: int | None = None, data: Path | None = None) -> None:
        self.port = port or free_port()
        self.data = data or data_dir("mongo")
        self.process: ManagedProcess | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def start(self) -> None:
        launcher = shutil.which("secantusd-py", path=str(Path(sys.executable).parent))
        if launcher is None:
            raise StackError("secantusd-py not found in the virtualenv: run `make install` first")
        progress(f"starting the Mongo-wire server (SecantusDB) on {self.uri}")
        self.process = ManagedProcess(
            "mongo",
            [
                launcher,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--standalone",
                # Each commit is synced to disk so an accepted write survives a crash of the server.
                "--sync-on-commit",
                "--storage-path",
                str(self.data / "db"),
                "--log-level",
                "WARNING",
            ],
            self.data / "mongo.log",
        )
        self.process.start()
        self.process.wait_until(lambda: _ping(self.uri), timeout=60, what="answering ping")

    def env(self) -> dict[str, str]:
        return {"MONGODB_URI": self.uri}
