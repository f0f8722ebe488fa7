from pathlib import Path

import pytest
import torch

from nasbench.data import builtin_path
from nasbench.data.ptb import EOS, Jitter, TextStream, batchify, build_vocab, encode, load_corpus, tokenize
from nasbench.data.streams import epoch_generator
from nasbench.errors import UserError


def write_corpus(root: Path, train: str, valid: str, test: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in (("train", train), ("valid", valid), ("test", test)):
        (root / f"{name}.txt").write_text(text)
    return root


def test_tokenize_closes_every_line_with_eos():
    assert tokenize(" the cat \n\nsat\n") == ["the", "cat", EOS, EOS, "sat", EOS]


def test_vocabulary_in_order_of_first_appearance():
    assert build_vocab(["b", "a", "b", EOS, "c"]) == {"b": 0, "a": 1, EOS: 2, "c": 3}


def test_corpus_maps_unknown_words_to_unk_when_the_corpus_has_it(tmp_path):
    root = write_corpus(tmp_path, "a b <unk>\nb a\n", "a zebra\n", "b\n")
    corpus = load_corpus(root)
    assert corpus.words == ("a", "b", "<unk>", EOS)
    assert corpus.train.tolist() == [0, 1, 2, 3, 1, 0, 3]
    assert corpus.valid.tolist() == [0, 2, 3]  # zebra -> <unk>
    assert corpus.unk_mapped == {"train": 0, "valid": 1, "test": 0}


def test_unknown_word_without_unk_token_is_a_user_error(tmp_path):
    root = write_corpus(tmp_path, "a b\n", "a b\n", "a zebra\n")
    with pytest.raises(UserError, match="zebra.*test.txt|test.txt.*zebra"):
        load_corpus(root)


def test_missing_and_empty_files_are_user_errors(tmp_path):
    root = write_corpus(tmp_path / "c", "a\n", "a\n", "a\n")
    (root / "valid.txt").unlink()
    (root / "test.txt").unlink()
    with pytest.raises(UserError, match="valid.txt, test.txt"):
        load_corpus(root)
    write_corpus(root, "a\n", " \n\n", "a\n")
    with pytest.raises(UserError, match="valid.txt is empty"):
        load_corpus(root)


def test_encode_counts_unk():
    ids, n_unk = encode(["x", "y", "q"], {"x": 0, "<unk>": 1}, "here")
    assert ids.tolist() == [0, 1, 1] and n_unk == 2


def test_batchify_cuts_the_stream_into_columns():
    data = batchify(torch.arange(11), 3)  # 11 // 3 = 3 rows; tokens 9 and 10 dropped
    assert data.tolist() == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    with pytest.raises(UserError, match="batch_size"):
        batchify(torch.arange(5), 3)


def test_fixed_windows_cover_the_stream_with_shifted_targets():
    data = batchify(torch.arange(40), 2)  # [20, 2]
    stream = TextStream(data, bptt=6, seed=0, stream=2, split="score")
    windows = list(stream.epoch(0))
    assert len(windows) == len(stream) == 4  # 19 positions with a next token: 6 + 6 + 6 + 1
    assert [w.inputs.shape for w in windows] == [(6, 2)] * 3 + [(1, 2)]
    assert torch.equal(torch.cat([w.inputs for w in windows]), data[:19])
    assert torch.equal(torch.cat([w.targets for w in windows]), data[1:20])
    assert [w.first for w in windows] == [True, False, False, False]
    assert all(w.lr_scale == 1.0 and not w.regularize and w.split == "score" for w in windows)


def test_variable_windows_halve_about_one_in_twenty_and_scale_the_lr():
    data = batchify(torch.arange(2 * 40_001), 2)
    stream = TextStream(data, bptt=10, seed=3, stream=0, split="train", variable=True)
    windows = list(stream.epoch(0))
    lengths = [len(w.inputs) for w in windows]
    assert len(windows) == len(stream) == 4000
    assert set(lengths) == {5, 10}
    assert 0.03 < lengths.count(5) / len(lengths) < 0.07  # binomial(4000, 0.05): sd 0.0035
    assert all(w.lr_scale == len(w.inputs) / 10 and w.regularize for w in windows)
    pos = 0
    for w in windows:  # consecutive: each window continues where the last one stopped
        assert torch.equal(w.inputs, data[pos : pos + len(w.inputs)])
        pos += len(w.inputs)
    again = [len(w.inputs) for w in stream.epoch(0)]
    other = [len(w.inputs) for w in stream.epoch(1)]
    assert again == lengths and other != lengths


def test_wrapping_stream_restarts_at_the_top():
    data = batchify(torch.arange(22), 2)  # [11, 2]: 10 positions with a next token
    stream = TextStream(data, bptt=4, seed=0, stream=1, split="val", windows=5)
    starts = [int(w.inputs[0, 0]) for w in stream.epoch(0)]
    assert starts == [0, 4, 8, 0, 4]
    assert len(stream) == 5


def test_builtin_slice_loads(shared_data):
    corpus = load_corpus(builtin_path("ptb-mini"))
    assert len(corpus.train) == 70_390 + 3_370  # words + one <eos> per line (the shared README's counts)
    assert len(corpus.valid) == 39_657 + 1_880
    assert len(corpus.test) == 39_012 + 1_881
    assert corpus.words.count("<unk>") == 1
    assert torch.equal(load_corpus(shared_data / "ptb-mini").valid, corpus.valid)


def test_jittered_windows_walk_the_whole_text_by_the_reference_rule():
    """DARTS' train.py: bptt (or bptt / 2 with probability 0.05), seq_len = max(5, int(normal(bptt, 5))), at most
    bptt + 20, the lr scaled by seq_len / bptt, while i < rows - 2; the windows cover every position once."""
    data = batchify(torch.arange(2 * 3_001), 2)  # [3001, 2]: 3000 positions with a next token
    stream = TextStream(data, bptt=35, seed=4, stream=0, split="train", variable=True, jitter=Jitter(5.0, 20))
    windows = list(stream.epoch(0))
    assert len(windows) == stream.steps(0) != len(stream)
    assert torch.equal(torch.cat([w.inputs for w in windows]), data[:3000])  # the whole text, in order
    lengths = [len(w.inputs) for w in windows]
    assert min(lengths[:-1]) >= 5 and max(lengths) <= 55 and lengths[-1] >= 2
    assert 30 < sum(lengths[:-1]) / len(lengths[:-1]) < 36  # about 0.95 * 35 + 0.05 * 17.5 = 34.1
    assert len(set(lengths)) > 10  # spread, not two lengths
    # the same draws, by hand: a uniform for the halving, then a standard normal, from the epoch's generator
    gen = epoch_generator(4, 0, 0, torch.device("cpu"))
    pos, expected = 0, []
    while pos < 3000 - 1:
        base = 35 if float(torch.rand((), generator=gen)) < 0.95 else 17.5
        drawn = min(max(5, int(base + 5.0 * float(torch.randn((), generator=gen)))), 55)
        expected.append((drawn, min(drawn, 3000 - pos)))
        pos += expected[-1][1]
    assert [(round(w.lr_scale * 35), len(w.inputs)) for w in windows] == expected
    assert [len(w.inputs) for w in stream.epoch(1)] != lengths


def test_search_windows_walk_the_whole_text_by_the_reference_rule():
    """DARTS' train_search.py: seq_len = int(bptt if random < 0.95 else bptt / 2), while i < rows - 2, the lr
    scaled by seq_len / bptt; the old fixed count of windows (counted at full length) left text unread."""
    data = batchify(torch.arange(2 * 4_001), 2)  # [4001, 2]: 4000 positions with a next token
    walk = TextStream(data, bptt=10, seed=3, stream=0, split="train", variable=True, whole_text=True)
    windows = list(walk.epoch(0))
    assert torch.equal(torch.cat([w.inputs for w in windows]), data[:4000])
    assert len(windows) == walk.steps(0) > len(walk) == 400  # half windows add steps
    gen, pos, expected = epoch_generator(3, 0, 0, torch.device("cpu")), 0, []
    while pos < 3999:
        drawn = int(10 if float(torch.rand((), generator=gen)) < 0.95 else 5.0)
        expected.append((drawn, min(drawn, 4000 - pos)))
        pos += expected[-1][1]
    assert [(round(w.lr_scale * 10), len(w.inputs)) for w in windows] == expected
    fixed = TextStream(data, bptt=10, seed=3, stream=0, split="train", variable=True)
    assert sum(len(w.inputs) for w in fixed.epoch(0)) < 4000 == sum(len(w.inputs) for w in windows)
