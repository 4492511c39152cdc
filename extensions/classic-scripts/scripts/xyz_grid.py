"""X/Y/Z plot: one generation per combination of up to three axes (steps, CFG scale, seed, sampler,
checkpoint, prompt S/R, ...), drawn as a grid labelled with each axis value; every Z value makes one
X/Y sub-grid and the main grid puts them side by side.

Written for the A1111 adapter, with A1111's names only. API clients send A1111's `script_args` in
ui() order (see `run`); an axis type is A1111's index into this tab's axis list, or the axis label.
A1111 axes this app cannot honour stay in the list (so the indices keep their meaning) but are not
offered in the UI and fail with the reason when asked for.
"""
from __future__ import annotations

from copy import copy
from dataclasses import dataclass, field
from typing import Any

import gradio as gr
from PIL import Image, ImageOps

from modules import errors, images, processing, scripts, sd_models, sd_samplers, shared
from modules.processing import Processed, process_images
from modules.shared import opts, state

# The extension's own modules (its folder is on sys.path while scripts load, as in A1111); pure Python.
import classic_xyz_values as values
from classic_xyz_axes import (
    TITLE,
    Axis,
    AxisOption,
    AxisOptionImg2Img,
    AxisOptionTxt2Img,
    apply_field,
    apply_order,
    apply_prompt,
    apply_size,
    confirm_prompt_order,
    confirm_prompt_sr,
    confirm_sizes,
    do_nothing,
    find_axis,
    format_nothing,
    format_remove_path,
    format_value,
    format_value_join_list,
    is_none,
    parse_axis,
    processing_order,
    str_permutations,
    tab_options,
    unsupported,
)

try:  # A1111 1.9+; without it Schedule type is a text axis and the core checks the names
    from modules import sd_schedulers
except ImportError:
    sd_schedulers = None

FILL_SYMBOL = "\U0001f4d2"  # 📒, A1111's "fill in every choice" button
SEED_AXES = ("Seed", "Var. seed")


# -- axis parts that need this app's A1111 modules ---------------------------------------------------
def apply_sampler(field: str):
    def apply(p, x, xs):
        setattr(p, field, sd_samplers.samplers_map[x.lower()])
    return apply


def confirm_samplers(p, xs):
    for x in xs:
        if x.lower() not in sd_samplers.samplers_map:
            raise ValueError(f"{TITLE}: unknown sampler {x!r}")


def apply_checkpoint(p, x, xs):
    info = sd_models.get_closet_checkpoint_match(x)
    if info is None:
        raise ValueError(f"{TITLE}: unknown checkpoint {x!r}")
    p.override_settings["sd_model_checkpoint"] = info.name


def confirm_checkpoints(p, xs):
    for x in xs:
        if sd_models.get_closet_checkpoint_match(x) is None:
            raise ValueError(f"{TITLE}: unknown checkpoint {x!r}")


def apply_refiner(p, x, xs):
    p.refiner_checkpoint = "" if is_none(x) else sd_models.get_closet_checkpoint_match(x).name


def confirm_checkpoints_or_none(p, xs):
    confirm_checkpoints(p, [x for x in xs if not is_none(x)])


def apply_clip_skip(p, x, xs):
    # A1111 sets the setting for the job; the request field too, so a clip skip the request carried
    # does not win over the axis value.
    p.override_settings["CLIP_stop_at_last_layers"] = x
    p.clip_skip = x


def apply_rng_source(p, x, xs):
    # A1111's axis sets the randn_source setting for the job (GPU, CPU or NV).
    p.override_settings["randn_source"] = x


def apply_styles(p, x, xs):
    p.styles.extend(name.strip() for name in x.split(",") if name.strip())


def _sampler_choices():
    hidden = set(getattr(opts, "hide_samplers", None) or ())
    return [s.name for s in sd_samplers.samplers if s.name not in hidden]


def _checkpoint_choices():
    return sorted(sd_models.checkpoints_list, key=str.casefold)


def _refiner_choices():
    return ["None", *_checkpoint_choices()]


def _upscaler_choices():
    latent = list(getattr(shared, "latent_upscale_modes", None) or ())
    return [*latent, *[u.name for u in shared.sd_upscalers if u.name not in latent]]


def _style_choices():
    styles = shared.prompt_styles
    return list(styles.styles) if styles is not None else []


_SCHEDULE_CHOICES = None if sd_schedulers is None else (lambda: [s.label for s in sd_schedulers.schedulers])
_K_DIFFUSION = "k-diffusion's sampler settings do not exist on diffusers' schedulers"
_SCHEDULE = "diffusers' schedulers take no such schedule setting"

# A1111's list, in A1111's order: API clients name axes by their index in the tab's filtered list.
axis_options = [
    AxisOption("Nothing", str, do_nothing, format_value=format_nothing),
    AxisOption("Seed", int, apply_field("seed")),
    AxisOption("Var. seed", int, apply_field("subseed")),
    AxisOption("Var. strength", float, apply_field("subseed_strength")),
    AxisOption("Steps", int, apply_field("steps")),
    AxisOptionTxt2Img("Hires steps", int, apply_field("hr_second_pass_steps")),
    AxisOption("CFG Scale", float, apply_field("cfg_scale")),
    unsupported("Image CFG Scale", "img2img here has no instruct-pix2pix image guidance", AxisOptionImg2Img),
    AxisOption("Prompt S/R", str, apply_prompt, format_value=format_value, confirm=confirm_prompt_sr),
    AxisOption("Prompt order", str_permutations, apply_order, format_value=format_value_join_list,
               confirm=confirm_prompt_order),
    AxisOptionTxt2Img("Sampler", str, apply_sampler("sampler_name"), format_value=format_value,
                      confirm=confirm_samplers, choices=_sampler_choices),
    AxisOptionTxt2Img("Hires sampler", str, apply_sampler("hr_sampler_name"), confirm=confirm_samplers,
                      choices=_sampler_choices),
    AxisOptionImg2Img("Sampler", str, apply_sampler("sampler_name"), format_value=format_value,
                      confirm=confirm_samplers, choices=_sampler_choices),
    AxisOption("Checkpoint name", str, apply_checkpoint, format_value=format_remove_path,
               confirm=confirm_checkpoints, cost=1.0, choices=_checkpoint_choices),
    unsupported("Negative Guidance minimum sigma", _K_DIFFUSION),
    unsupported("Sigma Churn", _K_DIFFUSION),
    unsupported("Sigma min", _K_DIFFUSION),
    unsupported("Sigma max", _K_DIFFUSION),
    unsupported("Sigma noise", _K_DIFFUSION),
    AxisOption("Schedule type", str, apply_field("scheduler"), choices=_SCHEDULE_CHOICES),
    unsupported("Schedule min sigma", _SCHEDULE),
    unsupported("Schedule max sigma", _SCHEDULE),
    unsupported("Schedule rho", _SCHEDULE),
    unsupported("Skip Early CFG", "the generation has no early-CFG skip"),
    unsupported("Beta schedule alpha", _SCHEDULE),
    unsupported("Beta schedule beta", _SCHEDULE),
    AxisOption("Eta", float, apply_field("eta")),
    AxisOption("Clip skip", int, apply_clip_skip),
    AxisOption("Denoising", float, apply_field("denoising_strength")),
    AxisOption("Initial noise multiplier", float, apply_field("initial_noise_multiplier")),
    unsupported("Extra noise", "img2img here adds no extra noise"),
    AxisOptionTxt2Img("Hires upscaler", str, apply_field("hr_upscaler"), choices=_upscaler_choices),
    unsupported("Cond. Image Mask Weight", "inpainting here has no mask weight", AxisOptionImg2Img),
    unsupported("VAE", "a VAE cannot be chosen per job yet"),
    AxisOption("Styles", str, apply_styles, choices=_style_choices),
    unsupported("UniPC Order", "the UniPC order is not a setting here"),
    unsupported("Face restore", "face restoration is not available"),
    unsupported("Token merging ratio", "token merging is not available"),
    unsupported("Token merging ratio high-res", "token merging is not available"),
    unsupported("Always discard next-to-last sigma", _K_DIFFUSION),
    unsupported("SGM noise multiplier", _K_DIFFUSION),
    AxisOption("Refiner checkpoint", str, apply_refiner, format_value=format_remove_path,
               confirm=confirm_checkpoints_or_none, cost=1.0, choices=_refiner_choices),
    AxisOption("Refiner switch at", float, apply_field("refiner_switch_at")),
    AxisOption("RNG source", str, apply_rng_source, choices=lambda: ["GPU", "CPU", "NV"]),
    unsupported("FP8 mode", "fp8 weights are not available"),
    AxisOption("Size", str, apply_size, confirm=confirm_sizes),
]


def tab_axis_options(is_img2img: bool) -> list[AxisOption]:
    return tab_options(axis_options, is_img2img)


@dataclass
class Cell:
    """What one combination produced (image None: failed or skipped)."""

    image: Any = None
    prompt: str = ""
    negative_prompt: str = ""
    seed: int = -1
    subseed: int = -1
    infotext: str = ""


@dataclass
class Plot:
    """One run: its three axes, the seed options, and what the cells produced."""

    axes: tuple[Axis, Axis, Axis]
    vary_seeds: tuple[bool, bool, bool]
    fixed_seeds: bool
    cells: dict[tuple[int, int, int], Cell] = field(default_factory=dict)
    grid_infotexts: dict[int, str] = field(default_factory=dict)  # 0: main grid, 1 + iz: sub-grids
    errors: list[Exception] = field(default_factory=list)


class Script(scripts.Script):
    def title(self):
        return TITLE

    def ui(self, is_img2img):
        offered = [o.label for o in tab_axis_options(is_img2img) if not o.unsupported]
        rows = []
        with gr.Row():
            with gr.Column(scale=19):
                for axis, default in (("x", offered[1]), ("y", offered[0]), ("z", offered[0])):
                    with gr.Row():
                        kind = gr.Dropdown(label=f"{axis.upper()} type", choices=offered, value=default,
                                           elem_id=self.elem_id(f"{axis}_type"))
                        text = gr.Textbox(label=f"{axis.upper()} values", lines=1,
                                          elem_id=self.elem_id(f"{axis}_values"))
                        dropdown = gr.Dropdown(label=f"{axis.upper()} values", choices=[], value=[],
                                               visible=False, multiselect=True, interactive=True)
                        fill = gr.Button(value=FILL_SYMBOL, elem_id=f"xyz_grid_fill_{axis}_tool_button",
                                         visible=False, scale=0, min_width=40, elem_classes=["tool"])
                    rows.append((kind, text, dropdown, fill))
        with gr.Row(variant="compact", elem_id="axis_options"):
            with gr.Column():
                draw_legend = gr.Checkbox(label="Draw legend", value=True,
                                          elem_id=self.elem_id("draw_legend"))
                no_fixed_seeds = gr.Checkbox(label="Keep -1 for seeds", value=False,
                                             elem_id=self.elem_id("no_fixed_seeds"))
                with gr.Row():
                    vary = [gr.Checkbox(label=f"Vary seeds for {a}", value=False, min_width=80,
                                        elem_id=self.elem_id(f"vary_seeds_{a.lower()}")) for a in "XYZ"]
            with gr.Column():
                include_lone_images = gr.Checkbox(label="Include Sub Images", value=False,
                                                  elem_id=self.elem_id("include_lone_images"))
                include_sub_grids = gr.Checkbox(label="Include Sub Grids", value=False,
                                                elem_id=self.elem_id("include_sub_grids"))
                csv_mode = gr.Checkbox(label="Use text inputs instead of dropdowns", value=False,
                                       elem_id=self.elem_id("csv_mode"))
            with gr.Column():
                margin_size = gr.Slider(label="Grid margins (px)", minimum=0, maximum=500, value=0, step=2,
                                        elem_id=self.elem_id("margin_size"))
        with gr.Row(variant="compact", elem_id="swap_axes"):
            swaps = [gr.Button(value=f"Swap {a}/{b} axes",
                               elem_id=f"{a.lower()}{b.lower()}_grid_swap_axes_button")
                     for a, b in (("X", "Y"), ("Y", "Z"), ("X", "Z"))]
        self._wire_ui(is_img2img, rows, swaps, csv_mode)
        self.infotext_fields = tuple(
            field for name, (kind, text, dropdown, _) in zip("XYZ", rows)
            for field in ((kind, f"{name} Type"), (text, f"{name} Values"),
                          (dropdown, lambda params, n=name: gr.update(
                              value=values.split_values(params.get(f"{n} Values", "")))))
        )
        # A1111's order: x_type, x_values, x_values_dropdown, the same for Y and Z, draw_legend,
        # include_lone_images, include_sub_grids, no_fixed_seeds, vary_seeds_x/y/z, margin_size, csv_mode.
        return [*(c for kind, text, dropdown, _ in rows for c in (kind, text, dropdown)),
                draw_legend, include_lone_images, include_sub_grids, no_fixed_seeds, *vary, margin_size,
                csv_mode]

    def _wire_ui(self, is_img2img, rows, swaps, csv_mode) -> None:
        """Swap buttons, the fill button and the text/dropdown switch of each axis (A1111's behaviour)."""
        def choices_of(kind):
            try:
                opt = find_axis(tab_axis_options(is_img2img), kind, "axis")
            except ValueError:
                return None
            return opt.choices() if opt.choices is not None else None

        def swap(kind1, text1, drop1, kind2, text2, drop2):
            return kind2, text2, drop2, kind1, text1, drop1

        def fill(kind, as_text):
            choices = choices_of(kind)
            if not choices:
                return gr.update(), gr.update()
            return (values.to_csv(choices), gr.update()) if as_text else (gr.update(), choices)

        def select_axis(kind, text, dropdown, as_text):
            choices = choices_of(kind)
            has_choices = choices is not None
            if has_choices and as_text and dropdown:
                text, dropdown = values.to_csv([v for v in dropdown if v in choices]), []
            elif has_choices and not as_text and text:
                dropdown, text = [v for v in values.split_values(text) if v in choices], ""
            return (gr.update(visible=has_choices), gr.update(visible=not has_choices or as_text, value=text),
                    gr.update(choices=choices or [], visible=has_choices and not as_text,
                              value=dropdown or []))

        for a, b, button in ((0, 1, swaps[0]), (1, 2, swaps[1]), (0, 2, swaps[2])):
            pair = [*rows[a][:3], *rows[b][:3]]
            button.click(swap, inputs=pair, outputs=pair)
        for kind, text, dropdown, fill_button in rows:
            fill_button.click(fill, inputs=[kind, csv_mode], outputs=[text, dropdown])
            kind.change(select_axis, inputs=[kind, text, dropdown, csv_mode],
                        outputs=[fill_button, text, dropdown])

        def switch_mode(as_text, *axes):
            out = []
            for i in range(0, len(axes), 3):
                out += select_axis(axes[i], axes[i + 1], axes[i + 2], as_text)
            return tuple(out)

        inputs = [csv_mode] + [c for kind, text, dropdown, _ in rows for c in (kind, text, dropdown)]
        outputs = [c for kind, text, dropdown, fill_button in rows for c in (fill_button, text, dropdown)]
        csv_mode.change(switch_mode, inputs=inputs, outputs=outputs)

    def run(self, p, x_type=1, x_values="", x_values_dropdown=None, y_type=0, y_values="",
            y_values_dropdown=None, z_type=0, z_values="", z_values_dropdown=None, draw_legend=True,
            include_lone_images=False, include_sub_grids=False, no_fixed_seeds=False, vary_seeds_x=False,
            vary_seeds_y=False, vary_seeds_z=False, margin_size=0, csv_mode=False, *_newer_args):
        """A1111's arguments, in its order; arguments newer A1111 versions add after these are ignored."""
        # 1. Seeds fixed once, so every cell shares them unless an axis or "vary seeds" changes them.
        if not no_fixed_seeds:
            processing.fix_seed(p)
        if not getattr(opts, "return_grid", True):
            p.batch_size = 1

        # 2. Axes: types, values, checks; nothing generates before they are all valid.
        given = (("X", x_type, x_values, x_values_dropdown), ("Y", y_type, y_values, y_values_dropdown),
                 ("Z", z_type, z_values, z_values_dropdown))
        options = tab_axis_options(self.is_img2img)
        xa, ya, za = (parse_axis(p, name, find_axis(options, kind, name), text, dropdown, bool(csv_mode))
                      for name, kind, text, dropdown in given)
        xs, ys, zs = xa.values, ya.values, za.values
        if not no_fixed_seeds:
            for axis in (xa, ya, za):
                if axis.opt.label in SEED_AXES:
                    axis.values[:] = [processing.get_fixed_seed(v) for v in axis.values]
        megapixels = round(len(xs) * len(ys) * len(zs) * p.width * p.height / 1_000_000)
        limit = float(getattr(opts, "img_max_size_mp", 200) or 200)
        if megapixels > limit:
            raise ValueError(f"{TITLE}: the grid would be {megapixels} megapixels, more than the "
                             f"{limit:g} allowed (setting img_max_size_mp)")

        # 3. One generation per cell, the costliest axis in the outer loop.
        plot = Plot((xa, ya, za), (bool(vary_seeds_x), bool(vary_seeds_y), bool(vary_seeds_z)),
                    fixed_seeds=not no_fixed_seeds)
        total = len(xs) * len(ys) * len(zs)
        state.job_count = total * int(p.n_iter)
        sizes = {"x": len(xs), "y": len(ys), "z": len(zs)}
        outer, middle, inner = processing_order(xa.opt, ya.opt, za.opt)
        for i_outer in range(sizes[outer]):
            for i_middle in range(sizes[middle]):
                for i_inner in range(sizes[inner]):
                    at = {outer: i_outer, middle: i_middle, inner: i_inner}
                    ix, iy, iz = at["x"], at["y"], at["z"]
                    state.job = f"{ix + iy * len(xs) + iz * len(xs) * len(ys) + 1} out of {total}"
                    plot.cells[ix, iy, iz] = self._cell(p, plot, ix, iy, iz)

        # 4. The grids.
        return self._results(p, plot, bool(draw_legend), bool(include_lone_images), bool(include_sub_grids),
                             int(margin_size or 0))

    def _cell(self, p, plot: Plot, ix: int, iy: int, iz: int) -> Cell:
        """Generate one combination; a failed generation is reported and leaves the cell empty (A1111)."""
        if state.interrupted:
            return Cell()
        pc = copy(p)
        pc.styles = list(p.styles or [])
        pc.override_settings = dict(p.override_settings or {})
        pc.extra_generation_params = dict(p.extra_generation_params or {})
        pc.all_prompts = pc.all_negative_prompts = pc.all_seeds = pc.all_subseeds = None
        xa, ya, za = plot.axes
        for axis, i in ((xa, ix), (ya, iy), (za, iz)):
            axis.opt.apply(pc, axis.values[i], axis.values)
        vary_x, vary_y, vary_z = plot.vary_seeds
        xdim = len(xa.values) if vary_x else 1
        ydim = len(ya.values) if vary_y else 1
        pc.seed = int(pc.seed) + (ix if vary_x else 0) + (iy * xdim if vary_y else 0) \
            + (iz * xdim * ydim if vary_z else 0)
        try:
            processed = process_images(pc)
        except Exception as exc:
            errors.display(exc, "generating image for xyz plot")
            plot.errors.append(exc)
            return Cell()
        if not processed.images:
            return Cell()
        image = processed.images[0]
        if len(processed.images) > 1:  # a batch: its grid is the cell, as A1111 shows it
            image = images.image_grid(processed.images, batch_size=int(pc.batch_size))
        if ix == 0 and iy == 0:
            self._grid_infotexts(pc, plot, iz, processed.infotexts[0])
        return Cell(image, processed.prompt, processed.negative_prompt, int(processed.seed),
                    int(processed.subseed if processed.subseed is not None else -1), processed.infotexts[0])

    def _grid_infotexts(self, pc, plot: Plot, iz: int, fallback: str) -> None:
        """Infotexts of the Z value's sub-grid (X and Y) and, for the first Z value, of the main grid (Z
        too): the first cell's parameters plus the axes, so pasting one back restores the plot."""
        def text_with(names: str) -> str:
            params = pc.extra_generation_params
            params["Script"] = TITLE
            for axis in plot.axes:
                if axis.name not in names or axis.opt.label == "Nothing":
                    continue
                params[f"{axis.name} Type"] = axis.opt.label
                params[f"{axis.name} Values"] = axis.text
                if axis.opt.label in SEED_AXES and plot.fixed_seeds:
                    params[f"Fixed {axis.name} Values"] = ", ".join(str(v) for v in axis.values)
            try:
                return processing.create_infotext(pc, pc.all_prompts, pc.all_seeds, pc.all_subseeds)
            except Exception as exc:  # the grid keeps the first image's text rather than failing the plot
                errors.display(exc, "writing the xyz plot's grid infotext")
                return fallback

        plot.grid_infotexts[1 + iz] = text_with("XY")
        if iz == 0:
            plot.grid_infotexts[0] = text_with("XYZ")

    def _results(self, p, plot: Plot, draw_legend: bool, include_lone_images: bool, include_sub_grids: bool,
                 margin: int) -> Processed:
        xa, ya, za = plot.axes
        xs, ys, zs = xa.values, ya.values, za.values
        cells = plot.cells
        order = [(ix, iy, iz) for iz in range(len(zs)) for iy in range(len(ys)) for ix in range(len(xs))]
        made = [cells[k] for k in order if cells[k].image is not None]
        if not made:
            if plot.errors:  # every cell failed: the job fails with the first reason, as the core gave it
                raise plot.errors[0]
            return Processed(p, [])  # interrupted before the first image
        size = made[0].image.size
        for cell in cells.values():  # empty or odd-sized cells (a Size axis) fit the first cell's size
            if cell.image is None:
                cell.image = Image.new("RGB", size)
            elif cell.image.size != size:
                cell.image = ImageOps.pad(cell.image.convert("RGB"), size)

        def labels(axis: Axis):
            return [[images.GridAnnotation(text)] for text in axis.labels(p)]

        sub_grids = []
        for iz in range(len(zs)):
            plane = [cells[ix, iy, iz].image for iy in range(len(ys)) for ix in range(len(xs))]
            grid = images.image_grid(plane, rows=len(ys))
            if draw_legend:
                grid = images.draw_grid_annotations(grid, size[0], size[1], labels(xa), labels(ya), margin)
            sub_grids.append(grid)
        main = sub_grids[0]
        if len(zs) > 1:
            main = images.image_grid(sub_grids, rows=1)
            if draw_legend:
                main = images.draw_grid_annotations(main, sub_grids[0].width, sub_grids[0].height, labels(za),
                                                    [[images.GridAnnotation()]])

        first = made[0]
        main_info = plot.grid_infotexts.get(0, first.infotext)
        result_images, infotexts = [main], [main_info]
        if include_sub_grids and len(zs) > 1:
            result_images += sub_grids
            infotexts += [plot.grid_infotexts.get(1 + iz, main_info) for iz in range(len(zs))]
        if include_lone_images:
            result_images += [cells[k].image for k in order]
            infotexts += [cells[k].infotext for k in order]
        # The grid comes first (index_of_first_image); all_prompts / all_seeds are one per cell.
        return Processed(p, result_images, seed=first.seed, info=main_info, subseed=first.subseed,
                         all_prompts=[cells[k].prompt for k in order],
                         all_negative_prompts=[cells[k].negative_prompt for k in order],
                         all_seeds=[cells[k].seed for k in order],
                         all_subseeds=[cells[k].subseed for k in order],
                         infotexts=infotexts, index_of_first_image=1)
