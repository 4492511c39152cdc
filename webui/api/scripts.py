"""Scripts and extensions as the API sees them: script_name / alwayson_scripts checked and matched to
what is loaded (A1111 answers 422 for unknown ones), /scripts, /script-info, /extensions.
"""
from __future__ import annotations

from typing import Any

from modules.extensions import git_repo
from modules.types import UserInputError


def _system(ctx):
    return getattr(ctx, "extensions", None)


def _runner(ctx, mode: str):
    compat = getattr(_system(ctx), "compat", None)
    return compat.runners["img2img" if mode == "img2img" else "txt2img"] if compat is not None else None


def selectable_titles(ctx, mode: str) -> list[str]:
    runner = _runner(ctx, mode)
    return [s.title for s in runner.scripts if not s.alwayson] if runner is not None else []


def alwayson_names(ctx, mode: str) -> dict[str, str]:
    """lower-case name -> the key the request carries: native extensions with a section or hooks, and
    A1111 always-on scripts (their lower-case title)."""
    system = _system(ctx)
    names: dict[str, str] = {}
    if system is not None:
        for name in system.registry.extensions():
            names[name.lower()] = name
    runner = _runner(ctx, mode)
    if runner is not None:
        for loaded in runner.scripts:
            if loaded.alwayson:
                names[loaded.key] = loaded.key
    return names


def check_scripts(ctx, body, mode: str):
    """The body with script_name and alwayson_scripts keys matched to what is loaded; 422 otherwise."""
    update: dict[str, Any] = {}
    if body.script_name:
        titles = {t.lower(): t for t in selectable_titles(ctx, mode)}
        title = titles.get(body.script_name.strip().lower())
        if title is None:
            raise UserInputError(f"script {body.script_name!r} not found", field="script_name")
        update["script_name"] = title
    if body.alwayson_scripts:
        known = alwayson_names(ctx, mode)
        matched = {}
        for name, value in body.alwayson_scripts.items():
            key = known.get(str(name).strip().lower())
            if key is None:
                raise UserInputError(f"always on script {name} not found", field="alwayson_scripts")
            if isinstance(value, dict):
                args = value.get("args", [])
                if not isinstance(args, list):
                    raise UserInputError(f"alwayson_scripts.{name}.args must be a list", field="alwayson_scripts")
                matched[key] = {"args": list(args)}
            elif isinstance(value, list):
                matched[key] = {"args": list(value)}
            else:
                raise UserInputError(f"alwayson_scripts.{name} must be an object with 'args'",
                                     field="alwayson_scripts")
        update["alwayson_scripts"] = matched
    return body.model_copy(update=update) if update else body


def scripts_list(ctx) -> dict[str, list[str]]:
    """A1111's /scripts: per tab the lower-case names of every script, selectable and always-on (A1111 lists
    both since 1.x: clients look there for "controlnet" and for the keys alwayson_scripts takes)."""
    return {tab: script_names(ctx, tab) for tab in ("txt2img", "img2img")}


def script_names(ctx, tab: str) -> list[str]:
    runner = _runner(ctx, tab)
    names = [s.title.lower() for s in runner.scripts] if runner is not None else []
    system = _system(ctx)
    # A native extension's always-on section (ControlNet's) is what an A1111 always-on script is there.
    sections = [s.extension.lower() for s in system.registry.sections(tab)] if system is not None else []
    return list(dict.fromkeys(names + sections))


def script_info(ctx) -> list[dict[str, Any]]:
    compat = getattr(_system(ctx), "compat", None)
    if compat is None:
        return []
    from webui.a1111.script_ui import script_info as info

    return info(compat)


def extensions_list(ctx) -> list[dict[str, Any]]:
    """A1111's /extensions: name, remote, branch, commit_hash, version, commit_date, enabled."""
    system = _system(ctx)
    if system is None:
        return []
    out = []
    for info in system.infos:
        repo = git_repo.repo_info(info.path)
        out.append({"name": info.name, "remote": repo.remote, "branch": repo.branch,
                    "commit_hash": repo.commit_hash, "version": info.version or repo.version,
                    "commit_date": repo.commit_date or None, "enabled": info.enabled})
    return out
