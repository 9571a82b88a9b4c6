#!/usr/bin/env python3
"""Start-up time and idle RSS of `kaltalk serve`: python3 scripts/measure-startup.py target/release/kaltalk"""
import subprocess, time, os, tempfile, re, sys, statistics
binary = sys.argv[1]
def run(fresh_dir):
    env = {k:v for k,v in os.environ.items() if not k.startswith("KALTALK_")}
    env.update(KALTALK_LISTEN="127.0.0.1:0", KALTALK_DATA_DIR=fresh_dir, KALTALK_LOG_LEVEL="info")
    t0 = time.perf_counter()
    p = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in p.stdout:
        if "listening on" in line:
            t1 = time.perf_counter(); break
    time.sleep(5)
    rss = int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{p.pid}/status").read()).group(1))
    p.terminate(); p.wait()
    return (t1 - t0) * 1000, rss / 1024
d = tempfile.mkdtemp()
first = run(d)   # creates the database and applies migrations
again = [run(d) for _ in range(5)]
print(f"first start (new database + migrations): {first[0]:.0f} ms, idle RSS {first[1]:.1f} MiB")
print(f"later starts: median {statistics.median(a for a,_ in again):.0f} ms; idle RSS median {statistics.median(r for _,r in again):.1f} MiB")
