"""A1111-style extensions cloned into extensions/, run unmodified around a real tiny generation: an
always-on script rewriting p.all_prompts and adding extra_generation_params, a selectable Script with a
Textbox driven by script_name/script_args, on_before_image_saved, a failing process(), and the
built-in X/Y/Z plot, Prompt matrix and Prompts from file."""
from __future__ import annotations

from PIL import Image

from modules.generation.service import submit_generation
from modules.images.infotext import parse_infotext
from modules.types import GenerationRequest
from tests.integration.conftest import WAIT

SMALL = dict(seed=3, width=64, height=64, steps=2, save_images=False)

ALWAYSON = {"scripts/shout.py": '''
    import gradio as gr
    from modules import scripts

    class Shout(scripts.Script):
        def title(self):
            return "Shout"

        def show(self, is_img2img):
            return scripts.AlwaysVisible

        def ui(self, is_img2img):
            return [gr.Checkbox(True, label="Shout")]

        def process(self, p, enabled):
            if enabled:
                p.all_prompts = [prompt.upper() + f" #{i}" for i, prompt in enumerate(p.all_prompts)]
                p.extra_generation_params["Shouted"] = "loudly"
'''}

SELECTABLE = {"scripts/suffix.py": '''
    import gradio as gr
    from modules import processing, scripts
    from modules.processing import process_images

    class Suffix(scripts.Script):
        def title(self):
            return "Add suffix"

        def ui(self, is_img2img):
            return [gr.Textbox("", label="Suffix")]

        def run(self, p, suffix):
            p.prompt = f"{p.prompt}, {suffix}"
            processing.fix_seed(p)
            processed = process_images(p)
            processed.info = processed.info + " [suffixed]"
            return processed
'''}

SAVER = {"scripts/saver.py": '''
    from modules import script_callbacks

    def before_saved(params):
        params.pnginfo["parameters"] += ", Saved by: saver"

    script_callbacks.on_before_image_saved(before_saved)
'''}

FAILING = {"scripts/fails.py": '''
    from modules import scripts

    class Fails(scripts.Script):
        def title(self):
            return "Fails"

        def show(self, is_img2img):
            return scripts.AlwaysVisible

        def process(self, p, *args):
            raise RuntimeError("no weights here")
'''}


def generate(ctx, **changes):
    job = submit_generation(ctx, GenerationRequest(**{"prompt": "a boat", **SMALL, **changes}))
    job.wait(WAIT)
    return job


def test_alwayson_script_rewrites_all_prompts_and_infotext(make_ctx):
    ctx = make_ctx({"shout": ALWAYSON})
    job = generate(ctx, batch_size=2)
    assert job.state == "done", job.error
    result = job.result
    assert result.all_prompts == ["A BOAT #0", "A BOAT #1"]
    params = parse_infotext(result.infotexts[1])
    assert params["Prompt"] == "A BOAT #1" and params["Shouted"] == "loudly"
    # the section's value turns it off, from the request as the UI and API send it
    off = generate(ctx, extensions={"shout": {"args": [False]}})
    assert off.result.all_prompts == ["a boat"] and "Shouted" not in parse_infotext(off.result.infotexts[0])


def test_selectable_script_runs_through_script_name_and_args(make_ctx):
    ctx = make_ctx({"suffix": SELECTABLE})
    job = generate(ctx, script_name="Add suffix", script_args=("at sunset",))
    assert job.state == "done", job.error
    assert job.result.all_prompts == ["a boat, at sunset"]
    assert parse_infotext(job.result.infotexts[0])["Prompt"] == "a boat, at sunset"


def test_before_image_saved_changes_the_file(make_ctx):
    ctx = make_ctx({"saver": SAVER})
    job = generate(ctx, save_images=True)
    assert job.state == "done", job.error
    text = Image.open(job.result.saved_paths[0]).info["parameters"]
    assert text.endswith("Saved by: saver")


def test_a_script_that_raises_is_reported_and_the_image_still_made(make_ctx):
    ctx = make_ctx({"fails": FAILING})
    job = generate(ctx)
    assert job.state == "done", job.error
    assert len(job.result.images) == 1
    assert "RuntimeError: no weights here" in ctx.extensions.error_text("fails")
    named = generate(ctx, extensions={"fails": {"args": []}})
    assert named.state == "failed" and "fails" in named.error and "no weights here" in named.error


def xyz_args(x_type, x_values, y_type, y_values):
    # A1111's order: x type/values/dropdown, y ..., z ..., draw_legend, include_lone_images,
    # include_sub_grids, no_fixed_seeds, vary_seeds_x/y/z, margin_size, csv_mode
    return (x_type, x_values, [], y_type, y_values, [], "Nothing", "", [], True, True, False, False,
            False, False, False, 0, False)


def test_xyz_plot_over_steps_and_cfg_returns_a_labelled_grid(make_ctx):
    ctx = make_ctx({})
    job = generate(ctx, script_name="X/Y/Z plot", script_args=xyz_args("Steps", "1,2", "CFG Scale", "3,7"))
    assert job.state == "done", job.error
    result = job.result
    steps = [parse_infotext(t)["Steps"] for t in result.infotexts]
    cfgs = [parse_infotext(t)["CFG scale"] for t in result.infotexts]
    assert sorted(zip(steps, cfgs)) == [("1", "3"), ("1", "7"), ("2", "3"), ("2", "7")]
    assert result.grid is not None
    assert result.grid.width > 2 * 64 and result.grid.height > 2 * 64  # cells plus label margins


def test_prompt_matrix_makes_four_prompts_and_a_grid(make_ctx):
    ctx = make_ctx({})
    job = submit_generation(ctx, GenerationRequest(prompt="a cat|red|blue", script_name="Prompt matrix",
                                                   **SMALL))
    job.wait(WAIT)
    assert job.state == "done", job.error
    assert job.result.all_prompts == ["a cat", "a cat, red", "a cat, blue", "a cat, red, blue"]
    assert job.result.grid is not None and len(job.result.images) == 4


def test_prompts_from_textbox_runs_each_line(make_ctx):
    ctx = make_ctx({})
    lines = 'a dog\n--prompt "a cat" --steps 1 --negative_prompt "blurry"'
    job = generate(ctx, prompt="", script_name="Prompts from file or textbox",
                   script_args=(False, False, "start", lines))
    assert job.state == "done", job.error
    params = [parse_infotext(t) for t in job.result.infotexts]
    assert [p["Prompt"] for p in params] == ["a dog", "a cat"]
    assert params[1]["Steps"] == "1" and params[1]["Negative prompt"] == "blurry"
