"""What a run says about its model, read from the card and site file alone: no interpreter.

The parent of ``pneumo score --workers N`` holds this and not a :class:`~.classifier.Classifier`:
each worker loads its own interpreter, and one more in the parent would sit idle beside them
for the whole run (about 60 MiB with the shipped model, ``benchmarks/score_memory.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .backends import get_backend
from .card import model_id, read_card
from .classifier import Options, resolve_model, scope_note
from .site import load_site, threshold_source


@dataclass(frozen=True)
class ModelInfo:
    id: str
    threshold: float
    threshold_source: str
    has_heatmap: bool
    scope: str  # what the commands say about the out-of-scope check

    def scope_note(self) -> str:
        """As :meth:`Classifier.scope_note`, so a run prints either alike."""
        return self.scope


def read_model_info(options: Options) -> ModelInfo:
    """The model ``options`` name, as a :class:`Classifier` built from them would describe it; raises
    the same errors for a missing model, card or site file, or a model that does not match its card."""
    path = get_backend(options.backend).model_file(resolve_model(options.model))
    card = read_card(path)
    site = load_site(options.site, card) if options.site else None
    return ModelInfo(id=model_id(card), threshold=site.threshold if site else float(card["threshold"]),
                     threshold_source=threshold_source(site), has_heatmap="cam" in card.get("outputs", {}),
                     scope=scope_note("scope" in card, options.allow_out_of_scope))
