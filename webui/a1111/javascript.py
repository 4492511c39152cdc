"""The page <head> for extensions: A1111's JavaScript globals, then every extension's javascript/*.js.

A1111 extension scripts expect `gradioApp()`, `onUiLoaded`, `onUiUpdate`, `onAfterUiUpdate`,
`onUiTabChange`, `onOptionsChanged`, `updateInput`, `get_uiCurrentTab` and an `opts` object with the
settings. Each file goes in its own <script> tag (as A1111 serves them), so one broken file does not
stop the others; extension CSS is appended to the page CSS.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger("webui.ui")

A1111_GLOBALS = """
(function () {
  if (window.gradioApp) return;
  const lists = {loaded: [], update: [], afterUpdate: [], tabChange: [], optionsChanged: []};
  window.gradioApp = function () {
    const apps = document.getElementsByTagName("gradio-app");
    const app = apps.length ? apps[0] : document;
    if (app !== document && !app.getElementById) app.getElementById = (id) => document.getElementById(id);
    return app.shadowRoot ? app.shadowRoot : app;
  };
  window.onUiLoaded = (cb) => lists.loaded.push(cb);
  window.onUiUpdate = (cb) => lists.update.push(cb);
  window.onAfterUiUpdate = (cb) => lists.afterUpdate.push(cb);
  window.onUiTabChange = (cb) => lists.tabChange.push(cb);
  window.onOptionsChanged = (cb) => lists.optionsChanged.push(cb);
  window.executeCallbacks = function (queue, arg) {
    for (const cb of queue) {
      try { cb(arg); } catch (e) { console.error("error running extension callback", cb, e); }
    }
  };
  window.get_uiCurrentTab = () => gradioApp().querySelector("#tabs > .tab-nav > button.selected, "
      + "#tabs button[role=tab][aria-selected=true]");
  window.get_uiCurrentTabContent = () => gradioApp().querySelector(
      "#tabs > .tabitem[id^=tab_]:not([style*='display: none'])");
  window.updateInput = function (target) {
    const e = new Event("input", {bubbles: true});
    Object.defineProperty(e, "target", {value: target});
    target.dispatchEvent(e);
  };
  window.uiElementIsVisible = (el) => !!(el && el.offsetParent !== null);
  window.opts = __OPTS__;
  let loaded = false, currentTab = null, afterTimer = null;
  const ready = () => gradioApp().querySelector("#txt2img_prompt") &&
      (document.documentElement.dataset.webuiTabsRendered || Date.now() - start > 8000);
  const start = Date.now();
  const observer = new MutationObserver((mutations) => {
    if (!loaded && ready()) { loaded = true; executeCallbacks(lists.loaded); }
    if (!loaded) return;
    executeCallbacks(lists.update, mutations);
    clearTimeout(afterTimer);
    afterTimer = setTimeout(() => executeCallbacks(lists.afterUpdate), 200);
    const tab = get_uiCurrentTab();
    if (tab && tab !== currentTab) { currentTab = tab; executeCallbacks(lists.tabChange); }
  });
  const watch = () => observer.observe(gradioApp(), {childList: true, subtree: true, attributes: true});
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", watch); else watch();
  // The tabs-rendered marker is an attribute of <html>, outside the observed tree: poll for it as well.
  const poll = setInterval(() => {
    if (loaded) { clearInterval(poll); return; }
    if (ready()) { loaded = true; clearInterval(poll); executeCallbacks(lists.loaded); }
  }, 200);
})();
"""


def _script_tag(code: str, source: str) -> str:
    # A literal </script> inside the code would end the tag early.
    safe = code.replace("</script", "<\\/script")
    return f"<script data-source={json.dumps(source)}>\n{safe}\n</script>"


def page_head(settings, javascript_files: list[Path]) -> str:
    """<script> tags: A1111 globals with `opts`, then each extension file (unreadable ones skipped)."""
    opts = json.dumps(settings.as_dict(), default=str).replace("</", "<\\/")
    parts = [_script_tag(A1111_GLOBALS.replace("__OPTS__", opts), "a1111-globals")]
    for path in javascript_files:
        try:
            code = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            log.error("Extension script %s not loaded: %s", path, exc)
            continue
        parts.append(_script_tag(code, f"{Path(path).parent.parent.name}/{Path(path).name}"))
    return "\n".join(parts)


def extension_css(css_files: list[Path]) -> str:
    out = []
    for path in css_files:
        try:
            out.append(f"/* {Path(path).parent.name}/{Path(path).name} */\n" + Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            log.error("Extension style %s not loaded: %s", path, exc)
    return "\n".join(out)
