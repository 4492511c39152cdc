"""What a client of the mounted Gradio UI can read and write on the server, over plain HTTP as a hostile page
would: an event naming a server file instead of an upload must not reach Gradio's cache (where
/gradio_api/file= serves it), uploads have a size limit, and with --listen the batch-from-directory inputs
stay inside the data dir unless --enable-insecure-extension-access."""
from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import requests
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from tests.helpers.server import start_server
from tests.ui.gradio_http import GradioPage, file_data, output_text, result_of

pytestmark = [pytest.mark.server]

# (trigger elem_id, event, input elem_id, list-valued input): every file input a page event takes.
FILE_INPUTS = [
    ("pnginfo_image", "change", "pnginfo_image", False),
    ("img2img_generate", "click", "img2img_image", False),
    ("extras_generate", "click", "extras_image", False),
    ("extras_generate", "click", "extras_image_batch", True),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A --listen server whose Gradio cache is a folder we can search."""
    root = tmp_path_factory.mktemp("file-access")
    data, cache, elsewhere = root / "data", root / "gradio-cache", root / "elsewhere"
    for folder in (data, cache, elsewhere):
        folder.mkdir()
    server = start_server(["--data-dir", str(data), "--no-download-sd-model", "--listen"], root,
                          env={"GRADIO_TEMP_DIR": str(cache)})
    yield {"server": server, "data": data, "cache": cache, "elsewhere": elsewhere}
    server.stop()


def private_files(folder: Path) -> tuple[Path, Path]:
    """A secret text file and a PNG with private parameters, new content each call, outside data and cache."""
    token = secrets.token_hex(8)
    secret = folder / f"secret-{token}.txt"
    secret.write_bytes(f"top secret {token}".encode())
    info = PngInfo()
    info.add_text("parameters", f"private prompt {token}\nSteps: 5, Seed: 1")
    picture = folder / f"private-{token}.png"
    Image.new("RGB", (16, 16), "red").save(picture, pnginfo=info)
    return secret, picture


def cached_copies(cache: Path, content: bytes) -> list[Path]:
    return [p for p in cache.rglob("*") if p.is_file() and p.read_bytes() == content]


@pytest.mark.parametrize("trigger,event,target,as_list", FILE_INPUTS,
                         ids=[f"{t}-{i}" for t, _, i, _ in FILE_INPUTS])
def test_an_event_naming_a_server_file_is_refused(site, trigger, event, target, as_list):
    url = site["server"].url
    page = GradioPage(url)
    dep = page.dependency(trigger, event)
    secret, picture = private_files(site["elsewhere"])
    for path in (secret, picture):
        data = page.default_inputs(dep)
        payload = file_data(str(path))
        page.set_input(dep, data, target, [payload] if as_list else payload)
        message = page.run(dep, data)
        content = path.read_bytes()
        # The exploit: the named file is copied into Gradio's cache, and the cache is served to anyone.
        served = [p for p in cached_copies(site["cache"], content)
                  if requests.get(f"{url}/gradio_api/file={p}", timeout=10).content == content]
        assert not served, f"{path.name} was copied into the Gradio cache and served: {served}"
        assert not cached_copies(site["cache"], content)
        text = output_text(message)
        assert "private prompt" not in text and str(site["cache"]) not in text
    # Never served straight from where it lies either.
    assert requests.get(f"{url}/gradio_api/file={secret}", timeout=10).status_code in (403, 404)


def test_a_real_upload_still_works(site):
    url = site["server"].url
    page = GradioPage(url)
    _, picture = private_files(site["elsewhere"])
    uploaded = requests.post(f"{url}/gradio_api/upload", timeout=30,
                             files={"files": ("mine.png", picture.read_bytes(), "image/png")}).json()
    dep = page.dependency("pnginfo_image", "change")
    message = page.run(dep, [file_data(uploaded[0], "mine.png")])
    assert message["success"] and "private prompt" in result_of(message)[1]


def test_uploads_have_a_size_limit(site):
    page = GradioPage(site["server"].url)
    assert page.config["max_file_size"] == 200 * 2**20



def batch_page(url: str, subtab: str) -> GradioPage:
    """A page session with a batch sub-tab selected (the tab's select event sets the mode on the server)."""
    page = GradioPage(url)
    assert page.run(page.dependency(subtab, "select"), [])["success"]
    return page


def img2img_batch(page: GradioPage, folders: dict[str, str]) -> dict:
    dep = page.dependency("img2img_generate", "click")
    data = page.default_inputs(dep)
    for elem_id, value in {"img2img_width": 64, "img2img_height": 64, "img2img_steps": 1, **folders}.items():
        page.set_input(dep, data, elem_id, value)
    return page.run_job(dep, data, timeout=120)


def last_log(message: dict) -> str:
    """The message line under the gallery (html_log_*) of a job's shown result (output.show_result)."""
    return result_of(message)[3] or ""


def test_img2img_batch_folders_outside_the_data_dir_are_refused_with_listen(site):
    outside_in, outside_out = site["elsewhere"] / "batch-in", site["elsewhere"] / "batch-out"
    outside_in.mkdir(exist_ok=True)
    Image.new("RGB", (64, 64), "green").save(outside_in / "one.png")
    inside_in = site["data"] / "batch-in"
    inside_in.mkdir(exist_ok=True)
    Image.new("RGB", (64, 64), "green").save(inside_in / "one.png")
    cases = [
        {"img2img_batch_input_dir": str(outside_in), "img2img_batch_output_dir": ""},
        {"img2img_batch_input_dir": str(inside_in), "img2img_batch_output_dir": str(outside_out)},
        {"img2img_batch_input_dir": str(inside_in), "img2img_batch_output_dir": "batch-out",
         "img2img_batch_inpaint_mask_dir": str(outside_in)},
    ]
    for folders in cases:
        log = last_log(img2img_batch(batch_page(site["server"].url, "img2img_batch_tab"), folders))
        assert "outside the data folder" in log, (folders, log)
        assert "--enable-insecure-extension-access" in log
        assert "Processed" not in log
    assert not outside_out.exists()
    # Inside the data dir (relative names are inside it) the batch runs.
    relative = {"img2img_batch_input_dir": "batch-in", "img2img_batch_output_dir": "batch-out"}
    log = last_log(img2img_batch(batch_page(site["server"].url, "img2img_batch_tab"), relative))
    assert "Processed 1 of 1" in log, log
    assert (site["data"] / "batch-out" / "one.png").exists()


def test_extras_batch_from_a_folder_outside_the_data_dir_is_refused_with_listen(site):
    outside = site["elsewhere"] / "extras-in"
    outside.mkdir(exist_ok=True)
    Image.new("RGB", (32, 32), "yellow").save(outside / "two.png")
    page = batch_page(site["server"].url, "extras_batch_directory_tab")
    dep = page.dependency("extras_generate", "click")
    for folders in ({"extras_batch_input_dir": str(outside)},
                    {"extras_batch_input_dir": "batch-in", "extras_batch_output_dir": str(outside / "out")}):
        data = page.default_inputs(dep)
        page.set_input(dep, data, "extras_upscaling_resize", 1)
        for elem_id, value in folders.items():
            page.set_input(dep, data, elem_id, value)
        log = last_log(page.run_job(dep, data, timeout=120))
        assert "outside the data folder" in log, (folders, log)
    assert not (outside / "out").exists()
    assert not list((site["data"] / "outputs").rglob("two*.png"))
