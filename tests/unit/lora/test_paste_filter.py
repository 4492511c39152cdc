"""The core paste hook (api.add_paste_filter -> registry.run_paste_filters -> forms.values_from_infotext,
used by Paste and every send-to) with the LoRA extension's filter: an unknown tag whose `Lora hashes`
entry matches a local file comes back under the local name."""
from __future__ import annotations

import hashlib
import struct
from types import SimpleNamespace

import torch

from modules.extensions.loader import ExtensionLoader, ExtensionRoot, discover
from modules.extensions.registry import ExtensionRegistry
from modules.settings import Settings
from tests.fixtures.loras import write_lora
from tests.unit.lora.conftest import ROOT


def loaded_registry(tmp_path, extra_root=None):
    settings = Settings(tmp_path / "config.json")
    registry = ExtensionRegistry(settings)
    paths = SimpleNamespace(models_dir=tmp_path / "models", data_dir=tmp_path)
    loader = ExtensionLoader(registry, settings=settings, paths=paths,
                             flags=SimpleNamespace(lora_dir=str(tmp_path / "loras")), app_version="0.1.0")
    roots = [ExtensionRoot(ROOT / "extensions", builtin=True)] + ([ExtensionRoot(extra_root)] if extra_root else [])
    infos = [i for i in discover(roots) if i.name in ("lora", "bad-paste")]
    loader.load_all(infos)
    return registry


def test_paste_restores_a_renamed_lora_by_its_hash(tmp_path):
    from webui.ui import forms

    path = write_lora(tmp_path / "loras" / "sub" / "anna.safetensors",
                      {"lora_unet_x.lora_down.weight": torch.ones(2, 4), "lora_unet_x.lora_up.weight": torch.ones(4, 2)})
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    shorthash = hashlib.sha256(data[8 + length:]).hexdigest()[:12]
    registry = loaded_registry(tmp_path)
    text = (f"a girl <lora:anna_final:0.7>\nSteps: 4, Seed: 1, Size: 64x64, "
            f'Lora hashes: "anna_final: {shorthash}"')
    assert forms.values_from_infotext(text)["prompt"] == "a girl <lora:anna_final:0.7>"  # no filter: as written
    values = forms.values_from_infotext(text, paste_filter=registry.run_paste_filters)
    assert values["prompt"] == "a girl <lora:anna:0.7>"
    ctx = SimpleNamespace(extensions=SimpleNamespace(registry=registry))
    assert forms.paste_filter_of(ctx) == registry.run_paste_filters and forms.paste_filter_of(object()) is None


def test_a_raising_paste_filter_is_reported_and_the_paste_still_works(tmp_path):
    from webui.ui import forms

    ext = tmp_path / "user" / "bad-paste"
    ext.mkdir(parents=True)
    (ext / "extension.toml").write_text('name = "bad-paste"\n')
    (ext / "__init__.py").write_text("def setup(api):\n    api.add_paste_filter(lambda params: 1 / 0)\n")
    registry = loaded_registry(tmp_path, tmp_path / "user")
    values = forms.values_from_infotext("a cat\nSteps: 4, Seed: 1, Size: 64x64", paste_filter=registry.run_paste_filters)
    assert values["prompt"] == "a cat" and values["steps"] == 4
    assert any("ZeroDivisionError" in e for e in registry.errors.of("bad-paste"))
