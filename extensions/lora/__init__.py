"""Built-in LoRA extension: `<lora:NAME:WEIGHT>` tags (alias `<lyco:...>`), the browser's Lora page,
`Lora hashes` in infotext, `GET /sdapi/v1/loras` and `POST /sdapi/v1/refresh-loras`. See docs/lora.md.

setup() only registers: no folder is scanned and no file read until a tag, a card or the API needs one.
"""
from __future__ import annotations

from pathlib import Path

from .files import LoraLibrary
from .network import HASHES_LABEL, LoraNetwork, Settings

PREFERRED_NAMES = ("Alias from file", "Filename")


def lora_roots(api) -> tuple[Path, ...]:
    """models/Lora (or --lora-dir) then models/LyCORIS; a stem found in both is taken from the first."""
    lora_dir = api.flag("lora_dir")
    first = Path(lora_dir).expanduser() if lora_dir else api.models_dir / "Lora"
    return (first, api.models_dir / "LyCORIS")


def setup(api) -> None:
    api.add_setting("lora_preferred_name", "Alias from file", "When adding to prompt, refer to LoRA by",
                    section="Extra Networks", choices=PREFERRED_NAMES)
    api.add_setting("lora_add_hashes_to_infotext", True, "Add LoRA hashes to infotext", section="Extra Networks")
    api.add_setting("lora_cache_size", 4, "LoRAs kept loaded on the model (least recently used leave first)",
                    section="Extra Networks")
    api.add_setting("lora_fuse", False, "Fuse LoRAs into the weights for each batch (faster steps; the base "
                    "comes back within float rounding, not bit for bit)", section="Extra Networks")
    try:
        api.setting("extra_networks_default_multiplier")
    except Exception:  # the core does not have it (yet): ours, with A1111's key and default
        api.add_setting("extra_networks_default_multiplier", 1.0, "Default multiplier for extra networks",
                        section="Extra Networks")

    network = LoraNetwork(LoraLibrary(lora_roots(api)), Settings(api.setting))
    api.register_extra_network("lora", network, aliases=("lyco",))
    api.add_infotext_field(HASHES_LABEL)
    # info.params is the job's: a batch without tags (Prompt S/R, prompts from file) must not show the
    # hashes of the batch before it.
    api.on("before_batch", lambda batch, info: info.params.pop(HASHES_LABEL, None))

    def list_loras() -> list[dict]:
        return network.api_list()

    def refresh_loras() -> None:
        network.refresh()

    api.add_route("/sdapi/v1/loras", list_loras, methods=("GET",))
    api.add_route("/sdapi/v1/refresh-loras", refresh_loras, methods=("POST",))
    if hasattr(api, "add_paste_filter"):
        api.add_paste_filter(network.restore_names)
