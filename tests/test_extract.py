"""`python -m multimolecule.extract` on the tiny RNA-FM fixtures: batching invariance, windows, bad records,
resume after a killed run, and two processes giving the files of one."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import socket

import pytest
import torch
from safetensors.torch import load_file

from multimolecule.extract import read_record, token_batches
from multimolecule.extract.cli import main
from multimolecule.extract.compute import combine_windows

SEQUENCES = {
    f"r{k}": "".join(random.Random(k).choice("ACGU") for _ in range(random.Random(k).randint(3, 60))) for k in range(14)
}


def write_fasta(path, records: dict[str, str]):
    path.write_text("".join(f">{name}\n{sequence}\n" for name, sequence in records.items()))
    return path


def outputs(directory, ids) -> dict[str, dict[str, torch.Tensor]]:
    return {name: read_record(directory, name) for name in ids}


def assert_same(a, b, atol=1e-5):
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].keys() == b[name].keys()
        for key in a[name]:
            torch.testing.assert_close(a[name][key], b[name][key], atol=atol, rtol=0)


def test_token_batches_sort_and_budget():
    lengths = [5, 50, 7, 48, 6]
    batches = token_batches(lengths, max_tokens=100)
    assert batches == [[0, 4, 2], [3, 1]]  # by length; 3 x 7 and 2 x 50 fit in 100 tokens
    assert token_batches(lengths, 100, sort=False, max_sequences=2) == [[0, 1], [2, 3], [4]]
    assert token_batches([200, 3], 100) == [[1], [0]]  # a sequence over the budget gets a batch alone


@pytest.mark.parametrize(
    ("model", "include"), [("rnafm", ["mean", "cls", "per-token", "contacts"]), ("rnafm-ss", ["structure", "mean"])]
)
def test_batched_equals_alone_in_input_order(converted, tmp_path, model, include):
    fasta = write_fasta(tmp_path / "in.fa", SEQUENCES)
    common = [str(converted[model]), str(fasta)]
    for name, budget in (("batched", "400"), ("alone", "1")):  # a budget of 1 token: every sequence alone
        options = ["--include", *include, "--max-tokens", budget, "--layers", "-1", "1", "--shard-size", "5"]
        assert main([*common, str(tmp_path / name), *options]) == 0
    index = (tmp_path / "batched" / "index.tsv").read_text().splitlines()[1:]
    assert [line.split("\t")[0] for line in index] == list(SEQUENCES)  # input order
    assert [int(line.split("\t")[3]) for line in index] == [len(s) for s in SEQUENCES.values()]
    batched, alone = outputs(tmp_path / "batched", SEQUENCES), outputs(tmp_path / "alone", SEQUENCES)
    assert_same(batched, alone)
    record = batched["r3"]
    n = len(SEQUENCES["r3"])
    expected_keys = {"mean.layer3", "mean.layer1"} | (
        {"structure"} if model == "rnafm-ss" else {"cls.layer3", "per_token.layer3", "contacts"}
    )
    assert expected_keys <= record.keys()
    if model == "rnafm":
        assert record["per_token.layer3"].shape == (n, 32)
        torch.testing.assert_close(record["mean.layer3"], record["per_token.layer3"].mean(0))
        assert record["contacts"].shape == (n, n)
    else:
        assert record["structure"].shape == (n, n)
        torch.testing.assert_close(record["structure"], record["structure"].T)


def test_windows_average_overlaps_by_hand():
    # length 10, windows of 4 every 3 tokens: starts 0, 3, 6; window k holds the value k everywhere
    parts = [
        (start, {"layer1": torch.full((4, 1), float(k)), "cls1": torch.tensor([float(k)])})
        for k, start in enumerate((0, 3, 6))
    ]
    combined = combine_windows(parts, 10)
    assert combined["layer1"].squeeze(1).tolist() == [0, 0, 0, 0.5, 1, 1, 1.5, 2, 2, 2]
    assert combined["cls1"].tolist() == [1.0]


def test_windows_end_to_end(converted, tmp_path):
    sequence = "".join(random.Random(7).choice("ACGU") for _ in range(100))  # the fixture takes 62 nucleotides
    long = write_fasta(tmp_path / "long.fa", {"long": sequence})
    assert main([str(converted["rnafm"]), str(long), str(tmp_path / "refused")]) == 1
    assert not (tmp_path / "refused").exists()
    assert (
        main(
            [
                str(converted["rnafm"]),
                str(long),
                str(tmp_path / "w"),
                "--include",
                "per-token",
                "--window",
                "40",
                "--stride",
                "30",
            ]
        )
        == 0
    )
    pieces = write_fasta(tmp_path / "pieces.fa", {"a": sequence[0:40], "b": sequence[30:70], "c": sequence[60:100]})
    assert main([str(converted["rnafm"]), str(pieces), str(tmp_path / "p"), "--include", "per-token"]) == 0
    got = read_record(tmp_path / "w", "long")["per_token.layer3"]
    a, b, c = (read_record(tmp_path / "p", k)["per_token.layer3"] for k in "abc")
    torch.testing.assert_close(got[:30], a[:30])
    torch.testing.assert_close(got[30:40], (a[30:] + b[:10]) / 2)
    torch.testing.assert_close(got[40:60], b[10:30])
    torch.testing.assert_close(got[60:70], (b[30:] + c[:10]) / 2)
    torch.testing.assert_close(got[70:], c[10:])


def test_bad_records_reported(converted, tmp_path, capsys):
    fasta = tmp_path / "bad.fa"
    fasta.write_text(">ok\nACGU\n>empty\n>ok\nGGGG\n>odd\nACGZU\n>fine\nAC\n")
    assert main([str(converted["rnafm"]), str(fasta), str(tmp_path / "o"), "--strict"]) == 0
    skipped = (tmp_path / "o" / "skipped.tsv").read_text().splitlines()
    assert skipped[1] == "empty\t3\tempty sequence"
    assert skipped[2] == "ok\t4\tduplicate id (first at line 1)"
    assert skipped[3].startswith("odd\t6\tcharacter 'Z'")
    assert [line.split("\t")[0] for line in (tmp_path / "o" / "index.tsv").read_text().splitlines()[1:]] == [
        "ok",
        "fine",
    ]
    assert "3 skipped (1 empty sequence, 1 duplicate id, 1 character" in capsys.readouterr().err
    assert main([str(converted["rnafm"]), str(fasta), str(tmp_path / "f"), "--fail-on-bad"]) == 1
    assert "error: record 'empty' (line 3): empty sequence" in capsys.readouterr().err
    assert not (tmp_path / "f").exists()


def test_rerun_with_other_settings_refused(converted, tmp_path, capsys):
    fasta = write_fasta(tmp_path / "in.fa", {"a": "ACGU"})
    assert main([str(converted["rnafm"]), str(fasta), str(tmp_path / "o")]) == 0
    assert main([str(converted["rnafm"]), str(fasta), str(tmp_path / "o"), "--include", "cls"]) == 1
    assert "other settings (include differ)" in capsys.readouterr().err


def _killed_run(argv):
    """Child: write the first shard, then die by SIGKILL half-way through writing the second."""
    import multimolecule.extract.run as run

    written = []

    def write_then_die(path, ids, lengths, rows):
        if written:
            (path.parent / f".{path.name}.tmp-{os.getpid()}").write_bytes(b"half a shard")
            os.kill(os.getpid(), signal.SIGKILL)
        run.__dict__["_original_write"](path, ids, lengths, rows)
        written.append(path)

    run.__dict__["_original_write"] = run.write_shard
    run.write_shard = write_then_die
    torch.set_num_threads(1)
    main(argv)


def test_resume_after_kill(converted, tmp_path):
    fasta = write_fasta(tmp_path / "in.fa", SEQUENCES)
    argv = [
        str(converted["rnafm"]),
        str(fasta),
        str(tmp_path / "killed"),
        "--include",
        "mean",
        "per-token",
        "--shard-size",
        "4",
    ]
    child = multiprocessing.get_context("fork").Process(target=_killed_run, args=(argv,))
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    names = sorted(p.name for p in (tmp_path / "killed").iterdir())
    assert "shard-00000.safetensors" in names and "shard-00001.safetensors" not in names
    assert "index.tsv" not in names and any(name.startswith(".shard-00001") for name in names)
    first = load_file(tmp_path / "killed" / "shard-00000.safetensors")
    assert main(argv) == 0  # resumes: shard 0 kept as it was, the rest computed
    assert torch.equal(load_file(tmp_path / "killed" / "shard-00000.safetensors")["mean.layer3"], first["mean.layer3"])
    assert not [p for p in (tmp_path / "killed").iterdir() if p.name.startswith(".")]
    assert main([*argv[:2], str(tmp_path / "clean"), *argv[3:]]) == 0
    assert_same(outputs(tmp_path / "killed", SEQUENCES), outputs(tmp_path / "clean", SEQUENCES))
    assert (tmp_path / "killed" / "index.tsv").read_text() == (tmp_path / "clean" / "index.tsv").read_text()


def _rank(argv, rank, port):
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    os._exit(main(argv))


def test_two_processes_give_the_files_of_one(converted, tmp_path):
    fasta = write_fasta(tmp_path / "in.fa", SEQUENCES)
    options = ["--include", "mean", "per-token", "--shard-size", "3"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = [str(converted["rnafm"]), str(fasta), str(tmp_path / "two"), *options]
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_rank, args=(argv, rank, port)) for rank in range(2)]
    for child in children:
        child.start()
    for child in children:
        child.join(120)
    assert [child.exitcode for child in children] == [0, 0]
    assert main([str(converted["rnafm"]), str(fasta), str(tmp_path / "one"), *options]) == 0
    files = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == files
    assert len([name for name in files if name.startswith("shard-")]) == 5
    for name in ("index.tsv", "skipped.tsv", "manifest.json"):
        assert (tmp_path / "two" / name).read_text() == (tmp_path / "one" / name).read_text()
    assert_same(outputs(tmp_path / "two", SEQUENCES), outputs(tmp_path / "one", SEQUENCES))
