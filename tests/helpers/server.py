"""Start the real app (`python launch.py ...`) in a subprocess for tests, and stop it cleanly."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerProcess:
    proc: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_launch(args: list[str], env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run launch.py to completion (for flags that exit) and capture its output."""
    return subprocess.run([sys.executable, str(ROOT / "launch.py"), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=_env(env))


def start_server(args: list[str], log_dir: Path, ready_path: str = "/", port: int | None = None,
                 env: dict | None = None, timeout: float = 180, pass_port: bool = True) -> ServerProcess:
    """Start `launch.py --skip-install ...` and wait until `ready_path` answers 200.

    With pass_port=False no --port is given, so the app's own default is used (and `port` must name it).
    """
    port = port or free_port()
    log_path = log_dir / f"server-{port}.log"
    fh = open(log_path, "w")
    port_args = ["--port", str(port)] if pass_port else []
    proc = subprocess.Popen([sys.executable, str(ROOT / "launch.py"), "--skip-install", *port_args, *args],
                            cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, env=_env(env))
    server = ServerProcess(proc, port, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{server.log()[-4000:]}")
        try:
            with urllib.request.urlopen(server.url + ready_path, timeout=5) as resp:
                if resp.status == 200:
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.5)
    server.stop()
    raise TimeoutError(f"server did not answer {ready_path} in {timeout}s:\n{server.log()[-4000:]}")


def _env(extra: dict | None) -> dict:
    env = dict(os.environ)
    env.pop("COMMANDLINE_ARGS", None)
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"})
    env.update(extra or {})
    return env
