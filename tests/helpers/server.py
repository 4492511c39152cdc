"""Start the real app (`python launch.py ...`) in a subprocess for tests, and stop it cleanly."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
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

    def stop(self, grace: float = 8) -> None:
        """Ctrl+C, as a user stops it; killed after `grace` s (no test checks anything after a stop, and on
        a loaded box a clean exit took 15-40 s of every module's teardown)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=grace)
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
    seeded = seed_demo_checkpoint(args)
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
                    if seeded is not None:
                        keep_demo_checkpoint(seeded)
                    wait_first_model(server)
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.5)
    server.stop()
    raise TimeoutError(f"server did not answer {ready_path} in {timeout}s:\n{server.log()[-4000:]}")


def wait_first_model(server: ServerProcess, timeout: float = 300) -> None:
    """The page answers before the first model has loaded (the worker imports diffusers then): wait for the
    load to end, so a test's first generation does not spend its own timeout behind it. A server that
    cannot say (auth in front of the route, an exited process) is left as it is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.proc.poll() is None:
        try:
            with urllib.request.urlopen(server.url + "/internal/model-ready", timeout=10) as resp:
                if json.loads(resp.read()).get("ready"):
                    return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, ValueError):
            pass
        time.sleep(0.2)


def _demo_cache() -> Path:
    """Where one copy of the demo checkpoint is kept between server starts (and test runs): the file is
    byte-identical for the same torch and demo code (modules/pipelines/demo.py), so that is the key."""
    import hashlib
    from importlib.metadata import version

    key = hashlib.sha256(version("torch").encode())
    sources = [ROOT / "modules" / "pipelines" / "demo.py", *(ROOT / "configs" / "demo-tiny").rglob("*")]
    for path in sorted(sources):
        if path.is_file():
            key.update(path.read_bytes())
    folder = Path(tempfile.gettempdir()) / "webui-tests-demo" / key.hexdigest()[:16]
    return folder / "demo-tiny-sd15.safetensors"


def seed_demo_checkpoint(args: list[str]) -> Path | None:
    """Before a start on a data dir with no checkpoint: put the cached demo checkpoint where the app would
    write it (building and writing it costs 2-6 s of every start). Returns the file the app uses, or None
    when the app picks its checkpoint some other way (--ckpt, --ckpt-dir) or already has one.

    The app treats the copy as its own demo file (the marker is in the file), notice included."""
    # Without --no-download-sd-model the test is about the first start itself: leave it as a user has it.
    if "--no-download-sd-model" not in args or "--data-dir" not in args or "--ckpt" in args \
            or "--ckpt-dir" in args:
        return None
    return seed_demo_into(Path(args[args.index("--data-dir") + 1]))


def seed_demo_into(data_dir: Path) -> Path | None:
    """The cached demo checkpoint copied into data_dir's models/Stable-diffusion when that holds no
    checkpoint; returns where the app finds (or will write) it, None when it has checkpoints already."""
    folder = data_dir / "models" / "Stable-diffusion"
    if folder.is_dir() and any(p.suffix in (".safetensors", ".ckpt") for p in folder.rglob("*")):
        return None
    target = folder / "demo-tiny-sd15.safetensors"
    cached = _demo_cache()
    if not cached.is_file():
        # Built here, not left to the app's first start: that installs the trained demo-shapes model when
        # the repository ships it, and the tests' ControlNets and sizes are made for the tiny one.
        from modules.pipelines.demo import ensure_demo_checkpoint

        ensure_demo_checkpoint(cached.parent)  # atomic: other test runs share the cache
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cached, target)
    return target


def keep_demo_checkpoint(written: Path) -> None:
    """After a start that wrote the demo checkpoint itself: keep a copy for the next starts."""
    cached = _demo_cache()
    if cached.is_file() or not written.is_file():
        return
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")  # atomic: other test runs share the cache
    shutil.copyfile(written, tmp)
    os.replace(tmp, cached)


def _env(extra: dict | None) -> dict:
    env = dict(os.environ)
    env.pop("COMMANDLINE_ARGS", None)
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"})
    env.update(extra or {})
    return env
