"""Random numbers for generation: the A1111 noise sources (GPU, CPU, NV), per-image noise streams with
variation seeds and seed resize, and the scope that hands diffusers our noise for one pipeline call.

philox.py     Philox4x32-10 and torch's CUDA randn mapping, on the CPU (the "NV" source)
sources.py    RngConfig (source, ENSD, device) and one generator per seed for each source
image_rng.py  ImageRNG: one noise stream per image (first noise with variation/resize, then step noise)
diffusers_noise.py  routes diffusers' randn_tensor to an ImageRNG for one call (thread-scoped)
"""
