"""Cold start of picopic-lambda: process start to the first 200 from /upload-url.

Usage: python3 benches/scripts/cold_start.py BINARY [PORT] [NAME=VALUE ...]
The NAME=VALUE pairs go into the child's environment (for example PICOPIC_S3_ENDPOINT and
AWS credentials, to skip the embedded S3 store). Prints the median, min and max of 10 runs.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request


def once(binary, port, env):
    data_dir = tempfile.mkdtemp()
    start = time.perf_counter()
    child = subprocess.Popen(
        [binary, "serve", "--addr", f"127.0.0.1:{port}", "--data-dir", data_dir],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            if child.poll() is not None:
                sys.exit(f"{binary} exited with {child.returncode}")
            try:
                url = f"http://127.0.0.1:{port}/upload-url"
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200 and b'"policy"' in answer.read():
                        return time.perf_counter() - start
            except (ConnectionError, urllib.error.URLError):
                time.sleep(0.001)
    finally:
        child.terminate()
        child.wait()


def main():
    binary = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 3999
    env = dict(os.environ, **dict(a.split("=", 1) for a in sys.argv[3:]))
    runs = [once(binary, port, env) * 1000 for _ in range(10)]
    print(
        f"cold start, 10 runs: median {statistics.median(runs):.1f} ms, "
        f"min {min(runs):.1f} ms, max {max(runs):.1f} ms"
    )


if __name__ == "__main__":
    main()
