#!/usr/bin/env python3
"""Edit-to-served latency at the CDN edge.

While a steady read load runs against the edge (--rate requests/s over the
catalogue's unversioned URLs), replace one image --replaces times and time
each from just before imgmod.replace() is called (so the commit, the render,
the purge and the edge's refetch are all inside) to the first response of
the edge's unversioned URL that carries the new version's bytes.  Prints
p50/p99/max and the read load actually achieved (and writes them to --json
FILE when given).

  bench/edge_latency.py --edge http://127.0.0.1:6081 --image 1 \
      --read-ids 1,2,3 --replaces 50 --rate 200 --workdir /tmp/x

psql (from the libpq environment) runs the replaces; cjpeg makes the
pictures (seeded noise, so every replace has other bytes).
"""
import argparse
import hashlib
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse


def psql(sql):
    out = subprocess.run(["psql", "-XqAt", "-v", "ON_ERROR_STOP=1", "-c", sql],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def noise_jpeg(path, seed, width=800, height=600):
    rnd = random.Random(seed)
    # 4x4 blocks of noise: other bytes for every seed, a realistic size
    row_blocks = [bytes(rnd.getrandbits(8) for _ in range(3 * (width // 4))) for _ in range(height // 4)]
    with open(path + ".ppm", "wb") as f:
        f.write(b"P6\n%d %d\n255\n" % (width, height))
        for block in row_blocks:
            row = b"".join(block[i:i + 3] * 4 for i in range(0, len(block), 3))
            f.write(row * 4)
    subprocess.run(["cjpeg", "-quality", "90", "-outfile", path, path + ".ppm"], check=True)
    os.unlink(path + ".ppm")
    os.chmod(path, 0o644)


class Reader(threading.Thread):
    """A steady read load: `rate` GETs a second, round robin over `paths`."""

    def __init__(self, edge, paths, rate):
        super().__init__(daemon=True)
        u = urllib.parse.urlsplit(edge)
        self.host, self.port = u.hostname, u.port
        self.paths, self.rate = paths, rate
        self.stop = threading.Event()
        self.sent = 0
        self.errors = 0

    def run(self):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
        start = time.monotonic()
        while not self.stop.is_set():
            due = start + self.sent / self.rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            try:
                conn.request("GET", self.paths[self.sent % len(self.paths)])
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    self.errors += 1
            except (OSError, http.client.HTTPException):
                self.errors += 1
                conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
            self.sent += 1
        self.elapsed = time.monotonic() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edge", required=True)
    ap.add_argument("--image", type=int, required=True)
    ap.add_argument("--preset", default="medium")
    ap.add_argument("--read-ids", default="")
    ap.add_argument("--replaces", type=int, default=50)
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()

    u = urllib.parse.urlsplit(args.edge)
    path = f"/i/{args.image}/{args.preset}.jpg"
    read_ids = [int(x) for x in args.read_ids.split(",") if x] or [args.image]
    reader = Reader(args.edge, [f"/i/{i}/{p}.jpg" for i in read_ids for p in ("thumb", "small", "medium")] + [path],
                    args.rate)
    files = []
    for n in range(args.replaces):
        f = os.path.join(args.workdir, f"replace-{n}.jpg")
        noise_jpeg(f, 1000 + n)
        files.append(f)

    poll = http.client.HTTPConnection(u.hostname, u.port, timeout=5)

    def edge_md5():
        nonlocal poll
        try:
            poll.request("GET", path)
            r = poll.getresponse()
            body = r.read()
            return hashlib.md5(body).hexdigest() if r.status == 200 else None
        except (OSError, http.client.HTTPException):
            poll = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
            return None

    reader.start()
    latencies = []
    for n, f in enumerate(files):
        old = edge_md5()
        t0 = time.monotonic()
        version = int(psql(f"SELECT imgmod.replace({args.image}, pg_read_binary_file('{f}'), 'bench-{n}.jpg')"))
        # the new bytes are not known before the render: the edge must serve
        # bytes other than the old ones, then they are checked against fetch()
        while True:
            got = edge_md5()
            if got is not None and got != old:
                break
            if time.monotonic() - t0 > args.timeout:
                sys.exit(f"replace {n}: the edge did not serve new bytes within {args.timeout} s")
            time.sleep(0.002)
        latencies.append(time.monotonic() - t0)
        want = psql(f"SELECT md5(imgmod.fetch({args.image}, '{args.preset}', {version}))")
        if got != want:
            sys.exit(f"replace {n}: the edge served bytes of neither the old nor version {version}")
    reader.stop.set()
    reader.join()

    latencies.sort()
    def pct(p):
        return latencies[min(len(latencies) - 1, int(round(p / 100 * (len(latencies) - 1))))] * 1000
    print(f"edit-to-served over {len(latencies)} replaces: p50 {pct(50):.0f} ms, p99 {pct(99):.0f} ms, "
          f"max {latencies[-1] * 1000:.0f} ms, mean {statistics.mean(latencies) * 1000:.0f} ms")
    print(f"read load: {reader.sent / reader.elapsed:.0f} req/s for {reader.elapsed:.0f} s, {reader.errors} errors")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"replaces": len(latencies), "p50_ms": pct(50), "p99_ms": pct(99),
                       "max_ms": latencies[-1] * 1000, "mean_ms": statistics.mean(latencies) * 1000,
                       "read_load_per_s": reader.sent / reader.elapsed, "read_seconds": reader.elapsed,
                       "read_errors": reader.errors}, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
