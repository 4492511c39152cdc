"""`GET /sd_extra_networks/thumb?filename=...`: the preview images of the extra-networks cards (as A1111).

Only image files inside the model folders are served (the checkpoint, LoRA and embeddings folders, the
models folder, and the folders of the cards the extensions list): anything else, a path that leaves them
through `..` or a symlink, or a model file itself, is a 404. With --gradio-auth the route asks for the UI's
login, through Gradio's own login check.
"""
from __future__ import annotations

import logging
from pathlib import Path

from modules.extensions.networks import PREVIEW_SUFFIXES
from webui.ui.components.extra_networks_html import THUMB_ROUTE
from webui.ui.components.extra_networks_pages import provider_pages, safe_cards

IMAGE_SUFFIXES = tuple(sorted({"." + s.rsplit(".", 1)[-1] for s in PREVIEW_SUFFIXES}))
log = logging.getLogger("webui.ui.extra_networks")
MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
               ".gif": "image/gif"}


def model_roots(ctx) -> list[Path]:
    """The folders previews may come from, resolved."""
    paths = ctx.paths
    roots = [paths.models_dir, *paths.ckpt_dirs, paths.lora_dir, paths.embeddings_dir]
    roots += [Path(f).parent for f in paths.ckpt_files]
    for page in provider_pages(ctx):
        cards, _ = safe_cards(page)
        # Most cards share a few folders: each folder is resolved once, not once per card.
        roots += dict.fromkeys(Path(f).parent for c in cards for f in (c.path, c.preview) if f)
    resolved: list[Path] = []
    for root in dict.fromkeys(roots):
        try:
            real = Path(root).resolve()
        except OSError:
            continue
        if real not in resolved:
            resolved.append(real)
    return resolved


def allowed_preview(ctx, filename: str) -> Path | None:
    """The resolved file when `filename` is an image inside a model folder; None otherwise."""
    if not filename or "\x00" in filename:
        return None
    try:
        path = Path(filename).resolve()
    except (OSError, ValueError):
        return None
    if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
        return None
    if not any(path.is_relative_to(root) for root in model_roots(ctx)):
        return None
    return path


def _login_check(app):
    """Gradio's own login dependency, taken from the /config route of the UI mounted on `app` (every Gradio
    route that needs the login carries it); None when there is no UI."""
    from starlette.routing import Mount

    for mount in (r for r in app.router.routes if isinstance(r, Mount) and r.path == ""):
        for route in getattr(mount.app, "routes", []):
            if getattr(route, "path", None) != "/config":
                continue
            for depends in getattr(route, "dependencies", []):
                if getattr(depends.dependency, "__name__", "") == "login_check":
                    return depends.dependency
    return None


def install_preview_route(app, ctx) -> None:
    """Add the route in front of the UI mount (which answers every path); call after mounting the UI."""
    from fastapi import Depends, HTTPException
    from fastapi.responses import FileResponse

    def thumb(filename: str = ""):
        path = allowed_preview(ctx, filename)
        if path is None:
            raise HTTPException(status_code=404, detail="no such preview")
        # The URL carries the file's mtime, so a changed preview has a new URL: cache for a day.
        return FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix.lower()),
                            headers={"Cache-Control": "private, max-age=86400"})

    check = _login_check(app)
    if check is None:  # a Gradio that changed how it guards its routes: no preview rather than an open route
        log.error("extra networks: Gradio's login check not found; card previews are not served")
        return
    app.add_api_route(THUMB_ROUTE, thumb, methods=["GET"], include_in_schema=False,
                      dependencies=[Depends(check)])
    routes = app.router.routes
    routes.insert(0, routes.pop())
