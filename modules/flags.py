"""Command-line flags, A1111 names. Standard library only: launch.py parses them before the venv exists."""
from __future__ import annotations

import argparse
import os
import shlex
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Sequence

DEFAULT_PORT = 7860
DEFAULT_API_ONLY_PORT = 7861


class _OneLineErrorParser(argparse.ArgumentParser):
    """Argparse prints a 20-line usage block on a typo; users need one line that names the flag."""

    def error(self, message: str):  # type: ignore[override]
        message = message.replace("unrecognized arguments:", "unknown flag:")
        self.exit(2, f"{self.prog}: error: {message} (see --help for all flags)\n")


def build_parser() -> argparse.ArgumentParser:
    """The one argument parser; `--help` prints every flag with its meaning."""
    p = _OneLineErrorParser(
        prog="launch.py",
        description="Stable Diffusion web UI on diffusers. Extra flags can also come from the "
        "COMMANDLINE_ARGS environment variable (appended to the command line, as in A1111).",
        allow_abbrev=False,
    )
    setup = p.add_argument_group("set-up")
    setup.add_argument("--skip-venv", action="store_true", help="do not create or use venv/; install into the current Python")
    setup.add_argument("--exit", action="store_true", help="install everything, then exit (CI pre-install)")
    setup.add_argument("--skip-install", action="store_true", help="do not install or check requirements")
    setup.add_argument("--skip-prepare-environment", action="store_true", help="skip venv and all installation steps")
    setup.add_argument("--skip-torch-cuda-test", action="store_true",
                       help="start on the CPU even when an NVIDIA GPU is visible but torch cannot use it")
    setup.add_argument("--no-download-sd-model", action="store_true",
                       help="on first start with no checkpoint, do not try to download SD 1.5")
    setup.add_argument("--reinstall-torch", action="store_true",
                       help="run the torch install command (TORCH_COMMAND) again, even when torch is installed")
    setup.add_argument("--reinstall-xformers", action="store_true",
                       help="with --xformers: install xformers again (matched to the installed torch, or "
                       "XFORMERS_PACKAGE)")

    dev = p.add_argument_group("device and memory (chosen automatically from the GPU; these override)")
    dev.add_argument("--use-cpu", nargs="+", default=[], metavar="TASK",
                     help="run these tasks on the CPU: all, sd, upscaler, tagger, controlnet")
    dev.add_argument("--medvram", action="store_true", help="keep only the running model on the GPU (model offload)")
    dev.add_argument("--medvram-sdxl", action="store_true", help="--medvram for SDXL models only")
    dev.add_argument("--lowvram", action="store_true", help="stream layers to the GPU one by one (sequential offload; slowest, least VRAM)")
    dev.add_argument("--xformers", action="store_true",
                     help="use xformers attention on CUDA; installed at start when missing, matched to the "
                     "installed torch (or XFORMERS_PACKAGE)")
    dev.add_argument("--opt-sdp-attention", action="store_true", help="use PyTorch scaled-dot-product attention (the default)")
    dev.add_argument("--no-half", action="store_true", help="run all models in float32")
    dev.add_argument("--no-half-vae", action="store_true", help="run the VAE in float32")
    dev.add_argument("--precision", choices=["full", "half", "autocast"], default="autocast",
                     help="full = float32, half = float16, autocast = float16 on GPUs that handle it (default)")
    dev.add_argument("--device-id", type=int, default=None, help="CUDA device index to use")

    srv = p.add_argument_group("server")
    srv.add_argument("--listen", action="store_true",
                     help="listen on 0.0.0.0 instead of 127.0.0.1: anyone who reaches this machine can use it, "
                     "so set --auth too (without --listen, requests naming another host are refused)")
    srv.add_argument("--port", type=int, default=None, help=f"port (default {DEFAULT_PORT}; {DEFAULT_API_ONLY_PORT} with --nowebui)")
    srv.add_argument("--api", action="store_true", help="serve the /sdapi/v1 HTTP API beside the UI")
    srv.add_argument("--nowebui", action="store_true", help="serve only the API (no Gradio UI)")
    srv.add_argument("--auth", default=None, metavar="USER:PASS[,USER:PASS]",
                     help="password-protect both the UI and the API (the same as --gradio-auth plus --api-auth)")
    srv.add_argument("--auth-path", default=None, metavar="FILE",
                     help="--auth with the USER:PASS entries read from FILE (one or more a line, comma-separated)")
    srv.add_argument("--gradio-auth", default=None, metavar="USER:PASS[,USER:PASS]",
                     help="password-protect the UI only (the API stays open: see --auth)")
    srv.add_argument("--gradio-auth-path", default=None, metavar="FILE", help="--gradio-auth entries read from FILE")
    srv.add_argument("--api-auth", default=None, metavar="USER:PASS[,USER:PASS]",
                     help="HTTP Basic auth on every API route only (the UI stays open: see --auth)")
    srv.add_argument("--api-auth-path", default=None, metavar="FILE", help="--api-auth entries read from FILE")
    srv.add_argument("--cors-allow-origins", default=None, metavar="ORIGIN[,ORIGIN]",
                     help="web pages at these origins (e.g. http://localhost:3000) may call the API from a browser; "
                     "other sites' pages are refused")
    srv.add_argument("--enable-insecure-extension-access", action="store_true",
                     help="allow installing extensions even with --listen")
    srv.add_argument("--autolaunch", action="store_true", help="open the UI in the system browser once started")
    srv.add_argument("--theme", choices=["light", "dark"], default=None, help="force the UI theme")

    paths = p.add_argument_group("paths (A1111 folder names inside models/)")
    paths.add_argument("--data-dir", default=None, help="folder for user data (default: the project folder)")
    paths.add_argument("--models-dir", default=None, help="models folder (default: DATA_DIR/models)")
    paths.add_argument("--ckpt", default=None, help="checkpoint to load at start")
    paths.add_argument("--ckpt-dir", default=None, help="extra folder of checkpoints")
    paths.add_argument("--vae-dir", default=None, help="VAE folder (default: models/VAE)")
    paths.add_argument("--lora-dir", default=None, help="LoRA folder (default: models/Lora)")
    paths.add_argument("--embeddings-dir", default=None, help="textual inversion folder (default: DATA_DIR/embeddings)")
    paths.add_argument("--controlnet-dir", default=None, help="ControlNet folder (default: models/ControlNet)")

    ext = p.add_argument_group("extensions")
    ext.add_argument("--disable-all-extensions", action="store_true",
                     help="load no extension at all, built-in ones included")
    ext.add_argument("--disable-extra-extensions", action="store_true",
                     help="load only the built-in extensions")

    misc = p.add_argument_group("other")
    misc.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="log verbosity")
    return p


@dataclass(frozen=True)
class Flags:
    """Parsed flags as a frozen value; field names are the flag names with '_' for '-'."""

    skip_venv: bool = False
    exit: bool = False
    skip_install: bool = False
    skip_prepare_environment: bool = False
    skip_torch_cuda_test: bool = False
    no_download_sd_model: bool = False
    reinstall_torch: bool = False
    reinstall_xformers: bool = False
    use_cpu: tuple[str, ...] = ()
    medvram: bool = False
    medvram_sdxl: bool = False
    lowvram: bool = False
    xformers: bool = False
    opt_sdp_attention: bool = False
    no_half: bool = False
    no_half_vae: bool = False
    precision: str = "autocast"
    device_id: int | None = None
    listen: bool = False
    port: int | None = None
    api: bool = False
    nowebui: bool = False
    auth: str | None = None
    auth_path: str | None = None
    gradio_auth: str | None = None
    gradio_auth_path: str | None = None
    api_auth: str | None = None
    api_auth_path: str | None = None
    cors_allow_origins: str | None = None
    enable_insecure_extension_access: bool = False
    autolaunch: bool = False
    theme: str | None = None
    data_dir: str | None = None
    models_dir: str | None = None
    ckpt: str | None = None
    ckpt_dir: str | None = None
    vae_dir: str | None = None
    lora_dir: str | None = None
    embeddings_dir: str | None = None
    controlnet_dir: str | None = None
    disable_all_extensions: bool = False
    disable_extra_extensions: bool = False
    log_level: str = "INFO"
    # Flags that extensions' preload.py added, by attribute name (read-only pairs, so Flags stays frozen).
    extension_flags: tuple[tuple[str, Any], ...] = ()

    def extension_flag(self, name: str, default: Any = None) -> Any:
        return dict(self.extension_flags).get(name, default)

    @property
    def server_port(self) -> int:
        if self.port is not None:
            return self.port
        return DEFAULT_API_ONLY_PORT if self.nowebui else DEFAULT_PORT

    @property
    def server_host(self) -> str:
        return "0.0.0.0" if self.listen else "127.0.0.1"

    @property
    def api_enabled(self) -> bool:
        return self.api or self.nowebui

    def resolved_data_dir(self, project_root: Path) -> Path:
        return Path(self.data_dir).expanduser().resolve() if self.data_dir else project_root


def full_argv(argv: Sequence[str], environ: dict[str, str] | None = None) -> list[str]:
    """argv with COMMANDLINE_ARGS appended (A1111 behaviour)."""
    env = os.environ if environ is None else environ
    return list(argv) + shlex.split(env.get("COMMANDLINE_ARGS", ""))


def parse_flags(argv: Sequence[str], environ: dict[str, str] | None = None,
                project_root: Path | None = None) -> Flags:
    """Parse argv (+ COMMANDLINE_ARGS); an unknown flag exits with a one-line error and status 2.

    With `project_root`, extensions' preload.py files add their flags first (A1111's preload), so
    `--some-extension-flag` is accepted and lands in `Flags.extension_flags`.
    """
    args = full_argv(argv, environ)
    parser = build_parser()
    added: list[str] = []
    if project_root is not None:
        from modules.preload import add_extension_flags

        added = add_extension_flags(parser, Path(project_root), args)
    ns = parser.parse_args(args)
    values = vars(ns)
    values["use_cpu"] = tuple(v.lower() for v in values.get("use_cpu") or ())
    known = {f.name for f in fields(Flags)}
    extra = tuple((name, values[name]) for name in added if name in values and name not in known)
    return Flags(**{k: v for k, v in values.items() if k in known}, extension_flags=extra)


Credential = tuple[str, str]


@dataclass(frozen=True)
class Credentials:
    """Who may use the UI and who the API, from every auth flag and file together; empty = open."""

    ui: tuple[Credential, ...] = ()
    api: tuple[Credential, ...] = ()


def parse_auth(spec: str | None, source: str = "credentials") -> list[Credential]:
    """'u:p,u2:p2' -> [(u, p), (u2, p2)]; raises ValueError naming `source` and the entry's number.

    The message never repeats the entry: a mistyped one is often the password itself.
    """
    if not spec:
        return []
    pairs = []
    for number, entry in enumerate((e.strip() for e in spec.split(",")), start=1):
        if not entry:
            continue
        pairs.append(_credential(entry, f"{source}: entry {number}"))
    return pairs


def read_auth_file(path: str, source: str) -> list[Credential]:
    """USER:PASS entries of a file, one or more a line (comma-separated); blank and '#' lines skipped."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{source} {path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{source} {path}: cannot read it ({type(exc).__name__})") from None
    pairs = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        for number, entry in enumerate((e.strip() for e in line.split(",")), start=1):
            if entry:
                pairs.append(_credential(entry, f"{source} {path}: line {line_no}, entry {number}"))
    return pairs


def _credential(entry: str, where: str) -> Credential:
    user, sep, password = entry.partition(":")
    if not sep:
        raise ValueError(f"{where} is not USER:PASS (no ':' in it)")
    if not user:
        raise ValueError(f"{where} has an empty user name (expected USER:PASS)")
    return user, password


def resolve_credentials(flags: Flags) -> Credentials:
    """All credentials of the flags and their files; raises ValueError (one line, no password) when bad."""
    both = parse_auth(flags.auth, "--auth")
    if flags.auth_path:
        both += read_auth_file(flags.auth_path, "--auth-path")
    ui = parse_auth(flags.gradio_auth, "--gradio-auth")
    if flags.gradio_auth_path:
        ui += read_auth_file(flags.gradio_auth_path, "--gradio-auth-path")
    api = parse_auth(flags.api_auth, "--api-auth")
    if flags.api_auth_path:
        api += read_auth_file(flags.api_auth_path, "--api-auth-path")
    return Credentials(ui=tuple(dict.fromkeys(ui + both)), api=tuple(dict.fromkeys(api + both)))


def allowed_origins(flags: Flags) -> tuple[str, ...]:
    """--cors-allow-origins as a tuple of origins without a trailing slash."""
    return tuple(o.strip().rstrip("/") for o in (flags.cors_allow_origins or "").split(",") if o.strip())
