"""Run on a CUDA machine (not collected by pytest): records CUDA `torch.randn` for a few seeds and shapes into
tests/unit/rng/data/cuda_randn.json and prints how far the NV source is from it (max abs, max ulps).

    python tests/unit/rng/record_cuda_randn.py            # record + compare
test_cuda_record.py then checks NV against the recorded values on any machine.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from modules.rng.philox import PhiloxGenerator  # noqa: E402

CASES = [(0, (4, 64, 64)), (1, (4, 96, 128)), (42, (3, 4)), (31337, (4, 128, 128)), (2**32 + 5, (4, 8, 8))]
OUT = Path(__file__).parent / "data" / "cuda_randn.json"


def main() -> None:
    props = torch.cuda.get_device_properties(0)
    records = []
    for seed, shape in CASES:
        generator = torch.Generator("cuda").manual_seed(seed)
        first = torch.randn(shape, generator=generator, device="cuda").cpu().numpy()
        second = torch.randn(shape, generator=generator, device="cuda").cpu().numpy()
        nv = PhiloxGenerator(seed)
        ours = np.stack([nv.randn(shape), nv.randn(shape)])
        theirs = np.stack([first, second])
        ulps = np.abs(ours.view(np.int32).astype(np.int64) - theirs.view(np.int32).astype(np.int64)).max()
        print(f"seed {seed} {shape}: max abs {np.abs(ours - theirs).max():.3g}, max ulps {ulps}")
        # the first 64 values of each draw, bit-exact as hex floats, are enough to check anywhere
        records.append({"seed": seed, "shape": list(shape),
                        "first": [float(v).hex() for v in first.ravel()[:64]],
                        "second": [float(v).hex() for v in second.ravel()[:64]],
                        "first_tail": [float(v).hex() for v in first.ravel()[-16:]]})
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"device": props.name, "torch": torch.__version__, "cases": records}, indent=1))
    print("wrote", OUT)


if __name__ == "__main__":
    main()
