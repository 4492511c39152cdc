"""Drive the mounted Gradio UI over plain HTTP, as its page does (and as a hostile client could): read
/config, find an event by the element id that triggers it, post it to the queue, read its messages."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests


def file_data(path: str, name: str | None = None) -> dict:
    """A FileData payload naming a server path, the shape an upload produces."""
    return {"path": path, "url": None, "orig_name": name or path.rsplit("/", 1)[-1], "size": None,
            "mime_type": None, "is_stream": False, "meta": {"_type": "gradio.FileData"}}


@dataclass
class GradioPage:
    """One page session: its config and session hash; `http` carries cookies (a login) when given."""

    url: str
    http: requests.Session = field(default_factory=requests.Session)
    session_hash: str = field(default_factory=lambda: uuid.uuid4().hex[:11])
    config: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.config:
            response = self.http.get(self.url + "/config", timeout=30)
            response.raise_for_status()
            self.config = response.json()

    def component(self, elem_id: str) -> dict:
        found = [c for c in self.config["components"] if c.get("props", {}).get("elem_id") == elem_id]
        assert found, f"no component with elem_id {elem_id!r}"
        return found[0]

    def dependency(self, elem_id: str, event: str) -> dict:
        """The event that runs on the server: where the trigger first runs a front-end-only step (a form
        packed into one JSON value, webui/ui/packed_inputs.py), the step that follows it."""
        target = self.component(elem_id)["id"]
        deps = [d for d in self.config["dependencies"] if [target, event] in d["targets"]]
        assert deps, f"no {event} event on {elem_id!r}"
        dep = deps[0]
        if not dep.get("backend_fn", True):
            after = [d for d in self.config["dependencies"] if d.get("trigger_after") == dep["id"]]
            assert after, f"the {event} event on {elem_id!r} runs in the page only"
            dep = after[0]
        return dep

    def _packing_step(self, dep: dict) -> dict | None:
        before = [d for d in self.config["dependencies"] if d["id"] == dep.get("trigger_after")]
        return before[0] if before and not before[0].get("backend_fn", True) else None

    def default_inputs(self, dep: dict) -> list:
        """The inputs as a freshly loaded page sends them: each component's initial value (a packed form as
        the page packs it: {component id: value})."""
        by_id = {c["id"]: c for c in self.config["components"]}
        data = [by_id[i].get("props", {}).get("value") for i in dep["inputs"]]
        packing = self._packing_step(dep)
        if packing is not None:
            holder = dep["inputs"].index(packing["outputs"][0])
            data[holder] = {str(i): by_id[i].get("props", {}).get("value") for i in packing["inputs"]}
        return data

    def set_input(self, dep: dict, data: list, elem_id: str, value: Any) -> None:
        """Set the value the page would send for the widget `elem_id`, packed or not."""
        component = self.component(elem_id)["id"]
        if component in dep["inputs"]:
            data[dep["inputs"].index(component)] = value
            return
        packing = self._packing_step(dep)
        assert packing is not None and component in packing["inputs"], f"{elem_id!r} is not an input"
        data[dep["inputs"].index(packing["outputs"][0])][str(component)] = value

    def join(self, dep: dict, data: list, trigger: str | None = None) -> requests.Response:
        """POST /gradio_api/queue/join for `dep` (the page's own request); the caller checks the answer."""
        step = self._packing_step(dep) or dep  # a step after the packing one has no target of its own
        trigger_id = self.component(trigger)["id"] if trigger else step["targets"][0][0]
        body = {"data": data, "event_data": None, "fn_index": dep["id"], "trigger_id": trigger_id,
                "session_hash": self.session_hash}
        return self.http.post(self.url + "/gradio_api/queue/join", json=body, timeout=30)

    def stream(self, timeout: float = 60) -> requests.Response:
        """The session's message stream (open it right after join, keep it open while the events run)."""
        return self.http.get(self.url + "/gradio_api/queue/data", params={"session_hash": self.session_hash},
                             stream=True, timeout=timeout)

    def run(self, dep: dict, data: list, timeout: float = 60) -> dict:
        """Join and read until the event completes; returns the process_completed message (or, when the
        queue refuses the event, {"msg": "refused", "status": ..., "output": {"error": ...}})."""
        return self._run_one(dep, data, timeout)

    def run_job(self, dep: dict, data: list, timeout: float = 60) -> dict:
        """`run`, then the steps the page chains after it (`.then`: output.wire_result shows a finished
        job's result) as the page would; returns the last step's process_completed message."""
        message = self._run_one(dep, data, timeout)
        for follow_up in self.follow_ups(dep):
            if not message.get("success", False):
                break
            message = self._run_one(follow_up, self.default_inputs(follow_up), timeout)
        return message

    def follow_ups(self, dep: dict) -> list[dict]:
        """The server steps the page runs after `dep` completes, in order (a chain of `.then`)."""
        chain, current = [], dep
        while True:
            after = [d for d in self.config["dependencies"]
                     if d.get("trigger_after") == current["id"] and d.get("backend_fn", True)]
            if not after:
                return chain
            current = after[0]
            chain.append(current)

    def _run_one(self, dep: dict, data: list, timeout: float) -> dict:
        if dep.get("queue") is False:  # answered directly, outside the queue
            body = {"data": data, "fn_index": dep["id"], "session_hash": self.session_hash,
                    "trigger_id": None, "event_data": None}
            response = self.http.post(self.url + "/gradio_api/run/predict", json=body, timeout=timeout)
            return {"msg": "process_completed", "success": response.ok, "status": response.status_code,
                    "output": response.json() if response.ok else {"error": response.text}}
        joined = self.join(dep, data)
        if not joined.ok:
            return {"msg": "refused", "status": joined.status_code, "success": False,
                    "output": {"error": joined.text}}
        with self.stream(timeout) as response:
            for message in messages(response):
                if message.get("msg") == "process_completed":
                    return message
        raise AssertionError("the stream ended before the event completed")


def messages(response: requests.Response):
    """The JSON messages of an SSE stream ("data: {...}" lines)."""
    for line in response.iter_lines(decode_unicode=True):
        if line and line.startswith("data:"):
            yield json.loads(line[5:])


def output_text(message: dict) -> str:
    """Everything an event sent back, as one string to search (outputs, or the error)."""
    return json.dumps(message.get("output", {}), default=str)


def result_of(message: dict) -> Any:
    return (message.get("output") or {}).get("data")
