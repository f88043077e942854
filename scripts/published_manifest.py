"""Write the manifest of a published source's final runs (optimbench.published): from a git clone of the source
repository at its pinned commit, every setting folder run with more than one seed (the baselines' best setting,
rerun at seeds 42-51), each file's repository path and git blob SHA-1 (the checksum a download is verified by),
and the targets file's. Usage (DeepOBS_Baselines v1.1):

    git clone https://github.com/fsschneider/DeepOBS_Baselines && cd DeepOBS_Baselines && git checkout v1.1
    python scripts/published_manifest.py --git-dir DeepOBS_Baselines/.git --commit v1.1 \
        --out src/optimbench/manifests/deepobs-v1.1.json
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from collections import defaultdict

SEED = re.compile(r"random_seed__(\d+)__")


def tree(git_dir: str, commit: str) -> list[tuple[str, str]]:
    """(path, blob SHA-1) of every file of the commit."""
    out = subprocess.run(["git", f"--git-dir={git_dir}", "ls-tree", "-r", commit], check=True, capture_output=True,
                         text=True).stdout
    return [(line.split("\t", 1)[1], line.split()[2]) for line in out.splitlines()]


def manifest(files: list[tuple[str, str]], targets_file: str) -> dict:
    runs = defaultdict(dict)
    for path, sha in files:
        parts = path.split("/")
        match = SEED.match(parts[-1]) if len(parts) == 4 else None
        if match:
            runs[(parts[0], parts[1], parts[2])][int(match.group(1))] = {"path": path, "sha1": sha}
    out = {"targets": {"path": targets_file, "sha1": dict(files)[targets_file]}, "runs": defaultdict(dict)}
    for (problem, optimizer, setting), seeds in sorted(runs.items()):
        if len(seeds) > 1:
            out["runs"][problem][optimizer] = {"setting": setting, "seeds": {str(s): seeds[s] for s in sorted(seeds)}}
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--git-dir", required=True)
    parser.add_argument("--commit", required=True)
    parser.add_argument("--targets-file", default="convergence_performance.json")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    with open(args.out, "w") as fh:
        json.dump(manifest(tree(args.git_dir, args.commit), args.targets_file), fh, indent=1, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    main()
