"""Tag editor panel: load a folder, see each image with its tags and the tag frequencies of the set, edit
in bulk or per image, Save (a backup is kept first) and Undo the last save.

Edits stay pending in the session until Save; the view always shows the folder with the pending edits.
"""
from __future__ import annotations

import functools
import html

import gradio as gr
from PIL import Image

from .tag_editor import ACTIONS, BulkEdit, apply_edit, backups, load_dataset, save, undo, with_changes
from .taggers.options import split_tags

THUMB = 160
MAX_SHOWN = 500  # images in the gallery; the table and edits cover the whole set


def empty_state() -> dict:
    return {"folder": "", "extension": ".txt", "pending": {}, "selected": ""}


def build(api, service) -> None:
    state = gr.State(empty_state())
    with gr.Row():
        folder = gr.Textbox(label="Dataset folder (on the server)", elem_id="tag_editor_dir", scale=4)
        extension = gr.Radio([".txt", ".caption"], value=".txt", label="Caption file",
                             elem_id="tag_editor_extension", scale=1)
        load = gr.Button("Load", elem_id="tag_editor_load", scale=0, min_width=80)
    status = gr.HTML(elem_id="tag_editor_status")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            gallery = gr.Gallery(label="Images", columns=5, height=420, allow_preview=False,
                                 elem_id="tag_editor_gallery")
            with gr.Row():
                image_name = gr.Textbox(label="Image", interactive=False, elem_id="tag_editor_image", scale=1)
                image_tags = gr.Textbox(label="Its tags", elem_id="tag_editor_image_tags", scale=4)
                set_tags = gr.Button("Set tags", elem_id="tag_editor_set", scale=0, min_width=80)
        with gr.Column(scale=2):
            table = gr.Dataframe(headers=["tag", "images"], datatype=["str", "number"], interactive=False,
                                 label="Tag frequencies", elem_id="tag_editor_frequencies")
    with gr.Row():
        action = gr.Radio(list(ACTIONS), value="replace", label="Bulk action", elem_id="tag_editor_action")
        front = gr.Checkbox(False, label="Add to the front", elem_id="tag_editor_front")
    with gr.Row():
        tags = gr.Textbox(label="Tags (comma-separated)", elem_id="tag_editor_tags")
        replace_with = gr.Textbox(label="Replace with (empty: remove)", elem_id="tag_editor_replace_with")
        apply = gr.Button("Apply to all images", elem_id="tag_editor_apply")
    with gr.Row():
        save_button = gr.Button("Save", variant="primary", elem_id="tag_editor_save")
        undo_button = gr.Button("Undo last save", elem_id="tag_editor_undo")
    views = [state, gallery, table, status, image_name, image_tags]

    def view(st: dict, message: str = ""):
        dataset = with_changes(load_dataset(service.folder(st["folder"]), st["extension"]),
                               {k: tuple(v) for k, v in st["pending"].items()})
        shown = [(_thumb(e.image), f"{e.image.name}: {', '.join(e.tags)}")
                 for e in dataset.entries[:MAX_SHOWN]]
        rows = [[t, c] for t, c in dataset.frequencies()]
        selected = st.get("selected", "")
        selected_tags = ", ".join(dataset.entry(selected).tags) if selected else ""
        pending = len(st["pending"])
        note = (f"{len(dataset.entries)} image(s), {len(rows)} tag(s); {pending} unsaved change(s); "
                f"{len(backups(dataset.folder))} save(s) to undo")
        if message:
            note = f"{message}. {note}"
        return st, shown, rows, f"<p>{html.escape(note)}</p>", selected, selected_tags

    def guarded(fn):
        @functools.wraps(fn)
        def run(*args):
            try:
                return fn(*args)
            except (ValueError, LookupError, OSError) as exc:
                return (gr.update(),) * 3 + (f"<div class='gen-error'>{html.escape(str(exc))}</div>",) + \
                    (gr.update(),) * 2
        return run

    def on_load(folder_text, ext):
        st = {**empty_state(), "folder": str(service.folder(folder_text)), "extension": ext}
        return view(st, "Loaded")

    def on_apply(st, action_value, tags_text, replacement, to_front):
        if not st["folder"]:
            raise ValueError("load a folder first")
        current = with_changes(load_dataset(service.folder(st["folder"]), st["extension"]),
                               {k: tuple(v) for k, v in st["pending"].items()})
        changes = apply_edit(current, BulkEdit(action_value, tuple(split_tags(tags_text)), replacement,
                                               bool(to_front)))
        st = {**st, "pending": {**st["pending"], **{k: list(v) for k, v in changes.items()}}}
        return view(st, f"{action_value}: {len(changes)} caption(s) changed, not saved yet")

    def on_select(st, evt: gr.SelectData):
        dataset = load_dataset(service.folder(st["folder"]), st["extension"])
        index = evt.index if isinstance(evt.index, int) else evt.index[0]
        st = {**st, "selected": dataset.entries[index].image.name}
        return view(st)

    def on_set(st, text):
        if not st.get("selected"):
            raise ValueError("select an image first")
        st = {**st, "pending": {**st["pending"], st["selected"]: split_tags(text)}}
        return view(st, f"{st['selected']}: tags set, not saved yet")

    def on_save(st):
        if not st["folder"]:
            raise ValueError("load a folder first")
        dataset = load_dataset(service.folder(st["folder"]), st["extension"])
        backup = save(dataset, {k: tuple(v) for k, v in st["pending"].items()})
        count = len(st["pending"])
        st = {**st, "pending": {}}
        return view(st, f"Saved {count} caption(s), backup {backup}" if backup else "Nothing to save")

    def on_undo(st):
        if not st["folder"]:
            raise ValueError("load a folder first")
        restored = undo(service.folder(st["folder"]))
        return view({**st, "pending": {}}, f"Restored {len(restored)} caption(s)")

    load.click(guarded(on_load), [folder, extension], views)
    apply.click(guarded(on_apply), [state, action, tags, replace_with, front], views)
    gallery.select(guarded(on_select), [state], views)
    set_tags.click(guarded(on_set), [state, image_tags], views)
    save_button.click(guarded(on_save), [state], views)
    undo_button.click(guarded(on_undo), [state], views)


def _thumb(path) -> Image.Image:
    try:
        with Image.open(path) as image:
            image.thumbnail((THUMB, THUMB))
            return image.convert("RGB")
    except OSError:
        return Image.new("RGB", (THUMB, THUMB), (128, 128, 128))
