"""The device is detected when first asked for (detecting imports torch), except where a GPU check must
stop the start; the memory policies are logged with it, once."""
from __future__ import annotations

import logging
import threading

import pytest

from modules.devices import DeviceInfo, DeviceProbe


def test_the_probe_detects_once_on_first_use_even_from_several_threads():
    calls, logged = [], []
    probe = DeviceProbe(lambda: calls.append(1) or DeviceInfo("cpu", "CPU"), on_detected=logged.append)
    assert not probe.detected and calls == []
    threads = [threading.Thread(target=probe.get) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1] and [d.kind for d in logged] == ["cpu"] and probe.detected
    assert probe.get() is logged[0]


def build(tmp_path, *argv):
    from modules.context import build_context
    from modules.flags import parse_flags
    from modules.paths import PROJECT_ROOT

    flags = parse_flags(["--data-dir", str(tmp_path / "data"), "--no-download-sd-model", *argv], environ={},
                        project_root=PROJECT_ROOT)
    return build_context(flags, PROJECT_ROOT)


def test_start_up_without_an_nvidia_driver_leaves_detection_to_the_first_use(tmp_path, monkeypatch, caplog):
    import modules.context as context

    monkeypatch.setattr(context, "nvidia_driver_present", lambda: False)
    monkeypatch.setattr(context, "detect_device", lambda index=None: DeviceInfo("cpu", "CPU"))
    with caplog.at_level(logging.INFO, logger="webui"):
        ctx = build(tmp_path)
        try:
            assert not ctx.device_probe.detected
            assert not any("Memory policy" in r.message for r in caplog.records)
            assert ctx.policy_for("sd1").device == "cpu"  # the first model load asks: detected now
            assert ctx.device_probe.detected
            assert sum("Memory policy for sd1" in r.message for r in caplog.records) == 1
            assert any(r.message == "Device: CPU" or r.message.startswith("Device: ") for r in caplog.records)
        finally:
            ctx.close()


def test_a_gpu_torch_cannot_use_still_stops_the_start_with_the_fix(tmp_path, monkeypatch):
    import modules.context as context

    unusable = DeviceInfo("cpu", "CPU", gpu_visible_but_unusable=True)
    monkeypatch.setattr(context, "nvidia_driver_present", lambda: True)
    monkeypatch.setattr(context, "detect_device", lambda index=None: unusable)
    with pytest.raises(context.StartupError, match="--skip-torch-cuda-test"):
        build(tmp_path)
    ctx = build(tmp_path, "--skip-torch-cuda-test")  # said so: runs on the CPU
    try:
        assert ctx.device_probe.detected and ctx.device.kind == "cpu"
    finally:
        ctx.close()
