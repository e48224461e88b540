#!/usr/bin/env python3
"""Sums test results over meson builds and prints `N passed, M failed`.

Criterion binaries report their case counts in a "Synthesis" line; those
count case by case.  Any other test (fuzz corpus replay) counts as one.  A
binary that failed although its cases passed (a leak report at exit, a
crash outside a case) counts as one more failure.  Under each failed binary it repeats the lines
that say why (Criterion's assertion and [FAIL] lines, sanitizer reports), so
a log read from its tail still names the failing case.
"""
import json
import os
import re
import sys

FAIL_LINE = re.compile(r"^\[(FAIL|----)\] +\S|^\[CRASH\]|ERROR: |runtime error")
SYNTH = re.compile(r"Synthesis: Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+) \| Crashing: (\d+)")


def main(dirs):
    passed = failed = 0
    for d in dirs:
        log = os.path.join(d, "meson-logs", "testlog.json")
        if not os.path.exists(log):
            print(f"{d}: no test log (build failed?)")
            failed += 1
            continue
        with open(log) as f:
            for line in f:
                t = json.loads(line)
                out = (t.get("stdout") or "") + (t.get("stderr") or "")
                ok = t.get("result") in ("OK", "EXPECTEDFAIL", "SKIP")
                m = SYNTH.findall(out)
                if m:
                    _, p, fl, cr = map(int, m[-1])
                    passed += p
                    failed += fl + cr
                    if not ok and fl + cr == 0:
                        failed += 1
                else:
                    if ok:
                        passed += 1
                    else:
                        failed += 1
                if not ok:
                    print(f"FAILED: {os.path.basename(d)}/{t.get('name')} ({t.get('result')})")
                    # CI shows the tail of the output: repeat why, briefly.
                    for why in [l for l in out.splitlines() if FAIL_LINE.search(l)][:20]:
                        print(f"    {why.strip()[:200]}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
