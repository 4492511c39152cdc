"""The demo model: a procedural shapes dataset, its training script and its evaluation (issue 16)."""
