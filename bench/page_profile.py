"""Where the page's renderer CPU goes: a V8 CPU profile of one page load (Chrome DevTools Protocol
Profiler, through Playwright's CDP session) until Generate is visible, summed per function.

Gradio 6.31's front end builds its whole component tree at load, in every tab, shown or not; two steps in it
walk every component once per event target (find_attached_events: each node filters all dependencies;
set_event_args -> get_state: each target searches the tree from the root), through Svelte's reactive
proxies. Their cost grows with components x event targets, so the summary names them first.
"""
from __future__ import annotations

import collections
import json
from pathlib import Path

# Gradio front-end functions (names survive minification) whose inclusive time the summary shows first.
NAMED = ("find_attached_events", "set_event_args", "get_state", "postprocess", "create_node", "rerender",
         "reload", "register_component")


def profile_load(context, url: str, selector: str, out: Path | None = None) -> dict:
    """Load `url` in a new page of `context` with the V8 sampling profiler on until `selector` is visible;
    returns the raw profile (also written to `out`, which Chrome's DevTools can open)."""
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Profiler.enable")
    cdp.send("Profiler.setSamplingInterval", {"interval": 500})  # microseconds
    cdp.send("Profiler.start")
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector(selector, state="visible", timeout=120_000)
    profile = cdp.send("Profiler.stop")["profile"]
    if out is not None:
        out.write_text(json.dumps(profile))
    page.close()
    return profile


def summarize(profile: dict, top: int = 12) -> list[str]:
    """Lines: total sampled ms (less idle), inclusive ms of the NAMED functions, then the top self times."""
    nodes = {n["id"]: n for n in profile["nodes"]}
    parent = {child: n["id"] for n in profile["nodes"] for child in n.get("children", [])}

    def name(node_id: int) -> str:
        frame = nodes[node_id]["callFrame"]
        source = frame["url"].rsplit("/", 1)[-1]
        return f"{frame['functionName'] or '(anonymous)'} {source}".strip()

    stacks: dict[int, frozenset[str]] = {}

    def stack(node_id: int) -> frozenset[str]:
        # Each function counts once per sample however deep it recurses (traverse, Z).
        if node_id not in stacks:
            names, current = set(), node_id
            while current is not None:
                names.add(nodes[current]["callFrame"]["functionName"])
                current = parent.get(current)
            stacks[node_id] = frozenset(names)
        return stacks[node_id]

    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    busy = 0
    for sample, delta in zip(profile["samples"], profile["timeDeltas"]):
        if nodes[sample]["callFrame"]["functionName"] == "(idle)":
            continue
        busy += delta
        own[name(sample)] += delta
        for function in stack(sample):
            inclusive[function] += delta
    lines = [f"  renderer main thread busy   {busy / 1000:7.0f} ms (sampled, profiler on)"]
    for function in NAMED:
        if inclusive[function]:
            share = 100 * inclusive[function] / busy
            lines.append(f"    {function:26s}{inclusive[function] / 1000:7.0f} ms  {share:3.0f}%")
    lines.append("  top self time:")
    for label, micros in own.most_common(top):
        lines.append(f"    {micros / 1000:7.0f} ms  {label}")
    return lines
