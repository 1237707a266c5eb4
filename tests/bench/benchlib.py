"""benchlib.py - helpers shared by the benchmark scripts: free loopback ports and readiness."""
import socket
import time
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_ready(url, timeout=60):
    """Waits until GET url answers 200 (e.g. http://127.0.0.1:P/-/ready)."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except Exception:
            time.sleep(0.05)
    raise RuntimeError("not ready: " + url)
