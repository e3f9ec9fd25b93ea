"""Progress, cancellation and resumable batches."""

import pytest

from medsynth.errors import CancelledError
from medsynth.io import atomic_output
from medsynth.jobs import BatchItem, CancelToken, run_batch, sub_progress


def test_batch_resumes_after_a_crash_without_partial_outputs(tmp_path):
    calls = []

    def work(item, folder):
        calls.append(item.name)
        (folder / "result.txt").write_text(item.name)
        if item.name == "b" and len(calls) == 2:
            raise RuntimeError("power cut")

    items = [BatchItem(name) for name in "abc"]
    with pytest.raises(RuntimeError):
        run_batch(items, tmp_path, work)
    assert (tmp_path / "a" / "result.txt").exists()
    assert not (tmp_path / "b").exists() and not list(tmp_path.glob(".b.*")), "no half-written item"
    done, skipped = run_batch(items, tmp_path, work)
    assert (done, skipped) == (2, 1)
    assert calls == ["a", "b", "b", "c"]


def test_cancel_stops_between_items(tmp_path):
    token = CancelToken()

    def work(item, folder):
        token.cancel()

    with pytest.raises(CancelledError):
        run_batch([BatchItem("a"), BatchItem("b")], tmp_path, work, cancel=token)
    assert (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_progress_reaches_one_and_sub_progress_maps_ranges(tmp_path):
    seen = []
    run_batch([BatchItem("a"), BatchItem("b")], tmp_path, lambda item, folder: None,
              progress=lambda fraction, message: seen.append(fraction))
    assert seen == [0.5, 1.0]
    mapped = []
    sub_progress(lambda f, m="": mapped.append(f), 0.5, 1.0)(0.5, "")
    assert mapped == [0.75]


def test_atomic_output_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(ValueError):
        with atomic_output(target) as temp:
            temp.write_text("new but broken")
            raise ValueError
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_outputs_get_the_usual_permissions(tmp_path):
    import os

    with atomic_output(tmp_path / "file.txt") as temp:
        temp.write_text("x")
    with atomic_output(tmp_path / "folder", directory=True) as temp:
        (temp / "a").write_text("y")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "file.txt").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "folder").stat().st_mode & 0o777 == 0o777 & ~umask
