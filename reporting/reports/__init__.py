"""One module per report; each exposes ``build_<name>(params, ctx) -> Report``."""
