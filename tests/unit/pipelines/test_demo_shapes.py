"""The trained demo model as the offline default: install, recognition, config, notice, native size."""
from __future__ import annotations

import pytest
from safetensors.torch import load_file, save_file

from modules.pipelines import demo
from modules.pipelines.demo import (SHAPES_EXAMPLES, SHAPES_NAME, demo_config_dir, demo_kind,
                                    demo_notice_text, ensure_demo_checkpoint, install_demo_checkpoint,
                                    is_demo_checkpoint, native_size)


def marked_copy(source, target, kind: str):
    """`source`'s tensors saved under another `webui_demo` marker."""
    save_file(load_file(str(source)), str(target), metadata={"webui_demo": kind})
    return target


@pytest.fixture()
def shipped(tmp_path, monkeypatch):
    """A stand-in for configs/demo-shapes/demo-shapes.safetensors (the tiny demo's tensors, shapes marker)."""
    tiny = ensure_demo_checkpoint(tmp_path / "tiny")
    folder = tmp_path / "repo-configs" / "demo-shapes"
    folder.mkdir(parents=True)
    fake = marked_copy(tiny, folder / "demo-shapes.safetensors", SHAPES_NAME)
    monkeypatch.setattr(demo, "SHAPES_FILE", fake)
    return fake


def test_the_first_start_installs_the_shipped_trained_file(shipped, tmp_path):
    ckpts = tmp_path / "models" / "Stable-diffusion"
    path = install_demo_checkpoint(ckpts)
    assert path == ckpts / "demo-shapes.safetensors"
    assert path.read_bytes() == shipped.read_bytes()
    assert demo_kind(path) == SHAPES_NAME and is_demo_checkpoint(path)
    assert not list(ckpts.glob(".*.tmp"))
    stamp = path.stat().st_mtime_ns
    assert install_demo_checkpoint(ckpts) == path and path.stat().st_mtime_ns == stamp  # kept as it is


def test_without_the_shipped_file_the_first_start_writes_the_random_demo(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "SHAPES_FILE", tmp_path / "absent.safetensors")
    path = install_demo_checkpoint(tmp_path / "ckpts")
    assert demo_kind(path) == "demo-tiny-sd15" and native_size(path) is None


def test_each_demo_kind_has_its_config_and_size(shipped, tmp_path, tiny_sd15_checkpoint):
    tiny = ensure_demo_checkpoint(tmp_path / "t")
    assert demo_config_dir(tiny) == demo.DEMO_CONFIG_DIR
    assert demo_config_dir(shipped) == demo.SHAPES_DIR
    assert native_size(shipped) == 128 and native_size(tiny) is None
    other = marked_copy(tiny, tmp_path / "other.safetensors", "someone-elses-model")
    assert demo_kind(other) is None and demo_kind(tiny_sd15_checkpoint.path) is None


def test_the_notice_says_what_the_trained_demo_draws():
    text = demo_notice_text(SHAPES_NAME, demo.Path("models/Stable-diffusion"))
    assert all(prompt in text for prompt in SHAPES_EXAMPLES) and len(SHAPES_EXAMPLES) == 3
    assert "circle" in text and "random weights" not in text
    assert "random weights" in demo_notice_text("demo-tiny-sd15", demo.Path("m"))


def test_the_shipped_config_folder_matches_the_loader(tmp_path):
    """When the repository ships the trained file, it loads through our loader with configs/demo-shapes."""
    if not demo.SHAPES_FILE.is_file():
        pytest.skip(f"{demo.SHAPES_FILE} is not shipped in this checkout")
    from modules.pipelines.loading import load_pipeline

    path = install_demo_checkpoint(tmp_path)
    pipe, info = load_pipeline(path)
    assert info.config_source == "demo" and info.architecture == "sd15"
    assert pipe.vae_scale_factor == 8 and pipe.unet.config.sample_size == 16  # 128 px native


@pytest.mark.parametrize("kind, size", [(SHAPES_NAME, 128), ("demo-tiny-sd15", 512)])
def test_the_ui_default_size_follows_the_demo_the_start_loads(tmp_path, shipped, kind, size, no_network):
    """build_context's first start installs the demo; the page (built before the model loads) asks the
    context for its default size."""
    from modules.context import build_context
    from modules.flags import parse_flags
    from modules.paths import PROJECT_ROOT

    if kind != SHAPES_NAME:
        shipped.unlink()  # no trained file in this checkout: the random demo, the usual 512
    flags = parse_flags(["--data-dir", str(tmp_path / "data"), "--no-download-sd-model"], environ={},
                        project_root=PROJECT_ROOT)
    ctx = build_context(flags, PROJECT_ROOT)
    try:
        assert [demo_kind(c.path) for c in ctx.checkpoints.list()] == [kind]
        assert ctx.default_image_size() == size
        assert any(("Try:" in n) == (kind == SHAPES_NAME) for n in ctx.notices if "demo model" in n)
    finally:
        ctx.close()
