"""From an alignment file (FASTA / A2M / A3M) to RNA-MSM's embeddings and pair features.

python examples/alignment_embeddings.py converted/rnamsm examples/alignment.fasta
"""

from __future__ import annotations

import sys

import torch
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging

import multimolecule  # noqa: F401 - registers MultiMolecule's models with transformers' Auto classes
from multimolecule.io import read_alignment


def main(directory: str, path: str) -> dict[str, torch.Tensor]:
    logging.set_verbosity_error()  # a script: keep the output to the result
    logging.disable_progress_bar()
    alignment = read_alignment(path)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModel.from_pretrained(directory).eval()
    inputs = tokenizer.encode_alignments([alignment.rows], return_tensors="pt")  # (1, rows, columns)
    with torch.no_grad():
        output = model(**inputs, output_pair_representation=True)
    embeddings = output.query_hidden_state[0, 1:]  # the query's nucleotides (and gaps), <cls> dropped
    pairs = output.pair_representation[0]  # (layers * heads, n, n)
    print(f"alignment: {path}, {alignment.shape[0]} rows x {alignment.shape[1]} columns")
    print(f"query embeddings: {tuple(embeddings.shape)}; every row: {tuple(output.last_hidden_state.shape)}")
    print(f"pair representation (row attention maps): {tuple(pairs.shape)}")
    return {"embeddings": embeddings, "pairs": pairs}


if __name__ == "__main__":
    main(*sys.argv[1:])
