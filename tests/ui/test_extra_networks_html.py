"""The extra-networks browser without a browser: card HTML (escaping, previews, what a click carries), the
metadata view, the core pages (checkpoints, embeddings) and which files the preview route may serve."""
from __future__ import annotations

import json
import os
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import torch
from safetensors.torch import save_file

from modules.extensions.networks import NetworkCard
from modules.paths import Paths
from modules.pipelines.registry import CheckpointRegistry
from modules.prompts.embeddings import EmbeddingDatabase
from webui.ui.components.extra_networks_html import card_html, cards_html, metadata_html, preview_url
from webui.ui.components.extra_networks_pages import network_pages, page_id
from webui.ui.components.extra_networks_route import allowed_preview

EVIL = "<img src=x onerror=alert(1)>${7*7}{{x}}`"


class Elements(HTMLParser):
    """Every start tag with its attributes, as a browser would parse the HTML."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_every_name_and_text_is_escaped_and_clicks_carry_the_exact_prompt(tmp_path):
    card = NetworkCard(name=EVIL, prompt=f"<lora:{EVIL}:0.7> act \"q\"", path=str(tmp_path / f"{EVIL}.pt"),
                       description=EVIL, negative_prompt="bad, <x>")
    text = card_html(card, "lora", "network")
    parsed = Elements(text)
    assert [tag for tag, _ in parsed.tags if tag in ("img", "script")] == []  # no preview, nothing injected
    assert "${" not in text and "{{" not in text and "`" not in text  # no template syntax for Gradio's HTML
    attrs = parsed.tags[0][1]
    assert attrs["class"] == "card" and attrs["data-name"] == EVIL
    assert attrs["data-prompt"] == card.prompt and attrs["data-negative"] == "bad, <x>"
    assert not any(k.startswith("on") for _, a in parsed.tags for k in a)
    assert "".join(parsed.text).count(EVIL) == 2  # name and description, as text


def test_preview_is_served_by_the_thumb_route_and_a_missing_one_is_a_placeholder(tmp_path):
    preview = tmp_path / "my film.preview.png"
    preview.write_bytes(b"png")
    os.utime(preview, (1_700_000_000, 1_700_000_000))
    url = preview_url(preview)
    quoted = str(preview).replace("/", "%2F").replace(" ", "%20")
    assert url == f"./sd_extra_networks/thumb?filename={quoted}&mtime=1700000000"
    with_preview = Elements(card_html(NetworkCard("film", "", preview=str(preview)), "lora", "network"))
    img = next(a for tag, a in with_preview.tags if tag == "img")
    assert img["src"] == url and img["loading"] == "lazy"
    without = card_html(NetworkCard("film", ""), "lora", "network")
    assert "<img" not in without and 'class="preview no-preview">F<' in without


def test_checkpoint_cards_name_the_checkpoint_and_grids_say_why_they_are_empty():
    card = NetworkCard("model", "", metadata={"checkpoint": "sub/model.safetensors"})
    assert Elements(card_html(card, "checkpoints", "checkpoint")).tags[0][1]["data-checkpoint"] == \
        "sub/model.safetensors"
    grid = cards_html("txt2img", "lora", "network", [])
    assert 'id="txt2img_lora_cards"' in grid and "Nothing here" in grid
    assert "boom &lt;b&gt;" in cards_html("img2img", "lora", "network", [], "boom <b>")
    assert page_id("Lora") == "lora" and page_id("Hypernetworks v2!") == "hypernetworks_v2"


def test_metadata_view_sums_training_tags_and_names_the_base_model():
    tags = {"a": {"1girl": 2, "solo": 5}, "b": {"1girl": 4, EVIL: 1}}
    card = NetworkCard("film", "", path="/m/film.safetensors",
                       metadata={"ss_tag_frequency": json.dumps(tags), "ss_sd_model_name": "v1-5.ckpt",
                                 "ss_network_dim": "16", "ss_dataset_dirs": "{}", "long": "x" * 1000})
    text = metadata_html(card, {"ss_network_alpha": "8"})
    parsed = Elements(text)
    assert not [t for t, _ in parsed.tags if t in ("img", "script")]
    rows = [cell for cell in parsed.text if cell.strip()]
    tags_at = rows.index("Training tags")
    assert rows[tags_at + 1:tags_at + 7] == ["1girl", "6", "solo", "5", EVIL, "1"]
    assert "Base model" in rows and "v1-5.ckpt" in rows
    assert "ss_network_alpha" in rows and "ss_network_dim" in rows and "ss_dataset_dirs" not in rows
    assert "x" * 401 not in text


def small_ctx(tmp_path: Path, providers=()):
    paths = Paths.from_dirs(tmp_path / "data")
    for folder in (*paths.ckpt_dirs, paths.lora_dir, paths.embeddings_dir):
        folder.mkdir(parents=True, exist_ok=True)
    return SimpleNamespace(paths=paths, checkpoints=CheckpointRegistry(paths),
                           embeddings=EmbeddingDatabase(paths.embeddings_dir), extensions=None)


def test_core_pages_list_checkpoints_and_embeddings_with_previews_and_user_metadata(tmp_path):
    ctx = small_ctx(tmp_path)
    ckpt_dir = ctx.paths.ckpt_dirs[0]
    save_file({"w": torch.zeros(1)}, str(ckpt_dir / "alpha.safetensors"))
    (ckpt_dir / "alpha.png").write_bytes(b"png")
    (ckpt_dir / "alpha.json").write_text(json.dumps({"description": "my model"}))
    save_file({"emb_params": torch.zeros(1, 8)}, str(ctx.paths.embeddings_dir / "shiny.safetensors"))
    (ctx.paths.embeddings_dir / "shiny.json").write_text(json.dumps({"activation text": "glossy"}))
    ctx.checkpoints.refresh()
    ctx.embeddings.reload()
    checkpoints, embeddings = network_pages(ctx)
    [alpha] = checkpoints.cards()
    assert (alpha.name, alpha.prompt, alpha.description) == ("alpha", "", "my model")
    assert alpha.preview == str(ckpt_dir / "alpha.png")
    assert alpha.metadata["checkpoint"] == "alpha.safetensors"
    [shiny] = embeddings.cards()
    assert (shiny.name, shiny.prompt, shiny.preview) == ("shiny", "shiny, glossy", None)


def test_the_preview_route_serves_images_inside_model_folders_only(tmp_path):
    ctx = small_ctx(tmp_path)
    lora = ctx.paths.lora_dir
    good = lora / "film.preview.png"
    good.write_bytes(b"png")
    (lora / "film.safetensors").write_bytes(b"weights")
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"secret")
    (lora / "link.png").symlink_to(outside)
    assert allowed_preview(ctx, str(good)) == good.resolve()
    for refused in (lora / "film.safetensors", outside, lora / "link.png", f"{lora}/../../../secret.png",
                    lora / "missing.png", "/etc/passwd", "", "a\x00b.png"):
        assert allowed_preview(ctx, str(refused)) is None, refused
