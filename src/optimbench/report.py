"""Text the report computes from the tables (no hard-coded verdicts), and the report's build steps."""

from __future__ import annotations

import argparse
import base64
import html
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from optimbench.io import atomic_path

# nbconvert template folder: JupyterLab's HTML without scripts from CDNs (the report works offline).
TEMPLATES = Path(__file__).resolve().parents[2] / "report" / "templates"


def _ci(low, high, fmt="{:.3f}") -> str:
    return f"[{fmt.format(low)}, {fmt.format(high)}]" if pd.notna(low) and pd.notna(high) else "(one seed: no interval)"


def study_heading(runs: pd.DataFrame) -> str:
    """What the training runs used, from what they recorded: data set, model, width, images."""
    if runs.empty:
        return "no training runs"
    first = runs.iloc[0]
    images = ""
    if pd.notna(first.get("train_images")) and pd.notna(first.get("test_images")):
        images = f", {int(first['train_images']):,} training / {int(first['test_images']):,} test images"
    return f"{first['dataset']}, {first['model']} (width {first['width']}{images})"


def ranking(summary: pd.DataFrame, confidence: float) -> str:
    """The ranking by mean final test accuracy, each with its interval, seeds and divergences, and whether
    the seeds separate it from the best (aggregate.optimizer_summary)."""
    if summary.empty:
        return "No training runs were found."
    lines = []
    for row in summary.sort_values(["rank", "optimizer"]).itertuples():
        diverged = f", **{row.divergences} diverged** (scored 0)" if row.divergences else ""
        separated = "" if row.rank == 1 else (" — below the best" if row.separated_from_best
                                              else " — not separated from the best by these seeds")
        lines.append(f"{int(row.rank)}. **{row.optimizer}**: {row.final_test_acc:.4f} "
                     f"{_ci(row.final_test_acc_ci_low, row.final_test_acc_ci_high, '{:.4f}')} over {row.seeds} "
                     f"seed(s){diverged}{separated}")
    return (f"Final test accuracy, mean over seeds with its {confidence:.0%} interval "
            "(Student-t, clipped to [0, 1]):\n\n" + "\n".join(lines))


def claims_summary(claims: pd.DataFrame) -> str:
    """How many of the article's claims hold, are contradicted or are inconclusive, then each verdict."""
    if claims.empty:
        return "No claims were checked."
    counts = claims["verdict"].value_counts()
    head = ", ".join(f"{counts.get(v, 0)} {v}" for v in ("holds", "contradicted", "inconclusive", "not tested"))
    lines = [f"- *{row.verdict}*: {row.claim}" for row in claims.itertuples()]
    return f"The article's {len(claims)} claims: {head}.\n\n" + "\n".join(lines)


def training_conclusion(summary: pd.DataFrame, claims: pd.DataFrame, confidence: float = 0.95) -> str:
    """A short Markdown conclusion of the training study: best and worst optimizer with their intervals,
    lowest test loss, divergences (every optimizer counted), and the claims' verdicts."""
    if summary.empty:
        return "No training runs were found."
    ordered = summary.sort_values(["rank", "optimizer"])
    best, worst = ordered.iloc[0], ordered.iloc[-1]
    tied = ordered[(ordered["rank"] > 1) & ~ordered["separated_from_best"].astype(bool)]["optimizer"].tolist()
    lines = [f"- Highest mean final test accuracy: **{best.optimizer}** ({best.final_test_acc:.4f} "
             f"{_ci(best.final_test_acc_ci_low, best.final_test_acc_ci_high, '{:.4f}')}, {int(best.seeds)} seed(s))"
             + (f"; the seeds do not separate it from {', '.join(tied)}" if tied else "")
             + f". Lowest: **{worst.optimizer}** ({worst.final_test_acc:.4f})."]
    lowest_loss = summary.sort_values("lowest_test_loss").iloc[0]
    lines.append(f"- Lowest test loss reached: **{lowest_loss.optimizer}** ({lowest_loss.lowest_test_loss:.4f}, "
                 f"epoch {lowest_loss.lowest_test_loss_epoch:.0f} on average).")
    diverged = summary[summary["divergences"] > 0]
    lines.append("- Diverged runs (each scored as accuracy 0 and loss ∞ from the epoch it diverged): " + (
        ", ".join(f"{r.optimizer} ({int(r.divergences)} of {int(r.seeds)})" for r in diverged.itertuples())
        if len(diverged) else "none."))
    counts = claims["verdict"].value_counts() if not claims.empty else pd.Series(dtype=int)
    lines.append(f"- Of the article's {len(claims)} claims: {counts.get('holds', 0)} hold, "
                 f"{counts.get('contradicted', 0)} contradicted, {counts.get('inconclusive', 0)} inconclusive "
                 f"at {confidence:.0%} confidence, {counts.get('not tested', 0)} not tested.")
    return "\n".join(lines)


def descent_conclusion(reproduction: pd.DataFrame) -> str:
    """What the article's epoch counts measured: as-printed against the correct central gradient."""
    if reproduction.empty or "epochs_as-printed" not in reproduction:
        return "No article descent runs were found."
    lines = []
    for _, d in reproduction.iterrows():
        parts = [f"{d[f'epochs_{g}']:.0f} epochs with the {name} gradient (reached the minimum: "
                 f"{d[f'reached_minimum_{g}']})" for g, name in (("as-printed", "as-printed"), ("central", "correct central"))
                 if f"epochs_{g}" in d]
        lines.append(f"- **{d['method']}** on {d['function']}: " + "; ".join(parts) + ".")
    return "\n".join(lines)


def descent_finding(runs: pd.DataFrame) -> str:
    """One line per test function: which optimizer run ended lowest, and how many reached a global minimum."""
    if runs.empty:
        return "No descent runs were found."
    lines = []
    for function, group in runs.groupby("function", sort=True):
        finite = group[group["final_f"].notna() & ~group["diverged"].astype(bool)]
        best = finite.sort_values("final_f").iloc[0] if len(finite) else None
        reached = int(group["reached_minimum"].sum())
        lines.append(f"- {function}: {reached} of {len(group)} runs reached a global minimum"
                     + (f"; lowest value {best['final_f']:.4g} by {best['method']} ({best['gradient']}, "
                        f"{best['group']})" if best is not None else "")
                     + (f"; {int(group['diverged'].sum())} diverged" if group["diverged"].any() else "") + ".")
    return "\n".join(lines)


def mismatch_warning(runs: pd.DataFrame) -> str:
    """A warning when the recorded runs differ from the configuration (aggregate.runs_table), else ''."""
    if runs.empty or runs["matches_config"].all():
        return ""
    differing = runs[~runs["matches_config"]]
    lines = [f"- {r.optimizer} seed {r.seed}: {r.differences}" for r in differing.itertuples()]
    return (f"**Warning: {len(differing)} of {len(runs)} runs were trained with other settings than the "
            "configuration now says.** Everything below shows what the runs recorded (their run.json). "
            "Run the study again (`make study` with this configuration) to train with the new settings.\n\n"
            + "\n".join(lines))


def tuning_summary(rankings: pd.DataFrame, default_claims: pd.DataFrame, tuned_claims: pd.DataFrame,
                   selection: pd.DataFrame) -> str:
    """Whether tuning on the validation split changed the answer: the best optimizer at default and tuned
    settings, each claim whose verdict changed, and the selections at the edge of their search range."""
    if rankings.empty:
        return "No tuned runs were found."
    tuned = rankings.sort_values(["rank_tuned", "optimizer"]).iloc[0]
    default = rankings.sort_values(["rank_default", "optimizer"]).iloc[0]
    lines = [f"- Best after tuning: **{tuned.optimizer}** ({tuned.final_test_acc_tuned:.4f}); at default settings: "
             f"**{default.optimizer}** ({default.final_test_acc_default:.4f})"
             + (" — tuning did not change the winner." if tuned.optimizer == default.optimizer
                else " — tuning changed the winner.")]
    both = default_claims.merge(tuned_claims, on="claim", suffixes=("_default", "_tuned"))
    changed = both[both["verdict_default"] != both["verdict_tuned"]]
    lines.append(f"- The article's claims: {len(changed)} of {len(both)} verdicts change with tuning"
                 + ("." if changed.empty else ": " + "; ".join(
                     f"{r.claim}: {r.verdict_default} → {r.verdict_tuned}" for r in changed.itertuples())))
    edges = selection[selection["at_edge"].astype(str) != ""]
    if len(edges):
        lines.append("- **Selected at the edge of the search range** (widen it): "
                     + "; ".join(f"{r.optimizer} {r.at_edge}" for r in edges.itertuples()))
    return "\n".join(lines)


ARTICLE_STUDY = {"optimizers": 7, "seeds": 3, "epochs": 50}  # the study the article's claims need


def cost_conclusion(cost: pd.DataFrame, dataset: str) -> str:
    """What the study cost in device time (start-up per run and per epoch apart), and what the article's
    whole study would cost at that pace."""
    from optimbench.aggregate import projected_device_hours

    if cost.empty:
        return "No training runs were found."
    total = cost[cost["optimizer"] == "all"].iloc[0]
    unit = f"{total['unit']}-hours"
    lines = [f"- This study: **{total['device_seconds'] / 3600:.3f} {unit}** for {int(total['runs'])} runs and "
             f"{int(total['epochs'])} epochs on {total['device']}: {total['startup_device_seconds_per_run']:.1f} "
             f"{total['unit']}-seconds of start-up per run (imports, data, model) and "
             f"{total['device_seconds_per_epoch']:.1f} {total['unit']}-seconds per epoch (median "
             f"{total['samples_per_second']:.0f} training samples/s per run).",
             f"- Each run held {total['share']:g} {total['unit']}(s) (GPU: train.gpus / train.runs_per_gpu; CPU: its threads)."]
    hours = projected_device_hours(cost, **ARTICLE_STUDY)
    lines.append(f"- At this pace the article's whole study ({ARTICLE_STUDY['optimizers']} optimizers × "
                 f"{ARTICLE_STUDY['seeds']} seeds × {ARTICLE_STUDY['epochs']} epochs, with this model and data "
                 f"({dataset})) would take **{hours:.2f} {unit}** (start-up × runs + per-epoch cost × epochs).")
    return "\n".join(lines)


def figure(path, alt: str) -> str:
    """An <img> with the PNG embedded (base64) and alternative text, for display(HTML(...))."""
    encoded = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}" style="max-width: 100%">'


def render(notebook, executed, html_path, parameters: dict, title: str | None = None) -> None:
    """Execute the notebook with papermill and export it to self-contained HTML without code, titled `title`."""
    import papermill

    import nbformat

    with atomic_path(executed) as tmp_nb:
        papermill.execute_notebook(str(notebook), str(tmp_nb), parameters=parameters, kernel_name="python3",
                                   progress_bar=False, cwd=Path.cwd())
        if title:  # the HTML's <title> (nbconvert's lab template reads the notebook's metadata.title)
            executed_nb = nbformat.read(tmp_nb, as_version=4)
            executed_nb.metadata["title"] = title
            nbformat.write(executed_nb, tmp_nb)
        with atomic_path(html_path) as tmp_html, open(tmp_html, "wb") as out:
            subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--no-input",
                            f"--TemplateExporter.extra_template_basedirs={TEMPLATES}", "--template", "offline",
                            "--stdout", str(tmp_nb)], stdout=out, check=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Execute the report notebook and export it to HTML.")
    parser.add_argument("--notebook", required=True)
    parser.add_argument("--executed", required=True, help="executed .ipynb to write")
    parser.add_argument("--html", required=True, help="HTML report to write")
    parser.add_argument("--parameters", required=True, help="notebook parameters as JSON")
    args = parser.parse_args(argv)
    parameters = json.loads(args.parameters)
    title = None
    if "plan_file" in parameters:
        from optimbench.study import read_plan

        title = read_plan(parameters["plan_file"])["settings"]["title"]
    render(args.notebook, args.executed, args.html, parameters, title)
    print(f"report: {args.html}")


if __name__ == "__main__":
    main()
