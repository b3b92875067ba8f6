"""The demo's HTML report: one self-contained file (images and plots inlined as data URLs).

    write_report(path, title="unireward sandbox demo", judge_table=..., pairs=..., before_after=..., gains=...)

Sections (each optional):
- judge_table: one row per task, {"task", "n", <metric>: value, ...}, drawn as a task x metric table with `columns`
  ({metric: header}) naming the metrics in order and `judge_note` saying what they are;
- pairs: constructed preference pairs, each {"prompt", "chosen": image, "rejected": image, "verdicts": [str],
  "scores": {"chosen": x, "rejected": y}, "scale"?: "1-5", "labels"?: {...}, "score_raw"?: {...}} side by side;
- before_after: {"caption": [image before, image after]} samples of a model before and after DPO;
- gains: {"label": {"base": x, "dpo": y, "control": z}} drawn as a bar chart.
Images are PIL images, numpy arrays or file paths.
"""

from __future__ import annotations

import base64
import html
import io
import textwrap
from pathlib import Path
from typing import Any


def _data_url(image: Any, scale: int = 4) -> str:
    import numpy as np
    from PIL import Image

    if isinstance(image, (str, Path)):
        image = Image.open(image)
    elif isinstance(image, np.ndarray):
        image = Image.fromarray(image.astype("uint8"))
    image = image.convert("RGB")
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return html.escape("" if v is None else str(v))


def _bar_chart(gains: dict[str, dict[str, float]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(gains)
    arms = list(dict.fromkeys(arm for v in gains.values() for arm in v))
    fig, ax = plt.subplots(figsize=(1.6 + 1.8 * len(labels), 3.2), dpi=100)
    width = 0.8 / max(len(arms), 1)
    for k, arm in enumerate(arms):
        xs = [i + k * width for i in range(len(labels))]
        ax.bar(xs, [gains[label].get(arm, 0.0) for label in labels], width=width, label=arm)
    ax.set_xticks([i + width * (len(arms) - 1) / 2 for i in range(len(labels))],
                  [textwrap.fill(label, 22) for label in labels])  # long labels wrap instead of leaving the figure
    ax.set_ylabel("oracle score")
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the bars, not over them
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:left}
th{background:#f3f3f3}.pair{display:inline-block;margin:0 1.5em 1.5em 0;vertical-align:top}
.pair img,.ba img{image-rendering:pixelated;border:1px solid #999;margin:2px}
.verdict{white-space:pre-line;margin-top:.4em}
.tag{font-size:12px;color:#555}.win{color:#080}.lose{color:#a00}"""


def write_report(path: str | Path, *, title: str = "unireward sandbox demo", summary: str = "",
                 judge_table: list[dict] | None = None, pairs: list[dict] | None = None,
                 before_after: dict[str, list[Any]] | None = None, gains: dict[str, dict[str, float]] | None = None,
                 notes: list[str] | None = None, columns: dict[str, str] | None = None, judge_note: str = "") -> Path:
    e = html.escape
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{_CSS}</style>"
           f"</head><body><h1>{e(title)}</h1>"]
    if summary:
        out.append(f"<p>{e(summary)}</p>")
    if judge_table:
        metrics = columns or {k: k for row in judge_table for k in row if k not in ("task", "n")}
        metrics = {k: h for k, h in metrics.items() if any(k in row for row in judge_table)}
        out.append("<h2>The judge on the held-out split</h2><table><tr><th>task</th><th>n</th>"
                   + "".join(f"<th>{e(h)}</th>" for h in metrics.values()) + "</tr>")
        for row in judge_table:
            cells = "".join(f"<td>{_cell(row.get(k))}</td>" for k in metrics)
            out.append(f"<tr><td>{e(str(row.get('task')))}</td><td>{e(str(row.get('n', '')))}</td>{cells}</tr>")
        out.append("</table>")
        if judge_note:
            out.append(f"<p class='tag'>{e(judge_note)}</p>")
    if gains:
        out.append(f"<h2>Gains from DPO</h2><img id='gains' alt='gains' src='{_bar_chart(gains)}'>")
        out.append("<table><tr><th>model</th>" + "".join(f"<th>{e(a)}</th>" for a in next(iter(gains.values())))
                   + "</tr>")
        for label, arms in gains.items():
            out.append(f"<tr><td>{e(label)}</td>" + "".join(f"<td>{v:.3f}</td>" for v in arms.values()) + "</tr>")
        out.append("</table>")
    if pairs:
        out.append("<h2>Constructed preference pairs</h2>")
        for p in pairs:
            scores, labels = p.get("scores", {}), p.get("labels", {})
            scale = f" on the {p['scale']} scale" if p.get("scale") else ""
            side = {k: f"{k} {labels.get(k, '')}".strip() for k in ("chosen", "rejected")}
            out.append(f"<div class='pair'><div class='tag'>{e(str(p.get('prompt', '')))}</div>"
                       f"<img alt='chosen' src='{_data_url(p['chosen'])}'><img alt='rejected' "
                       f"src='{_data_url(p['rejected'])}'><div class='tag'><span class='win'>{e(side['chosen'])}: "
                       f"score {_cell(scores.get('chosen'))}</span> / <span class='lose'>{e(side['rejected'])}: "
                       f"score {_cell(scores.get('rejected'))}</span>{e(scale)}</div>")
            for k, raw in (p.get("score_raw") or {}).items():
                out.append(f"<div class='tag verdict'>score of the {e(k)}: {e(str(raw))}</div>")
            for v in p.get("verdicts", []):
                out.append(f"<div class='tag verdict'>{e(str(v))}</div>")
            out.append("</div>")
    if before_after:
        out.append("<h2>Samples before and after DPO (same seeds)</h2><table class='ba'><tr><th>prompt</th>"
                   "<th>before</th><th>after</th></tr>")
        for caption, imgs in before_after.items():
            cells = "".join(f"<td><img alt='sample' src='{_data_url(im)}'></td>" for im in imgs)
            out.append(f"<tr><td>{e(caption)}</td>{cells}</tr>")
        out.append("</table>")
    for n in notes or []:
        out.append(f"<p class='tag'>{e(n)}</p>")
    out.append("</body></html>")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out), encoding="utf-8")
    return path
