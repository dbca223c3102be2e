#!/usr/bin/env python3
"""Markdown tables from criterion runs, for BENCHMARKS.md.

usage: benches/criterion_table.py RUN_DIR [RUN_DIR ...]

Each RUN_DIR is a copy of `target/criterion` taken after one full
`cargo bench --bench enforce`. For every group it prints the median ns/op of
each benchmark in each run, the median of those, and for every parameter the
ratio of `ours` to each other implementation computed within each run (then
the median of the per-run ratios), so no ratio mixes two runs.
"""

import json
import os
import statistics
import sys


def load(run_dir):
    """{group: {(function, param): median_ns}}"""
    out = {}
    for root, _dirs, files in os.walk(run_dir):
        if "benchmark.json" not in files or os.path.basename(root) != "new":
            continue
        with open(os.path.join(root, "benchmark.json")) as f:
            b = json.load(f)
        with open(os.path.join(root, "estimates.json")) as f:
            e = json.load(f)
        group = b["group_id"]
        key = (b.get("function_id") or "", b.get("value_str") or "")
        out.setdefault(group, {})[key] = e["median"]["point_estimate"]
    return out


def fmt(ns):
    if ns is None:
        return "-"
    return f"{ns:,.1f}" if ns < 100 else f"{ns:,.0f}"


def main():
    runs = [load(d) for d in sys.argv[1:]]
    groups = []
    for r in runs:
        for g in r:
            if g not in groups:
                groups.append(g)
    order = ["enforce_hot", "enforce_spread", "enforce_tracker", "refusal",
             "connection", "contention", "floor"]
    groups.sort(key=lambda g: order.index(g) if g in order else len(order))
    n = len(runs)
    for g in groups:
        keys = []
        for r in runs:
            for k in r.get(g, {}):
                if k not in keys:
                    keys.append(k)
        print(f"\n### {g}\n")
        head = " | ".join(f"run {i + 1}" for i in range(n))
        print(f"| implementation | case | {head} | median ns/op |")
        print("| --- | --- |" + " ---: |" * (n + 1))
        for k in keys:
            vals = [r.get(g, {}).get(k) for r in runs]
            present = [v for v in vals if v is not None]
            med = statistics.median(present) if present else None
            print(f"| {k[0]} | {k[1]} | " + " | ".join(fmt(v) for v in vals)
                  + f" | **{fmt(med)}** |")
        # Ratios of ours to every other implementation, per case, per run.
        ours_keys = [k for k in keys if k[0] == "ours"]
        lines = []
        for ok in ours_keys:
            for other in keys:
                if other[0] == "ours" or other[1] != ok[1]:
                    continue
                per_run = []
                for r in runs:
                    a, b = r.get(g, {}).get(ok), r.get(g, {}).get(other)
                    if a is not None and b:
                        per_run.append(a / b)
                if per_run:
                    lines.append((ok[1], other[0], per_run))
        if lines:
            print(f"\n| case | ours / | " + " | ".join(f"run {i + 1}" for i in range(n))
                  + " | median ratio |")
            print("| --- | --- |" + " ---: |" * (n + 1))
            for case, other, per_run in lines:
                cells = " | ".join(f"{x:.2f}x" for x in per_run)
                print(f"| {case} | {other} | {cells} | **{statistics.median(per_run):.2f}x** |")

        # Within one implementation: contention against its own 1-thread
        # figure, our refusal against our admission on the same mock clock.
        base_case = {"contention": "1-thread", "refusal": "admit-mock-clock"}.get(g)
        if base_case:
            print(f"\n| implementation | case | / {base_case} | "
                  + " | ".join(f"run {i + 1}" for i in range(n)) + " | median ratio |")
            print("| --- | --- | --- |" + " ---: |" * (n + 1))
            for k in keys:
                if k[1] == base_case:
                    continue
                # The refusal baseline is ours' admission; contention's is per implementation.
                base_impl = "ours" if g == "refusal" else k[0]
                per_run = []
                for r in runs:
                    a, b = r.get(g, {}).get(k), r.get(g, {}).get((base_impl, base_case))
                    if a is not None and b:
                        per_run.append(a / b)
                if per_run and (g != "refusal" or k[0].startswith("ours")):
                    cells = " | ".join(f"{x:.2f}x" for x in per_run)
                    print(f"| {k[0]} | {k[1]} | {base_impl} | {cells} | "
                          f"**{statistics.median(per_run):.2f}x** |")


if __name__ == "__main__":
    main()
