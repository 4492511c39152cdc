"""A1111-style extensions written the way real ones are (`from modules import scripts, shared`, `import
gradio as gr` with Gradio 3 calls, javascript/ with onUiLoaded + gradioApp()), for the browser and API tests.
Each entry is {relative path: source}; tests make each a git repository and clone it into extensions/."""
from __future__ import annotations

# An always-on script: rewrites p.all_prompts and adds an extra generation parameter.
UPPERCASE = {"scripts/uppercase.py": '''
    import gradio as gr
    from modules import scripts


    class UppercaseScript(scripts.Script):
        def title(self):
            return "Uppercase"

        def show(self, is_img2img):
            return scripts.AlwaysVisible

        def ui(self, is_img2img):
            with gr.Accordion("Uppercase", open=False, elem_id=self.elem_id("accordion")):
                enabled = gr.Checkbox(False, label="Uppercase the prompt", elem_id=self.elem_id("enabled"))
            return [enabled]

        def process(self, p, enabled):
            if enabled:
                p.all_prompts = [prompt.upper() for prompt in p.all_prompts]
                p.extra_generation_params["Uppercased"] = "yes"
'''}

# preload.py adds a flag; on_ui_settings adds an option; an always-on script writes both into infotext and
# on_app_started adds a route that returns them.
SHOUT = {
    "preload.py": '''
        def preload(parser):
            parser.add_argument("--shout-level", type=int, default=1, help="how loud the Shout extension is")
    ''',
    "scripts/shout.py": '''
        from modules import script_callbacks, scripts, shared


        def on_ui_settings():
            section = ("shout", "Shout")
            shared.opts.add_option("shout_suffix", shared.OptionInfo("!", "Suffix the Shout extension writes",
                                                                     section=section))


        def on_app_started(demo, app):
            @app.get("/shout/state")
            def state():
                return {"level": shared.cmd_opts.shout_level, "suffix": shared.opts.shout_suffix}


        script_callbacks.on_ui_settings(on_ui_settings)
        script_callbacks.on_app_started(on_app_started)


        class ShoutScript(scripts.Script):
            def title(self):
                return "Shout"

            def show(self, is_img2img):
                return scripts.AlwaysVisible

            def process(self, p, *args):
                level, suffix = shared.cmd_opts.shout_level, shared.opts.shout_suffix
                p.extra_generation_params["Shout"] = f"{level}{suffix}"
    ''',
}

# A selectable Script (the Script dropdown) with a Textbox, run through script_name / script_args.
SUFFIX = {"scripts/suffix.py": '''
    import gradio as gr
    from modules import processing, scripts
    from modules.processing import process_images


    class SuffixScript(scripts.Script):
        def title(self):
            return "Add suffix"

        def ui(self, is_img2img):
            suffix = gr.Textbox("", label="Suffix", elem_id=self.elem_id("suffix"))
            return [suffix]

        def run(self, p, suffix):
            p.prompt = f"{p.prompt}, {suffix}"
            processing.fix_seed(p)
            return process_images(p)
'''}

# Gradio 3 calls (gr.Box, positional Slider args, .style(), Component.update(), _js=, variant="tool") and
# controls placed right after txt2img's width slider by after_component.
GRADIO3 = {"scripts/panel.py": '''
    import gradio as gr
    from modules import scripts


    class PanelScript(scripts.Script):
        def title(self):
            return "Gradio3 panel"

        def show(self, is_img2img):
            return scripts.AlwaysVisible

        def after_component(self, component, **kwargs):
            if kwargs.get("elem_id") != "txt2img_width":
                return
            with gr.Box(elem_id="g3_after_width"):
                note = gr.Textbox("", label="Gradio 3 note", elem_id="g3_note").style(container=True)
                fill = gr.Button("Fill", variant="tool", elem_id="g3_fill")
                shout = gr.Button("Shout", elem_id="g3_shout")
            fill.click(fn=lambda: gr.Textbox.update(value="filled by python"), inputs=[], outputs=[note])
            # The page's JS turns the text upper case, then Python adds "!" (Gradio 3's _js).
            shout.click(fn=lambda text: text + "!", _js="(text) => text.toUpperCase()", inputs=[note],
                        outputs=[note], show_progress=False)

        def ui(self, is_img2img):
            strength = gr.Slider(0, 10, 4, 1, label="G3 strength", elem_id=self.elem_id("strength"))
            return [strength]

        def process(self, p, strength):
            p.extra_generation_params["G3 strength"] = int(strength)
'''}

# javascript/ only: runs after the UI exists and marks what it found through gradioApp().
JAVASCRIPT = {"javascript/marker.js": '''
    onUiLoaded(function () {
        var button = gradioApp().querySelector("#txt2img_generate");
        var tabs = gradioApp().querySelectorAll("#tabs button[role=tab]").length;
        button.dataset.jsExtension = "loaded " + tabs;
    });
'''}

GOOD = {"uppercase": UPPERCASE, "shout": SHOUT, "suffix-script": SUFFIX, "gradio3-panel": GRADIO3,
        "js-marker": JAVASCRIPT}

# Broken ones: a syntax error, a process() that raises on every generation, an A1111 module that cannot
# exist on diffusers, and a native extension whose hook raises.
SYNTAX_ERROR = {"scripts/broken.py": '''
    from modules import scripts

    def half_written(:
        pass
'''}

RAISES = {"scripts/raiser.py": '''
    from modules import scripts


    class RaiserScript(scripts.Script):
        def title(self):
            return "Raiser"

        def show(self, is_img2img):
            return scripts.AlwaysVisible

        def process(self, p, *args):
            raise RuntimeError("no weights here")
'''}

HIJACK = {"scripts/hijack.py": '''
    from modules import scripts, sd_hijack


    class HijackScript(scripts.Script):
        def title(self):
            return "Hijack"
'''}

NATIVE_HOOK_RAISES = {
    "extension.toml": '''
        name = "native-hook-raises"
        version = "0.1.0"
        description = "Its after_image hook raises"
    ''',
    "__init__.py": '''
        def setup(api):
            api.on("after_image", fail)


        def fail(image, image_info, info):
            raise ValueError("after_image went wrong")
    ''',
}

BROKEN = {"syntax-error": SYNTAX_ERROR, "raiser": RAISES, "needs-sd-hijack": HIJACK,
          "native-hook-raises": NATIVE_HOOK_RAISES}
