"""The runtime: one process serves one model (a diffusers pipeline or a transformers model)."""
