"""The built-in classic-scripts extension (X/Y/Z plot, Prompt matrix, Prompts from file or textbox) run
through the A1111 adapter with a fake core generation: what each script asks the core to generate and
what it returns (grids with labels, per-image prompts and seeds)."""
from __future__ import annotations

from PIL import Image

from modules.a1111.processing import Processed, StableDiffusionProcessingTxt2Img, result_from_processed


def test_a_processed_grid_first_becomes_the_results_grid():
    p = StableDiffusionProcessingTxt2Img(prompt="x")
    grid, a, b = (Image.new("RGB", (8, 8), c) for c in ("white", "red", "blue"))
    processed = Processed(p, [grid, a, b], seed=5, info="grid info", all_prompts=["pa", "pb"], all_seeds=[5, 6],
                          infotexts=["grid info", "info a", "info b"], index_of_first_image=1)
    result = result_from_processed(processed)
    assert result.grid is grid
    assert result.images == [a, b]
    assert result.infotexts == ["info a", "info b"]
    assert result.all_prompts == ["pa", "pb"] and result.all_seeds == [5, 6]
    assert result.extra["grid_infotext"] == "grid info"
    # A script that made no grid keeps every image.
    plain = result_from_processed(Processed(p, [a, b], infotexts=["ia", "ib"]))
    assert plain.grid is None and plain.images == [a, b] and plain.infotexts == ["ia", "ib"]
