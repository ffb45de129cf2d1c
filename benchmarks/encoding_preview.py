"""Previews per second for 160-character texts: the console runs one per keystroke.

Prints progress to stderr and, as the last stdout line, one JSON object.

    .venv/bin/python benchmarks/encoding_preview.py [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from smpp_gateway.encoding import preview

VIETNAMESE = (
    "Cảnh báo bão số 3: Đề nghị người dân di chuyển đến nơi an toàn trước 17h hôm nay. "
    "Liên hệ 112 khi cần hỗ trợ. Ban chỉ huy PCTT tỉnh Hà Tĩnh thông báo."
)
CASES = {
    "gsm7": ("Canh bao bao so 3: De nghi nguoi dan di chuyen den noi an toan. " * 3)[:160],
    "ucs2_vietnamese": VIETNAMESE[:160],
    "folded_vietnamese": VIETNAMESE[:160],
}


def rate(text: str, fold: bool, seconds: float) -> float:
    n = 0
    end = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < end:
        for _ in range(100):
            preview(text, fold=fold)
        n += 100
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    results = {}
    for name, text in CASES.items():
        per_s = rate(text, name.startswith("folded"), args.seconds)
        results[name] = {"previews_per_s": round(per_s), "us_per_preview": round(1e6 / per_s, 2)}
        print(f"{name}: {per_s:,.0f}/s ({1e6 / per_s:.1f} us)", file=sys.stderr, flush=True)
    worst = max(r["us_per_preview"] for r in results.values())
    print(json.dumps({"benchmark": "encoding_preview", "cases": results, "worst_us": worst}))


if __name__ == "__main__":
    main()
