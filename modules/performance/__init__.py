"""Speed options of issue 17, one file each: torch.compile of the UNet (compile.py), precision (dtype.py),
channels-last (channels_last.py), VAE tiling/slicing (vae.py), token merging (tome.py); options.py reads them
from the settings and folds them into the MemoryPolicy the pipeline is placed with (docs/performance.md)."""
