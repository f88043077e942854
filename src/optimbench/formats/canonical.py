"""The canonical `.npz` every data set ends as (SPEC §2.1): images uint8 N×H×W×C (or token streams),
int64 labels, class names, written reproducibly with its sha256 and summary beside it as JSON."""

from __future__ import annotations

import zipfile

import numpy as np

from optimbench.io import atomic_path, sha256, write_json


def save_npz(path, arrays: dict) -> None:
    """np.savez's format with fixed timestamps, so equal arrays give an equal file (and sha256)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key, value in arrays.items():
            with archive.open(zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0)), "w",
                              force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(value), allow_pickle=False)


def write_canonical(arrays: dict, out_npz, out_json, provenance: dict) -> dict:
    """Save the arrays as one .npz (atomically) and its sha256 and summary as JSON."""
    with atomic_path(out_npz) as tmp:
        save_npz(tmp, arrays)
    summary = {**provenance, "sha256": sha256(out_npz), "classes": [str(c) for c in arrays["classes"]],
               "n_train": int(len(arrays["y_train"])), "n_test": int(len(arrays["y_test"])),
               "image_shape": list(arrays["x_train"].shape[1:])}
    write_json(out_json, summary)
    return summary


def load_canonical(path) -> dict[str, np.ndarray]:
    """The canonical arrays (x_train, y_train, x_test, y_test, classes)."""
    with np.load(path, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}
