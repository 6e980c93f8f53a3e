"""MultiMolecule's Auto classes, and the registration of each family with transformers' own."""

from __future__ import annotations

from collections import OrderedDict

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForPreTraining,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizer,
)
from transformers.models.auto.auto_factory import _BaseAutoModelClass, _LazyAutoMapping
from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

from .configuration_utils import MultiMoleculeConfig

# transformers has no Auto class for these tasks; _LazyAutoMapping over an empty name table holds only
# what families register (private API, hence the pinned transformers major in pyproject.toml).


class AutoModelForSequencePrediction(_BaseAutoModelClass):
    """The family's `...ForSequencePrediction` for a checkpoint or config."""

    _model_mapping = _LazyAutoMapping(CONFIG_MAPPING_NAMES, OrderedDict())


class AutoModelForTokenPrediction(_BaseAutoModelClass):
    """The family's `...ForTokenPrediction` for a checkpoint or config."""

    _model_mapping = _LazyAutoMapping(CONFIG_MAPPING_NAMES, OrderedDict())


class AutoModelForContactPrediction(_BaseAutoModelClass):
    """The family's `...ForContactPrediction` for a checkpoint or config."""

    _model_mapping = _LazyAutoMapping(CONFIG_MAPPING_NAMES, OrderedDict())


class AutoModelForSecondaryStructurePrediction(_BaseAutoModelClass):
    """The family's `...ForSecondaryStructurePrediction` (a release's structure model) for a checkpoint or config."""

    _model_mapping = _LazyAutoMapping(CONFIG_MAPPING_NAMES, OrderedDict())


def register_family(
    config: type[MultiMoleculeConfig],
    tokenizer: type[PreTrainedTokenizer],
    *,
    model: type[PreTrainedModel],
    masked_lm: type[PreTrainedModel],
    sequence_prediction: type[PreTrainedModel],
    token_prediction: type[PreTrainedModel],
    contact_prediction: type[PreTrainedModel],
    pre_training: type[PreTrainedModel] | None = None,
    secondary_structure: type[PreTrainedModel] | None = None,
) -> None:
    """Make `AutoConfig`, `AutoModel*` and `AutoTokenizer` (transformers' and ours) know a family.

    `pre_training`: the class that holds every head of a release with several (`AutoModelForPreTraining`);
    `secondary_structure`: the release's structure model (`AutoModelForSecondaryStructurePrediction`)."""
    AutoConfig.register(config.model_type, config, exist_ok=True)
    AutoTokenizer.register(config, tokenizer_class=tokenizer, exist_ok=True)
    for auto, model_class in (
        (AutoModel, model),
        (AutoModelForMaskedLM, masked_lm),
        (AutoModelForSequenceClassification, sequence_prediction),
        (AutoModelForTokenClassification, token_prediction),
        (AutoModelForSequencePrediction, sequence_prediction),
        (AutoModelForTokenPrediction, token_prediction),
        (AutoModelForContactPrediction, contact_prediction),
    ):
        auto.register(config, model_class, exist_ok=True)
    if pre_training is not None:
        AutoModelForPreTraining.register(config, pre_training, exist_ok=True)
    if secondary_structure is not None:
        AutoModelForSecondaryStructurePrediction.register(config, secondary_structure, exist_ok=True)
