"""The built-in classic-scripts extension (X/Y/Z plot, Prompt matrix, Prompts from file or textbox) run
through the A1111 adapter with a fake core generation: what each script asks the core to generate and
what it returns (grids with labels, per-image prompts and seeds)."""
from __future__ import annotations

import sys
import zlib
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest
from PIL import Image

from modules.a1111.app import A1111Compat
from modules.a1111.processing import Processed, StableDiffusionProcessingTxt2Img, result_from_processed
from modules.extensions.hooks import GenerationInfo
from modules.extensions.loader import ExtensionLoader, ExtensionRoot, discover
from modules.extensions.registry import ExtensionRegistry
from modules.types import GenerationRequest, GenerationResult, UserInputError


def test_a_processed_grid_first_becomes_the_results_grid():
    p = StableDiffusionProcessingTxt2Img(prompt="x")
    grid, a, b = (Image.new("RGB", (8, 8), c) for c in ("white", "red", "blue"))
    processed = Processed(p, [grid, a, b], seed=5, info="grid info", all_prompts=["pa", "pb"],
                          all_seeds=[5, 6], infotexts=["grid info", "info a", "info b"],
                          index_of_first_image=1)
    result = result_from_processed(processed)
    assert result.grid is grid
    assert result.images == [a, b]
    assert result.infotexts == ["info a", "info b"]
    assert result.all_prompts == ["pa", "pb"] and result.all_seeds == [5, 6]
    assert result.extra["grid_infotext"] == "grid info"
    # A script that made no grid keeps every image.
    plain = result_from_processed(Processed(p, [a, b], infotexts=["ia", "ib"]))
    assert plain.grid is None and plain.images == [a, b] and plain.infotexts == ["ia", "ib"]


# -- the built-in extension, loaded as the app loads it ---------------------------------------------
ROOT = Path(__file__).resolve().parents[3]
XYZ, MATRIX, FROM_FILE = "X/Y/Z plot", "Prompt matrix", "Prompts from file or textbox"


def load_classic_scripts(app_ctx, gradio_module=None) -> A1111Compat:
    """The built-in extension found and loaded as the app does (only this one of the built-ins)."""
    registry = ExtensionRegistry(app_ctx.settings)
    compat = A1111Compat(app_ctx, registry)
    if gradio_module is not None:  # what the web UI gives extension code as `gradio`
        compat.imports.provide("gradio", lambda: gradio_module)
    loader = ExtensionLoader(registry, settings=app_ctx.settings, paths=app_ctx.paths, flags=app_ctx.flags,
                             app_version="0.1.0", a1111_loader=compat.load_extension)
    found = discover([ExtensionRoot(ROOT / "extensions", builtin=True)])
    infos = [i for i in found if i.name == "classic-scripts"]
    loader.load_all(infos)
    assert infos and infos[0].status == "loaded" and infos[0].builtin, infos and infos[0].error
    assert registry.errors.of("classic-scripts") == []
    compat.finish_loading()
    return compat


def build_defaults(compat) -> dict[str, list]:
    """Each txt2img script's ui() built as the web UI builds it: its component values become the
    defaults (LoadedScript.defaults, which also lay out p.script_args); returns the components' labels."""
    labels = {}
    with gr.Blocks(analytics_enabled=False):
        for loaded in compat.scripts("txt2img"):
            components = [c for c in loaded.script.ui(False) if isinstance(c, gr.blocks.Block)]
            loaded.defaults = [c.value for c in components]
            labels[loaded.title] = [getattr(c, "label", None) for c in components]
    return labels


_DEFAULTS: dict[str, list] = {}


@pytest.fixture
def compat(app_ctx):
    """The extension loaded into a fresh app, its scripts' defaults filled (the UI is built once)."""
    loaded_compat = load_classic_scripts(app_ctx)
    if not _DEFAULTS:
        build_defaults(loaded_compat)
        _DEFAULTS.update({s.title: list(s.defaults) for s in loaded_compat.scripts("txt2img")})
    for loaded in loaded_compat.scripts("txt2img"):
        loaded.defaults = list(_DEFAULTS[loaded.title])
    return loaded_compat


def colour_of(request: GenerationRequest, prompt: str, seed: int) -> tuple[int, int, int]:
    """A solid colour that changes with the request's steps, CFG scale, prompt and seed."""
    return (request.steps * 10 % 256, int(request.cfg_scale * 20) % 256,
            (zlib.crc32(prompt.encode()) + seed) % 256)


class FakeCore:
    """Stands in for the core generation `run(request)`: records each request and returns one solid
    image per image the request asks for, honouring per-image prompts and seeds a script decided."""

    def __init__(self):
        self.requests: list[GenerationRequest] = []

    def __call__(self, request: GenerationRequest) -> GenerationResult:
        self.requests.append(request)
        prompts = list(request.all_prompts) or [request.prompt] * request.total_images
        negatives = list(request.all_negative_prompts) or [request.negative_prompt] * len(prompts)
        base = request.seed if request.seed != -1 else 1234
        seeds = list(request.all_seeds) or [base + i for i in range(len(prompts))]
        subseeds = list(request.all_subseeds) or [max(request.subseed, 0) + i for i in range(len(prompts))]
        images = [Image.new("RGB", (request.width, request.height), colour_of(request, prompt, seed))
                  for prompt, seed in zip(prompts, seeds)]
        infotexts = [f"{prompt}\nSteps: {request.steps}, CFG scale: {request.cfg_scale}, Seed: {seed}"
                     for prompt, seed in zip(prompts, seeds)]
        return GenerationResult(images=images, all_prompts=prompts, all_negative_prompts=negatives,
                                all_seeds=seeds, all_subseeds=subseeds, infotexts=infotexts)


def run_script(compat, title: str, args, core=None, **fields):
    """One job through the adapter's run_job wrapper, as the queue runs it: (result, core requests)."""
    fields = {"prompt": "a cat", "width": 32, "height": 32, "seed": 100, "steps": 20, **fields}
    request = GenerationRequest(script_name=title.lower(), script_args=tuple(args), **fields)
    core = core or FakeCore()
    result = compat._run_job(request, GenerationInfo(request), core)
    return result, core.requests


def xyz_args(x_type="Steps", x_values="", y_type="Nothing", y_values="", z_type="Nothing", z_values="",
             **more):
    """X/Y/Z plot's script_args in A1111's order."""
    options = {"draw_legend": True, "include_lone_images": False, "include_sub_grids": False,
               "no_fixed_seeds": False, "vary_seeds_x": False, "vary_seeds_y": False, "vary_seeds_z": False,
               "margin_size": 0, "csv_mode": False, **more}
    return [x_type, x_values, [], y_type, y_values, [], z_type, z_values, [], *options.values()]


def is_uniform(image: Image.Image) -> bool:
    return all(low == high for low, high in image.getextrema())


# -- loading and the ui() argument order ----------------------------------------------------------------
def test_the_three_scripts_load_in_both_tabs_with_a1111_titles(compat):
    for tab in ("txt2img", "img2img"):
        titles = sorted(s.title for s in compat.scripts(tab) if not s.alwayson)
        assert titles == sorted([XYZ, MATRIX, FROM_FILE])
    assert compat.runners["txt2img"].find("x/y/z plot").title == XYZ  # the API sends titles in lower case


def test_ui_components_come_in_a1111s_order_with_its_defaults(compat):
    labels = build_defaults(compat)
    assert labels[XYZ] == ["X type", "X values", "X values", "Y type", "Y values", "Y values", "Z type",
                           "Z values", "Z values", "Draw legend", "Include Sub Images", "Include Sub Grids",
                           "Keep -1 for seeds", "Vary seeds for X", "Vary seeds for Y", "Vary seeds for Z",
                           "Grid margins (px)", "Use text inputs instead of dropdowns"]
    assert labels[MATRIX] == ["Put variable parts at start of prompt", "Use different seed for each picture",
                              "Select prompt", "Select joining char", "Grid margins (px)"]
    assert labels[FROM_FILE] == ["Iterate seed every line", "Use same random seed for all lines",
                                 "Insert prompts at the", "List of prompt inputs",
                                 "Make a combined image containing all outputs (if more than one)"]
    defaults = {s.title: s.defaults for s in compat.scripts("txt2img")}
    assert defaults[XYZ][0] == "Seed" and defaults[XYZ][3] == "Nothing" and defaults[XYZ][9] is True
    assert defaults[MATRIX] == [False, False, "positive", "comma", 0]
    # The UI offers only the axes this app can do; A1111's others keep their index but are not offered.
    with gr.Blocks(analytics_enabled=False):
        x_type = compat.runners["txt2img"].find("x/y/z plot").script.ui(False)[0]
    offered = [c[0] if isinstance(c, (tuple, list)) else c for c in x_type.choices]
    assert offered[:12] == ["Nothing", "Seed", "Var. seed", "Var. strength", "Steps", "Hires steps",
                            "CFG Scale", "Prompt S/R", "Prompt order", "Sampler", "Hires sampler",
                            "Checkpoint name"]
    assert {"Schedule type", "Eta", "Clip skip", "Denoising", "Styles", "Size"} <= set(offered)
    assert "Sigma Churn" not in offered and "VAE" not in offered


def test_the_scripts_build_their_ui_with_the_gradio3_compatible_module_too(app_ctx):
    from webui.a1111.gradio3 import build_gradio3_module

    g3 = build_gradio3_module()
    compat = load_classic_scripts(app_ctx, g3)
    assert sys.modules["webui_a1111.classic_scripts.xyz_grid"].gr is g3
    with gr.Blocks(analytics_enabled=False):
        counts = {s.title: len(s.script.ui(True)) for s in compat.scripts("img2img")}
    assert counts == {XYZ: 18, MATRIX: 5, FROM_FILE: 5}


# -- X/Y/Z plot ---------------------------------------------------------------------------------------------
def test_xyz_steps_by_cfg_makes_four_generations_and_a_labelled_grid(compat):
    result, requests = run_script(compat, XYZ, xyz_args("Steps", "10,20", "CFG Scale", "5,7", margin_size=4),
                                  width=128, height=128)
    assert [(r.steps, r.cfg_scale) for r in requests] == [(10, 5.0), (20, 5.0), (10, 7.0), (20, 7.0)]
    assert {r.seed for r in requests} == {100}  # one fixed seed for every cell
    grid = result.grid
    assert grid is not None and result.images == []  # "Include Sub Images" is off
    # 2x2 cells of 128 px, 4 px margins, a left column for the row labels (3/4 of a cell) and a top band.
    pad_left = 128 * 3 // 4
    pad_top = grid.height - (2 * 128 + 4)
    assert grid.width == pad_left + 2 * 128 + 4 and pad_top > 0
    # Each cell is where its combination belongs: column = steps, row = CFG scale.
    for (col, row), request in zip([(0, 0), (1, 0), (0, 1), (1, 1)], requests):
        x, y = pad_left + col * (128 + 4) + 64, pad_top + row * (128 + 4) + 64
        assert grid.getpixel((x, y)) == colour_of(request, "a cat", 100)
    # The labels are drawn: the top band and the left column are not plain white.
    assert not is_uniform(grid.crop((pad_left, 0, grid.width, pad_top)))
    assert not is_uniform(grid.crop((0, pad_top, pad_left, grid.height)))
    grid_info = result.extra["grid_infotext"]
    assert "Script: X/Y/Z plot" in grid_info and "X Type: Steps" in grid_info
    assert "Y Type: CFG Scale" in grid_info
    assert result.all_prompts == ["a cat"] * 4 and result.all_seeds == [100] * 4


def test_xyz_without_legend_is_the_bare_grid_and_sub_images_can_be_kept(compat):
    result, requests = run_script(compat, XYZ, xyz_args("Steps", "10,20", draw_legend=False,
                                                        include_lone_images=True))
    assert result.grid.size == (64, 32)
    assert [im.getpixel((0, 0)) for im in result.images] == [colour_of(r, "a cat", 100) for r in requests]
    assert len(result.infotexts) == 2 and "Steps: 10" in result.infotexts[0]


def test_xyz_value_syntax_ranges_and_csv_quoting(compat):
    cases = [("Steps", "1-5", [1, 2, 3, 4, 5]), ("Steps", "1-5 (+2)", [1, 3, 5]),
             ("Steps", "1-10 [5]", [1, 3, 5, 7, 10]), ("Steps", "10-4 (-3), 30", [10, 7, 4, 30]),
             ("CFG Scale", "5-7 (+0.5)", [5.0, 5.5, 6.0, 6.5, 7.0]),
             ("CFG Scale", "1-2 [3]", [1.0, 1.5, 2.0])]
    for kind, text, expected in cases:
        _, requests = run_script(compat, XYZ, xyz_args(kind, text))
        got = [r.steps if kind == "Steps" else r.cfg_scale for r in requests]
        assert got == expected, (kind, text)
    _, requests = run_script(compat, XYZ, xyz_args("Prompt S/R", 'cat, "dog, big", bird'))
    assert [r.prompt for r in requests] == ["a cat", "a dog, big", "a bird"]


def test_xyz_prompt_sr_needs_its_search_string_in_the_prompt(compat):
    with pytest.raises(Exception,
                       match="Prompt S/R did not find 'dog' in the prompt or negative prompt") as info:
        run_script(compat, XYZ, xyz_args("Prompt S/R", "dog, cat"))
    assert "classic-scripts" in str(info.value)  # the job error names the extension


def test_xyz_bad_values_and_types_fail_clearly_before_anything_generates(compat):
    core_calls = []
    for args, message in [(xyz_args("Steps", "10, ten"), "X values for Steps: 'ten' is not a whole number"),
                          (xyz_args("Steps", ""), "X values for Steps are empty"),
                          (xyz_args("Sampler", "Euler, Nope"), "unknown sampler 'Nope'"),
                          (xyz_args("Checkpoint name", "missing.safetensors"), "unknown checkpoint"),
                          (xyz_args("Sigma Churn", "0,1"), "'Sigma Churn' is not supported here"),
                          (xyz_args(99, "1"), "X type 99 is out of range"),
                          (xyz_args("Wobble", "1"), "unknown X type 'Wobble'")]:
        with pytest.raises(Exception, match=message):
            _, requests = run_script(compat, XYZ, args)
            core_calls += requests
    assert core_calls == []


def test_xyz_a_failed_cell_is_left_empty_and_reported_and_all_failing_fails_the_job(compat):
    class PickyCore(FakeCore):
        def __call__(self, request):
            if request.steps == 20:
                raise UserInputError("steps: 20 is not allowed today", field="steps")
            return super().__call__(request)

    result, _ = run_script(compat, XYZ, xyz_args("Steps", "10,20", draw_legend=False), core=PickyCore())
    assert result.grid.getpixel((40, 10)) == (0, 0, 0)  # the 20-steps cell: empty
    assert result.grid.getpixel((10, 10)) != (0, 0, 0)
    assert any("20 is not allowed today" in e for e in compat.registry.errors.of("classic-scripts"))
    with pytest.raises(UserInputError, match="steps: 20 is not allowed today"):  # the core's own error
        run_script(compat, XYZ, xyz_args("Steps", "20,20"), core=PickyCore())


def test_xyz_axis_types_by_a1111_index_as_api_clients_send_them(compat):
    # txt2img indices in A1111's list: 4 Steps, 6 CFG Scale, 7 Prompt S/R, 9 Sampler.
    _, requests = run_script(compat, XYZ, xyz_args(4, "3", 6, "2.5", 9, "Euler a,DDIM", csv_mode=True))
    got = [(r.steps, r.cfg_scale, r.sampler_name) for r in requests]
    assert got == [(3, 2.5, "Euler a"), (3, 2.5, "DDIM")]
    _, requests = run_script(compat, XYZ, xyz_args("7", "cat,fox"))
    assert [r.prompt for r in requests] == ["a cat", "a fox"]
    # Sampler values from the dropdown (not csv mode), aliases normalised to the sampler's name.
    args = xyz_args("Sampler")
    args[2] = ["k_euler_a"]
    _, requests = run_script(compat, XYZ, args)
    assert [r.sampler_name for r in requests] == ["Euler a"]


def test_xyz_z_axis_makes_one_sub_grid_per_value(compat):
    result, requests = run_script(compat, XYZ, xyz_args("Steps", "10,20", "Nothing", "", "Seed", "1,2",
                                                        include_sub_grids=True, include_lone_images=True))
    assert [(r.steps, r.seed) for r in requests] == [(10, 1), (20, 1), (10, 2), (20, 2)]
    sub_a, sub_b, *cells = result.images
    assert len(cells) == 4 and sub_a.size == sub_b.size
    assert result.grid.width == 2 * sub_a.width and result.grid.height > sub_a.height  # Z labels on top
    assert "Z Type: Seed" in result.extra["grid_infotext"] and "Z Type" not in result.infotexts[0]
    assert 'Fixed Z Values: "1, 2"' in result.extra["grid_infotext"]


def test_xyz_seed_axis_fixes_random_seeds_and_vary_seeds_spreads_them(compat):
    _, requests = run_script(compat, XYZ, xyz_args("Seed", "-1, -1"))
    seeds = [r.seed for r in requests]
    assert -1 not in seeds and len(set(seeds)) == 2
    _, requests = run_script(compat, XYZ, xyz_args("Steps", "10,20", "CFG Scale", "5,7", vary_seeds_x=True,
                                                   vary_seeds_y=True))
    assert [r.seed for r in requests] == [100, 101, 102, 103]
    _, requests = run_script(compat, XYZ, xyz_args("Steps", "10,20", no_fixed_seeds=True), seed=-1)
    assert [r.seed for r in requests] != [-1, -1] and requests[0].seed != requests[1].seed


def test_xyz_other_axes_reach_the_request(compat):
    for kind, text, field, expected in [
            ("Clip skip", "2", "clip_skip", 2), ("Denoising", "0.3", "denoising_strength", 0.3),
            ("Eta", "0.5", "eta", 0.5), ("Hires steps", "7", "hr_second_pass_steps", 7),
            ("Var. strength", "0.25", "subseed_strength", 0.25),
            ("Schedule type", "Karras", "scheduler", "Karras"),
            ("Refiner switch at", "0.6", "refiner_switch_at", 0.6)]:
        _, requests = run_script(compat, XYZ, xyz_args(kind, text))
        assert getattr(requests[0], field) == expected, kind
    _, requests = run_script(compat, XYZ, xyz_args("Clip skip", "3"))
    assert requests[0].override_settings["CLIP_stop_at_last_layers"] == 3
    _, requests = run_script(compat, XYZ, xyz_args("RNG source", "NV, CPU"))
    assert [r.override_settings["randn_source"] for r in requests] == ["NV", "CPU"]
    _, requests = run_script(compat, XYZ, xyz_args("Size", "64x32, 32x48"))
    assert [(r.width, r.height) for r in requests] == [(64, 32), (32, 48)]
    _, requests = run_script(compat, XYZ, xyz_args("Prompt order", "red, blue"), prompt="a red cat, blue sky")
    assert [r.prompt for r in requests] == ["a red cat, blue sky", "a blue cat, red sky"]


# -- Prompt matrix ------------------------------------------------------------------------------------------
def test_prompt_matrix_makes_a1111s_four_prompts_and_a_grid(compat):
    result, requests = run_script(compat, MATRIX, [False, False, "positive", "comma", 0],
                                  prompt="a cat|red|blue", width=64, height=64)
    assert len(requests) == 1  # one job: a prompt and a seed per image
    expected = ["a cat", "a cat, red", "a cat, blue", "a cat, red, blue"]
    assert list(requests[0].all_prompts) == expected
    assert list(requests[0].all_seeds) == [100] * 4
    assert requests[0].n_iter == 4 and requests[0].do_not_save_grid
    assert result.all_prompts == expected and len(result.images) == 4
    # 2x2 grid: columns name "red" (left out, then in), rows "blue"; both bands carry labels.
    grid = result.grid
    pad_left = 64 * 3 // 4
    pad_top = grid.height - 2 * 64
    assert grid.width == pad_left + 2 * 64 and pad_top > 0
    for i, prompt in enumerate(expected):
        x, y = pad_left + (i % 2) * 64 + 32, pad_top + (i // 2) * 64 + 32
        assert grid.getpixel((x, y)) == colour_of(requests[0], prompt, 100)
    assert not is_uniform(grid.crop((pad_left, 0, grid.width, pad_top)))
    assert not is_uniform(grid.crop((0, pad_top, pad_left, grid.height)))
    assert result.extra["grid_infotext"] == result.infotexts[0]


def test_prompt_matrix_options_start_space_seeds_and_negative(compat):
    _, requests = run_script(compat, MATRIX, [True, True, "positive", "space", 0], prompt="a cat|red|blue")
    assert list(requests[0].all_prompts) == ["a cat", "red a cat", "blue a cat", "red blue a cat"]
    assert list(requests[0].all_seeds) == [100, 101, 102, 103]
    _, requests = run_script(compat, MATRIX, [False, False, "negative", "comma", 0], prompt="a cat",
                             negative_prompt="ugly|blurry")
    assert list(requests[0].all_negative_prompts) == ["ugly", "ugly, blurry"]
    assert list(requests[0].all_prompts) == ["a cat", "a cat"]
    # Per-image prompts the request already carried are replaced by the matrix's.
    _, requests = run_script(compat, MATRIX, [False, False, "positive", "comma", 0], prompt="a|b",
                             all_prompts=("stale",))
    assert list(requests[0].all_prompts) == ["a", "a, b"]
    with pytest.raises(Exception, match="prompt type must be 'positive' or 'negative'"):
        run_script(compat, MATRIX, [False, False, "sideways", "comma", 0], prompt="a|b")


# -- Prompts from file or textbox --------------------------------------------------------------------------
def test_prompts_from_file_runs_each_line_with_its_options(compat):
    text = 'a dog\n\n--prompt "a cat" --steps 7 --negative_prompt "blurry"\n'
    result, requests = run_script(compat, FROM_FILE, [False, False, "start", text, False], prompt="",
                                  steps=20)
    got = [(r.prompt, r.steps, r.negative_prompt) for r in requests]
    assert got == [("a dog", 20, ""), ("a cat", 7, "blurry")]
    assert result.grid is None and len(result.images) == 2 and result.all_prompts == ["a dog", "a cat"]


def test_prompts_from_file_options_and_the_main_prompt(compat):
    text = ("--prompt a red fox --negative_prompt bad hands --cfg_scale 3.5 --seed 9 --width 48 --height 40\n"
            "--prompt owl --sampler_name k_euler_a --batch_size 2 --n_iter 1 --styles 'one, two' "
            "--tiling true")
    _, requests = run_script(compat, FROM_FILE, [False, False, "end", text, False], prompt="photo")
    first, second = requests
    assert (first.prompt, first.negative_prompt) == ("photo a red fox", "bad hands")
    assert (first.cfg_scale, first.seed) == (3.5, 9)
    assert (first.width, first.height) == (48, 40)
    assert (second.prompt, second.sampler_name) == ("photo owl", "Euler a")
    assert (second.batch_size, second.tiling) == (2, True)
    assert second.styles == ("one", "two")
    _, requests = run_script(compat, FROM_FILE, [False, False, "start", "owl", False], prompt="photo")
    assert requests[0].prompt == "owl photo"


def test_prompts_from_file_seeds_iterate_per_line(compat):
    _, requests = run_script(compat, FROM_FILE, [True, False, "start", "a\nb\nc", False], seed=50)
    assert [r.seed for r in requests] == [50, 51, 52]
    _, requests = run_script(compat, FROM_FILE, [False, True, "start", "a\nb", False], seed=-1)
    assert requests[0].seed == requests[1].seed != -1


def test_prompts_from_file_combined_image_is_the_grid(compat):
    result, _ = run_script(compat, FROM_FILE, [False, False, "start", "a\nb\nc\nd", True])
    assert result.grid is not None and result.grid.size == (64, 64) and len(result.images) == 4


def test_prompts_from_file_bad_options_name_the_line_and_nothing_runs(compat):
    for text, message in [("a dog\n--prompt cat --stepz 7",
                           r"line 2 \('--prompt cat --stepz 7'\): unknown option --stepz"),
                          ("a\n\n--steps seven", r"line 3 .*--steps expects a whole number, not 'seven'"),
                          ("--prompt cat --steps", r"line 1 .*--steps needs a value"),
                          ('--prompt "cat', r"line 1 .*No closing quotation"),
                          ("--sampler_name Nope", r"line 1 .*unknown sampler 'Nope'"),
                          ("--restore_faces true", r"line 1 .*face restoration is not available")]:
        with pytest.raises(Exception, match=message):
            _, requests = run_script(compat, FROM_FILE, [False, False, "start", text, False])
            pytest.fail(f"ran {len(requests)} generations for {text!r}")
    # A prompt that merely contains "--" is a prompt, as in A1111.
    _, requests = run_script(compat, FROM_FILE, [False, False, "start", "a cat -- on a mat", False],
                             prompt="")
    assert requests[0].prompt == "a cat -- on a mat"


# -- modules.images grid drawing for any A1111 extension ----------------------------------------------------
def test_draw_grid_annotations_and_prompt_matrix_labels(compat):
    images = compat.imports.module("modules.images")
    cells = Image.new("RGB", (2 * 100, 3 * 60), "red")
    hor = [[images.GridAnnotation("left")], [images.GridAnnotation("a rather long label that must wrap")]]
    ver = [[images.GridAnnotation(str(i))] for i in range(3)]
    drawn = images.draw_grid_annotations(cells, 100, 60, hor, ver, margin=6)
    pad_left = 75
    pad_top = drawn.height - (3 * 60 + 2 * 6)
    assert drawn.width == pad_left + 2 * 100 + 6 and pad_top > 0
    assert drawn.getpixel((pad_left + 100 + 3, pad_top + 10)) == (255, 255, 255)  # the margin between cells
    assert drawn.getpixel((pad_left + 100 + 6 + 50, pad_top + 30)) == (255, 0, 0)
    no_labels = images.draw_grid_annotations(cells, 100, 60, [[images.GridAnnotation()]] * 2,
                                             [[images.GridAnnotation()]] * 3)
    assert no_labels.size == cells.size
    with pytest.raises(ValueError, match="needs 2 column and 3 row labels"):
        images.draw_grid_annotations(cells, 100, 60, hor, ver[:2])
    matrix = images.draw_prompt_matrix(Image.new("RGB", (4 * 50, 2 * 50)), 50, 50, ["base", "a", "b", "c"])
    assert matrix.width == 4 * 50 + 37 and matrix.height > 2 * 50
    assert images.check_grid_size([cells])
    assert not images.check_grid_size([SimpleNamespace(width=20000, height=20000)])  # 400 MP > 200
