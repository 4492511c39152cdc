"""Hook points: order, a failing hook is reported and skipped, a requested extension's failure fails the job,
patches are context managers restored in reverse even when one of them breaks."""
from __future__ import annotations

import contextlib

import pytest

from modules.extensions.hooks import ExtensionHookError, HookRegistry, describe_exception


def test_hooks_run_in_order_and_a_failure_is_contained():
    hooks = HookRegistry()
    calls = []
    hooks.add("on_step", "late", lambda s: calls.append(("late", s)), order=5)
    hooks.add("on_step", "broken", lambda s: 1 / 0)
    hooks.add("on_step", "first", lambda s: calls.append(("first", s)))
    results = hooks.run("on_step", 3)
    assert calls == [("first", 3), ("late", 3)]
    assert [name for name, _ in results] == ["first", "late"]
    assert "ZeroDivisionError" in hooks.errors.of("broken")[0] and "on_step" in hooks.errors.of("broken")[0]


def test_a_requested_extension_that_fails_stops_the_job_with_its_name():
    hooks = HookRegistry()
    hooks.add("before_generation", "cn", lambda request, info: 1 / 0)
    with pytest.raises(ExtensionHookError, match="'cn' failed in before_generation: ZeroDivisionError"):
        hooks.run_filter("before_generation", "req", None, required={"cn"})


def test_run_filter_replaces_the_value_unless_none():
    hooks = HookRegistry()
    hooks.add("before_generation", "a", lambda v, info: v + "-a")
    hooks.add("before_generation", "none", lambda v, info: None)
    hooks.add("before_generation", "b", lambda v, info: v + "-b")
    assert hooks.run_filter("before_generation", "req", None) == "req-a-b"


def test_patches_enter_in_order_exit_in_reverse_and_survive_broken_ones():
    hooks = HookRegistry()
    log = []

    def patch(name):
        @contextlib.contextmanager
        def cm(pipe, request, info):
            log.append(f"enter {name}")
            try:
                yield
            finally:
                log.append(f"exit {name}")
        return cm

    class BadExit:
        def __enter__(self):
            log.append("enter bad-exit")

        def __exit__(self, *exc):
            raise RuntimeError("cannot restore")

    hooks.add("patch_pipeline", "a", patch("a"))
    hooks.add("patch_pipeline", "bad-enter", lambda *a: (_ for _ in ()).throw(ValueError("no")))
    hooks.add("patch_pipeline", "bad-exit", lambda *a: BadExit())
    hooks.add("patch_pipeline", "b", patch("b"))
    with hooks.patched("patch_pipeline", "pipe", "request", None):
        log.append("body")
    assert log == ["enter a", "enter bad-exit", "enter b", "body", "exit b", "exit a"]
    assert "ValueError" in hooks.errors.of("bad-enter")[0]
    assert "restoring" in hooks.errors.of("bad-exit")[0]


def test_patches_are_restored_when_the_body_raises():
    hooks = HookRegistry()
    state = {"patched": False}

    @contextlib.contextmanager
    def cm(*args):
        state["patched"] = True
        try:
            yield
        finally:
            state["patched"] = False

    hooks.add("patch_pipeline", "a", cm)
    with pytest.raises(KeyError):
        with hooks.patched("patch_pipeline", None, None, None):
            assert state["patched"]
            raise KeyError("boom")
    assert state["patched"] is False


def test_unknown_point_and_removal():
    hooks = HookRegistry()
    with pytest.raises(ValueError, match="unknown hook point"):
        hooks.add("on_stpe", "a", print)
    hooks.add("after_save", "a", print)
    hooks.remove_extension("a")
    assert not hooks.has("after_save")


def test_describe_exception_survives_a_raising_str():
    class Nasty(Exception):
        def __str__(self):
            raise RuntimeError("no str for you")

    assert describe_exception(Nasty()) == "Nasty: <unprintable>"


def test_run_job_wrappers_nest_first_registered_outermost_and_a_broken_one_is_bypassed():
    from modules.extensions.hooks import GenerationInfo

    hooks = HookRegistry()
    trail = []

    def outer(request, info, run):
        trail.append("outer")
        return run(request + "+outer")

    def inner(request, info, run):
        trail.append("inner")
        return None  # let the normal generation run

    def broken(request, info, run):
        raise RuntimeError("nope")

    hooks.add("run_job", "a", outer)
    hooks.add("run_job", "b", broken)
    hooks.add("run_job", "c", inner)
    info = GenerationInfo(request="req")
    assert hooks.run_wrapped("req", info, lambda r: f"generated({r})") == "generated(req+outer)"
    assert trail == ["outer", "inner"] and "nope" in hooks.errors.of("b")[0]


def test_generation_info_args_and_requested():
    from modules.extensions.hooks import GenerationInfo
    from modules.types import GenerationRequest

    request = GenerationRequest(extensions={"cn": {"args": [1, 2]}, "old": [3]})
    info = GenerationInfo(request=request)
    assert info.args("cn") == [1, 2] and info.args("old") == [3] and info.args("none") == []
    assert info.requested == {"cn", "old"}
