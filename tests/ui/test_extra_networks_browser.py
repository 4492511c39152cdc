"""The extra-networks browser in a real browser, on one real server: the 🎴 button shows the panel with a page
per kind (Checkpoints, Textual Inversion, and a test extension's provider), search and sort run in the page,
clicking a card toggles its tag + activation text in the prompt, the metadata view shows training tags and
saves name.json beside the file, Refresh shows new files, a checkpoint card switches the model. The preview
route serves previews only."""
from __future__ import annotations

import json
import os
import shutil
from urllib.parse import quote

import pytest
import requests
import torch
from PIL import Image
from safetensors.torch import save_file

from modules.pipelines.demo import ensure_demo_checkpoint
from tests.helpers.server import start_server
from tests.ui.conftest import open_page, set_number, set_text, text_value

pytestmark = [pytest.mark.browser, pytest.mark.server]

EVIL = "<img src=x onerror=window.__pwned=1>${7*7}{{x}}"
TAGS = {"1_set": {"1girl": 10, "smile": 3}, "2_set": {"smile": 4, "film grain": 9}}

# A native extension with an extra-network page, written as the LoRA extension is: cards from a folder,
# each card's prompt `<lora:name:weight>` plus the activation text from the user metadata (name.json).
PROVIDER = '''
from pathlib import Path

from modules.extensions.api import NetworkCard, find_preview, read_user_metadata


class Nets:
    title = "Test networks"

    def __init__(self, folder):
        self.folder = Path(folder)
        self._cards = []
        self.refresh()

    def activate(self, pipe, calls, info):
        return None

    def refresh(self):
        cards = []
        for path in sorted(self.folder.glob("*.safetensors")):
            user = read_user_metadata(path)
            weight = user.get("preferred weight") or 1.0
            prompt = f"<lora:{path.stem}:{weight:g}>"
            if user.get("activation text"):
                prompt += " " + user["activation text"]
            preview = find_preview(path)
            cards.append(NetworkCard(
                name=path.stem, prompt=prompt, path=str(path), preview=str(preview) if preview else None,
                description=user.get("description", ""), search_terms=("alias-" + path.stem,),
                sort_keys={"name": path.stem.lower(), "path": str(path).lower(),
                           "date_created": int(path.stat().st_mtime),
                           "date_modified": int(path.stat().st_mtime)},
                user_metadata=user, negative_prompt=user.get("negative text", "")))
        self._cards = cards

    def cards(self):
        return list(self._cards)


def setup(api):
    api.register_extra_network("testnet", Nets(api.models_dir / "TestNets"))
'''


def network_file(path, metadata: dict[str, str] | None = None) -> None:
    save_file({"w": torch.zeros(2)}, str(path), metadata=metadata or {})


@pytest.fixture(scope="module")
def site(data_dir):
    models = data_dir / "models"
    ckpts = models / "Stable-diffusion"
    demo = ensure_demo_checkpoint(ckpts)
    shutil.copy(demo, ckpts / "second-model.safetensors")
    Image.new("RGB", (8, 8), "blue").save(ckpts / "second-model.preview.png")
    nets = models / "TestNets"
    nets.mkdir(parents=True, exist_ok=True)
    network_file(nets / "film.safetensors",
                 {"ss_tag_frequency": json.dumps(TAGS), "ss_sd_model_name": "v1-5.ckpt"})
    Image.new("RGB", (8, 8), "red").save(nets / "film.preview.png")
    (nets / "film.json").write_text(json.dumps({"preferred weight": 0.7, "activation text": "grainy film",
                                                "custom key": "kept"}))
    network_file(nets / f"{EVIL}.safetensors")
    network_file(nets / "zebra.safetensors")
    for age, name in enumerate(["film", EVIL, "zebra"]):  # film the newest: date order differs from names
        os.utime(nets / f"{name}.safetensors", (1_700_000_000 - age * 1000,) * 2)
    # For the built-in LoRA extension's own page (extensions/lora): a file it lists, with user metadata.
    lora = models / "Lora"
    lora.mkdir(parents=True)
    network_file(lora / "watercolor.safetensors", {"ss_tag_frequency": json.dumps({"x": {"wet paint": 3}})})
    (lora / "watercolor.json").write_text(json.dumps({"activation text": "wet paint"}))
    (data_dir / "embeddings").mkdir(exist_ok=True)
    save_file({"emb_params": torch.zeros(1, 64)}, str(data_dir / "embeddings" / "shiny.safetensors"))
    ext = data_dir / "extensions" / "testnets"
    ext.mkdir(parents=True)
    (ext / "extension.toml").write_text('name = "testnets"\n')
    (ext / "__init__.py").write_text(PROVIDER)
    outside = data_dir.parent / f"{data_dir.name}-outside.png"
    Image.new("RGB", (4, 4)).save(outside)
    srv = start_server(["--data-dir", str(data_dir), "--ckpt", str(demo), "--no-download-sd-model"], data_dir)
    yield {"server": srv, "nets": nets, "ckpts": ckpts, "outside": outside}
    srv.stop()


@pytest.fixture(scope="module")
def page(site):
    """One page load for the module (a load costs seconds here); the tests run in order on it."""
    from tests.helpers.browser import chromium_page

    with chromium_page() as page:
        open_page(page, site["server"].url)
        yield page


def open_networks(page, network_page: str) -> None:
    if not page.is_visible("#txt2img_extra_tabs"):
        page.click("#txt2img_extra_networks")
        page.wait_for_selector("#txt2img_extra_tabs", state="visible")
    page.click(f"#txt2img_{network_page}-button")
    page.wait_for_selector(f"#txt2img_{network_page}_cards .card", state="visible")


def visible_names(page, network_page: str) -> list[str]:
    return page.evaluate("""(id) => [...document.querySelectorAll('#' + id + ' > .card')]
        .filter((c) => c.style.display !== 'none').map((c) => c.dataset.name)""",
                         f"txt2img_{network_page}_cards")


def test_panel_pages_escaping_and_previews(page, site):
    assert not page.is_visible("#txt2img_extra_tabs")
    # Every page's tab exists from the page load (A1111 ids), the panel shows on the 🎴 button.
    for pid in ("checkpoints", "textual_inversion", "testnet"):
        assert page.locator(f"#txt2img_{pid}-button").count() == 1
        assert page.locator(f"#img2img_{pid}").count() == 1
    open_networks(page, "testnet")
    assert visible_names(page, "testnet") == [EVIL, "film", "zebra"]
    # The hostile file name is text: no element from it, nothing ran, no template was evaluated.
    grid = page.locator("#txt2img_testnet_cards")
    assert grid.locator("img[src=x]").count() == 0
    assert page.evaluate("() => window.__pwned") is None
    assert EVIL in grid.inner_text()
    # film has its preview (served by the thumb route); zebra the placeholder.
    film = grid.locator(".card[data-name=film] img.preview")
    page.wait_for_function("(el) => el.complete && el.naturalWidth === 8", arg=film.element_handle())
    assert grid.locator(".card[data-name=zebra] .no-preview").count() == 1


def test_preview_route_serves_previews_only(site):
    url = site["server"].url + "/sd_extra_networks/thumb?filename="
    nets = site["nets"]
    ok = requests.get(url + quote(str(nets / "film.preview.png")), timeout=10)
    assert ok.status_code == 200 and ok.headers["content-type"] == "image/png"
    for refused in (nets / "film.safetensors", nets / "film.json", site["outside"], "/etc/passwd",
                    f"{nets}/../../../{site['outside'].name}"):
        assert requests.get(url + quote(str(refused)), timeout=10).status_code == 404, refused


def test_search_sort_and_click_toggles_the_tag(page):
    open_networks(page, "testnet")
    page.fill("#txt2img_testnet_extra_search", "alias-fi")
    page.wait_for_function("() => document.querySelector('#txt2img_testnet_cards .card[data-name=zebra]')"
                           ".style.display === 'none'")
    assert visible_names(page, "testnet") == ["film"]
    page.fill("#txt2img_testnet_extra_search", "")
    page.click("#txt2img_testnet_extra_sort_dir")
    assert visible_names(page, "testnet") == ["zebra", "film", EVIL]
    page.select_option("#txt2img_testnet_extra_sort", "date_modified")  # still descending: newest first
    page.wait_for_function("(id) => document.querySelector('#' + id + ' > .card').dataset.name === 'film'",
                           arg="txt2img_testnet_cards")
    assert visible_names(page, "testnet") == ["film", EVIL, "zebra"]

    set_text(page, "txt2img_prompt", "a house")
    counter = page.inner_text("#txt2img_token_counter")
    page.click("#txt2img_testnet_cards .card[data-name=film] .name")
    assert text_value(page, "txt2img_prompt") == "a house, <lora:film:0.7> grainy film"
    # Gradio saw the new value: the token counter counts it.
    page.wait_for_function("(before) => document.querySelector('#txt2img_token_counter').innerText"
                           " !== before", arg=counter)
    page.click("#txt2img_testnet_cards .card[data-name=film] .name")  # again: taken out
    assert text_value(page, "txt2img_prompt") == "a house"


def test_metadata_view_saves_user_metadata_that_the_next_click_uses(page, site):
    open_networks(page, "testnet")
    page.click("#txt2img_testnet_cards .card[data-name=film] .metadata-button")
    page.wait_for_selector("#txt2img_extra_networks_meta_info .extra-network-tags", state="visible")
    rows = page.locator("#txt2img_extra_networks_meta_info .extra-network-tags tr").all_inner_texts()
    assert [r.split("\t") for r in rows][:3] == [["1girl", "10"], ["film grain", "9"], ["smile", "7"]]
    assert "v1-5.ckpt" in page.inner_text("#txt2img_extra_networks_meta_info")
    assert text_value(page, "txt2img_extra_networks_activation") == "grainy film"
    set_text(page, "txt2img_extra_networks_activation", "sepia tone")
    set_text(page, "txt2img_extra_networks_notes", "my notes")
    set_text(page, "txt2img_extra_networks_negative", "blurry")
    set_number(page, "txt2img_extra_networks_weight", 0.5)
    page.click("#txt2img_extra_networks_save")
    page.wait_for_selector("#txt2img_extra_networks_meta_status:has-text('Saved film.json')")
    saved = json.loads((site["nets"] / "film.json").read_text())
    assert saved["activation text"] == "sepia tone" and saved["preferred weight"] == 0.5
    assert saved["notes"] == "my notes" and saved["custom key"] == "kept" and saved["negative text"] == "blurry"
    set_text(page, "txt2img_prompt", "")
    set_text(page, "txt2img_neg_prompt", "ugly")
    page.wait_for_selector("#txt2img_testnet_cards .card[data-name=film]"
                           "[data-prompt='<lora:film:0.5> sepia tone']", state="attached")
    page.click("#txt2img_testnet_cards .card[data-name=film] .name")
    assert text_value(page, "txt2img_prompt") == "<lora:film:0.5> sepia tone"
    assert text_value(page, "txt2img_neg_prompt") == "ugly, blurry"


def test_refresh_lists_new_files_and_other_pages_insert_or_select(page, site):
    network_file(site["nets"] / "rain.safetensors")
    open_networks(page, "testnet")
    page.click("#txt2img_testnet_extra_refresh")
    page.wait_for_selector("#txt2img_testnet_cards .card[data-name=rain]", state="visible")

    page.click("#txt2img_textual_inversion-button")
    set_text(page, "txt2img_prompt", "")
    page.click("#txt2img_textual_inversion_cards .card[data-name=shiny] .name")
    assert text_value(page, "txt2img_prompt") == "shiny"

    page.click("#txt2img_checkpoints-button")
    card = page.locator("#txt2img_checkpoints_cards .card[data-name=second-model]")
    card.locator("img.preview").wait_for(state="visible")
    card.locator(".name").click()
    page.wait_for_function("() => document.querySelector('#setting_sd_model_checkpoint input').value"
                           ".startsWith('second-model')", timeout=60_000)


def test_the_lora_extension_has_its_page_of_real_cards(page):
    open_networks(page, "lora")
    set_text(page, "txt2img_prompt", "")
    page.click("#txt2img_lora_cards .card[data-name=watercolor] .name")
    assert text_value(page, "txt2img_prompt") == "<lora:watercolor:1> wet paint"
    page.click("#txt2img_lora_cards .card[data-name=watercolor] .metadata-button")
    page.wait_for_selector("#txt2img_extra_networks_meta_info .extra-network-metadata[data-name=watercolor]"
                           " .extra-network-tags", state="visible")
    assert "wet paint" in page.inner_text("#txt2img_extra_networks_meta_info .extra-network-tags")


def test_img2img_has_its_own_panel_inserting_into_its_prompt(page):
    page.click("#tab_img2img-button")
    page.click("#img2img_extra_networks")
    page.click("#img2img_textual_inversion-button")
    page.wait_for_selector("#img2img_textual_inversion_cards .card[data-name=shiny]", state="visible")
    set_text(page, "img2img_prompt", "a cat")
    page.click("#img2img_textual_inversion_cards .card[data-name=shiny] .name")
    assert text_value(page, "img2img_prompt") == "a cat, shiny"
    assert text_value(page, "txt2img_prompt") != "a cat, shiny"
