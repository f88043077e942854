"""Data sets of the Demon paper's problems (SPEC §1.3): per data set its real download, an `archive` for
offline clusters, a synthetic generator in the data set's real file format (and, for the IDX and CIFAR-10
formats, scikit-learn's real digits as an offline source), all read by ONE reader per format into the
canonical `.npz` (optimbench.formats.canonical).

    prepare("cifar100", {"source": "synthetic", "synthetic": {"train_size": 200}}, "c.npz", "c.json")

Sources (`data_cfg["source"]`): `download` (into `data_cfg["download_dir"]`), `archive` (`data_cfg["archive"]`:
the file or folder named by FORMATS[name].archive), `synthetic` (settings in `data_cfg["synthetic"]`),
`digits` (where the format has it; settings in `data_cfg["digits"]`); download_dir defaults to
resources/downloads. Every failure is a DataError that names the file or key and the fix; the canonical
file is written atomically, so a failure leaves nothing.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from optimbench.cli import read_spec, spec_help
from optimbench.errors import DataError
from optimbench.formats import canonical, cifar10, cifar100, idx, ptb, quadratic, stl10
from optimbench.formats.common import md5_matches, tree_digest

SOURCES = ("download", "archive", "synthetic", "digits")


@dataclass(frozen=True)
class Format:
    """One data set: where its files come from and its one reader."""

    name: str
    archive: str                       # what `archive` must point at
    download: Callable[[Path], Path]   # download_dir -> archive (file or folder)
    read: Callable[[Path], dict]       # archive -> canonical arrays
    synthetic: Callable[..., Path]     # (archive path to write, **settings) -> archive
    is_real: Callable[[Path], bool]    # the archive is the published data set (checksums)
    digits: Callable[..., Path] | None = None  # real offline data in this format, if any
    kind: str = "images"               # "images" (x_*, y_*, classes), "text" (tokens_*, vocab) or "vectors"
    archive_name: str = ""             # the file or folder name generated sources write

    def write_canonical(self, arrays, out_npz, out_json, provenance) -> dict:
        writer = ptb.write_canonical if self.kind == "text" else canonical.write_canonical
        return writer(arrays, out_npz, out_json, provenance)


FORMATS = {
    "cifar10": Format("cifar10", cifar10.ARCHIVE_NAME, cifar10.download_cifar10, cifar10.read_cifar_archive,
                      cifar10.make_synthetic_archive, lambda p: md5_matches(p, cifar10.CIFAR10_MD5),
                      cifar10.make_digits_archive, archive_name=cifar10.ARCHIVE_NAME),
    "cifar100": Format("cifar100", cifar100.ARCHIVE_NAME, cifar100.download, cifar100.read, cifar100.synthetic,
                       cifar100.is_real, archive_name=cifar100.ARCHIVE_NAME),
    "stl10": Format("stl10", stl10.ARCHIVE_NAME, stl10.download, stl10.read, stl10.synthetic, stl10.is_real,
                    archive_name=stl10.ARCHIVE_NAME),
    "mnist": Format("mnist", "a folder with MNIST's four *-idx?-ubyte.gz files", idx.download, idx.read,
                    idx.synthetic, idx.is_real, idx.digits, archive_name="mnist-idx"),
    "fashion_mnist": Format(
        "fashion_mnist", "a folder with Fashion-MNIST's four *-idx?-ubyte.gz files",
        functools.partial(idx.download, dataset="fashion_mnist"),
        functools.partial(idx.read, classes=idx.FASHION_CLASSES), idx.synthetic,
        functools.partial(idx.is_real, dataset="fashion_mnist"), archive_name="fashion-mnist-idx"),
    "ptb": Format("ptb", "a folder with ptb.train.txt, ptb.valid.txt and ptb.test.txt", ptb.download, ptb.read,
                  ptb.synthetic, ptb.is_real, kind="text", archive_name="ptb-text"),
    "quadratic": Format("quadratic", quadratic.ARCHIVE_NAME, quadratic.download, quadratic.read, quadratic.synthetic,
                        quadratic.is_real, kind="vectors", archive_name=quadratic.ARCHIVE_NAME),
}


# (training, test) examples of the published data sets; PTB is a token stream (its sizes are words).
PUBLISHED_SIZES = {"cifar10": (50_000, 10_000), "cifar100": (50_000, 10_000), "stl10": (5_000, 8_000),
                   "mnist": (60_000, 10_000), "fashion_mnist": (60_000, 10_000), "ptb": None,
                   "quadratic": (quadratic.SIZE, quadratic.SIZE)}
DIGITS_IMAGES = 1_797  # scikit-learn's load_digits
# classes of each image data set (every source gives them all: digits 0-9, the synthetic generators each class)
CLASSES = {"cifar10": 10, "cifar100": 100, "stl10": 10, "mnist": 10, "fashion_mnist": 10}
# (train, valid, test) tokens of the published PTB with one <eos> per line (ptb.read): 887,521 + 42,068,
# 70,390 + 3,370 and 78,669 + 3,761 (Mikolov's files, as Zaremba et al. 2014 use them).
PUBLISHED_TOKENS = {"ptb": (929_589, 73_760, 82_430)}


def source_spec(dataset: str, data_cfg: dict, source: str | None = None) -> dict:
    """What determines a data set's canonical file: {dataset, source, that source's own settings}.

    The study's `data` section holds settings for every source; only the chosen source's settings are
    kept, and of a generator's settings only those it takes (PTB's generator takes `seed` of
    data.synthetic, not the image counts). `archive` is data.archives[dataset] (data.archive for CIFAR-10).

    Raises:
        DataError: the source is not one of this data set's (digits: CIFAR-10 and MNIST formats only), or
        source archive without a path for this data set (naming data.archives.<dataset>).
    """
    fmt = get(dataset)
    source = source or data_cfg["source"]
    spec = {"dataset": dataset, "source": source}
    if source == "archive":
        path = data_cfg.get("archive") if dataset == "cifar10" else data_cfg.get("archives", {}).get(dataset)
        if not path:
            raise DataError(f"data.source = 'archive' needs the {dataset} archive: set data.archives.{dataset} to "
                            f"{fmt.archive}, or use data.source download/synthetic")
        spec["archive"] = str(path)
    elif source in ("synthetic", "digits"):
        spec[source] = generator_settings(fmt, data_cfg, source)
    elif source != "download":
        raise DataError(f"unknown data.source {source!r}: use {', '.join(SOURCES)}")
    return spec


def published_synthetic(dataset: str) -> dict:
    """The synthetic generator's settings that give `dataset` at its published size: the image counts of
    PUBLISHED_SIZES (STL-10's 100,000 unlabeled images, unused by training, stay the generator's few), PTB's
    token counts (PUBLISHED_TOKENS) and its 10,000 types with <eos> (words = 9,997 + <unk> + N)."""
    if PUBLISHED_SIZES[dataset] is None:
        return {"words": 9_997, "tokens": list(PUBLISHED_TOKENS[dataset])}
    return dict(zip(("train_size", "test_size"), PUBLISHED_SIZES[dataset]))


def generator_settings(fmt: Format, data_cfg: dict, source: str) -> dict:
    """The settings the generated source (synthetic, digits) of `fmt` takes from data_cfg[source]: only
    those its generator accepts; `published_sizes: true` of synthetic becomes the data set's published
    sizes (published_synthetic). Raises DataError if the format has no such source."""
    generator = fmt.synthetic if source == "synthetic" else fmt.digits
    if generator is None:
        usable = [s for s in SOURCES if s != "digits" or fmt.digits is not None]
        raise DataError(f"data.source = {source!r} is not a source of {fmt.name}: use {', '.join(usable)}")
    settings = dict(data_cfg.get(source, {}))
    if settings.pop("published_sizes", False):
        settings.update(published_synthetic(fmt.name))
    accepted = inspect.signature(generator).parameters
    return {k: v for k, v in settings.items() if k in accepted}


def split_sizes(spec: dict) -> tuple[int, int] | None:
    """(training, test) examples a source_spec gives, known before any data exists; None for a token
    stream (PTB). download/archive: the published sizes (an archive is taken to be the published data set);
    digits: 1,797 images, round(1,797 · test_fraction) for testing (as the digits writers split them);
    synthetic: the generator's train_size / test_size (their defaults where unset)."""
    if PUBLISHED_SIZES[spec["dataset"]] is None:
        return None
    if spec["source"] in ("download", "archive"):
        return PUBLISHED_SIZES[spec["dataset"]]
    fmt = get(spec["dataset"])
    generator = fmt.synthetic if spec["source"] == "synthetic" else fmt.digits
    defaults = {name: p.default for name, p in inspect.signature(generator).parameters.items()}
    settings = {**defaults, **spec.get(spec["source"], {})}
    if spec["source"] == "digits":
        n_test = int(round(DIGITS_IMAGES * settings["test_fraction"]))
        return DIGITS_IMAGES - n_test, n_test
    return settings["train_size"], settings["test_size"]


def token_sizes(spec: dict) -> tuple[int, int, int] | None:
    """(train, valid, test) tokens a token-stream source_spec gives at least, known before any data exists;
    None for an image data set. download/archive: the published counts (PUBLISHED_TOKENS); synthetic
    (ptb.synthetic, random sentence lengths): a lower bound, every line at least 4 words + <eos>, the
    first training line every word type + <eos>."""
    if PUBLISHED_SIZES[spec["dataset"]] is not None:
        return None
    if spec["source"] in ("download", "archive"):
        return PUBLISHED_TOKENS[spec["dataset"]]
    defaults = {name: p.default for name, p in inspect.signature(get(spec["dataset"]).synthetic).parameters.items()}
    settings = {**defaults, **spec.get("synthetic", {})}
    if settings["tokens"] is not None:
        return tuple(settings["tokens"])
    train = settings["words"] + 3 + 5 * (settings["train_lines"] - 1)
    return train, 5 * settings["test_lines"], 5 * settings["test_lines"]


def get(name: str) -> Format:
    """The named data set's format. Raises DataError listing the known names."""
    if name not in FORMATS:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(FORMATS)}")
    return FORMATS[name]


def obtain(fmt: Format, data_cfg: dict, workdir) -> Path:
    """The archive (file or folder) of the configured source; generated sources write it into workdir.

    Raises:
        DataError: for an unknown or unavailable source, a missing archive, or a failed download.
    """
    source = data_cfg.get("source")
    if source == "download":
        return fmt.download(Path(data_cfg.get("download_dir", "resources/downloads")))
    if source == "archive":
        path = Path(str(data_cfg.get("archive")))
        key = "data.archive" if fmt.name == "cifar10" else f"data.archives.{fmt.name}"
        if "archive" not in data_cfg or not path.exists():
            raise DataError(f"{key} = {data_cfg.get('archive')!r} does not exist: put {fmt.archive} "
                            f"there, or set {key} to its path")
        return path
    if source in ("synthetic", "digits"):
        generator = fmt.synthetic if source == "synthetic" else fmt.digits
        return generator(Path(workdir) / fmt.archive_name, **generator_settings(fmt, data_cfg, source))
    usable = [s for s in SOURCES if s != "digits" or fmt.digits is not None]
    raise DataError(f"data.source = {source!r} is not a source of {fmt.name}: use {', '.join(usable)}")


def prepare(dataset: str, data_cfg: dict, out_npz, out_json) -> dict:
    """Obtain `dataset` from the configured source and write its canonical .npz and JSON summary
    (sha256, counts, provenance: source, archive, archive digest, whether it is the published data).

    Raises:
        DataError: as obtain() and the format's reader; no output file is left behind.
    """
    fmt = get(dataset)
    Path(out_npz).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=Path(out_npz).parent) as work:
        archive = obtain(fmt, data_cfg, work)
        arrays = fmt.read(archive)
        given = data_cfg["source"] in ("download", "archive")  # generated sources are never the real data
        provenance = {"dataset": dataset, "source": data_cfg["source"], "archive": str(archive) if given else None,
                      "archive_sha256": tree_digest(archive), "archive_is_real": given and fmt.is_real(archive)}
        return fmt.write_canonical(arrays, out_npz, out_json, provenance)


SPEC_REQUIRED = {"source": "download | archive | synthetic | digits (digits: mnist and cifar10 only)"}
SPEC_OPTIONAL = {"dataset": "the data set (recorded; --dataset decides)",
                 "download_dir": "source download: where the download goes (resources/downloads)",
                 "archive": "source archive: the data set's downloaded file or folder",
                 "synthetic": "source synthetic: the generator's settings (train_size, test_size, seed, "
                              "published_sizes, ...)",
                 "digits": "source digits: {test_fraction (0.25), seed (0)}"}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Prepare one data set's canonical file from a configured source.",
                                     epilog=spec_help(SPEC_REQUIRED, SPEC_OPTIONAL),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=sorted(FORMATS))
    parser.add_argument("--spec", required=True, help="the data source settings as JSON (or a JSON/YAML file)")
    parser.add_argument("--out", required=True, help="canonical .npz to write")
    parser.add_argument("--summary", required=True, help="JSON summary (sha256, counts) to write")
    parser.add_argument("--download-dir", help="where source download puts its files (overrides the spec's)")
    args = parser.parse_args(argv)
    spec = read_spec(args.spec, SPEC_REQUIRED, SPEC_OPTIONAL)
    if spec["source"] == "archive" and "archive" not in spec:
        raise SystemExit(f"--spec is missing 1 required key(s):\n  archive: {SPEC_OPTIONAL['archive']}")
    if args.download_dir:
        spec["download_dir"] = args.download_dir
    try:
        summary = prepare(args.dataset, spec, args.out, args.summary)
    except DataError as exc:
        raise SystemExit(f"{args.dataset}: {exc}") from None
    print(f"wrote {args.out}: sha256 {summary['sha256']}")


if __name__ == "__main__":
    main()
