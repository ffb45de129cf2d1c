"""XLSX reading: a generated N-row workbook read by subscriber_import (python-calamine, chunked,
plus normalisation) against pandas.read_excel(engine="openpyxl") of the same file, same run.

    .venv/bin/python benchmarks/xlsx_import.py --rows 200000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from broadcast.settings import CONFIG_DIR  # noqa: E402
from subscriber_import.numbers import NumberPlan, normalise  # noqa: E402
from subscriber_import.readers import open_table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    rng = np.random.default_rng(3)
    numbers = 912_000_000 + rng.permutation(1_000_000)[: args.rows]
    frame = pd.DataFrame({"Số thuê bao": numbers.astype(float), "Mã xã": "18073"})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "list.xlsx"
        print(f"writing {args.rows:,} rows to {path}", file=sys.stderr, flush=True)
        frame.to_excel(path, index=False, sheet_name="Danh sách", engine="openpyxl")
        plan = NumberPlan.from_files(
            CONFIG_DIR / "number_ranges.csv", CONFIG_DIR / "number_conversions.csv"
        )
        start = time.perf_counter()
        table = open_table(path, sheet="Danh sách")
        accepted = 0
        for chunk in table.chunks:
            accepted += int(normalise(chunk["Số thuê bao"], plan)["msisdn"].notna().sum())
        ours = time.perf_counter() - start
        print(f"ours (calamine + normalise): {ours:.2f} s", file=sys.stderr, flush=True)
        start = time.perf_counter()
        base = pd.read_excel(path, sheet_name="Danh sách", engine="openpyxl", dtype=str)
        baseline = time.perf_counter() - start
        print(f"pandas.read_excel(openpyxl): {baseline:.2f} s", file=sys.stderr, flush=True)
    print(json.dumps({
        "rows": args.rows, "accepted": accepted, "baseline_rows": len(base),
        "ours_s": round(ours, 2), "openpyxl_s": round(baseline, 2),
        "ours_rows_per_s": round(args.rows / ours),
        "openpyxl_rows_per_s": round(args.rows / baseline),
        "speedup": round(baseline / ours, 1),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
