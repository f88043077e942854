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


def training_conclusion(summary: pd.DataFrame, claims: pd.DataFrame) -> str:
    """A short Markdown conclusion of the CIFAR study, from the optimizer summary and the claims table."""
    if summary.empty:
        return "No training runs were found."
    best = summary.sort_values("final_test_acc", ascending=False).iloc[0]
    worst = summary.sort_values("final_test_acc").iloc[0]
    lines = [f"- Highest mean final test accuracy: **{best.optimizer}** ({best.final_test_acc:.4f} over "
             f"{int(best.seeds)} seed(s)); lowest: **{worst.optimizer}** ({worst.final_test_acc:.4f})."]
    lowest_loss = summary.sort_values("lowest_test_loss").iloc[0]
    lines.append(f"- Lowest test loss reached: **{lowest_loss.optimizer}** ({lowest_loss.lowest_test_loss:.4f}, "
                 f"epoch {lowest_loss.lowest_test_loss_epoch:.0f} on average).")
    diverged = summary[summary["divergences"] > 0]
    lines.append("- Diverged runs: " + (", ".join(f"{r.optimizer} ({int(r.divergences)})" for r in
                                                   diverged.itertuples()) if len(diverged) else "none."))
    tested = claims[claims["holds"].notna()]
    held = int(tested["holds"].astype(bool).sum())
    lines.append(f"- Of the article's {len(claims)} claims, {len(tested)} could be tested here; {held} held.")
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


ARTICLE_STUDY = {"optimizers": 7, "seeds": 3, "epochs": 50}  # the study the article's claims need


def cost_conclusion(cost: pd.DataFrame, train: dict) -> str:
    """What the study cost in device time, and what the article's whole study would cost at that pace."""
    from optimbench.aggregate import projected_device_hours

    if cost.empty:
        return "No training runs were found."
    total = cost[cost["optimizer"] == "all"].iloc[0]
    unit = f"{total['unit']}-hours"
    lines = [f"- This study: **{total['device_seconds'] / 3600:.3f} {unit}** for {int(total['runs'])} runs and "
             f"{int(total['epochs'])} epochs on {total['device']} ({total['device_seconds_per_epoch']:.1f} "
             f"{total['unit']}-seconds per epoch, median {total['samples_per_second']:.0f} training samples/s per run).",
             f"- Each run held {total['share']:g} {total['unit']}(s) (GPU: train.gpus / train.runs_per_gpu; CPU: its threads)."]
    hours = projected_device_hours(cost, **ARTICLE_STUDY)
    lines.append(f"- At this pace the article's whole study ({ARTICLE_STUDY['optimizers']} optimizers × "
                 f"{ARTICLE_STUDY['seeds']} seeds × {ARTICLE_STUDY['epochs']} epochs of {train.get('model')} at width "
                 f"{train.get('width')} on {total['dataset']}, {train.get('train_subset') or 'all'} training images) "
                 f"would take **{hours:.2f} {unit}**.")
    return "\n".join(lines)


def figure(path, alt: str) -> str:
    """An <img> with the PNG embedded (base64) and alternative text, for display(HTML(...))."""
    encoded = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}" style="max-width: 100%">'


def render(notebook, executed, html_path, parameters: dict) -> None:
    """Execute the notebook with papermill and export it to self-contained HTML without code."""
    import papermill

    with atomic_path(executed) as tmp_nb:
        papermill.execute_notebook(str(notebook), str(tmp_nb), parameters=parameters, kernel_name="python3",
                                   progress_bar=False, cwd=Path.cwd())
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
    render(args.notebook, args.executed, args.html, json.loads(args.parameters))
    print(f"report: {args.html}")


if __name__ == "__main__":
    main()
