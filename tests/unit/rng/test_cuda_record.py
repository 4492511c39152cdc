"""NV against CUDA torch.randn values recorded on a CUDA card by record_cuda_randn.py (when a session had one)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from modules.rng.philox import PhiloxGenerator

RECORD = Path(__file__).parent / "data" / "cuda_randn.json"


@pytest.mark.skipif(not RECORD.exists(), reason="no CUDA recording yet: run record_cuda_randn.py on a CUDA card")
def test_nv_equals_the_recorded_cuda_values_to_float32_precision():
    for case in json.loads(RECORD.read_text())["cases"]:
        generator = PhiloxGenerator(case["seed"])
        first, second = generator.randn(case["shape"]).ravel(), generator.randn(case["shape"]).ravel()
        for ours, key in ((first[:64], "first"), (second[:64], "second"), (first[-16:], "first_tail")):
            theirs = np.array([float.fromhex(v) for v in case[key]], dtype=np.float32)
            # float32 precision: a few ulps (CUDA's logf/sincosf are within 2 ulps of correctly rounded)
            assert np.allclose(ours, theirs, rtol=2.5e-7, atol=1e-6), (case["seed"], key)
