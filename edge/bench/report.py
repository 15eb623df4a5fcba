"""Benchmark results as a text table, Markdown and a chart, for one run or several devices.

Each function takes a list of results (the dicts ``pneumo bench --json`` writes):
one for a run just measured, several for ``--compare``, where a device column is
added and each row keeps the speed-up against its own machine's baseline.
"""

from __future__ import annotations

from pathlib import Path

from ..classifier import DEFAULT_MODEL
from ..errors import PneumoError
from .machine import machine_label

#: Every row of every result carries exactly these keys (``None`` where not measured).
ROW_FIELDS = ("kind", "model", "variant", "model_id", "model_path", "size_bytes", "validation_auc", "backend",
              "threads", "runtime", "status", "reason", "load_ms", "first_inference_ms", "first_end_to_end_ms",
              "invoke_ms", "end_to_end_ms", "stages_ms_p50", "throughput_fps", "peak_rss_mib",
              "speedup_vs_baseline")

HEADERS = ("model", "backend", "threads", "val AUC", "size MiB", "load ms", "1st inf ms",
           "invoke p50/p90/p99 ms", "end-to-end p50/p90/p99 ms", "films/s", "peak RSS MiB", "x notebook (e2e)")


def row_name(row: dict) -> str:
    return f"notebook baseline ({row['model']})" if row["kind"] == "baseline" else row["model"]


def table_cells(row: dict) -> list[str]:
    threads = "default" if row["kind"] == "baseline" else ("-" if row["threads"] is None else str(row["threads"]))
    size = "-" if row["size_bytes"] is None else f"{row['size_bytes'] / 2**20:.2f}"
    auc = "-" if row["validation_auc"] is None else f"{row['validation_auc']:.3f}"
    head = [row_name(row), row["backend"], threads, auc, size]
    if row["status"] != "ok":
        return head + [row["status"]] + ["-"] * (len(HEADERS) - len(head) - 1)
    invoke, e2e, ratio = row["invoke_ms"], row["end_to_end_ms"], row["speedup_vs_baseline"]
    return head + [f"{row['load_ms']:.0f}", f"{row['first_inference_ms']:.1f}",
                   f"{invoke['p50']:.2f} / {invoke['p90']:.2f} / {invoke['p99']:.2f}",
                   f"{e2e['p50']:.1f} / {e2e['p90']:.1f} / {e2e['p99']:.1f}",
                   f"{row['throughput_fps']:.1f}", f"{row['peak_rss_mib']:.0f}",
                   "-" if ratio is None else f"{ratio['end_to_end_ms']:.2f}x"]


def _table(results: list[dict]) -> tuple[list[str], list[list[str]]]:
    several = len(results) > 1
    headers = (["device"] if several else []) + list(HEADERS)
    lines = [([device_name(result)] if several else []) + table_cells(row)
             for result in results for row in result["rows"]]
    return headers, lines


def device_name(result: dict) -> str:
    name = machine_label(result["machine"])
    return f"{name} [{result['source']}]" if result.get("source") else name


def not_measured(results: list[dict]) -> list[str]:
    """One line per distinct reason a row was not measured, naming the rows it covers."""
    reasons: dict[tuple[str, str], list[str]] = {}
    for result in results:
        for row in result["rows"]:
            if row["status"] != "ok":
                key = (row["status"], f"{row['backend']}: {row['reason']}")
                reasons.setdefault(key, []).append(row_name(row))
    return [f"{status}: {reason} ({', '.join(names)})" for (status, reason), names in reasons.items()]


def against_default(results: list[dict]) -> list[str]:
    """One line per device, backend and thread count where the shipped default was measured beside
    other models: its time over each of theirs (p50, interpreter call and end to end), so that a
    default slower than another model says by how much."""
    default = Path(DEFAULT_MODEL).stem
    lines = []
    for result in results:
        measured = [row for row in result["rows"] if row["kind"] == "tflite" and row["status"] == "ok"]
        for mine in (row for row in measured if row["model"] == default):
            alike = [row for row in measured if row["model"] != default
                     and (row["backend"], row["threads"]) == (mine["backend"], mine["threads"])]
            if not alike:
                continue
            ratios = ", ".join(f"{row['model']} {mine['invoke_ms']['p50'] / row['invoke_ms']['p50']:.2f}x / "
                               f"{mine['end_to_end_ms']['p50'] / row['end_to_end_ms']['p50']:.2f}x" for row in alike)
            device = f"{device_name(result)}, " if len(results) > 1 else ""
            threads = "" if mine["threads"] is None else f", {mine['threads']} thread(s)"
            lines.append(f"the default {default} on {device}{mine['backend']}{threads}, its time over each other "
                         f"model's (interpreter call / end to end): {ratios}")
    return lines


def text_table(results: list[dict]) -> str:
    headers, lines = _table(results)
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *lines)]
    out = [f"{device_name(result)}: {machine_summary(result['machine'])}" for result in results]
    out += ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
            for line in [headers, ["-" * w for w in widths], *lines]]
    return "\n".join(out + not_measured(results) + against_default(results)) + "\n"


def machine_summary(machine: dict) -> str:
    tpu = machine.get("libedgetpu") or "no libedgetpu"
    devices = ", ".join(machine.get("edgetpu_devices") or []) or "no Edge TPU device"
    return (f"{machine.get('cpu_model')}, {machine.get('cores')} cores, {machine.get('os')}, kernel "
            f"{machine.get('kernel')}, {machine.get('python')}, {machine.get('runtime')} "
            f"{machine.get('runtime_version')}, {tpu}, {devices}")


def markdown(results: list[dict]) -> str:
    headers, lines = _table(results)
    out = ["# pneumo bench results", ""]
    for result in results:
        settings = result["settings"]
        out += [f"## {device_name(result)}", "", f"Measured {result['created']} with:", "", "```",
                result["command"], "```", "", "| machine | |", "|---|---|"]
        out += [f"| {key} | {_md(value)} |" for key, value in result["machine"].items()]
        out += ["", f"{len(settings['films'])} films from {', '.join(settings['films_from'])}; "
                f"{settings['warmup']} warm-up and {settings['runs']} timed calls per row, "
                "each row in a fresh process. Load average (1, 5, 15 min) before: "
                f"{_md(settings.get('load_average_before'))}; after: {_md(settings.get('load_average_after'))}."]
        if settings["skipped_films"]:
            out.append("Skipped films: " + "; ".join(f"{s['film']} ({s['reason']})"
                                                       for s in settings["skipped_films"]) + ".")
        if settings.get("baseline"):
            base = settings["baseline"]
            out.append(f"Notebook baseline: {base['keras_model']} (scaling {base['scaling']} from "
                       f"{base['settings_from']}; resize with the {base['resize']}; threads: {base['threads']}).")
        out.append("")
    out += ["## Results", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    notes = not_measured(results)
    if notes:
        out += ["", "Not measured:", ""] + [f"- {note}" for note in notes]
    beside = against_default(results)
    if beside:
        out += ["", "The default beside the other models:", ""] + [f"- {line}" for line in beside]
    out += ["", "Where the end-to-end time goes (p50 per stage, ms):", ""] + stage_table(results)
    out += ["", "Columns: *load* is importing the interpreter runtime and loading the model in a fresh process; "
            "*1st inf* the first model call; *invoke* the model call alone after warm-up; *end-to-end* one film "
            "from its file to a label (read, decode, quality gate, preprocess, invoke, postprocess); *films/s* "
            "films scored one after another; *x notebook* how many times faster than the notebook baseline "
            "end to end (its p50 over the row's p50) on the same machine; *val AUC* from the model card.", ""]
    return "\n".join(out)


def stage_table(results: list[dict]) -> list[str]:
    """Markdown lines: the p50 of decode, preprocess and invoke for every measured row."""
    several = len(results) > 1
    headers = (["device"] if several else []) + ["model", "backend", "threads", "decode", "preprocess", "invoke"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for result in results:
        for row in (row for row in result["rows"] if row["status"] == "ok"):
            cells = ([device_name(result)] if several else []) + table_cells(row)[:3]
            cells += [f"{row['stages_ms_p50'][stage]:.2f}" for stage in ("decode", "preprocess", "invoke")]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def _md(value) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return "-" if value is None else str(value).replace("|", "\\|")


def setting(row: dict) -> str:
    if row["kind"] == "baseline":
        return ""
    return f" {row['backend']}" + ("" if row["threads"] is None else f" x{row['threads']}")


def plot(results: list[dict], out: str) -> None:
    """End-to-end and invoke p50 (whiskers to p90, log scale) and peak memory per measured row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    several = len(results) > 1
    rows = [(result, row) for result in results for row in result["rows"] if row["status"] == "ok"]
    if not rows:
        raise PneumoError("no measured rows to plot", code="nothing_to_plot")
    names = [(f"{device_name(result)}: " if several else "") + row_name(row) + setting(row) for result, row in rows]
    ys = range(len(rows))
    figure, (latency, memory) = plt.subplots(1, 2, figsize=(13, 1.2 + 0.5 * len(rows)), sharey=True,
                                             gridspec_kw={"width_ratios": [3, 1]})
    e2e = [row["end_to_end_ms"] for _, row in rows]
    invoke = [row["invoke_ms"] for _, row in rows]
    latency.barh([y + 0.2 for y in ys], [s["p50"] for s in e2e], height=0.4, label="end to end p50",
                 xerr=[[0] * len(e2e), [s["p90"] - s["p50"] for s in e2e]], color="#4477aa")
    latency.barh([y - 0.2 for y in ys], [s["p50"] for s in invoke], height=0.4, label="invoke p50",
                 xerr=[[0] * len(invoke), [s["p90"] - s["p50"] for s in invoke]], color="#ee7733")
    for y, (_, row) in zip(ys, rows):
        ratio = row["speedup_vs_baseline"]
        if ratio and row["kind"] != "baseline":
            latency.annotate(f"{ratio['end_to_end_ms']:.1f}x faster than notebook",
                             (row["end_to_end_ms"]["p90"], y + 0.2), xytext=(4, -3), textcoords="offset points",
                             fontsize=8)
    latency.set_xscale("log")
    latency.set_yticks(list(ys), names, fontsize=8)
    latency.invert_yaxis()
    latency.set_xlabel("milliseconds per film, log scale (bars p50, whiskers to p90)")
    latency.set_xlim(right=max(s["p90"] for s in e2e + invoke) * 10)  # room for the annotations
    latency.legend(loc="lower left", bbox_to_anchor=(0, 1), ncol=2, fontsize=8, frameon=False)
    memory.barh(list(ys), [row["peak_rss_mib"] for _, row in rows], color="#999933")
    memory.set_xlabel("peak resident memory, MiB")
    title = "pneumo bench: " + "; ".join(dict.fromkeys(machine_label(r["machine"]) for r in results))
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(out, dpi=120)
    plt.close(figure)
