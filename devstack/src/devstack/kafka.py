"""Apache Kafka in KRaft mode (one combined broker/controller), assembled from pinned Maven Central jars."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

from devstack.downloads import MAVEN_CENTRAL, fetch
from devstack.java import java_bin
from devstack.paths import cache_dir, data_dir
from devstack.process import ManagedProcess, ProcessServer, StackError, free_port, port_open, progress

LOCK_FILE = Path(__file__).with_name("locks") / "kafka-jars.txt"
HEAP = os.environ.get("THB_KAFKA_HEAP", "512m")


def _locked_jars() -> list[tuple[str, str, str, str]]:
    rows = []
    for line in LOCK_FILE.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        coordinate, sha256 = line.split()
        group, artifact, version = coordinate.split(":")
        rows.append((group, artifact, version, sha256))
    return rows


def install() -> Path:
    """Download every locked jar (cached, checksum-verified) and return the classpath folder."""
    libs = cache_dir() / "kafka-libs"
    libs.mkdir(parents=True, exist_ok=True)
    for group, artifact, version, sha256 in _locked_jars():
        name = f"{artifact}-{version}.jar"
        url = f"{MAVEN_CENTRAL}/{group.replace('.', '/')}/{artifact}/{version}/{name}"
        link = libs / name
        if not link.exists():
            source = fetch(url, name, sha256)
            link.symlink_to(source)
    return libs


class KafkaServer(ProcessServer):
    name = "kafka"
    stop_timeout = 30.0

    def __init__(self, port: int | None = None, data: Path | None = None) -> None:
        self.port = port or free_port()
        self.controller_port = free_port()
        self.data = data or data_dir("kafka")
        self.process: ManagedProcess | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _properties(self) -> Path:
        path = self.data / "server.properties"
        # Single-broker settings: replication factor 1 for internal topics, no initial rebalance delay.
        path.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"log.dirs={self.data / 'logs'}",
                    "num.partitions=3",
                    "offsets.topic.replication.factor=1",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=false",
                    # Flush on every message so an acknowledged event survives a broker crash (kill -9).
                    "log.flush.interval.messages=1",
                ]
            )
            + "\n"
        )
        return path

    def start(self) -> None:
        libs = install()
        classpath = f"{libs}/*"
        properties = self._properties()
        if not (self.data / "logs" / "meta.properties").exists():
            cluster_id = str(uuid.UUID(bytes=uuid.uuid4().bytes))
            # StorageTool wants a base64 cluster id; Kafka's own random-uuid prints one.
            cluster_id = subprocess.run(
                [java_bin(), "-Xmx128m", "-cp", classpath, "kafka.tools.StorageTool", "random-uuid"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            result = subprocess.run(
                [
                    java_bin(),
                    "-Xmx256m",
                    "-cp",
                    classpath,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    cluster_id,
                    "-c",
                    str(properties),
                ],
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                raise StackError(f"formatting Kafka storage failed:\n{result.stdout}\n{result.stderr}")
        progress(f"starting Kafka on {self.bootstrap}")
        self.process = ManagedProcess(
            "kafka",
            [
                java_bin(),
                f"-Xmx{HEAP}",
                f"-Xms{HEAP}",
                "-XX:+UseG1GC",
                "-cp",
                classpath,
                "kafka.Kafka",
                str(properties),
            ],
            self.data / "kafka.log",
        )
        self.process.start()
        self.process.wait_until(lambda: port_open(self.port), timeout=90, what="listening")

    def env(self) -> dict[str, str]:
        return {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap}
