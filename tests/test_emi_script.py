"""./emi's build step: a first build shows its progress and how long it took; later runs are quiet."""

import os
import re
import subprocess
import textwrap

SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build(project, folder):
    """Runs ./emi's build() (the script sourced: its functions, not its commands) on `project`."""
    return subprocess.run(["bash", "-c", f'source "{SOURCE_ROOT}/emi" && cd "{project}" && build "{folder}"'],
                          capture_output=True, text=True, timeout=300, check=True)


def test_the_first_build_shows_progress_and_time_later_ones_nothing(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "meson.build").write_text("project('tiny', 'c')\nexecutable('tiny', 'main.c', 'other.c')\n")
    (project / "main.c").write_text("int other(void);\nint main(void) { return other(); }\n")
    (project / "other.c").write_text("int other(void) { return 0; }\n")
    first = build(project, "out")
    steps = re.findall(r"\[emi build (\d+)/(\d+) [\d.]+s\]", first.stderr)
    assert steps and steps[-1][0] == steps[-1][1] == "3", first.stderr  # two compiles, one link
    assert re.search(r"building out \(3 steps; .*\)", first.stderr)
    assert re.search(r"built out in \d+ s", first.stderr)
    assert first.stdout == ""
    again = build(project, "out")
    assert again.stdout == "" and again.stderr == ""
    (project / "other.c").write_text("int other(void) { return 1; }\n")  # an edit: progress again
    edited = build(project, "out")
    assert re.search(r"building out \(2 steps", edited.stderr), edited.stderr
