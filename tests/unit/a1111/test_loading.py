"""Loading A1111-style extensions: scoped module names, Script registration, options, failures reported."""
from __future__ import annotations

import sys

from modules.a1111.app import A1111Compat
from modules.extensions.loader import ExtensionLoader, ExtensionRoot, discover
from modules.extensions.registry import ExtensionRegistry
from tests.unit.a1111.conftest import write_a1111_extension


def load(app_ctx, root):
    registry = ExtensionRegistry(app_ctx.settings)
    compat = A1111Compat(app_ctx, registry)
    loader = ExtensionLoader(registry, settings=app_ctx.settings, paths=app_ctx.paths, flags=app_ctx.flags,
                             app_version="0.1.0", a1111_loader=compat.load_extension)
    infos = {i.name: i for i in loader.load_all(discover([ExtensionRoot(root)]))}
    compat.finish_loading()
    return compat, registry, infos


ALWAYS_ON = """
    import gradio as gr
    from modules import scripts, shared
    from modules.processing import StableDiffusionProcessing

    BASE = scripts.basedir()

    class Upper(scripts.Script):
        def title(self):
            return "Upper Prompt"

        def show(self, is_img2img):
            return scripts.AlwaysVisible

        def process(self, p, enabled=True):
            if enabled:
                p.all_prompts = [x.upper() for x in p.all_prompts]
                p.extra_generation_params["Upper"] = True

    class Selectable(scripts.Script):
        def title(self):
            return "Only Txt2img"

        def show(self, is_img2img):
            return not is_img2img
"""


def test_scripts_register_per_tab_with_visibility(app_ctx, tmp_path):
    write_a1111_extension(tmp_path / "ext", "upper", {"upper.py": ALWAYS_ON})
    compat, registry, infos = load(app_ctx, tmp_path / "ext")
    assert infos["upper"].status == "loaded", infos["upper"].error
    txt = [(s.title, s.alwayson) for s in compat.scripts("txt2img")]
    img = [(s.title, s.alwayson) for s in compat.scripts("img2img")]
    assert txt == [("Upper Prompt", True), ("Only Txt2img", False)]
    assert img == [("Upper Prompt", True)]
    module = sys.modules["webui_a1111.upper.upper"]
    assert module.BASE == str(tmp_path / "ext" / "upper")  # scripts.basedir() during import


def test_a1111_names_are_scoped_to_extension_code(app_ctx, tmp_path):
    write_a1111_extension(tmp_path / "ext", "paths-user", {"p.py": """
        from modules import paths, shared
        import modules.devices as devices
        from modules.paths import models_path
        SEEN = (paths.models_path, models_path, type(devices.device).__name__, shared.opts.samples_format)
    """})
    load(app_ctx, tmp_path / "ext")
    seen = sys.modules["webui_a1111.paths_user.p"].SEEN
    assert seen == (str(app_ctx.paths.models_dir), str(app_ctx.paths.models_dir), "device", "png")
    # Our own modules.paths is untouched for our code.
    import modules.paths

    assert hasattr(modules.paths, "Paths") and not hasattr(modules.paths, "models_path")


def test_extension_packages_of_its_own_see_the_a1111_names(app_ctx, tmp_path):
    write_a1111_extension(tmp_path / "ext", "tagger-like", {"tagger_script.py": """
        from tagger_pkg.api import ANSWER
    """}, extra={"tagger_pkg/__init__.py": "", "tagger_pkg/api.py": """
        from modules import shared
        ANSWER = shared.opts.jpeg_quality
    """})
    compat, registry, infos = load(app_ctx, tmp_path / "ext")
    assert infos["tagger-like"].error is None, infos["tagger-like"].error
    assert sys.modules["webui_a1111.tagger_like.tagger_script"].ANSWER == 80


def test_on_ui_settings_adds_options_kept_in_config(app_ctx, tmp_path):
    write_a1111_extension(tmp_path / "ext", "opts-ext", {"o.py": """
        import gradio as gr
        from modules import script_callbacks, shared

        def settings():
            section = ("opts_ext", "Opts Ext")
            shared.opts.add_option("opts_ext_strength", shared.OptionInfo(
                0.5, "Strength", gr.Slider, {"minimum": 0, "maximum": 1}, section=section).info("how much"))
            shared.opts.add_option("opts_ext_mode", shared.OptionInfo(
                "a", "Mode", gr.Radio, {"choices": ["a", "b"]}, section=section).needs_reload_ui())

        script_callbacks.on_ui_settings(settings)
    """})
    compat, registry, infos = load(app_ctx, tmp_path / "ext")
    specs = {s.key: s for s in app_ctx.settings.specs()}
    assert specs["opts_ext_strength"].default == 0.5 and specs["opts_ext_strength"].section == "Opts Ext"
    assert specs["opts_ext_mode"].choices == ("a", "b")
    compat.opts.opts_ext_strength = 0.75
    assert app_ctx.settings.get("opts_ext_strength") == 0.75
    assert '"opts_ext_strength": 0.75' in app_ctx.paths.config_file.read_text()


def test_broken_extensions_are_reported_and_the_rest_loads(app_ctx, tmp_path):
    root = tmp_path / "ext"
    write_a1111_extension(root, "syntax", {"s.py": "def broken(:\n"})
    write_a1111_extension(root, "hijacker", {"h.py": "from modules import sd_hijack\n"})
    write_a1111_extension(root, "ldm-user", {"l.py": "import ldm.modules.attention\n"})
    write_a1111_extension(root, "raises", {"r.py": "raise RuntimeError('no weights')\n"})
    write_a1111_extension(root, "good", {"g.py": ALWAYS_ON})
    compat, registry, infos = load(app_ctx, root)
    assert infos["good"].status == "loaded"
    assert infos["syntax"].status == "failed" and "syntax error at line 1" in infos["syntax"].error
    assert "modules.sd_hijack" in infos["hijacker"].error and "not supported" in infos["hijacker"].error
    assert "ldm" in infos["ldm-user"].error and "latent-diffusion" in infos["ldm-user"].error
    assert "RuntimeError: no weights" in infos["raises"].error
    assert registry.errors.of("raises")


def test_install_py_runs_with_launch_helpers_behind_the_guard(app_ctx, tmp_path):
    write_a1111_extension(tmp_path / "ext", "installer", {"x.py": ""}, extra={"install.py": """
        import launch
        if not launch.is_installed("torch"):
            raise SystemExit("torch missing?")
        try:
            launch.run_pip("install torch==1.0.0", "old torch")
        except RuntimeError as exc:
            REFUSED = str(exc)
        open(__file__ + ".ran", "w").write(REFUSED)
    """})
    compat, registry, infos = load(app_ctx, tmp_path / "ext")
    ran = (tmp_path / "ext" / "installer" / "install.py.ran").read_text()
    assert "would replace torch" in ran and infos["installer"].error is None
