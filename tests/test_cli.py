"""The `jepa-lite` console script as a user calls it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jepa_lite import cli
from jepa_lite.data import imagenet100
from jepa_lite.errors import UsageError


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / "jepa-lite"  # beside the environment's python
    assert exe.is_file(), "pip install -e . must install the jepa-lite console script"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert "course" in out and "make-data" in out


def test_make_data_synthetic(tmp_path, capsys):
    out = tmp_path / "syn"
    assert cli.main(["make-data", "synthetic", "--out", str(out), "--classes", "3",
                     "--per-class", "4", "--size", "64", "--seed", "1", "--workers", "2"]) == 0
    assert len(list((out / "train").rglob("*.png"))) == 12
    assert len(list((out / "val").rglob("*.png"))) == 6  # default: per-class / 4, at least 2
    assert "generated data set" in capsys.readouterr().out


def test_make_data_bad_size(tmp_path, capsys):
    code = cli.main(["make-data", "synthetic", "--out", str(tmp_path / "s"), "--size", "250"])
    assert code == 2
    assert "image size 250 is not a multiple of 16" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_make_data_imagenet100(tmp_path, capsys):
    from tests.test_data import fake_imagenet

    src = fake_imagenet(tmp_path / "in1k", imagenet100.imagenet100_classes())
    assert cli.main(["make-data", "imagenet100", "--imagenet", str(src),
                     "--out", str(tmp_path / "in100")]) == 0
    assert len(list((tmp_path / "in100" / "val").iterdir())) == 100
    assert cli.main(["make-data", "imagenet100", "--out", str(tmp_path / "x")]) == 2
    assert "needs --imagenet" in capsys.readouterr().err


def test_course_unknown_chapter(tmp_path, capsys):
    assert cli.main(["course", "--only", "42", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown chapter '42'" in err and "01_masking" in err


def test_course_unknown_profile(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["course", "--profile", "huge"])
    assert e.value.code == 2
    assert "invalid choice: 'huge'" in capsys.readouterr().err


def test_course_bad_data_root_fails_before_running(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["course", "--data-root", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not out.exists()


def test_make_data_busy_scenes(tmp_path, capsys):
    code = cli.main(["make-data", "synthetic", "--scenes", "busy", "--out", str(tmp_path / "b"),
                     "--classes", "2", "--per-class", "2", "--size", "32"])
    assert code == 0 and "generated data set synthetic-busy-v1-c2-n2" in capsys.readouterr().out
    assert json.loads((tmp_path / "b" / "dataset.json").read_text())["scene_kind"] == "busy"


@pytest.mark.parametrize("error, code, shown, traceback", [
    (UsageError("image size 250 is not a multiple of 32"), 2,
     "jepa-lite results: error: image size 250 is not a multiple of 32", False),
    (ValueError("too many values to unpack (expected 2)"), 1,  # a bug, though a ValueError
     "unexpected error (traceback above)", True),
    (UsageError("the run in R is stopped: resume it"), 2,
     "jepa-lite results: error: the run in R is stopped: resume it", False),
    (RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x3 and 5x6)"), 1,
     "unexpected error (traceback above)", True),
    (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), 2,
     "lower --micro-batch", False),
    (RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough "
                  "memory: you tried to allocate 1099511627776 bytes."), 2,
     "the device ran out of memory", False),  # a CPU's allocation failure: the same advice
    (OSError(28, "No space left on device", "/data/run/last.pt"), 2,
     "cannot write /data/run/last.pt: no space is left on its device: free some space", False),
    (OSError(30, "Read-only file system", "/ro/out/probe.json"), 2,
     "cannot write /ro/out/probe.json: its file system is read-only", False),
])
def test_bad_input_is_one_line_and_a_bug_keeps_its_traceback(monkeypatch, capsys, error, code,
                                                             shown, traceback):
    def fail(args):
        raise error

    monkeypatch.setattr(cli, "_results", fail)
    assert cli.main(["results", "somewhere"]) == code
    err = capsys.readouterr().err
    assert shown in err
    assert ("Traceback (most recent call last)" in err) == traceback
    said = error.filename if isinstance(error, OSError) else str(error)[:100]
    assert said in err  # the error's own words (or the file it names) are never lost


def test_the_traceback_variable_keeps_a_user_errors_traceback(monkeypatch):
    """JEPA_LITE_TRACEBACK=1: a user error is raised with its traceback (for debugging)."""
    def fail(args):
        raise UsageError("the run in R is stopped: resume it")

    monkeypatch.setattr(cli, "_results", fail)
    monkeypatch.setenv("JEPA_LITE_TRACEBACK", "1")
    with pytest.raises(UsageError, match="resume it"):
        cli.main(["results", "somewhere"])
    monkeypatch.setenv("JEPA_LITE_TRACEBACK", "0")
    assert cli.main(["results", "somewhere"]) == 2


def test_each_subcommand_has_its_parser_function_beside_its_handler():
    """One small parser function per subcommand (``_NAME_parser``), defined right after its
    handler (``_NAME``), so that a flag and what it does are read together."""
    import inspect

    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    for name in sub.choices:
        stem = name.replace("-", "_")
        handler, parser = getattr(cli, f"_{stem}"), getattr(cli, f"_{stem}_parser")
        start = inspect.getsourcelines(handler)[1] + len(inspect.getsourcelines(handler)[0])
        assert inspect.getsourcelines(parser)[1] - start <= 3, name
        assert len(inspect.getsourcelines(parser)[0]) <= 60, name
