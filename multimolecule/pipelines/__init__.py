"""Pipelines registered with transformers on `import multimolecule`: `rna-secondary-structure`."""

from transformers.pipelines import PIPELINE_REGISTRY

from .pairing import pairs_from_probabilities, release_threshold
from .release import ReleaseModel, pair_probabilities, pairing_logits
from .structure import RnaSecondaryStructurePipeline

PIPELINE_REGISTRY.register_pipeline(
    "rna-secondary-structure", pipeline_class=RnaSecondaryStructurePipeline, pt_model=ReleaseModel, type="text"
)

__all__ = [
    "ReleaseModel",
    "RnaSecondaryStructurePipeline",
    "pair_probabilities",
    "pairing_logits",
    "pairs_from_probabilities",
    "release_threshold",
]
