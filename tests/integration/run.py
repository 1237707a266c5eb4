#!/usr/bin/env python3
"""run.py - runs augurd's integration tests.

    python3 tests/integration/run.py --augurd build/augurd --results build/test-results.txt [-k filter]

Discovers tests/integration/test_*.py and runs every function named test_* in each, in file
order. A test function takes either no argument or one: a Context (fresh for every test) that
starts daemons and helper processes and cleans all of them up afterwards, stopping each by its
PID; a daemon stopped at the end must exit 0 after SIGTERM and its log must be free of
AddressSanitizer / LeakSanitizer / UBSan reports (the tests run the ASan build the same way).

Prints PASS/FAIL per test (with the traceback and the log tails of a failure), appends
"PASS integration <file>::<test>" / "FAIL integration <file>::<test>" lines to the results file
and ends with "integration: N passed, M failed". Exits 1 if any test failed or none ran.

Environment: AUGUR_KEEP_TMP=1 keeps the temp dirs of failed tests; AUGUR_TEST_TIMEOUT (seconds,
default 300) bounds each test.
"""
import argparse
import importlib.util
import inspect
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import harness  # noqa: E402


class TestTimeout(Exception):
    pass


class Context:
    """What a test gets: the augurd binary, a temp dir, and process helpers with cleanup."""

    def __init__(self, augurd, name):
        self.augurd = os.path.abspath(augurd)
        self.name = name
        self.tmp = tempfile.mkdtemp(prefix="augur-it-%s-" % name.replace("::", "-").replace(".py", ""))
        self.daemons = []
        self.procs = []  # (name, Popen, log path)
        self.asan = "/asan/" in self.augurd or os.environ.get("AUGUR_ASAN") == "1"

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def daemon(self, start=True, **kw):
        """A harness.Daemon on a fresh data dir (or data_dir=...) under this test's temp dir."""
        wd = tempfile.mkdtemp(prefix="d%d-" % len(self.daemons), dir=self.tmp)
        d = harness.Daemon(self.augurd, workdir=wd, start=False, **kw)
        self.daemons.append(d)
        if start:
            d.start()
        return d

    def spawn(self, name, cmd, env=None, cwd=None):
        """Starts a helper process (prometheus, node_exporter...) logging to <tmp>/<name>.log."""
        log = self.path("%s.log" % name)
        with open(log, "ab") as lf:
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=lf, stderr=lf,
                                 env=env, cwd=cwd or self.tmp, close_fds=True)
        self.procs.append((name, p, log))
        return p

    def log_of(self, proc):
        for n, p, log in self.procs:
            if p is proc:
                return log
        return None

    def cleanup(self, failed):
        """Stops everything; returns a list of problems (sanitizer reports, unclean exits)."""
        problems = []
        for name, p, log in reversed(self.procs):
            try:
                harness.stop_pid(p, timeout=20)
            except Exception as e:  # noqa: BLE001
                problems.append("could not stop %s (pid %d): %r" % (name, p.pid, e))
        for d in self.daemons:
            try:
                d.stop(check=True)
            except harness.DaemonError as e:
                problems.append(str(e))
            except Exception as e:  # noqa: BLE001
                problems.append("stopping augurd: %r" % e)
            finally:
                d.stop_quietly()
            # also a daemon that was killed or already stopped: look at its log once more
            if not any("sanitizer" in p for p in problems):
                found = harness.sanitizer_findings(d.log())
                if found:
                    problems.append("sanitizer reported errors:\n  " + "\n  ".join(found[:10]))
        return problems

    def log_tails(self, lines=40):
        out = []
        for i, d in enumerate(self.daemons):
            out.append("---- augurd #%d log tail (%s):\n%s" % (i, d.log_path, harness.tail(d.log_path, lines)))
        for name, p, log in self.procs:
            out.append("---- %s log tail (%s):\n%s" % (name, log, harness.tail(log, lines // 2)))
        return "\n".join(out)

    def remove(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


def discover(filter_):
    tests = []
    for fn in sorted(os.listdir(HERE)):
        if not (fn.startswith("test_") and fn.endswith(".py")):
            continue
        spec = importlib.util.spec_from_file_location(fn[:-3], os.path.join(HERE, fn))
        mod = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(mod)
        except Exception:  # noqa: BLE001
            tests.append((fn, "<import>", None, traceback.format_exc()))
            continue
        for name, obj in list(vars(mod).items()):
            if name.startswith("test_") and callable(obj) and \
                    getattr(obj, "__module__", None) == mod.__name__:
                full = "%s::%s" % (fn, name)
                if filter_ and filter_ not in full:
                    continue
                tests.append((fn, name, obj, None))
    return tests


def _alarm(signum, frame):
    raise TestTimeout("test exceeded its time limit")


def run_one(augurd, fn, name, func):
    full = "%s::%s" % (fn, name)
    ctx = Context(augurd, full)
    failed = False
    report = ""
    t0 = time.monotonic()
    limit = int(getattr(func, "timeout", 0) or os.environ.get("AUGUR_TEST_TIMEOUT", "300"))
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(limit)
    try:
        nparams = len(inspect.signature(func).parameters)
        if nparams:
            func(ctx)
        else:
            func()
    except BaseException as e:  # noqa: BLE001 - report everything, including KeyboardInterrupt
        failed = True
        report = traceback.format_exc()
        if isinstance(e, KeyboardInterrupt):
            signal.alarm(0)
            ctx.cleanup(True)
            raise
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    problems = ctx.cleanup(failed)
    if problems:
        failed = True
        report += "\ncleanup found problems:\n" + "\n".join(problems)
    dt = time.monotonic() - t0
    if failed:
        report += "\n" + ctx.log_tails()
        if os.environ.get("AUGUR_KEEP_TMP") == "1":
            report += "\n(temp files kept in %s)" % ctx.tmp
        else:
            ctx.remove()
    else:
        ctx.remove()
    return not failed, dt, report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--augurd", required=True, help="path of the augurd binary to test")
    ap.add_argument("--results", default=None, help="file to append PASS/FAIL lines to")
    ap.add_argument("-k", dest="filter", default=None, help="only tests whose file::name contains this")
    args = ap.parse_args()

    def on_term(signum, frame):
        # turn SIGTERM/SIGHUP into KeyboardInterrupt so the running test's processes are stopped
        raise KeyboardInterrupt("signal %d" % signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    passed = failed = 0
    lines = []
    if not os.access(args.augurd, os.X_OK):
        print("FAIL run.py: %s is not an executable file" % args.augurd)
        tests = [("run.py", "<augurd binary>", None, "%s is not an executable file" % args.augurd)]
    else:
        tests = discover(args.filter)
        if not tests:
            print("run.py: no test matches %r" % args.filter)
    for fn, name, func, import_error in tests:
        full = "%s::%s" % (fn, name)
        if import_error:
            ok, dt, report = False, 0.0, import_error
        else:
            print("RUN  %s" % full, flush=True)
            ok, dt, report = run_one(args.augurd, fn, name, func)
        if ok:
            passed += 1
            print("PASS %s (%.1fs)" % (full, dt), flush=True)
        else:
            failed += 1
            print("FAIL %s (%.1fs)\n%s" % (full, dt, report.rstrip()), flush=True)
        lines.append("%s integration %s\n" % ("PASS" if ok else "FAIL", full))
        if args.results:
            d = os.path.dirname(os.path.abspath(args.results))
            os.makedirs(d, exist_ok=True)
            with open(args.results, "a") as f:
                f.write(lines[-1])
    print("integration: %d passed, %d failed" % (passed, failed), flush=True)
    sys.exit(1 if failed or not (passed + failed) else 0)


if __name__ == "__main__":
    main()
