# SPDX-License-Identifier: LGPL-2.1-or-later
"""Every source file says its licence (LGPL-2.1-or-later, as meson.build declares) in its first
lines, and COPYING holds the licence's text."""
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent
TAG = "SPDX-License-Identifier: LGPL-2.1-or-later"


def source_files():
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:  # a tarball, not a checkout: every file under the root
        names = [str(path.relative_to(ROOT)) for path in ROOT.rglob("*") if path.is_file()]
    else:
        names = listed.stdout.splitlines()
    for name in names:
        path = pathlib.Path(name)
        if (path.suffix in (".cpp", ".h", ".py", ".sh") or path.name in ("meson.build", "meson_options.txt")
                or name == "emi") and not name.startswith("build"):
            yield name


def test_every_source_file_names_its_licence():
    missing = [name for name in source_files()
               if TAG not in "\n".join((ROOT / name).read_text().splitlines()[:3])]
    assert missing == []


def test_copying_holds_the_lgpl_2_1():
    text = (ROOT / "COPYING").read_text()
    assert "GNU LESSER GENERAL PUBLIC LICENSE" in text and "Version 2.1, February 1999" in text
    assert "license : 'LGPL-2.1-or-later'" in (ROOT / "meson.build").read_text()
