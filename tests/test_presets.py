"""The presets can answer what they are for (issue 29, item 4): the studies meant for cluster hours run at
least 3 seeds on every problem, and a preset (or config.yaml) whose design cannot give verdicts says so in
its header."""

from pathlib import Path

import pytest

from optimbench import config
from optimbench.plan import plan

from helpers import ROOT

PRESETS = ROOT / "config" / "presets"
# Files read on top of config.yaml for each preset (the rehearsal overrides the demon-paper preset).
STACKS = {"config.yaml": [], **{p.stem: [p] for p in sorted(PRESETS.glob("*.yaml"))},
          "rehearsal": [PRESETS / "demon-paper.yaml", PRESETS / "rehearsal.yaml"]}
ANSWERING = ("demon-paper", "tuned")  # the studies meant to give verdicts on a cluster


def seeds_per_problem(files: list[Path]) -> dict[str, int]:
    runs = plan(config.load([ROOT / "config.yaml", *files])).train_runs
    return {p: len({r.seed for r in runs if r.problem == p}) for p in {r.problem for r in runs}}


def header(path: Path) -> str:
    lines = path.read_text().splitlines()
    return "\n".join(line for line in lines[:next(i for i, line in enumerate(lines) if not line.startswith("#"))])


@pytest.mark.parametrize("name", ANSWERING)
def test_the_cluster_presets_run_at_least_three_seeds_on_every_problem(name):
    assert min(seeds_per_problem(STACKS[name]).values()) >= 3


@pytest.mark.parametrize("name", list(STACKS))
def test_a_preset_that_cannot_give_verdicts_says_so_in_its_header(name):
    files = STACKS[name]
    fewest = min(seeds_per_problem(files).values())
    own = files[-1] if files else ROOT / "config.yaml"
    says = "cannot give verdicts" in " ".join(header(own).replace("#", " ").split())
    assert says == (fewest < 2 or name == "rehearsal"), \
        f"{own.name}: {fewest} seed(s) on some problem, and its header {'says' if says else 'does not say'} so"
