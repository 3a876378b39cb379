"""The incident pack's starting notebook (analysis.ipynb, written with nbformat): load each file, plot it, so that
the candidate starts analysing within a minute. It names no cause: the same notebook ships with every pack."""

from __future__ import annotations

from pathlib import Path

CELLS = [
    ("markdown", "# Analysis\n\nEach cell loads one of the pack's files and draws it. Add your own below."),
    (
        "code",
        "import pandas as pd\n"
        "import matplotlib\n"
        "import matplotlib.pyplot as plt\n\n"
        "metrics = pd.read_csv('metrics.csv', parse_dates=['time'])\n"
        "predictions = pd.read_csv('predictions.csv', parse_dates=['time', 'label_time'])\n"
        "before = pd.read_csv('inputs_before.csv')\n"
        "after = pd.read_csv('inputs_after.csv')\n"
        "changes = pd.read_csv('changes.csv', parse_dates=['time'])\n"
        "print(len(metrics), 'minutes of metrics;', len(predictions), 'predictions;', len(changes), 'changes')",
    ),
    ("markdown", "## The monitoring metrics, minute by minute (changes from the log as dotted lines)"),
    (
        "code",
        "columns = [c for c in metrics.columns if c != 'time']\n"
        "fig, axes = plt.subplots(len(columns), 1, figsize=(11, 2 * len(columns)), sharex=True)\n"
        "for ax, column in zip(axes, columns):\n"
        "    ax.plot(metrics['time'], metrics[column])\n"
        "    ax.set_ylabel(column, rotation=0, ha='right', fontsize=8)\n"
        "    for t in changes['time']:\n"
        "        ax.axvline(t, color='grey', linestyle=':', linewidth=1)\n"
        "fig.tight_layout()",
    ),
    ("markdown", "## The change log"),
    ("code", "changes"),
    ("markdown", "## Inputs: the first fifth of the period against the last"),
    (
        "code",
        "numeric = before.select_dtypes('number').columns\n"
        "pd.DataFrame({'before (median)': before[numeric].median(), 'after (median)': after[numeric].median(),\n"
        "              'before (missing)': before[numeric].isna().mean(), 'after (missing)': after[numeric].isna().mean()})",
    ),
    (
        "code",
        "categorical = [c for c in before.columns if c not in numeric]\n"
        "for column in categorical:\n"
        "    shares = pd.DataFrame({'before': before[column].value_counts(normalize=True),\n"
        "                           'after': after[column].value_counts(normalize=True)}).fillna(0)\n"
        "    print(column)\n"
        "    print(shares.round(3), end='\\n\\n')",
    ),
    ("markdown", "## The prediction log over time: inputs, scores, and accuracy where labels arrived"),
    (
        "code",
        "by_10min = predictions.set_index('time').resample('10min')\n"
        "medians = by_10min[list(numeric)].median()\n"
        "fig, axes = plt.subplots(len(numeric), 1, figsize=(11, 1.6 * len(numeric)), sharex=True)\n"
        "for ax, column in zip(axes, numeric):\n"
        "    ax.plot(medians.index, medians[column])\n"
        "    ax.set_ylabel(column, rotation=0, ha='right', fontsize=8)\n"
        "fig.tight_layout()",
    ),
    (
        "code",
        "labelled = predictions.dropna(subset=['actual_churn'])\n"
        "accuracy = (labelled['predicted_churn'] == labelled['actual_churn']).groupby(\n"
        "    labelled['time'].dt.floor('10min')).mean()\n"
        "summary = pd.DataFrame({'mean score': by_10min['churn_score'].mean(),\n"
        "                        'predictions': by_10min['churn_score'].count(),\n"
        "                        'accuracy (labelled)': accuracy,\n"
        "                        'model versions': by_10min['model_version'].agg(lambda v: ','.join(map(str, sorted(set(v)))))})\n"
        "summary",
    ),
]


def write_notebook(path: Path) -> None:
    import nbformat
    from nbformat import v4

    # Cell ids numbered, not nbformat's random ones: the same pack is the same file.
    cells = [
        (v4.new_markdown_cell if kind == "markdown" else v4.new_code_cell)(src, id=f"cell-{k}")
        for k, (kind, src) in enumerate(CELLS)
    ]
    notebook = v4.new_notebook(
        cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )
    nbformat.validate(notebook)
    nbformat.write(notebook, str(path))
