"""Load a converted checkpoint the way users do and show what it predicts for a masked nucleotide.

    python examples/fill_mask.py converted/rnafm [SEQUENCE]

SEQUENCE may hold `<mask>`; without one, the middle nucleotide is masked.
"""

from __future__ import annotations

import sys

import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer
from transformers.utils import logging

import multimolecule  # registers MultiMolecule's models with transformers' Auto classes

DEFAULT_SEQUENCE = "GGGUGCGAUCAUACCAGCACUAAUGCCCUCCUGGGAAGUCCUCGUG"


def main(directory: str, sequence: str = DEFAULT_SEQUENCE) -> None:
    logging.set_verbosity_error()  # a script: keep the output to the predictions
    logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForMaskedLM.from_pretrained(directory).eval()
    tokens = tokenizer.tokenize(sequence)
    if tokenizer.mask_token not in tokens:
        tokens[len(tokens) // 2] = tokenizer.mask_token
    masked = tokenizer.convert_tokens_to_string(tokens)
    inputs = tokenizer(masked, return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
    position = (inputs["input_ids"][0] == tokenizer.mask_token_id).nonzero()[0].item()
    probabilities = logits[0, position].softmax(-1)
    print(f"model:    {type(model).__name__} from {directory} ({model.num_parameters() / 1e6:.2f} M parameters)")
    print(f"sequence: {masked}")
    print(f"predicted for <mask> (token {position - 1} of the sequence, counting from 0):")
    for probability, token_id in zip(*probabilities.topk(5), strict=True):
        token = tokenizer.convert_ids_to_tokens(int(token_id))
        meaning = multimolecule.tokenisers.RNA.descriptions.get(token, "")
        print(f"  {token:<6} {probability:6.1%}  {meaning}")


if __name__ == "__main__":
    main(*sys.argv[1:])
