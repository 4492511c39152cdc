"""torch.compile of the UNet: compiled in place once per model, shapes dynamic (a new size does not compile
again), and a compiler failure falls back to eager with one warning instead of failing the job."""
from __future__ import annotations

import logging

import pytest
import torch

from modules.performance.compile import compile_unet, is_compiled, uncompile_unet


class Small(torch.nn.Module):
    """A conv block standing in for the UNet: dynamo traces it in well under a second."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, sample, scale):
        return torch.nn.functional.silu(self.conv(sample)) * scale


def no_compiler(graph_module, example_inputs):
    raise RuntimeError("InvalidCxxCompiler: no working C++ compiler found")


def test_a_compiler_failure_runs_eagerly_with_one_warning(caplog):
    module = Small()
    x = torch.randn(1, 4, 8, 8)
    expected = module(x, 2.0)
    assert compile_unet(module, backend=no_compiler) and is_compiled(module)
    with caplog.at_level(logging.WARNING, logger="modules.performance.compile"):
        first = module(x, 2.0)
        second = module(torch.randn(1, 4, 16, 8), 2.0)
    assert torch.equal(first, expected) and second.shape == (1, 4, 16, 8)
    warnings = [r.getMessage() for r in caplog.records if "torch.compile" in r.getMessage()]
    assert len(warnings) == 1 and "running it uncompiled" in warnings[0] and "no working C++" in warnings[0]
    assert not is_compiled(module)


def test_an_error_of_the_model_itself_is_not_swallowed():
    module = Small()
    compile_unet(module, backend="eager")
    with pytest.raises(RuntimeError):
        module(torch.randn(1, 3, 8, 8), 1.0)  # 3 channels into a 4-channel conv


def counting_backend() -> tuple[list, object]:
    """(graphs dynamo handed over, a backend that records each and runs it as traced), dynamo's cache reset."""
    import torch._dynamo

    torch._dynamo.reset()
    captured = []

    def counting(graph_module, example_inputs):
        captured.append(graph_module)
        return graph_module.forward

    return captured, counting


def test_compiled_once_with_dynamic_sizes_and_the_same_numbers():
    module = Small()
    captured, counting = counting_backend()
    assert compile_unet(module, backend=counting)
    handle = module._compiled_call_impl
    assert compile_unet(module, backend=counting) and module._compiled_call_impl is handle  # once per model
    eager = Small()
    graphs = []
    for size in ((8, 8), (8, 8), (16, 16), (16, 24), (32, 8), (40, 24)):
        x = torch.randn(2, 4, *size)
        assert torch.allclose(module(x, 1.5), eager(x, 1.5), atol=1e-6)
        graphs.append(len(captured))
    # dynamic=True and no "duck sizing" (equal sizes at the first call one symbol): one graph for every size,
    # square or not; a static compile would add one per size, duck sizing one at the first non-square size.
    assert graphs == [1, 1, 1, 1, 1, 1]
    uncompile_unet(module)
    assert not is_compiled(module)


class WithText(torch.nn.Module):
    """Latents and prompt embeddings whose rows the model combines, as the UNet's cross-attention does."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, sample, encoder_hidden_states):
        return self.conv(sample) * encoder_hidden_states.mean(dim=(1, 2)).view(-1, 1, 1, 1)


def test_a_latent_side_equal_to_the_text_width_does_not_tie_them():
    # The tiny test UNets at 64x64 have 32x32 latents and 32-wide prompt embeddings; with duck sizing the two
    # were one symbol, and the next size compiled the UNet again (137 s on a CPU for the tiny model).
    module = WithText()
    captured, counting = counting_backend()
    compile_unet(module, backend=counting)
    for side, rows in ((32, 2), (64, 2), (48, 1), (48, 2)):
        x, text = torch.randn(rows, 4, side, side), torch.randn(rows, 77, 32)
        assert torch.allclose(module(x, text), WithText()(x, text), atol=1e-6)
    # 2 graphs: a batch of 1 is always a graph of its own (dynamo specialises sizes 0 and 1)
    assert len(captured) == 2


def test_duck_sizing_is_off_only_while_a_compiled_call_runs_even_when_calls_overlap():
    # torch's setting is process-wide: two jobs' calls that overlap (A starts, B starts, A ends, B ends) must
    # leave it off until B ends and then as it was; a plain patch per call would restore it at A's end, or
    # leave it off for good when B's patch saved A's value.
    from torch.fx.experimental import _config as fx_config

    from modules.performance.compile import _DuckSizingOff

    guard, default = _DuckSizingOff(), fx_config.use_duck_shape
    guard.__enter__()  # A
    guard.__enter__()  # B
    assert fx_config.use_duck_shape is False
    guard.__exit__(None, None, None)  # A ends
    assert fx_config.use_duck_shape is False
    guard.__exit__(None, None, None)  # B ends
    assert fx_config.use_duck_shape is default is True
    module = Small()
    compile_unet(module, backend=counting_backend()[1])
    module(torch.randn(1, 4, 8, 8), 1.0)
    assert fx_config.use_duck_shape is True


def test_a_timestep_viewed_from_the_schedule_does_not_compile_again_at_another_step_count():
    # The pipelines pass `timesteps[i]`, a view whose base is the whole schedule. Dynamo guards on that base;
    # with as many steps as UNet rows at the first call it tied the two sizes together, and the next job
    # with another step count compiled the UNet a second time (seen on the demo model: 35 s more on a CPU).
    module = Small()
    captured, counting = counting_backend()
    compile_unet(module, backend=counting)
    x = torch.randn(2, 4, 8, 8)  # 2 rows: cond and uncond
    for steps in (2, 2, 3, 5, 20):
        schedule = torch.linspace(999.0, 0.0, steps)
        for t in schedule[:2]:
            assert torch.allclose(module(x, t), Small()(x, t), atol=1e-6)
    assert len(captured) == 1


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="reduce-overhead"):
        compile_unet(Small(), mode="fastest")
