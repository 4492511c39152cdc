"""The page-load script handed to mount_gradio_app: the --theme flag, A1111's keyboard shortcuts, and every
tab rendered at load so A1111's element ids exist before any tab is opened.

Gradio 6 mounts a tab's children only when the tab is first selected, and this Gradio build ignores
`gr.Tab(render_children=True)` in the browser. User CSS, user scripts and A1111 extensions look ids up right
after load (`#tab_img2img`, `#img2img_prompt textarea`, ...), so the script selects every tab of each
gr.Tabs once and then the one that was selected, all in one task: the browser never paints the other tabs,
and a select handler on a gr.Tab sees only the tab that ends up selected.
"""
from __future__ import annotations

import json

import gradio as gr

# Theme first (so a forced theme shows on the first paint), then A1111's keys (Ctrl+Enter generates, Esc
# interrupts, each on the tab that is visible), then the tabs.
JS_TEMPLATE = """
() => {
  const theme = __THEME__;
  if (theme === "dark") document.body.classList.add("dark");
  if (theme === "light") document.body.classList.remove("dark");
  const visibleTab = () => ["txt2img", "img2img"].find((t) => {
    const el = document.getElementById("tab_" + t);
    return el && el.offsetParent !== null;
  });
  document.addEventListener("keydown", (e) => {
    const tab = visibleTab();
    if (!tab) return;
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      document.getElementById(tab + "_generate")?.click();
    } else if (e.key === "Escape" && document.querySelector("#" + tab + "_progress .progress-text")) {
      document.getElementById(tab + "_interrupt")?.click();
    }
  });
  // After the visible tab has settled (so it is not slowed down), each group's tabs are selected in turn;
  // inner groups get their buttons once their outer tab is rendered, so this polls briefly.
  const groups = __TAB_GROUPS__;
  const pending = new Set(groups.keys());
  const started = Date.now();
  let renderStarted = started;
  const idle = (fn) => (window.requestIdleCallback
    ? requestIdleCallback(fn, {timeout: 1000}) : setTimeout(fn, 50));
  const renderTabs = () => {
    for (const index of [...pending]) {
      const buttons = groups[index].map((id) => document.getElementById(id + "-button"));
      if (buttons.some((b) => !b)) continue;
      pending.delete(index);
      const current = buttons.find((b) => b.getAttribute("aria-selected") === "true") || buttons[0];
      for (const b of buttons) if (b !== current) b.click();
      current.click();
    }
    if (pending.size && Date.now() - renderStarted < 30000) idle(renderTabs);
    else document.documentElement.dataset.webuiTabsRendered = pending.size ? "partial" : "all";
  };
  // Settled: Generate visible, the first tab's late element present and the DOM size steady. The cap is
  // long: on a loaded box the first tab takes over 5 s, and rendering every tab alongside it (as a 5 s cap
  // did) kept Generate hidden until all tabs were built (34-48 s at load average 15).
  let lastCount = -1;
  const whenSettled = () => {
    const count = document.getElementsByTagName("*").length;
    const generate = document.getElementById(__FIRST_VISIBLE__);
    const busy = count !== lastCount || !document.getElementById(__FIRST_READY__)
      || !generate || generate.offsetParent === null;
    if (busy && Date.now() - started < 60000) {
      lastCount = count;
      setTimeout(whenSettled, 100);
    } else {
      renderStarted = Date.now();
      idle(renderTabs);
    }
  };
  whenSettled();
}
"""


# An element of the first tab that appears late (Gradio mounts the gallery after the buttons), and the one a
# user waits for.
FIRST_READY = "txt2img_gallery"
FIRST_VISIBLE = "txt2img_generate"


def tab_groups(blocks: gr.Blocks) -> list[list[str]]:
    """elem_ids of the tabs of every gr.Tabs on the page, outer groups before the groups inside them."""
    groups: list[list[str]] = []

    def walk(block) -> None:
        children = getattr(block, "children", None) or []
        if isinstance(block, gr.Tabs):
            ids = [c.elem_id for c in children
                   if isinstance(c, gr.Tab) and c.elem_id and c.visible is not False]
            if len(ids) > 1:
                groups.append(ids)
        for child in children:
            walk(child)

    walk(blocks)
    return groups


def page_js(theme: str | None, blocks: gr.Blocks) -> str:
    return (JS_TEMPLATE.replace("__THEME__", json.dumps(theme))
            .replace("__TAB_GROUPS__", json.dumps(tab_groups(blocks)))
            .replace("__FIRST_READY__", json.dumps(FIRST_READY))
            .replace("__FIRST_VISIBLE__", json.dumps(FIRST_VISIBLE)))
