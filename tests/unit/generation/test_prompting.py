"""Job prompts: `#` comments removed when the setting says so; the interim plain conditioning."""
from __future__ import annotations

from modules.generation.prompting import job_prompts, plain_conditioning
from modules.generation.runtime import GenerationEnv
from modules.generation.service import JobSettings
from modules.settings import Settings
from modules.types import GenerationRequest

REQUEST = GenerationRequest(prompt="a cat # fluffy one\n# a whole comment line\nblue sky",
                            negative_prompt="blurry # not sharp")


def test_comments_are_removed_by_default():
    assert job_prompts(REQUEST, GenerationEnv()) == ("a cat\nblue sky", "blurry")


def test_comments_stay_when_the_setting_is_off_for_this_job(tmp_path):
    settings = JobSettings(Settings(tmp_path / "config.json"), {"enable_prompt_comments": False})
    assert job_prompts(REQUEST, GenerationEnv(settings=settings)) == (REQUEST.prompt, REQUEST.negative_prompt)


def test_plain_conditioning_passes_strings_and_converts_clip_skip(tiny_sd15_pipe):
    cond = plain_conditioning(tiny_sd15_pipe, ["a"], ["b"], steps=4, clip_skip=2)
    assert cond.pipe_kwargs == {"prompt": ["a"], "negative_prompt": ["b"], "clip_skip": 1}
    assert cond.step_callback is None and cond.extra_params == {}
