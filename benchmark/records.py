"""Records that cross module boundaries and must stay importable without torch."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ModelInfo:
    """Provenance recorded in the results document's `model` block."""
    id: str
    revision: str | None
    kind: str
    architecture: str
    n_parameters: int
    dtype: str
    chat_template_sha256: str | None
    license: str | None = None
    head: str = "trained"
    input_format: str | None = None    # chat_template | text_pair | plain_text (None: the adapter's own)
    extra: dict = field(default_factory=dict)
