"""Chapter 06 — our runs next to the paper's numbers, with the facts that make them readable."""

from __future__ import annotations

import csv
import io
import json
import os
import re
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
    """The checkout's commit (with '+dirty' for uncommitted changes), or 'unknown';
    ``$JEPA_LITE_COMMIT`` when set: the commit a copy of the tree was made from, as whoever
    sent it says (a GPU machine may get the files without their git history, or with a
    stale one)."""
    if os.environ.get(COMMIT_ENV):
        return os.environ[COMMIT_ENV]
    cwd = path or Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=cwd, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=cwd, text=True, capture_output=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


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
IJEPA_HEADING = "## I-JEPA beside CNN-JEPA (chapter 10)"
IJEPA_COLUMNS = ["method", "backbone", "dataset", "source", "linear_top1", "knn_top1"]


def with_section(report_md: str, heading: str, table: str) -> str:
    """``report_md`` (chapter 06's report) with the section ``heading`` holding ``table``:
    an older copy of that section replaced, the others kept; a new one added at the end."""
    parts = [p.rstrip("\n") for p in re.split(r"(?m)^(?=## )", report_md) if p.strip()]
    parts = [p for p in parts if p.split("\n", 1)[0] != heading]
    return "\n\n".join([*parts, f"{heading}\n\n{table}"]) + "\n"


def with_method_rows(report_md: str, rows: list[dict]) -> str:
    """``report_md`` with chapter 08's rows as its section :data:`OTHERS_HEADING`."""
    columns = ["method", "source", "linear_top1", "knn_top1", "paper_linear_top1",
               "paper_knn_top1"]
    return with_section(report_md, OTHERS_HEADING, markdown_table(rows, columns))


def ijepa_rows(results: dict[str, dict], paper: list[dict], dataset: str, profile: str,
               comparable: bool) -> list[dict]:
    """Table I's CNN-JEPA and I-JEPA rows on ``dataset`` (ResNet-50, ViT-Small, ViT-Base),
    then chapter 10's runs (``results``: label -> probe results, with their ``config``),
    marked not comparable unless ``comparable``."""
    rows = {}
    for r in paper:
        if r["table"] == "I" and r["dataset"] == dataset and r["method"] in ("CNN-JEPA",
                                                                             "I-JEPA"):
            rows.setdefault((r["method"], r["backbone"]), {
                "method": r["method"], "backbone": r["backbone"], "dataset": dataset,
                "source": "paper, Table I"})[r["metric"]] = r["value"]
    source = "ours" if comparable else f"ours ({profile}, NOT comparable)"
    ours = [{"method": label.split(" (")[0], "backbone": res["config"]["arch"],
             "dataset": Path(res["data_root"]).name if "data_root" in res else "",
             "source": source, "linear_top1": 100 * res["linear_top1"],
             "knn_top1": 100 * res["knn_top1"]} for label, res in results.items()]
    return [*rows.values(), *ours]


def with_ijepa_rows(report_md: str, rows: list[dict]) -> str:
    """``report_md`` with chapter 10's rows as its section :data:`IJEPA_HEADING`."""
    return with_section(report_md, IJEPA_HEADING, markdown_table(rows, IJEPA_COLUMNS))


MANIFEST = "chapters.json"  # a page's chapters: what made each one, and its numbers


def _chapter_files(page_dir: Path, chapter: str) -> list[Path]:
    """What a page holds of one chapter, besides its entry in the manifest."""
    return [page_dir / "figures" / chapter, page_dir / "notebooks" / f"{chapter}.ipynb",
            page_dir / "data" / chapter]


def _take_chapter(outputs: Path, page_dir: Path, row: dict) -> dict:
    """Copy one chapter of a course folder beside the page: its figures, its executed
    notebook (every output) and the results chapters 07-09 read without training
    (``jepa_lite.course.bundle``); no checkpoints, no feature banks. Returns its manifest entry."""
    import shutil

    chapter = row["chapter"]
    for old in _chapter_files(page_dir, chapter):  # an older run's files must not linger
        if old.is_dir():
            shutil.rmtree(old)
        elif old.exists():
            old.unlink()
    meta = json.loads((outputs / chapter / "metrics.json").read_text())
    entry = {k: row.get(k) for k in ("chapter", "seconds", "commit", "device", "torch",
                                     "finished", "seed")}
    entry.update(metrics=meta["metrics"], figures=[], notebook=False, data=False, report=None)
    executed = outputs / f"{chapter}.ipynb"
    if executed.is_file():
        (page_dir / "notebooks").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(executed, page_dir / "notebooks" / executed.name)
        entry["notebook"] = True
    stored = outputs / chapter / "results"
    if (stored / "runs.json").is_file():
        shutil.copytree(stored, page_dir / "data" / chapter)
        entry["data"] = True
    for fig in meta["figures"]:
        target = page_dir / "figures" / chapter / fig
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(outputs / chapter / fig, target)
        entry["figures"].append(fig)
    report = outputs / chapter / "report.md"
    if report.is_file():  # chapter 06's comparison with the paper
        entry["report"] = report.read_text().split("\n", 1)[1].strip()  # without its title
    return entry


def summary_rows(summary: dict) -> list[dict]:
    """The chapter rows of a course's ``summary.json``, each naming its commit and seed: a
    summary written before chapters named their own gives its one commit and seed to all."""
    older = {"commit": summary.get("commit", ""), "seed": summary.get("config", {}).get("seed")}
    return [{**older, **c} for c in summary.get("chapters", [])]


def results_page(outputs, dest, replace: bool = False, chapters: list[str] | None = None
                 ) -> Path:
    """``dest/<profile>/README.md``: the numbers and figures of a course's chapters
    (``outputs``: its ``--out`` folder), each chapter with the commit, device, torch, date and
    wall time of its own run; a course may be partial (chapters not run yet are listed as
    such) and pages grow chapter by chapter: a chapter already on the page from another
    commit is kept unless ``replace`` (from the same commit, the newer run replaces it).
    Beside the page: ``chapters.json`` (what the page shows), the figures
    (``figures/<chapter>/``), each executed notebook (``notebooks/``) and the results chapters
    07-09 read without training (``data/<chapter>/``), so that the page stands alone;
    ``dest/README.md`` lists the profiles' pages. A chapter of uncommitted code (``+dirty``)
    or of no known commit is refused: a page names the code that made its numbers.
    ``chapters``: the course's chapters (``course.list_chapters``), to list those not run."""
    import shutil

    outputs, dest = Path(outputs), Path(dest)
    summary = outputs / "summary.json"
    if not summary.is_file():
        raise FileNotFoundError(f"no {summary}: run the course first, e.g. jepa-lite course "
                                f"--profile demo --out {outputs}")
    data = json.loads(summary.read_text())
    rows = summary_rows(data)
    unnamed = [r for r in rows if r["status"] == "ok" and (
        not r["commit"] or r["commit"] == "unknown" or r["commit"].endswith("+dirty"))]
    if unnamed:
        made_by = unnamed[0]["commit"] or "unknown"
        raise UsageError(
            f"chapters {', '.join(r['chapter'] for r in unnamed)} in {outputs} ran from "
            f"{made_by!r}: "
            + ("uncommitted changes" if made_by.endswith("+dirty") else "no git checkout")
            + "; a results page names the commit that made its numbers: commit (or stash) "
              "the changes, run the course again from the clean checkout, then jepa-lite "
              "results")
    failed = [r["chapter"] for r in rows if r["status"] != "ok"]
    if failed and len(failed) == len(rows):
        raise UsageError(f"chapters {', '.join(failed)} failed in {outputs}, and no other "
                         f"chapter ran: nothing to show (jepa-lite course --only ... again)")
    profile = data["config"]["profile"]["name"]
    page_dir = dest / profile
    manifest_file = page_dir / MANIFEST
    if manifest_file.is_file():
        manifest = json.loads(manifest_file.read_text())
    else:  # no page yet, or one of the layout before chapter by chapter: made anew
        manifest = {}
        for older in ("figures", "notebooks", "data"):
            if (page_dir / older).is_dir():
                shutil.rmtree(page_dir / older)
    said = []
    for r in rows:
        if r["status"] != "ok":
            said.append(f"{r['chapter']}: failed in {outputs}, left off the page")
            continue
        on_page = manifest.get(r["chapter"])
        if on_page and on_page["commit"] != r["commit"] and not replace:
            said.append(f"{r['chapter']}: kept the page's run of {on_page['commit']}; the "
                        f"one of {r['commit']} replaces it with --replace")
            continue
        manifest[r["chapter"]] = _take_chapter(outputs, page_dir, r)
    page_dir.mkdir(parents=True, exist_ok=True)
    ordered = dict(sorted(manifest.items()))
    manifest_file.write_text(json.dumps(ordered, indent=1) + "\n")
    page = page_dir / "README.md"
    page.write_text(_page_text(profile, ordered, sorted({*(chapters or ()), *ordered}),
                               page_dir))
    results_index(dest)
    for line in said:
        print(line)
    return page


def _page_text(profile: str, manifest: dict, chapters: list[str], page_dir: Path) -> str:
    """The page, from its manifest: who made what, then every chapter's numbers and
    figures; the course's chapters missing from the manifest are listed as not run yet."""
    root = repo_root()  # a checkout; else an installed package: the repository's notebooks
    groups: dict[tuple, list[dict]] = {}
    for e in manifest.values():
        groups.setdefault((e["commit"], e["device"], e["torch"], e["seed"]), []).append(e)
    missing = [c for c in chapters if c not in manifest]
    lines = [f"# Results of the `{profile}` course", "",
             f"Made by `jepa-lite course --profile {profile}`, then `jepa-lite results` "
             f"(`make results PROFILE={profile}`), chapter by chapter: each chapter names the "
             "commit and the machine of its own run. Generated data, a small network, a short "
             "run: **not comparable with the paper's tables**; every number below is a run's "
             "own, one seed.", "",
             f"{len(manifest)} of {len(chapters)} chapters"
             + (f"; not run yet: {', '.join(missing)} (`jepa-lite course --profile {profile} "
                f"--only {' '.join(c[:2] for c in missing)} --pending`, then `jepa-lite "
                f"results`)" if missing else "") + ".", "",
             "| commit | device | torch | seed | date | wall time | chapters |",
             "|---|---|---|---|---|---|---|"]
    for (commit, device, torch_version, seed), entries in groups.items():
        date = max((e["finished"] or "")[:10] for e in entries) or "?"
        wall = sum(e["seconds"] for e in entries)
        lines.append(f"| {commit} | {device or '?'} | {torch_version or '?'} | {seed} | {date} "
                     f"| {wall / 60:.1f} min | {', '.join(e['chapter'][:2] for e in entries)} |")
    lines += ["", "| chapter | time | key metrics |", "|---|---|---|"]
    for c in chapters:
        e = manifest.get(c)
        if e is None:
            lines.append(f"| {c} | not run yet | |")
            continue
        shown = "; ".join(f"{k}={fmt_metric(v)}" for k, v in list(e["metrics"].items())[:6]
                          if isinstance(v, (int, float, str)))
        lines.append(f"| [{c}](#{c}) | {e['seconds']:.0f} s | {shown} |")
    reports = [e["report"] for e in manifest.values() if e.get("report")]
    if reports:
        lines += ["", "## Next to the paper (chapter 06's report)", "", reports[0]]
    here = Path(os.path.relpath(root / "notebooks", page_dir.resolve())).as_posix() if root else ""
    for c, e in manifest.items():
        where = here or f"{REPO_URL}/blob/{e['commit']}/notebooks"
        links = [f"[notebook]({where}/{c}.py)"]
        if e["notebook"]:
            links.append(f"[executed, with its outputs](notebooks/{c}.ipynb)")
        if e["data"]:
            links.append(f"[its runs' results](data/{c}/runs.json)")
        lines += ["", f"## {c}", "",
                  f"{', '.join(links)}; {e['seconds']:.0f} s on {e['device'] or '?'}, commit "
                  f"{e['commit']}, {(e['finished'] or '?')[:10]}.", ""]
        if e["metrics"]:
            lines += ["| metric | value |", "|---|---|"]
            lines += [f"| {k} | {fmt_metric(v)} |" for k, v in e["metrics"].items()
                      if isinstance(v, (int, float, str)) or v is None]
        lines += [f"\n![{c}: {fig}](figures/{c}/{fig})" for fig in e["figures"]]
    return "\n".join(lines) + "\n"


def results_index(dest) -> Path:
    """``dest/README.md``: every profile, with a link to its page when a run made one."""
    from jepa_lite.course.profiles import PROFILES

    dest = Path(dest)
    lines = ["# Results of the course, profile by profile", "",
             "One page per profile, made by `jepa-lite results` from course runs of a clean "
             "checkout (`make results PROFILE=<profile>`), chapter by chapter: a page names "
             "the commit, machine and date of each chapter's run, lists the chapters not run "
             "yet, and keeps a chapter from an earlier commit unless `REPLACE=1` "
             "(`--replace`); no number on them is copied by hand.", "",
             "| profile | page | commit, device, wall time |", "|---|---|---|"]
    for name in PROFILES:
        page = dest / name / "README.md"
        manifest = dest / name / MANIFEST
        if page.is_file() and manifest.is_file():
            entries = json.loads(manifest.read_text()).values()
            commits = sorted({e["commit"] for e in entries})
            devices = sorted({e["device"] for e in entries})
            wall = sum(e["seconds"] for e in entries) / 60
            lines.append(f"| `{name}` | [{name}/README.md]({name}/README.md) | "
                         f"{len(entries)} chapters: {', '.join(commits)}, "
                         f"{', '.join(devices)}, {wall:.1f} min |")
        elif page.is_file():
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
