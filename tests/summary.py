#!/usr/bin/env python3
"""summary.py - sums up build/test-results.txt after `make test`.

    python3 tests/summary.py [build/test-results.txt]

The file holds one line per test, "PASS <kind> <name>" or "FAIL <kind> <name>", appended by the
unit, fuzz-corpus and integration runners (plain and ASan builds). Prints every FAIL line, then
exactly "tests: N passed, M failed". Exits 1 when M > 0 or N == 0 (nothing ran is a failure too).
Lines in any other form are reported and counted as failures, so a runner that writes garbage
cannot pass silently.
"""
import sys


def main(argv):
    path = argv[1] if len(argv) > 1 else "build/test-results.txt"
    passed = failed = 0
    fails = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError as e:
        print("summary: cannot read %s: %s" % (path, e.strerror or e))
        lines = []
    for ln, line in enumerate(lines, 1):
        s = line.strip()
        if not s:
            continue
        parts = s.split(None, 2)
        if len(parts) >= 2 and parts[0] == "PASS":
            passed += 1
        elif len(parts) >= 2 and parts[0] == "FAIL":
            failed += 1
            fails.append(s)
        else:
            failed += 1
            fails.append("FAIL (unreadable line %d of %s: %r)" % (ln, path, s[:200]))
    for f in fails:
        print(f)
    print("tests: %d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
