"""Penn Treebank (Mikolov's preprocessing) and WikiText-2 as token tensors, and the BPTT windows of the DARTS
RNN search.

A PTB folder holds ``train.txt``, ``valid.txt`` and ``test.txt``, one sentence a line (WikiText-2's hold
``wiki.train.tokens`` and so on); every line ends with an ``<eos>`` token. The vocabulary is that of the
training text in order of first appearance. Words of the validation and test texts outside it become
``<unk>`` when the corpus has that token (Mikolov's files and WikiText-2 do, for rare words); without
``<unk>`` such a word is an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from nasbench.data.streams import epoch_generator
from nasbench.errors import UserError

SPLITS = ("train", "valid", "test")
EOS = "<eos>"
UNK = "<unk>"
HALF_WINDOW_PROB = 0.05  # DARTS / AWD-LSTM: a window is bptt / 2 long with probability 0.05


def tokenize(text: str) -> list[str]:
    """Words of each line (split on whitespace), each line closed by ``<eos>``; blank lines give ``<eos>``."""
    words: list[str] = []
    for line in text.splitlines():
        words.extend(line.split())
        words.append(EOS)
    return words


def build_vocab(words: list[str]) -> dict[str, int]:
    """Word -> index, in order of first appearance."""
    vocab: dict[str, int] = {}
    for word in words:
        vocab.setdefault(word, len(vocab))
    return vocab


def encode(words: list[str], vocab: dict[str, int], where: str) -> tuple[torch.Tensor, int]:
    """Token ids [N] (int64) and how many words were mapped to ``<unk>``."""
    unk = vocab.get(UNK)
    ids, n_unk = [], 0
    for word in words:
        index = vocab.get(word)
        if index is None:
            if unk is None:
                raise UserError(
                    f"{where}: word {word!r} is not in the vocabulary of the training text, and the corpus has no "
                    f"{UNK} token to map it to; replace rare words by {UNK} (Mikolov's preprocessing)"
                )
            index, n_unk = unk, n_unk + 1
        ids.append(index)
    return torch.tensor(ids, dtype=torch.long), n_unk


@dataclass(frozen=True)
class Corpus:
    words: tuple[str, ...]  # index -> word
    train: torch.Tensor  # [N_train] token ids
    valid: torch.Tensor  # [N_valid]
    test: torch.Tensor  # [N_test]
    unk_mapped: dict[str, int]  # split -> words outside train's vocabulary that became <unk>


@dataclass(frozen=True)
class CorpusLayout:
    """A corpus's file names: per split the accepted names, the first the canonical one."""

    name: str  # the corpus, in words
    files: dict[str, tuple[str, ...]]  # split -> file names, first found wins
    hint: str  # what to do when files are missing

    def path(self, root: Path, split: str) -> Path | None:
        return next((root / f for f in self.files[split] if (root / f).is_file()), None)


PTB_LAYOUT = CorpusLayout(
    "PTB",
    {split: (f"{split}.txt",) for split in SPLITS},
    "it needs train.txt, valid.txt and test.txt (one sentence a line); leave out --data to use the built-in slice",
)
# WikiText-2 as released (wiki.*.tokens), or renamed to train/valid/test.txt as AWD-LSTM's getdata.sh does
WIKITEXT2_LAYOUT = CorpusLayout(
    "WikiText-2",
    {split: (f"wiki.{split}.tokens", f"{split}.txt") for split in SPLITS},
    "it needs wiki.train.tokens, wiki.valid.tokens and wiki.test.tokens (WikiText-2, the tokenised release)",
)


def load_corpus(root: Path, layout: CorpusLayout = PTB_LAYOUT) -> Corpus:
    root = Path(root)
    paths = {split: layout.path(root, split) for split in SPLITS}
    missing = [layout.files[split][0] for split, path in paths.items() if path is None]
    if missing:
        raise UserError(f"{layout.name} folder {root} lacks {', '.join(missing)}: {layout.hint}")
    words = {}
    for split, path in paths.items():
        assert path is not None
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(f"{path} is not UTF-8 text ({exc})") from None
        if not text.split():
            raise UserError(f"{path} is empty: it needs one sentence a line")
        words[split] = tokenize(text)
    vocab = build_vocab(words["train"])
    ids = {split: encode(words[split], vocab, str(paths[split])) for split in SPLITS}
    return Corpus(
        words=tuple(vocab),
        train=ids["train"][0],
        valid=ids["valid"][0],
        test=ids["test"][0],
        unk_mapped={split: ids[split][1] for split in SPLITS},
    )


def check_tar_window(bptt: int, tar_beta: float) -> None:
    """The temporal activation regulariser compares consecutive steps of a window, so every weight window,
    the half-length ones included (``bptt // 2``), needs at least two."""
    if tar_beta > 0 and bptt // 2 < 2:
        raise UserError(
            f"bptt={bptt} with tar_beta={tar_beta}: the half-length windows (bptt // 2 = {bptt // 2} token) have no "
            "consecutive steps for the temporal activation regulariser; use bptt >= 4 or tar_beta=0"
        )


def batchify(tokens: torch.Tensor, batch_size: int) -> torch.Tensor:
    """[N] -> [N // B, B]: the stream cut into B contiguous columns (the remainder is dropped), so that
    row t holds token t of every column and a window of rows continues each column's text."""
    rows = len(tokens) // batch_size
    if rows < 2:
        raise UserError(
            f"{len(tokens)} tokens make fewer than 2 rows of batch size {batch_size}; lower --set batch_size=N"
        )
    return tokens[: rows * batch_size].view(batch_size, rows).t().contiguous()


@dataclass(frozen=True)
class TextBatch:
    """One BPTT window. A model with a carried hidden state keeps one per ``split``."""

    inputs: torch.Tensor  # [T, B] token ids
    targets: torch.Tensor  # [T, B] the next token of each input
    split: str  # whose carried hidden state this window continues: "train", "val" or "score"
    first: bool  # the first window of an epoch: the carried state restarts from zeros
    lr_scale: float  # seq_len / bptt: DARTS scales the weight step's learning rate by it
    regularize: bool  # add the activation regularisers (weight-training windows only, as DARTS does)


MIN_JITTERED_WINDOW = 5  # DARTS' and AWD-LSTM's train.py: seq_len = max(5, int(normal(bptt, 5)))


@dataclass(frozen=True)
class Jitter:
    """The evaluation's window lengths (DARTS' and AWD-LSTM's train.py): around bptt (or bptt / 2 with
    probability 0.05) with a normal spread of ``std`` tokens, at least 5 and at most bptt + ``max_extra``;
    the windows walk the whole text, so their number varies by epoch."""

    std: float
    max_extra: int


class TextStream:
    """Consecutive BPTT windows over a batchified token stream [rows, B].

    ``variable``: the weight split; each window is ``bptt`` long, or ``bptt // 2`` with probability 0.05,
    drawn from a generator fixed by (seed, epoch, stream), and its lr is scaled by length / bptt. A variable
    stream with ``whole_text`` walks the whole text every epoch, as DARTS' code does (the window count then
    varies by epoch); without it, an epoch has a fixed number of windows, counted at full length. ``jitter``
    (the evaluation's lengths) implies ``whole_text``. Other streams have windows ``bptt`` long (the last one
    shorter): one pass, or ``windows`` of them wrapping around the data, or, with ``follow``, one at each
    window start of the followed (weight) stream taken modulo this text's length, as DARTS' search takes its
    architecture windows (``i % (search_data.size(0) - 1)``).
    """

    def __init__(
        self,
        data: torch.Tensor,
        bptt: int,
        seed: int,
        stream: int,
        split: str,
        variable: bool = False,
        windows: int | None = None,
        jitter: Jitter | None = None,
        whole_text: bool = False,
        follow: TextStream | None = None,
    ) -> None:
        if bptt < 2:
            raise UserError(f"bptt={bptt}: windows need at least 2 tokens")
        self.data, self.bptt, self.seed, self.stream, self.split = data, bptt, seed, stream, split
        self.variable, self.windows, self.jitter = variable, windows, jitter if variable else None
        self.walks_text = variable and (whole_text or jitter is not None)
        if follow is not None and not follow.walks_text:
            raise ValueError("a stream can follow only one that walks the whole text (variable, whole_text)")
        self.follow = follow
        self.span = data.shape[0] - 1  # positions that have a next token

    @property
    def samples_per_batch(self) -> int:
        return int(self.data.shape[1])

    def __len__(self) -> int:
        if self.follow is not None:
            return len(self.follow)
        if self.windows is not None:
            return self.windows
        if self.variable:  # counted at full length; a stream that walks the text has steps(epoch) instead
            return max(self.span // self.bptt, 1)
        return -(-self.span // self.bptt)

    def steps(self, epoch: int) -> int:
        """Windows in ``epoch``: as many as that epoch's lengths take where the stream walks the text (or follows
        one that does), else ``len``."""
        if self.follow is not None:
            return self.follow.steps(epoch)
        return len(self.plan(epoch)) if self.walks_text else len(self)

    def plan(self, epoch: int) -> list[tuple[int, int]]:
        """(drawn length, length within the text) of each of ``epoch``'s windows of a stream that walks the
        text, while a window of two tokens still fits (the reference's ``while i < rows - 2``)."""
        gen = epoch_generator(self.seed, epoch, self.stream, torch.device("cpu"))
        out, pos = [], 0
        while pos < self.span - 1:
            base = self.bptt if float(torch.rand((), generator=gen)) < 1 - HALF_WINDOW_PROB else self.bptt / 2
            if self.jitter is None:
                drawn = int(base)
            else:
                drawn = max(MIN_JITTERED_WINDOW, int(base + self.jitter.std * float(torch.randn((), generator=gen))))
                drawn = min(drawn, self.bptt + self.jitter.max_extra)
            out.append((drawn, min(drawn, self.span - pos)))
            pos += out[-1][1]
        return out

    def epoch(self, epoch: int) -> Iterator[TextBatch]:
        if self.walks_text:
            pos = 0
            for k, (drawn, length) in enumerate(self.plan(epoch)):
                # the reference sets the lr from the drawn length, before a last window is cut short
                yield self._window(pos, length, k, drawn / self.bptt)
                pos += length
            return
        if self.follow is not None:
            pos = 0
            for k, (_, length) in enumerate(self.follow.plan(epoch)):
                start = pos % self.span
                yield self._window(start, min(self.bptt, self.span - start), k, 1.0)
                pos += length
            return
        gen = epoch_generator(self.seed, epoch, self.stream, torch.device("cpu")) if self.variable else None
        pos = 0
        for k in range(len(self)):
            if pos >= self.span:
                pos = 0  # only the wrapping (architecture) stream gets here
            length = self.bptt
            if gen is not None and float(torch.rand((), generator=gen)) < HALF_WINDOW_PROB:
                length = self.bptt // 2
            length = min(length, self.span - pos)
            yield self._window(pos, length, k, length / self.bptt if self.variable else 1.0)
            pos += length

    def _window(self, pos: int, length: int, k: int, lr_scale: float) -> TextBatch:
        return TextBatch(
            inputs=self.data[pos : pos + length],
            targets=self.data[pos + 1 : pos + 1 + length],
            split=self.split,
            first=k == 0,
            lr_scale=lr_scale,
            regularize=self.variable,
        )
