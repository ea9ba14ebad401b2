# SPDX-License-Identifier: LGPL-2.1-or-later
"""`meson install` into a DESTDIR, then the installed `emi` command with a clean environment:
emi new, emi prepare, emi check and a short emi run, as a user who never saw the checkout."""

import glob
import json
import os
import subprocess

import pytest

BUILD_ROOT = os.environ.get("EMI_BUILD_ROOT", "")
SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = "EMI Torch Imagenet Yolo IOU Counter"  # the lighter models (SqueezeNet, motion)

pytestmark = pytest.mark.skipif(not os.path.isfile(os.path.join(BUILD_ROOT, "build.ninja")),
                                reason="EMI_BUILD_ROOT is not a meson build folder")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(DESTDIR, the installed prefix) after `meson install --destdir`."""
    destdir = tmp_path_factory.mktemp("destdir")
    subprocess.run(["meson", "install", "-C", BUILD_ROOT, "--destdir", str(destdir), "--no-rebuild", "--quiet"],
                   check=True, capture_output=True)
    prefix = subprocess.run(["meson", "introspect", BUILD_ROOT, "--buildoptions"], check=True,
                            capture_output=True, text=True).stdout
    prefix = next(option["value"] for option in json.loads(prefix) if option["name"] == "prefix")
    return str(destdir), str(destdir) + prefix


def clean_environment(home):
    """What a fresh login has: no PYTHONPATH, no GST_PLUGIN_PATH, no EMI_TEMPLATES."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}


def emi(prefix, home, *arguments, cwd=None):
    return subprocess.run([os.path.join(prefix, "bin", "emi"), *arguments], cwd=cwd or str(home),
                          env=clean_environment(home), capture_output=True, text=True, timeout=600)


def package_sources():
    """python/emi's files as git knows them (work in progress that is not added yet is left out),
    else as the folder holds them."""
    listed = subprocess.run(["git", "-C", SOURCE_ROOT, "ls-files", "python/emi"], capture_output=True, text=True)
    if listed.returncode == 0 and listed.stdout:
        return listed.stdout.split()
    return [os.path.relpath(path, SOURCE_ROOT)
            for path in glob.glob(os.path.join(SOURCE_ROOT, "python", "emi", "**", "*"), recursive=True)]


def test_every_python_file_of_the_package_is_installed(installed):
    destdir, prefix = installed
    sources = {os.path.relpath(path, "python") for path in package_sources() if path.endswith(".py")}
    package = glob.glob(os.path.join(prefix, "lib", "**", "emi", "__init__.py"), recursive=True)
    assert len(package) == 1
    parent = os.path.dirname(os.path.dirname(package[0]))
    installed_files = {os.path.relpath(path, parent)
                       for path in glob.glob(os.path.join(parent, "emi", "**", "*.py"), recursive=True)}
    assert sources - installed_files == set()
    assert os.path.isfile(os.path.join(parent, "emi", "schemas", "emi_stream_config.schema.json"))
    assert os.access(os.path.join(prefix, "share", "emi", "templates", TEMPLATE, "resource",
                                  "prepare_resource.sh"), os.X_OK)


def test_the_installed_commands_run_with_a_clean_environment(installed, tmp_path):
    destdir, prefix = installed
    home = tmp_path / "home"
    home.mkdir()
    created = emi(prefix, home, "new", TEMPLATE, "counter")
    assert created.returncode == 0, created.stderr
    app = home / "counter"
    origin = dict(line.split("=", 1) for line in (app / ".emi-origin").read_text().splitlines()
                  if "=" in line)
    assert origin["plugin_dir"].startswith(destdir) and origin["python_path"].startswith(destdir)

    # The app's own script finds the emi that made it (recorded by emi new), outside any emi command.
    prepared = subprocess.run([str(app / "resource" / "prepare_resource.sh"), "--random-weights"],
                              env=clean_environment(home), capture_output=True, text=True, timeout=600)
    assert prepared.returncode == 0, prepared.stderr
    assert "the models are ready" in prepared.stdout

    checked = emi(prefix, home, "check", "counter", "--frames", "3")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "programs ran on 3 generated frames: 3 signals" in checked.stdout

    clip = tmp_path / "clip.mp4"
    subprocess.run(["sh", os.path.join(SOURCE_ROOT, "resource", "make_sample_clip.sh"), str(clip), "15", "360x360"],
                   check=True, env=clean_environment(home))
    ran = emi(prefix, home, "run", "counter", "--stream", "streams/torch_imagenet_stream.json", "--input", str(clip),
              "--output", "out", "--no-video")
    assert ran.returncode == 0, ran.stderr
    summary = json.loads(ran.stdout[ran.stdout.find("\n{\n") + 1:])  # after what the programs print
    assert summary["frames"] == 15 and summary["signals"] == 15
    assert sum(line.startswith('{"frame"') for line in open(home / "out" / "signals.jsonl")) == 15
