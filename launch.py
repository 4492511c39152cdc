"""Start the web UI: prepare the environment, then serve. Everything real lives in modules/ and webui/."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if sys.version_info < (3, 10):
    sys.exit(f"error: Python 3.10 or newer is needed (this is {sys.version.split()[0]})")
sys.path.insert(0, str(ROOT))

from modules import install  # noqa: E402  (stdlib only)
from modules.flags import parse_flags  # noqa: E402  (stdlib only)


def main(argv: list[str]) -> int:
    flags = parse_flags(argv, project_root=ROOT)
    if not flags.skip_prepare_environment:
        # 1. Our own venv, unless the user already runs inside one or said not to.
        if not (install.in_virtualenv() or flags.skip_venv):
            python = install.ensure_venv(ROOT / "venv")
            install.reexec_in(python, [str(ROOT / "launch.py"), *argv])
        # 2. torch, then requirements.txt (skipped quickly when nothing changed).
        if not flags.skip_install:
            install.prepare_environment(ROOT, [ROOT / "requirements.txt", ROOT / "requirements-nodeps.txt"],
                                        reinstall_torch=flags.reinstall_torch)
        # 3. xformers for --xformers, matched to the installed torch (or why not, with the command to run).
        line = install.ensure_xformers(wanted=flags.xformers, reinstall=flags.reinstall_xformers,
                                       may_install=not flags.skip_install)
        if line:
            print(line, flush=True)
    warning = install.system_libraries_warning()
    if warning:
        print(warning, flush=True)
    if flags.exit:
        print("Installation done; exiting (--exit).")
        return 0
    from webui.server import serve

    return serve(flags, ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
