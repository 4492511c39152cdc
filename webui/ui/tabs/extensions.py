"""Extensions tab: Installed (enable/disable, status and errors, check for updates, update, delete),
Available (an index from a URL or the bundled list), Install from URL. Handlers are thin adapters over
modules.extensions.manage; every failure is a readable line, never a stack trace.
"""
from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import gradio as gr

from modules.extensions import git_repo, manage
from modules.extensions.manage import ExtensionActionError

log = logging.getLogger("webui.ui")

BUNDLED_INDEX = Path(__file__).resolve().parents[3] / "configs" / "extension-index.json"
# After "Apply and restart UI" answered: the server stops and starts again (seconds to a minute). Reload once
# it has been away and answers again (a reload while it is down would leave an error page); after a minute
# without seeing it away, reload anyway.
RESTART_JS = """() => {
  const started = Date.now();
  let away = false;
  const check = () => fetch(location.href, {cache: "no-store"}).then((r) => r.ok, () => false).then((up) => {
    if (!up) away = true;
    if (up && (away || Date.now() - started > 60000)) location.reload(); else setTimeout(check, 500);
  });
  setTimeout(check, 500);
}"""


def build(ctx, ui) -> None:
    with gr.Tabs(elem_id="tabs_extensions"):
        with gr.Tab("Installed", id="extensions_installed_tab", elem_id="extensions_installed_tab"):
            installed = _installed(ctx)
        with gr.Tab("Available", id="extensions_available_tab", elem_id="extensions_available_tab"):
            _available(ctx, installed)
        with gr.Tab("Install from URL", id="extensions_install_from_url_tab",
                    elem_id="extensions_install_from_url_tab"):
            _install_from_url(ctx, installed)
    # The page is built once at start-up: each page load lists what is on disk now.
    ui.on_load(lambda: installed.values(ctx), installed.outputs)


# -- Installed -------------------------------------------------------------------------------------
def _listed(ctx):
    return manage.list_extensions(ctx.paths, ctx.settings, ctx.flags)


def installed_table(ctx, updates: dict[str, str] | None = None) -> str:
    """The table of installed extensions: name, kind, version/commit, status with its errors."""
    system = getattr(ctx, "extensions", None)
    rows = []
    for info in _listed(ctx):
        loaded = system.info(info.name) if system is not None else None
        status = loaded.status if loaded is not None else ("disabled" if not info.enabled else "not loaded")
        if loaded is not None and loaded.enabled != info.enabled:
            status += " (restart to apply)"
        errors = system.error_text(info.name) if system is not None else (info.error or "")
        repo = git_repo.repo_info(info.path)
        version = info.version or repo.version or ""
        date = datetime.fromtimestamp(repo.commit_date).strftime("%Y-%m-%d") if repo.commit_date else ""
        update = (updates or {}).get(info.name, "")
        cls = "ext-failed" if status.startswith("failed") else ""
        rows.append(
            f"<tr class='{cls}' data-extension='{html.escape(info.name)}'>"
            f"<td>{html.escape(info.name)}{' <span class=ext-builtin>(built-in)</span>' if info.builtin else ''}</td>"
            f"<td>{html.escape(info.kind)}</td><td>{html.escape(version)}</td><td>{html.escape(date)}</td>"
            f"<td>{html.escape(repo.remote)}</td><td class='ext-status'>{html.escape(status)}</td>"
            f"<td class='ext-update'>{html.escape(update)}</td>"
            f"<td class='ext-error'>{html.escape(errors)}</td></tr>")
    if not rows:
        return "<div class='gen-note'>No extensions installed.</div>"
    return ("<table id='extensions_table' class='extensions-table'><tr><th>Extension</th><th>Kind</th>"
            "<th>Version</th><th>Date</th><th>URL</th><th>Status</th><th>Update</th><th>Errors</th></tr>"
            + "".join(rows) + "</table>")


@dataclass
class InstalledList:
    """The Installed tab's list widgets, refreshed together after an install or delete and on page load.
    `offered` holds the names the checkboxes show: Apply changes only those, so an extension installed
    after the page was drawn (in another tab, by another user) keeps its state."""

    table: gr.HTML
    chosen: gr.CheckboxGroup
    target: gr.Dropdown
    offered: gr.State

    @property
    def outputs(self) -> list:
        return [self.table, self.chosen, self.target, self.offered]

    @staticmethod
    def values(ctx, checked: list[str] | None = None, updates: dict[str, str] | None = None) -> list:
        """New values for `outputs`; `checked` keeps the page's ticks (default: the enabled ones)."""
        infos = _listed(ctx)
        names = [i.name for i in infos]
        value = [i.name for i in infos if i.enabled] if checked is None else [n for n in checked if n in names]
        return [installed_table(ctx, updates), gr.update(choices=names, value=value), gr.update(choices=names),
                names]


def _installed(ctx) -> InstalledList:
    names = [i.name for i in _listed(ctx)]
    enabled = [i.name for i in _listed(ctx) if i.enabled]
    with gr.Row(elem_id="extensions_installed_top"):
        apply = gr.Button("Apply and restart UI", variant="primary", elem_id="extensions_apply")
        check = gr.Button("Check for updates", elem_id="extensions_check")
    chosen = gr.CheckboxGroup(names, value=enabled, label="Enabled extensions", elem_id="extensions_enabled")
    table = gr.HTML(installed_table(ctx), elem_id="extensions_installed_html")
    with gr.Row():
        target = gr.Dropdown(names, label="Extension", elem_id="extensions_target", scale=3)
        update = gr.Button("Update", elem_id="extensions_update")
        delete = gr.Button("Delete", variant="stop", elem_id="extensions_delete")
    result = gr.HTML(elem_id="extensions_installed_result")
    offered = gr.State(names)
    listed = InstalledList(table, chosen, target, offered)

    def on_apply(selected, shown):
        shown = set(shown or [])
        unchanged = set(manage.disabled_names(ctx.settings)) - shown
        manage.set_disabled(ctx.settings, sorted(unchanged | (shown - set(selected or []))))
        restarted = _restart(ctx)
        note = ("Restarting the app to apply..." if restarted else
                "Saved. Restart the app to apply (this server cannot restart itself).")
        return installed_table(ctx), _note(note)

    def on_check():
        try:
            updates = manage.check_updates(ctx.paths, ctx.settings, ctx.flags)
        except ExtensionActionError as exc:
            return installed_table(ctx), _error(str(exc))
        behind = [n for n, s in updates.items() if s == "behind"]
        note = f"Updates available: {', '.join(behind)}." if behind else "Everything is up to date."
        return installed_table(ctx, updates), _note(note)

    def on_update(name):
        if not name:
            return installed_table(ctx), _error("Choose an extension first.")
        try:
            message = manage.update(ctx.paths, ctx.settings, ctx.flags, name)
        except ExtensionActionError as exc:
            return installed_table(ctx), _error(str(exc))
        return installed_table(ctx), _note(message)

    def on_delete(name, checked):
        if not name:
            return [_error("Choose an extension first."), *listed.values(ctx, checked)]
        try:
            message = manage.delete(ctx.paths, ctx.settings, ctx.flags, name)
        except ExtensionActionError as exc:
            return [_error(str(exc)), *listed.values(ctx, checked)]
        return [_note(message), *listed.values(ctx, checked)]

    applied = apply.click(on_apply, [chosen, offered], [table, result])
    if _can_restart(ctx):
        applied.then(None, None, None, js=RESTART_JS)  # the page comes back when the server is up again
    check.click(on_check, None, [table, result], show_progress="full")
    update.click(on_update, [target], [table, result], show_progress="full")
    delete.click(on_delete, [target, chosen], [result, *listed.outputs], show_progress="full")
    return listed


def _can_restart(ctx) -> bool:
    return getattr(ctx, "restart_handler", None) is not None


def _restart(ctx) -> bool:
    return bool(_can_restart(ctx) and ctx.request_restart())


# -- Available -------------------------------------------------------------------------------------
def _available(ctx, installed: InstalledList) -> None:
    with gr.Row():
        source = gr.Textbox(_setting(ctx, "extensions_index_url"), label="Index URL (empty: bundled list)",
                            elem_id="extensions_index_url", scale=4)
        load = gr.Button("Load from:", elem_id="extensions_load_available")
    with gr.Row():
        search = gr.Textbox(label="Search", elem_id="extensions_search", scale=3)
        hide_installed = gr.Checkbox(True, label="Hide installed", elem_id="extensions_hide_installed")
    table = gr.HTML(elem_id="extensions_available_html")
    with gr.Row():
        pick = gr.Dropdown([], label="Extension to install", elem_id="extensions_available_pick", scale=3)
        install = gr.Button("Install", variant="primary", elem_id="extensions_available_install")
    result = gr.HTML(elem_id="extensions_available_result")
    entries = gr.State([])

    def on_load(url, text, hide):
        try:
            found = manage.load_index(url.strip() or BUNDLED_INDEX)
        except ExtensionActionError as exc:
            return [], "", _error(str(exc)), gr.update(choices=[])
        shown = manage.filter_index(found, _installed_urls(ctx), text=text, hide_installed=hide)
        return found, available_table(shown), "", gr.update(choices=[e["name"] for e in shown], value=None)

    def on_filter(found, text, hide):
        shown = manage.filter_index(found or [], _installed_urls(ctx), text=text, hide_installed=hide)
        return available_table(shown), gr.update(choices=[e["name"] for e in shown])

    def on_install(found, name, checked):
        entry = next((e for e in found or [] if e["name"] == name), None)
        if entry is None:
            return [_error("Choose an extension from the list first."), *installed.values(ctx, checked)]
        return _install(ctx, installed, checked, entry["url"], "", "")

    load.click(on_load, [source, search, hide_installed], [entries, table, result, pick], show_progress="full")
    search.change(on_filter, [entries, search, hide_installed], [table, pick], show_progress="hidden")
    hide_installed.change(on_filter, [entries, search, hide_installed], [table, pick], show_progress="hidden")
    install.click(on_install, [entries, pick, installed.chosen], [result, *installed.outputs], show_progress="full")


def _setting(ctx, key: str) -> str:
    try:
        return str(ctx.settings.get(key) or "")
    except ValueError:  # not registered (no extension system in this context)
        return ""


def _installed_urls(ctx) -> set[str]:
    return {git_repo.repo_info(i.path).remote for i in _listed(ctx)} - {""}


def available_table(entries: list[dict]) -> str:
    if not entries:
        return "<div class='gen-note'>Nothing to show.</div>"
    rows = "".join(
        f"<tr><td><a href='{html.escape(e['url'])}' target='_blank' rel='noopener'>{html.escape(e['name'])}</a>"
        f"{' (installed)' if e.get('installed') else ''}</td><td>{html.escape(e['description'])}</td>"
        f"<td>{html.escape(', '.join(e['tags']))}</td></tr>" for e in entries)
    return f"<table class='extensions-table'><tr><th>Extension</th><th>Description</th><th>Tags</th></tr>{rows}</table>"


# -- Install from URL ------------------------------------------------------------------------------
def _install_from_url(ctx, installed: InstalledList) -> None:
    url = gr.Textbox(label="URL for extension's git repository", elem_id="install_url")
    branch = gr.Textbox(label="Specific branch name (empty: the default branch)", elem_id="install_branch")
    dirname = gr.Textbox(label="Local directory name (empty: from the URL)", elem_id="install_dirname")
    install = gr.Button("Install", variant="primary", elem_id="install_button")
    result = gr.HTML(elem_id="extension_install_result")
    install.click(lambda u, b, d, checked: _install(ctx, installed, checked, u, b, d),
                  [url, branch, dirname, installed.chosen], [result, *installed.outputs], show_progress="full")


def _install(ctx, installed: InstalledList, checked: list[str], url: str, branch: str, dirname: str) -> list:
    """The message, then the Installed list with the new extension ticked (so Apply keeps it enabled)."""
    checked = list(checked or [])
    if not (url or "").strip():
        return [_error("Enter the git URL of the extension."), *installed.values(ctx, checked)]
    try:
        done = manage.install_from_url(ctx.paths, ctx.flags, url.strip(), branch=branch or "", name=dirname or "")
    except ExtensionActionError as exc:
        return [_error(str(exc)), *installed.values(ctx, checked)]
    except Exception as exc:  # a surprise must still be a message, not a stuck button
        log.exception("Installing %s failed", url)
        return [_error(f"Installing failed: {exc}"), *installed.values(ctx, checked)]
    return [_note(html.escape(done.message)), *installed.values(ctx, [*checked, done.name])]


def _note(text: str) -> str:
    return f"<div class='gen-note'>{text}</div>"


def _error(text: str) -> str:
    return f"<div class='gen-error'>{html.escape(text)}</div>"
