"""Native extension hooks around a real generation (tiny SD 1.5 single file): infotext params, per-batch
prompts, image replacement, pipeline patch entered and restored, steps, and contained failures."""
from __future__ import annotations

from modules.generation.service import submit_generation
from modules.images.infotext import parse_infotext
from modules.types import GenerationRequest
from tests.integration.conftest import WAIT

REQUEST = GenerationRequest(prompt="a red house", seed=5, width=64, height=64, steps=3, batch_size=2,
                            save_images=False)

HOOKS_EXT = {
    "extension.toml": 'name = "hooker"\nversion = "0.1"\n',
    "__init__.py": '''
        import contextlib

        SEEN = {"steps": 0, "patched": [], "batches": []}

        def setup(api):
            api.on("before_generation", lambda request, info: info.params.update({"Hooked": "yes"}))
            api.on("before_batch", before_batch)
            api.on("after_image", after_image)
            api.on("on_step", lambda step, info: SEEN.__setitem__("steps", SEEN["steps"] + 1))
            api.on("patch_pipeline", patch)
            api.on("after_generation", lambda result, info: info.warnings.append("hooker was here"))

        def after_image(image, image_info, info):
            from PIL import Image
            if image_info.index == 1:  # the second image becomes plain red
                return Image.new("RGB", image.size, (255, 0, 0))
            return None

        def before_batch(batch, info):
            SEEN["batches"].append(list(batch.prompts))
            batch.prompts[:] = [p + ", at night" for p in batch.prompts]

        @contextlib.contextmanager
        def patch(pipe, request, info):
            SEEN["patched"].append("in")
            pipe._hooker_marker = True
            try:
                yield
            finally:
                del pipe._hooker_marker
                SEEN["patched"].append("out")
    ''',
}


def hooker_module():
    import sys

    return sys.modules["webui_extensions.hooker"]


def test_hooks_shape_the_generation_and_its_infotext(make_ctx):
    ctx = make_ctx({"hooker": HOOKS_EXT})
    job = submit_generation(ctx, REQUEST)
    result = job.wait_result(WAIT)
    assert job.state == "done", job.error
    seen = hooker_module().SEEN
    params = parse_infotext(result.infotexts[0])
    assert params["Hooked"] == "yes"
    assert params["Prompt"] == "a red house, at night" and result.all_prompts == ["a red house, at night"] * 2
    assert seen["batches"] == [["a red house", "a red house"]]
    assert seen["patched"] == ["in", "out"] and not hasattr(ctx.pipelines.current.pipe, "_hooker_marker")
    assert seen["steps"] >= 3
    assert "hooker was here" in result.warnings
    assert result.images[1].getcolors() == [(64 * 64, (255, 0, 0))]
    assert result.images[0].getcolors() is None or len(result.images[0].getcolors()) > 1


BROKEN_EXT = {
    "extension.toml": 'name = "broken"\n',
    "__init__.py": '''
        def setup(api):
            api.on("before_batch", lambda batch, info: 1 / 0)
    ''',
}


def test_a_failing_hook_is_reported_and_the_image_still_made(make_ctx):
    ctx = make_ctx({"broken": BROKEN_EXT})
    job = submit_generation(ctx, REQUEST)
    result = job.wait_result(WAIT)
    assert job.state == "done", job.error
    assert len(result.images) == 2
    assert "ZeroDivisionError" in ctx.extensions.errors.of("broken")[0]


def test_a_failing_hook_of_an_extension_the_request_asked_for_fails_the_job_with_its_name(make_ctx):
    ctx = make_ctx({"broken": BROKEN_EXT})
    job = submit_generation(ctx, REQUEST.with_changes(extensions={"broken": {"args": []}}))
    job.wait(WAIT)
    assert job.state == "failed" and "broken" in job.error and "before_batch" in job.error


def test_disabled_extensions_do_not_load(make_ctx):
    ctx = make_ctx({"hooker": HOOKS_EXT}, "--disable-extra-extensions")
    assert ctx.extensions.info("hooker").status == "disabled"
    result = submit_generation(ctx, REQUEST).wait_result(WAIT)
    assert "Hooked" not in parse_infotext(result.infotexts[0])


NETWORK_EXT = {
    "extension.toml": 'name = "films"\n',
    "__init__.py": '''
        import contextlib

        CALLS = []

        class Film:
            def activate(self, pipe, calls, info):
                CALLS.append([(c.positional, c.named) for c in calls])

                @contextlib.contextmanager
                def active():
                    pipe._film_active = True
                    try:
                        yield
                    finally:
                        del pipe._film_active
                return active()

        def setup(api):
            api.register_extra_network("film", Film(), aliases=("movie",))
    ''',
}


def test_extra_network_tags_go_to_their_provider_and_never_to_the_text_encoder(make_ctx):
    import sys

    import numpy as np

    ctx = make_ctx({"films": NETWORK_EXT})
    plain = generate_one(ctx, "a red house")
    tagged = generate_one(ctx, "a red house <film:grain:0.5:te=1>")
    unknown = generate_one(ctx, "a red house <nosuchnet:1>")
    calls = sys.modules["webui_extensions.films"].CALLS
    assert calls == [[(["grain", "0.5"], {"te": "1"})]]
    assert not hasattr(ctx.pipelines.current.pipe, "_film_active")  # deactivated after the batch
    # The provider changed nothing, so an image without the tag's words is what the encoder saw.
    for result in (tagged, unknown):
        assert np.array_equal(np.asarray(result.images[0]), np.asarray(plain.images[0]))
    assert parse_infotext(tagged.infotexts[0])["Prompt"] == "a red house <film:grain:0.5:te=1>"
    assert any("nosuchnet" in w for w in unknown.warnings)


def generate_one(ctx, prompt: str):
    job = submit_generation(ctx, REQUEST.with_changes(prompt=prompt, batch_size=1))
    result = job.wait_result(WAIT)
    assert job.state == "done", job.error
    return result


UPSCALER_EXT = {
    "extension.toml": 'name = "tiles"\n',
    "__init__.py": '''
        def setup(api):
            api.register_upscaler("Checker x2", lambda image, factor: image.resize(
                (image.width * 2, image.height * 2), 0).rotate(180))
    ''',
}


def test_an_extension_upscaler_is_listed_and_used_by_extras(make_ctx):
    from PIL import Image

    from modules.postprocessing import ExtrasRequest, registry_for, run_extras

    ctx = make_ctx({"tiles": UPSCALER_EXT})
    registry = registry_for(ctx)
    assert "Checker x2" in registry.names()
    image = Image.new("RGB", (8, 8), (0, 0, 0))
    image.putpixel((0, 0), (255, 255, 255))
    request = ExtrasRequest(images=(("one", image),), upscaling_resize=2, upscaler_1="Checker x2")
    out = run_extras(ctx, request).images[0]
    assert out.size == (16, 16)
    assert out.getpixel((15, 15)) == (255, 255, 255) and out.getpixel((0, 0)) == (0, 0, 0)  # rotated: ours ran
