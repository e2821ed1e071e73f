"""Chapter 06 — our runs next to the paper's numbers, with the facts that make them readable."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from importlib import resources
from pathlib import Path

from jepa_lite import REPO_URL, checkpoint, repo_root
from jepa_lite.errors import UsageError

COMPARABLE = {"profile": "full", "arch": "resnet50", "image_size": 224}


def paper_results() -> list[dict]:
    """The paper's Table I, ablations and costs (``data/paper_results.csv``), one dict a row."""
    text = resources.files("jepa_lite").joinpath("resources/paper_results.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    for r in rows:
        r["value"] = float(r["value"])
    return rows


COMMIT_ENV = "JEPA_LITE_COMMIT"


def git_commit(path: Path | None = None) -> str:
    """The checkout's commit (with '+dirty' for uncommitted changes); where there is no git
    checkout (a copy of the tree sent to a GPU machine), ``$JEPA_LITE_COMMIT`` as given by
    whoever sent it, else 'unknown'."""
    cwd = path or Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=cwd, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=cwd, text=True, capture_output=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get(COMMIT_ENV) or "unknown"


def paper_dataset(num_classes: int) -> str:
    """The data set of Table I a run is read against: ImageNet-1k for a 1000-class run,
    else ImageNet-100 (the reproduction's target, also for the generated data)."""
    return "ImageNet-1k" if num_classes == 1000 else "ImageNet-100"


def paper_cnn_jepa(dataset: str) -> dict[str, float]:
    """Table I's CNN-JEPA ResNet-50 numbers on ``dataset``: ``{metric: top-1 %}``."""
    return {r["metric"]: r["value"] for r in paper_results() if r["table"] == "I"
            and r["dataset"] == dataset and r["method"] == "CNN-JEPA"
            and r["backbone"] == "ResNet-50"}


def run_facts(run_dir, probe_json, profile: str, probe_device: str) -> dict:
    """What a reader needs to judge one of our numbers: code, settings, data, the hardware
    it trained on (from the run's own records) and the one it was probed on, time."""
    run_dir = Path(run_dir)
    ckpt = checkpoint.load_run_checkpoint(run_dir / "last.pt")
    cfg, history = ckpt["config"], checkpoint.read_metrics(run_dir)
    probe = json.loads(Path(probe_json).read_text())
    facts = {"commit": git_commit(), "profile": profile, "arch": cfg["arch"],
             "image_size": cfg["image_size"], "epochs": ckpt["epoch"],
             "batch_size": cfg["batch_size"], "micro_batch": cfg.get("micro_batch"),
             "processes": ckpt.get("world_size"), "precision": ckpt.get("precision"),
             "device": _devices(history, ckpt), "probe_device": probe_device,
             "pretrain_hours": sum(r["seconds"] for r in history) / 3600,
             "train_images": probe["train_images"], "num_classes": probe["num_classes"],
             "data_root": probe["data_root"],
             "dataset": {100: "ImageNet-100", 1000: "ImageNet-1k"}.get(
                 probe["num_classes"], Path(probe["data_root"]).name)}
    facts["comparable"] = all(facts[k] == v for k, v in COMPARABLE.items()) and (
        probe["num_classes"] in (100, 1000))
    return facts


def _devices(history: list[dict], ckpt: dict) -> str:
    """The devices a run trained on, in order (a resumed run may have moved)."""
    seen = [r["device"] for r in history if r.get("device")] or [ckpt.get("device")]
    return ", ".join(d for d in dict.fromkeys(seen) if d) or "not recorded"


def comparison_rows(probe: dict, facts: dict) -> list[dict]:
    """Table I's ResNet-50 rows for the data set a run is read against, then our run."""
    dataset = paper_dataset(facts["num_classes"])
    rows = {}
    for r in paper_results():
        if r["table"] == "I" and r["dataset"] == dataset:
            key = (r["method"], r["backbone"])
            rows.setdefault(key, {"method": r["method"], "backbone": r["backbone"],
                                  "source": "paper", "dataset": dataset})[r["metric"]] = r["value"]
    label = "ours" if facts["comparable"] else f"ours ({facts['profile']}, NOT comparable)"
    ours = {"method": "CNN-JEPA", "backbone": facts["arch"], "source": label,
            "dataset": facts.get("dataset", "generated data"),
            "linear_top1": 100 * probe["linear_top1"], "knn_top1": 100 * probe["knn_top1"],
            "linear_honest_top1": 100 * probe["linear_honest_top1"]}
    return [*rows.values(), ours]


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    def cell(v):  # top-1 with 2 decimals; below 1, three significant digits (0.0644 h/epoch)
        if isinstance(v, float):
            return f"{v:.2f}" if abs(v) >= 1 or v == 0 else f"{v:.3g}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def method_rows(results: dict[str, dict], paper: list[dict], dataset: str, comparable: bool,
                profile: str) -> list[dict]:
    """One row per method of chapter 08 (``results``: label -> probe results): our top-1
    (%) beside Table I's for the same data set (empty where the paper has none: C-JEPA)."""
    reported = {}
    for r in paper:
        if r["table"] == "I" and r["dataset"] == dataset and r["backbone"] == "ResNet-50":
            reported[(r["method"], r["metric"])] = r["value"]
    source = "ours" if comparable else f"ours ({profile}, NOT comparable)"
    return [{"method": label, "source": source, "linear_top1": 100 * res["linear_top1"],
             "knn_top1": 100 * res["knn_top1"],
             "paper_linear_top1": reported.get((label, "linear_top1")),
             "paper_knn_top1": reported.get((label, "knn_top1"))}
            for label, res in results.items()]


def comparison_file(out_dir) -> Path:
    """Where chapter 08 keeps its rows (read by chapter 06's report)."""
    return Path(out_dir) / "08_comparison" / "comparison.json"


OTHERS_HEADING = "## All five methods (chapter 08)"


def with_method_rows(report_md: str, rows: list[dict]) -> str:
    """``report_md`` (chapter 06's report) with chapter 08's rows as its last section,
    replacing an older copy of that section."""
    columns = ["method", "source", "linear_top1", "knn_top1", "paper_linear_top1",
               "paper_knn_top1"]
    head = report_md.split(OTHERS_HEADING)[0].rstrip("\n")
    return "\n".join([head, "", OTHERS_HEADING, "", markdown_table(rows, columns), ""])


def results_page(outputs, dest, commit: str | None = None) -> Path:
    """``dest/<profile>/README.md``: a finished course's numbers and figures (``outputs``: its
    ``--out`` folder), with the commit it ran, device, date and wall time; the figures are
    copied into ``dest/<profile>/figures/<chapter>/``, each executed notebook (its outputs
    included) into ``notebooks/`` and the results chapters 07-09 read without training
    (``jepa_lite.bundle``) into ``data/<chapter>/``, so that the page stands alone, and
    ``dest/README.md`` lists the profiles' pages (``jepa-lite results``). Refused for a run
    of uncommitted code (``+dirty``) or of no known commit: a page must name the code that
    made its numbers."""
    import os
    import shutil
    import time

    outputs, dest = Path(outputs), Path(dest)
    summary = outputs / "summary.json"
    if not summary.is_file():
        raise FileNotFoundError(f"no {summary}: run the course first, e.g. jepa-lite course "
                                f"--profile demo --out {outputs}")
    data = json.loads(summary.read_text())
    chapters, cfg = data["chapters"], data["config"]
    failed = [c["chapter"] for c in chapters if c["status"] != "ok"]
    if failed:
        raise UsageError(f"chapters {', '.join(failed)} failed in {outputs}; a results page "
                         f"shows a complete run: run them again (jepa-lite course --only ...)")
    made_by = commit or data.get("commit") or "unknown"
    if made_by == "unknown" or made_by.endswith("+dirty"):
        raise UsageError(
            f"the course in {outputs} ran from {made_by!r}: "
            + ("uncommitted changes" if made_by.endswith("+dirty") else "no git checkout")
            + "; a results page names the commit that made its numbers: commit (or stash) "
              "the changes, run the course again from the clean checkout, then jepa-lite "
              "results")
    profile = cfg["profile"]
    page_dir = dest / profile["name"]
    wall = sum(c["seconds"] for c in chapters)
    device = json.loads((outputs / chapters[0]["chapter"] / "metrics.json").read_text())
    torch_version = device["metrics"].get("torch_version", "?")
    for older in ("figures", "notebooks", "data"):  # an older run's files must not linger
        if (page_dir / older).is_dir():
            shutil.rmtree(page_dir / older)
    root = repo_root()  # a checkout; else an installed package: the repository's notebooks
    where = (Path(os.path.relpath(root / "notebooks", page_dir.resolve())).as_posix() if root
             else f"{REPO_URL}/blob/{made_by}/notebooks")
    lines = [f"# Results of a complete `{profile['name']}` run", "",
             f"Made by `make results PROFILE={profile['name']}` (`jepa-lite course --profile "
             f"{profile['name']}`, then `jepa-lite results`). Generated data, a small "
             "network, a short run: **not comparable with the paper's tables**; every "
             "number below is this run's, one seed.", "",
             "| commit | device | torch | seed | date | wall time |", "|---|---|---|---|---|---|",
             f"| {made_by} | {device['metrics'].get('device_name') or cfg['device']} | "
             f"{torch_version} | {cfg['seed']} | "
             f"{time.strftime('%Y-%m-%d', time.gmtime(summary.stat().st_mtime))} | "
             f"{wall / 60:.1f} min |", "",
             "| chapter | time | key metrics |", "|---|---|---|"]
    for c in chapters:
        shown = "; ".join(f"{k}={fmt_metric(v)}" for k, v in list(c["metrics"].items())[:6]
                          if isinstance(v, (int, float, str)))
        lines.append(f"| [{c['chapter']}](#{c['chapter']}) | "
                     f"{c['seconds']:.0f} s | {shown} |")
    report = outputs / "06_reproduction" / "report.md"
    if report.is_file():
        body = report.read_text().split("\n", 1)[1].strip()  # without its title
        lines += ["", "## Next to the paper (chapter 06's report)", "", body]
    for c in chapters:
        meta = json.loads((outputs / c["chapter"] / "metrics.json").read_text())
        links = [f"[notebook]({where}/{c['chapter']}.py)"]
        executed = outputs / f"{c['chapter']}.ipynb"
        if executed.is_file():  # as it ran: every output, every printed number
            (page_dir / "notebooks").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(executed, page_dir / "notebooks" / executed.name)
            links.append(f"[executed, with its outputs](notebooks/{executed.name})")
        stored = outputs / c["chapter"] / "results"
        if (stored / "runs.json").is_file():  # what the chapter reads without training
            shutil.copytree(stored, page_dir / "data" / c["chapter"])
            links.append(f"[its runs' results](data/{c['chapter']}/runs.json)")
        lines += ["", f"## {c['chapter']}", "",
                  f"{', '.join(links)}; {c['seconds']:.0f} s.", ""]
        if meta["metrics"]:
            lines += ["| metric | value |", "|---|---|"]
            lines += [f"| {k} | {fmt_metric(v)} |" for k, v in meta["metrics"].items()
                      if isinstance(v, (int, float, str)) or v is None]
        for fig in meta["figures"]:
            target = page_dir / "figures" / c["chapter"] / fig
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(outputs / c["chapter"] / fig, target)
            lines += ["", f"![{c['chapter']}: {fig}](figures/{c['chapter']}/{fig})"]
    page_dir.mkdir(parents=True, exist_ok=True)
    page = page_dir / "README.md"
    page.write_text("\n".join(lines) + "\n")
    results_index(dest)
    return page


def results_index(dest) -> Path:
    """``dest/README.md``: every profile, with a link to its page when a run made one."""
    from jepa_lite.profiles import PROFILES

    dest = Path(dest)
    lines = ["# Results of complete course runs", "",
             "One page per profile, each made by `make results PROFILE=<profile>` from a clean "
             "checkout (the commit is on the page); no number on them is copied by hand.", "",
             "| profile | page | commit, device, wall time |", "|---|---|---|"]
    for name in PROFILES:
        page = dest / name / "README.md"
        if page.is_file():
            try:  # the page's first table: commit, device, torch, seed, date, wall time
                row = page.read_text().split("| commit | device |", 1)[1].split("\n")[2]
                made = [cell.strip() for cell in row.strip("|").split("|")]
                facts = f"{made[0]}, {made[1]}, {made[5]}"
            except IndexError:  # a page of another layout: linked, not described
                facts = "?"
            lines.append(f"| `{name}` | [{name}/README.md]({name}/README.md) | {facts} |")
        else:
            lines.append(f"| `{name}` | not made yet: `make results PROFILE={name}`"
                         + (" on a GPU" if name in ("gpu", "full") else "") + " | |")
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "README.md").write_text("\n".join(lines) + "\n")
    return dest / "README.md"


def fmt_metric(v) -> str:
    """A metric for a Markdown table: floats with 4 significant digits."""
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)
