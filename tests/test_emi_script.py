# SPDX-License-Identifier: LGPL-2.1-or-later
"""./emi's build step: a first build shows its progress and how long it took; later runs are quiet."""

import os
import re
import subprocess
import sys

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


def test_offline_prepare_fails_at_once_and_the_demo_says_why(tmp_path):
    """What ./emi demo does first: the 3DCNN's prepare_resource.sh tries the pretrained weights. With
    no way out (a proxy on a closed loopback port, whatever this machine's network) it fails, and
    the demo's download_failure() finds the reason in its log."""
    app = tmp_path / "app"
    subprocess.run([sys.executable, "-m", "emi", "new", os.path.join(SOURCE_ROOT, "templates", "EMI Torch 3DCNN"),
                    str(app)], check=True, capture_output=True)
    offline = {**os.environ, "https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    log = tmp_path / "prepare.log"
    with open(log, "w") as output:
        prepared = subprocess.run([str(app / "resource" / "prepare_resource.sh")], env=offline, stdout=output,
                                  stderr=subprocess.STDOUT, timeout=300)
    assert prepared.returncode == 1
    assert "--random-weights" in log.read_text()  # what to do instead
    reason = subprocess.run(["bash", "-c", f'source "{SOURCE_ROOT}/emi" && download_failure "{log}"'],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert reason.startswith("could not be downloaded from https://download.pytorch.org/models/r3d_18-")
    assert reason.endswith(">)") and "URLError" in reason
    assert not (app / "resource" / "models" / "r3d_18.pth").exists()
