"""A StreamHouse broker run as a real process, the way users run it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_MARK = "broker ready"
ADDRESS_IN_USE = "address already in use"


class BrokerProcess:
    def __init__(
        self,
        data_dir: Path,
        *extra_args: str,
        port: int | None = None,
        http_port: int | None = None,
        env: dict[str, str] | None = None,
        pass_listen: bool = True,
    ) -> None:
        self.data_dir = data_dir
        self.extra_args = list(extra_args)
        self.port = port or free_port()
        self.http_port = http_port or free_port()
        self._ports_chosen_here = port is None and http_port is None
        """Then a start that finds a port taken (by another process since it was chosen)
        may move to fresh ones."""
        self.env = env or {}
        self.pass_listen = pass_listen
        """False when the listener comes from a config file or the environment instead."""
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-broker.log"
        self._log_offset = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def command(self) -> list[str]:
        listen = ["--listen", self.bootstrap] if self.pass_listen else []
        return [
            sys.executable,
            "-m",
            "streamhouse.broker",
            *listen,
            "--http",
            f"127.0.0.1:{self.http_port}",
            "--data-dir",
            str(self.data_dir),
            *self.extra_args,
        ]

    def start(self, timeout_s: float = 30.0) -> BrokerProcess:
        for _ in range(3):
            try:
                return self._start_once(timeout_s)
            except RuntimeError as exc:
                if not (self._ports_chosen_here and ADDRESS_IN_USE in str(exc)):
                    raise
                self.port, self.http_port = free_port(), free_port()
        return self._start_once(timeout_s)

    def _start_once(self, timeout_s: float) -> BrokerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # asyncio's own loop unless the caller or the environment names another.
        env = {
            "STREAMHOUSE_EVENT_LOOP": "asyncio",
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            **self.env,
        }
        with open(self.log_path, "ab") as log_file:
            self._log_offset = self.log_path.stat().st_size
            self.proc = subprocess.Popen(
                self.command(), cwd=REPO_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if READY_MARK in self.new_log():
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited with {self.proc.returncode}:\n{self.new_log()}")
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"broker not ready after {timeout_s}s:\n{self.new_log()}")

    def new_log(self) -> str:
        """What the broker logged since the last start."""
        with open(self.log_path, "rb") as fh:
            fh.seek(self._log_offset)
            return fh.read().decode(errors="replace")

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM and wait: the graceful shutdown users get from their service manager."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(
                f"broker ignored SIGTERM for {timeout_s}s:\n{self.new_log()}"
            ) from None

    def kill(self) -> None:
        """SIGKILL: a crash at an arbitrary instant."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> BrokerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self.kill()
