#!/usr/bin/python3
"""imgmod benchmark driver: imgmod and its peers in one run, on one machine.

Called by bench/run.sh (which installs and builds everything first); it can
also be run by hand, see --help.  Method (PERF.md section 1):

  * every measurement is a whole process: start-up, library initialisation,
    reading the input and writing the output are included;
  * each process runs under `/usr/bin/time -f '%M %U %S'` for its peak RSS
    and CPU; wall time is taken around it with a monotonic clock;
  * imgmod (A) and a peer (B) are run as pairs: 1 warm-up pair, then N
    counted pairs, alternating the order (A B, B A, A B, ...) so drift and
    cache effects fall on both sides;
  * reported: median wall time of each side, the median of the per-pair
    ratios A/B (the "ratio" column; it travels better than absolute ms),
    median peak RSS of each side.

Everything is written to --results (latest.md, latest-raw.tsv, and
latest.json: the same results with the machine and versions, for
bench/report.py).
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import struct
import subprocess
import sys
import time

import benchinfo

HERE = os.path.dirname(os.path.abspath(__file__))
PRESETS = "1920,1024,512,256"

# Targets from the issue.  Ratios are imgmod / peer (lower is better).
TARGETS = {
    ("presets", "baseline"): 0.60,
    ("presets", "progressive"): 0.80,
    ("thumb", "baseline"): 0.65,
    ("thumb", "progressive"): 0.85,
    # the speed issue's upload fast path: at most 0.6x jpegtran -copy none
    ("upload", "baseline"): 0.60,
    ("upload", "progressive"): 0.60,
}
PSNR_MARGIN_DB = 0.3


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ inputs

def jpeg_info(path):
    """(width, height, coding, subsampling) from the SOF marker, or None."""
    with open(path, "rb") as f:
        data = f.read(1 << 20)
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        seglen = struct.unpack(">H", data[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            ncomp = data[i + 9]
            coding = "progressive" if marker in (0xC2, 0xC6, 0xCA, 0xCE) else \
                "baseline" if marker in (0xC0, 0xC1) else "sof%d" % (marker - 0xC0)
            samp = ""
            if ncomp == 3:
                f0 = data[i + 11]
                hs, vs = f0 >> 4, f0 & 15
                samp = {(1, 1): "4:4:4", (2, 1): "4:2:2", (2, 2): "4:2:0"}.get((hs, vs), "%dx%d" % (hs, vs))
            elif ncomp == 1:
                samp = "grey"
            return w, h, coding, samp
        i += 2 + seglen
    return None


class Image:
    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.name = os.path.splitext(os.path.basename(path))[0]
        self.bytes = os.path.getsize(path)
        info = jpeg_info(path)
        if info:
            self.width, self.height, self.coding, self.subsampling = info
            self.kind = "jpeg"
        else:
            self.width = self.height = 0
            self.coding, self.subsampling, self.kind = "other", "", "other"

    @property
    def mp(self):
        return self.width * self.height / 1e6

    def describe(self):
        if self.kind != "jpeg":
            return "%s (not a JPEG: no coding-specific target)" % self.name
        return "%s %dx%d (%.1f MP), %s %s, %d bytes" % (
            self.name, self.width, self.height, self.mp, self.coding, self.subsampling, self.bytes)


# ----------------------------------------------------------------- running

class Run:
    __slots__ = ("wall_ms", "rss_kib", "cpu_ms")

    def __init__(self, wall_ms, rss_kib, cpu_ms):
        self.wall_ms, self.rss_kib, self.cpu_ms = wall_ms, rss_kib, cpu_ms


class CommandFailed(Exception):
    pass


class Runner:
    def __init__(self, work, raw):
        self.timefile = os.path.join(work, "time.out")
        self.raw = raw  # open file for latest-raw.tsv

    def run(self, cmd, label):
        """One whole-process run under /usr/bin/time; returns a Run."""
        full = ["/usr/bin/time", "-f", "%M %U %S", "-o", self.timefile, "--"] + cmd
        t0 = time.perf_counter()
        p = subprocess.run(full, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
        t1 = time.perf_counter()
        if p.returncode != 0:
            raise CommandFailed("%s exited %d: %s\n  command: %s" % (
                label, p.returncode, p.stderr.decode(errors="replace").strip()[-600:], " ".join(cmd)))
        with open(self.timefile) as f:
            last = f.read().strip().splitlines()[-1].split()
        rss, user, sys_ = int(last[0]), float(last[1]), float(last[2])
        return Run((t1 - t0) * 1e3, rss, (user + sys_) * 1e3)

    def record(self, task, image, tool, idx, r):
        self.raw.write("%s\t%s\t%s\t%s\t%.3f\t%d\t%.0f\n" % (task, image, tool, idx, r.wall_ms, r.rss_kib, r.cpu_ms))
        self.raw.flush()

    def paired(self, task, image, a_label, a_cmd, b_label, b_cmd, n, before=None):
        """Warm-up pair + n counted pairs, alternating order. Returns (A runs, B runs, ratios)."""
        runs_a, runs_b, ratios = [], [], []
        for i in range(-1, n):
            if before:
                before()
            order = [("A", a_label, a_cmd), ("B", b_label, b_cmd)]
            if i % 2 == 1:
                order.reverse()
            got = {}
            for side, label, cmd in order:
                got[side] = self.run(cmd, label)
                self.record(task, image, label, "warmup" if i < 0 else i, got[side])
            if i >= 0:
                runs_a.append(got["A"])
                runs_b.append(got["B"])
                ratios.append(got["A"].wall_ms / got["B"].wall_ms)
        return runs_a, runs_b, ratios

    def single(self, task, image, label, cmd, n):
        runs = []
        for i in range(-1, n):
            r = self.run(cmd, label)
            self.record(task, image, label, "warmup" if i < 0 else i, r)
            if i >= 0:
                runs.append(r)
        return runs


def med(values):
    return statistics.median(values) if values else float("nan")


# ------------------------------------------------------------- formatting

def ms(v):
    if v != v:
        return "n/a"
    return "%.0f" % v if v >= 10 else "%.1f" % v


def mib(kib):
    return "%.0f MiB" % (kib / 1024.0)


def ratio_fmt(r):
    return "%.2f×" % r


def table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---:" if h.endswith(("ms", "RSS", "ratio", "dB")) else "---" for h in header) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


# ------------------------------------------------------------------ tasks

class Result:
    """One row of the main table."""

    def __init__(self, task, image, peer, a_runs=None, b_runs=None, ratios=None,
                 target=None, rss_target=False, na=None, note=""):
        self.task, self.image, self.peer = task, image, peer
        self.a_runs, self.b_runs, self.ratios = a_runs or [], b_runs or [], ratios or []
        self.target, self.rss_target, self.na, self.note = target, rss_target, na, note

    @property
    def ratio(self):
        return med(self.ratios)

    def a_ms(self):
        return med([r.wall_ms for r in self.a_runs])

    def b_ms(self):
        return med([r.wall_ms for r in self.b_runs])

    def a_rss(self):
        return med([r.rss_kib for r in self.a_runs])

    def b_rss(self):
        return med([r.rss_kib for r in self.b_runs])

    def time_met(self):
        if self.na or self.target is None:
            return None
        return self.ratio <= self.target

    def rss_met(self):
        if self.na or not self.rss_target:
            return None
        return self.a_rss() <= self.b_rss()

    def row(self):
        label = "%s vs %s" % (self.task, self.peer)
        if self.na:
            return [label, self.image, "n/a", "n/a", "n/a",
                    self.target_text(), "n/a: " + self.na, "", ""]
        met = []
        tm, rm = self.time_met(), self.rss_met()
        if tm is not None:
            close = abs(self.ratio - self.target) <= 0.05 * self.target
            met.append(("yes" if tm else "**NO**") + (" (within 5 %%: %.3f×)" % self.ratio if close else ""))
        if rm is not None:
            met.append("RSS " + ("yes" if rm else "**NO**"))
        if not met:
            met.append("(info)")
        return [label, self.image, ms(self.a_ms()), ms(self.b_ms()), ratio_fmt(self.ratio),
                self.target_text(), ", ".join(met) + (" " + self.note if self.note else ""),
                mib(self.a_rss()), mib(self.b_rss())]

    def target_text(self):
        parts = []
        if self.target is not None:
            parts.append("≤%.2f×" % self.target)
        if self.rss_target:
            parts.append("RSS ≤ peer")
        return ", ".join(parts) if parts else "—"

    def detail_rows(self, a_label):
        rows = []
        for label, runs in ((a_label, self.a_runs), (self.peer, self.b_runs)):
            if not runs:
                continue
            walls = [r.wall_ms for r in runs]
            rows.append(["%s vs %s" % (self.task, self.peer), self.image, label, ms(med(walls)),
                         "%s–%s" % (ms(min(walls)), ms(max(walls))), ms(med([r.cpu_ms for r in runs])),
                         mib(med([r.rss_kib for r in runs]))])
        return rows


def clean_dir(d):
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)


def psnr_for(source, outputs):
    """{path: dict} from psnr.py, or raises."""
    cmd = [sys.executable, os.path.join(HERE, "psnr.py"), source] + outputs
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(p.stderr.strip()[-400:])
    res = {}
    for line in p.stdout.splitlines():
        d = json.loads(line)
        res[d["path"]] = d
    return res


# -------------------------------------------------------------- SQL upload

def sql_upload(images, n, jpegtran_ms):
    """Server-side time of imgmod.upload() per image; returns (rows, notes, na_reason)."""
    if not (os.environ.get("PGHOST") or os.environ.get("PGPORT")):
        return None, [], ("PGHOST/PGPORT not set; start a cluster with imgmod to measure this "
                          "(see bench/README.md)")
    psql = shutil.which("psql")
    if not psql:
        return None, [], "psql not found"

    def q(sql, db):
        p = subprocess.run([psql, "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(p.stderr.strip())
        return p.stdout.strip()

    db = os.environ.get("PGDATABASE")
    candidates = [db] if db else ["imgmod_demo", "postgres"]
    err = None
    for cand in candidates:
        try:
            q("SELECT 1", cand)
            db = cand
            break
        except RuntimeError as e:
            err = str(e)
            db = None
    if db is None:
        return None, [], "cannot connect (PGHOST=%s PGPORT=%s): %s" % (
            os.environ.get("PGHOST", ""), os.environ.get("PGPORT", ""), err)
    try:
        installed = q("SELECT count(*) FROM pg_extension WHERE extname = 'imgmod'", db) == "1"
        available = q("SELECT count(*) FROM pg_available_extensions WHERE name = 'imgmod'", db) == "1"
        preload = q("SHOW shared_preload_libraries", db)
        server = q("SHOW server_version", db)
    except RuntimeError as e:
        return None, [], "query failed: %s" % e
    if not installed and not available:
        return None, [], "imgmod is not installed in this cluster (run make install in the repository)"

    notes = ["database `%s`, PostgreSQL %s, shared_preload_libraries = '%s'" % (db, server, preload)]
    lines = ["\\set ON_ERROR_STOP 1", "\\timing on", "BEGIN;"]
    if not installed:
        lines.append("CREATE EXTENSION imgmod;")
        notes.append("extension not created in `%s`: CREATE EXTENSION ran inside the rolled-back "
                     "transaction" % db)

    def lit(s):
        return "'" + s.replace("'", "''") + "'"

    probes = [
        ("upload", "EXPLAIN (ANALYZE, COSTS OFF) SELECT imgmod.upload(pg_read_binary_file(%s), 'x.jpg');"),
        ("read", "EXPLAIN (ANALYZE, COSTS OFF) SELECT length(pg_read_binary_file(%s));"),
        ("read+sha256", "EXPLAIN (ANALYZE, COSTS OFF) SELECT length(sha256(pg_read_binary_file(%s)));"),
    ]
    for i in range(-1, n):
        for img in images:
            for kind, sql in probes:
                lines.append("\\echo @@ %s %s %d" % (kind, img.name, i))
                lines.append("SAVEPOINT bench;")
                lines.append(sql % lit(img.path))
                lines.append("ROLLBACK TO SAVEPOINT bench;")
    lines.append("ROLLBACK;")
    p = subprocess.run([psql, "-X", "-A", "-t", "-q", "-d", db], input="\n".join(lines) + "\n",
                       capture_output=True, text=True)
    if p.returncode != 0:
        return None, notes, "psql failed: %s" % p.stderr.strip()[-600:]

    # parse: after each @@ marker the EXPLAIN's "Execution Time" then psql's "Time:" line
    server, client = {}, {}
    cur = None
    for line in p.stdout.splitlines():
        if line.startswith("@@ "):
            parts = line.split(" ")
            cur = (parts[1], " ".join(parts[2:-1]), int(parts[-1]))
            continue
        if cur is None:
            continue
        m = re.match(r"Execution Time: ([0-9.]+) ms", line.strip())
        if m and cur[2] >= 0:
            server.setdefault((cur[0], cur[1]), []).append(float(m.group(1)))
            continue
    # client round trips: take the Time: line that directly follows each Execution Time
    lines_out = p.stdout.splitlines()
    for j, line in enumerate(lines_out):
        if line.startswith("@@ "):
            parts = line.split(" ")
            cur = (parts[1], " ".join(parts[2:-1]), int(parts[-1]))
        elif line.strip().startswith("Execution Time:") and cur and cur[2] >= 0:
            for k in range(j + 1, min(j + 4, len(lines_out))):
                m = re.match(r"Time: ([0-9.]+) ms", lines_out[k].strip())
                if m:
                    client.setdefault((cur[0], cur[1]), []).append(float(m.group(1)))
                    break

    rows = []
    for img in images:
        up = server.get(("upload", img.name), [])
        if not up:
            rows.append([img.name, "n/a", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a"])
            continue
        jt = jpegtran_ms.get(img.name)
        r = med(up) / jt if jt else float("nan")
        met = "n/a" if not jt else ("yes" if r <= TARGETS[("upload", "baseline")] else "**NO**")
        rows.append([img.name, ms(med(up)), ms(med(client.get(("upload", img.name), []))),
                     ms(med(server.get(("read", img.name), []))),
                     ms(med(server.get(("read+sha256", img.name), []))),
                     ms(jt) if jt else "n/a", ratio_fmt(r) if jt else "n/a", met])
    return rows, notes, None


# ------------------------------------------------------------------- main

def tool_versions(args):
    def out(cmd):
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            return (p.stdout + p.stderr).strip().splitlines()[0] if (p.stdout + p.stderr).strip() else "?"
        except Exception:
            return "?"

    v = {}
    v["imgmod"] = args.imgmod or args.cli
    v["libvips"] = out(["vips", "--version"]) if shutil.which("vips") else "not installed"
    v["libjpeg-turbo"] = out(["dpkg-query", "-W", "-f", "${Version}", "libjpeg62-turbo"])
    try:
        import PIL
        v["Pillow"] = PIL.__version__
    except ImportError:
        v["Pillow"] = "not installed"
    try:
        import numpy
        v["numpy"] = numpy.__version__
    except ImportError:
        v["numpy"] = "not installed (PSNR in plain Python)"
    if shutil.which("node"):
        v["node"] = out(["node", "--version"])
        pj = os.path.join(HERE, "node_modules", "sharp", "package.json")
        if os.path.exists(pj):
            with open(pj) as f:
                v["sharp"] = json.load(f).get("version", "?")
    return v


def write_json(path, args, n, v, images, results, sql_rows, sql_na, psnr, psnr_na, floor_ms, errors, load):
    """latest.json: the main table's figures, machine and versions (bench/benchinfo.py)."""
    def num(x):
        return None if x is None or x != x else round(x, 4)

    rows = [{"task": r.task, "image": r.image, "peer": r.peer, "na": r.na, "note": r.note,
             "target": r.target, "rss_target": r.rss_target, "ratio": num(r.ratio) if r.ratios else None,
             "imgmod_ms": num(r.a_ms()), "peer_ms": num(r.b_ms()),
             "imgmod_rss_kib": num(r.a_rss()), "peer_rss_kib": num(r.b_rss()),
             "time_met": r.time_met(), "rss_met": r.rss_met()} for r in results]
    versions = dict(v, **benchinfo.versions(["imgmod"]))  # the git revision; the build is in results
    if os.environ.get("PGHOST") or os.environ.get("PGPORT"):
        versions.update(benchinfo.versions(["PostgreSQL"]))
    benchinfo.write(path, {
        "bench": "run", "date": benchinfo.now(), "machine": benchinfo.machine(), "versions": versions,
        "results": {
            "command": "bench/run.sh" + ("" if n == 5 else " -n %d" % n), "n": n, "floor_ms": num(floor_ms),
            "imgmod_build": v["imgmod"],
            "load_avg_start": num(load[0]), "load_avg_end": num(load[1]),
            "images": [{"name": i.name, "coding": i.coding, "subsampling": i.subsampling, "width": i.width,
                        "height": i.height, "bytes": i.bytes} for i in images],
            "rows": rows,
            "sql_upload": {"na": sql_na} if sql_na else {
                "header": ["image", "upload server ms", "upload round trip ms", "read only ms", "read+sha256 ms",
                           "jpegtran ms", "ratio", "met? (≤%.2f×)" % TARGETS[("upload", "baseline")]], "rows": sql_rows},
            "psnr": {"na": psnr_na} if psnr_na else
                    {"%s/%s" % k: round(d["psnr"], 3) for k, d in sorted(psnr.items())},
            "errors": errors,
        }})


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=5, help="counted runs per measurement (after 1 warm-up)")
    ap.add_argument("--cli", required=True, help="imgmod-cli binary")
    ap.add_argument("--build", required=True, help="bench/build (vips_multi, imgmod_stages)")
    ap.add_argument("--results", required=True, help="directory for latest.md, latest-raw.tsv and latest.json")
    ap.add_argument("--na", action="append", default=[], metavar="PEER=REASON",
                    help="peer that could not be installed, and why")
    ap.add_argument("--imgmod", default="", help="what imgmod-cli was built from (for the report)")
    ap.add_argument("--no-stages", action="store_true", help="skip the imgmod stage breakdown")
    ap.add_argument("images", nargs="+")
    args = ap.parse_args()

    n = max(1, args.n)
    na = dict(x.split("=", 1) for x in args.na)
    work = os.path.join(args.build, "work")
    clean_dir(work)
    os.makedirs(args.results, exist_ok=True)
    raw_path = os.path.join(args.results, "latest-raw.tsv")
    raw = open(raw_path, "w")
    raw.write("task\timage\ttool\trun\twall_ms\tpeak_rss_kib\tcpu_ms\n")
    R = Runner(work, raw)
    images = [Image(p) for p in args.images]

    vips_multi = os.path.join(args.build, "vips_multi")
    stages = os.path.join(args.build, "imgmod_stages")
    sharp_js = os.path.join(HERE, "peers", "sharp_thumb.js")
    pil_py = os.path.join(HERE, "peers", "pillow_thumb.py")

    def missing(peer, exe):
        if peer in na:
            return na[peer]
        if exe and not (os.path.exists(exe) or shutil.which(exe)):
            return "%s not found" % exe
        return None

    na_vips_multi = missing("vips_multi", vips_multi)
    na_vipsthumbnail = missing("vipsthumbnail", "vipsthumbnail")
    na_jpegtran = missing("jpegtran", "jpegtran")
    na_sharp = missing("sharp", "node")
    na_pillow = missing("pillow", None)

    def loadavg():
        try:
            with open("/proc/loadavg") as f:
                return float(f.read().split()[0])
        except (OSError, ValueError):
            return float("nan")

    load_start = loadavg()
    started = time.time()
    results = []
    outputs = {}  # (image, tool) -> path of its 1024-px output
    errors = []

    # process + timer floor
    floor = R.single("floor", "-", "true", ["true"], n)
    floor_ms = med([r.wall_ms for r in floor])
    floor_rss = med([r.rss_kib for r in floor])

    for img in images:
        d = os.path.join(work, img.name)
        coding = img.coding if img.coding in ("baseline", "progressive") else None

        def guarded(fn):
            try:
                fn()
            except CommandFailed as e:
                errors.append(str(e))
                log("ERROR: %s" % e)

        # --- 1. four presets from one decode: imgmod-cli render vs vips_multi
        a_dir, b_dir = os.path.join(d, "imgmod-render"), os.path.join(d, "vips-multi")
        clean_dir(a_dir)
        clean_dir(b_dir)
        tgt = TARGETS.get(("presets", coding))

        def presets():
            log("[presets] %s" % img.name)
            if na_vips_multi:
                results.append(Result("4 presets", img.name, "vips_multi", target=tgt, rss_target=True,
                                      na=na_vips_multi))
                R.run([args.cli, "render", img.path, a_dir, PRESETS, "80"], "imgmod-cli render")
            else:
                a, b, rr = R.paired("presets", img.name,
                                    "imgmod-cli render", [args.cli, "render", img.path, a_dir, PRESETS, "80"],
                                    "vips_multi", [vips_multi, img.path, b_dir, PRESETS], n)
                results.append(Result("4 presets", img.name, "vips_multi", a, b, rr, tgt, True))
                outputs[(img.name, "vips_multi")] = os.path.join(b_dir, "1024.jpg")
            outputs[(img.name, "imgmod render")] = os.path.join(a_dir, "1024.jpg")
        guarded(presets)

        # --- 2. one 1024-px variant: imgmod-cli thumb vs vipsthumbnail, sharp, Pillow
        tgt = TARGETS.get(("thumb", coding))
        a_out = os.path.join(d, "imgmod-thumb-1024.jpg")
        imgmod_thumb = [args.cli, "thumb", img.path, a_out, "1024", "80"]
        peers = [
            ("vipsthumbnail", na_vipsthumbnail, tgt, os.path.join(d, "vipsthumbnail-1024.jpg"),
             lambda o: ["vipsthumbnail", img.path, "-s", "1024x", "-o", o + "[Q=80,strip]"]),
            ("sharp", na_sharp, None, os.path.join(d, "sharp-1024.jpg"),
             lambda o: ["node", sharp_js, img.path, o, "1024"]),
            ("Pillow draft", na_pillow, None, os.path.join(d, "pillow-draft-1024.jpg"),
             lambda o: [sys.executable, pil_py, img.path, o, "1024"]),
        ]
        for peer, reason, target, out, mk in peers:
            def one(peer=peer, reason=reason, target=target, out=out, mk=mk):
                log("[1024] %s vs %s" % (img.name, peer))
                if reason:
                    results.append(Result("1024 px", img.name, peer, target=target, na=reason))
                    return
                a, b, rr = R.paired("thumb", img.name, "imgmod-cli thumb", imgmod_thumb, peer, mk(out), n)
                results.append(Result("1024 px", img.name, peer, a, b, rr, target))
                outputs[(img.name, peer)] = out
            guarded(one)
        outputs[(img.name, "imgmod thumb")] = a_out

        # --- 3. upload path: imgmod-cli normalise vs jpegtran -copy none
        tgt = TARGETS.get(("upload", coding)) if img.kind == "jpeg" else None
        a_out, b_out = os.path.join(d, "imgmod-normalised.jpg"), os.path.join(d, "jpegtran.jpg")

        def upload():
            log("[upload] %s" % img.name)
            if na_jpegtran:
                results.append(Result("upload", img.name, "jpegtran -copy none", target=tgt, na=na_jpegtran))
                return
            a, b, rr = R.paired("upload", img.name, "imgmod-cli normalise",
                                [args.cli, "normalise", img.path, a_out],
                                "jpegtran -copy none", ["jpegtran", "-copy", "none", "-outfile", b_out, img.path], n)
            with open(a_out, "rb") as fa, open(b_out, "rb") as fb:
                same = fa.read() == fb.read()
            results.append(Result("upload", img.name, "jpegtran -copy none", a, b, rr, tgt,
                                  note="(outputs %s)" % ("byte-identical" if same else "differ")))
        guarded(upload)

    # --- 4. upload through PostgreSQL
    log("[sql upload]")
    jpegtran_ms = {r.image: r.b_ms() for r in results if r.task == "upload" and not r.na}
    try:
        sql_rows, sql_notes, sql_na = sql_upload(images, n, jpegtran_ms)
    except Exception as e:  # never let the optional part sink the run
        sql_rows, sql_notes, sql_na = None, [], "error: %s" % e

    # --- 5. PSNR of the 1024-px outputs
    log("[psnr]")
    psnr = {}
    psnr_na = na_pillow
    if not psnr_na:
        for img in images:
            paths = [p for (name, _), p in outputs.items() if name == img.name and os.path.exists(p)]
            try:
                got = psnr_for(img.path, paths)
            except Exception as e:
                psnr_na = "psnr.py failed: %s" % e
                break
            for (name, tool), p in outputs.items():
                if name == img.name and p in got:
                    psnr[(name, tool)] = got[p]

    # --- 6. where imgmod's time goes (in-process, public API only)
    stage_out = {}
    if not args.no_stages and os.path.exists(stages):
        for img in images:
            for label, widths in (("4 presets", PRESETS), ("1024 px", "1024")):
                log("[stages] %s %s" % (img.name, label))
                p = subprocess.run([stages, img.path, widths, str(n)], capture_output=True, text=True)
                if p.returncode == 0:
                    stage_out[(img.name, label)] = [l.split("\t") for l in p.stdout.strip().splitlines()]
                else:
                    stage_out[(img.name, label)] = [["error", "", p.stderr.strip()]]

    elapsed = time.time() - started
    load_end = loadavg()
    raw.close()

    # ------------------------------------------------------------- report
    md = []
    v = tool_versions(args)
    md.append("# imgmod benchmark: %s" % datetime.datetime.now().strftime("%Y-%m-%d %H:%M"))
    md.append("")
    md.append("* Machine: %s, nproc = %d, %s" % (cpu_model(), os.cpu_count(), platform.platform()))
    md.append("* Versions: " + "; ".join("%s %s" % kv for kv in v.items()))
    md.append("* Method: whole process, 1 warm-up + N = %d counted runs, median; ratio = median of "
              "per-pair imgmod/peer wall-time ratios (pairs alternate A B / B A); peak RSS from "
              "`/usr/bin/time -f %%M`, median. Run took %.0f s." % (n, elapsed))
    busy = load_start >= 0.5
    md.append("* Load average (1 min) at start / end: %.2f / %.2f.%s" % (
        load_start, load_end,
        " **The machine was busy when the run started**: libvips and sharp use both cores, imgmod one, so "
        "other work on the second core slows the peers more than imgmod and flatters the ratios. Compare "
        "each peer's CPU ms with its wall ms in Details (CPU > wall means it got the second core)." if busy else
        " (The end figure includes this run's own load.)"))
    md.append("* Process + timer floor (`true` under the same timer): %s ms, %s. Both sides of every ratio "
              "carry it." % (ms(floor_ms), mib(floor_rss)))
    md.append("* Inputs:")
    for img in images:
        md.append("  * " + img.describe())
    md.append("")
    md.append("## Speed and memory")
    md.append("")
    md.append(table(["task", "image", "imgmod ms", "peer ms", "ratio", "target", "met?", "imgmod RSS", "peer RSS"],
                    [r.row() for r in results]))
    md.append("")
    md.append("imgmod side: `imgmod-cli render` (4 presets), `imgmod-cli thumb` (1024 px), "
              "`imgmod-cli normalise` (upload). Targets apply by the input's coding (baseline / progressive); "
              "rows marked (info) have no target.")
    md.append("")

    md.append("## Upload through PostgreSQL (`imgmod.upload()`, server side)")
    md.append("")
    if sql_na:
        md.append("n/a: " + sql_na)
    else:
        md.append(table(["image", "upload server ms", "upload round trip ms", "read only ms",
                         "read+sha256 ms", "jpegtran ms", "ratio", "met? (≤%.2f×)" % TARGETS[("upload", "baseline")]], sql_rows))
        md.append("")
        md.append("Server ms = `Execution Time` of `EXPLAIN (ANALYZE) SELECT imgmod.upload(pg_read_binary_file(...), "
                  "'x.jpg')`, median of %d after a warm-up, each in a savepoint rolled back, all in one "
                  "transaction that is rolled back. It includes reading the file in the server (\"read only\"), "
                  "SHA-256 (\"read+sha256\"), normalising and inserting the master. Ratio = server median / "
                  "jpegtran process median from the table above (not paired)." % n)
        for note in sql_notes:
            md.append("* " + note)
    md.append("")

    md.append("## Quality: PSNR of the 1024-px outputs")
    md.append("")
    if psnr_na:
        md.append("n/a: " + psnr_na)
    else:
        md.append("Reference: the source fully decoded (no DCT scaling) and resized with Pillow LANCZOS to "
                  "each output's own size. Target: imgmod's 1024 output from `render` within %.1f dB of "
                  "vipsthumbnail's." % PSNR_MARGIN_DB)
        md.append("")
        rows = []
        for img in images:
            a, b = psnr.get((img.name, "imgmod render")), psnr.get((img.name, "vipsthumbnail"))
            if a and b:
                delta = a["psnr"] - b["psnr"]
                rows.append([img.name, "%.2f dB" % a["psnr"], "%.2f dB" % b["psnr"], "%+.2f dB" % delta,
                             "≥ −%.1f dB" % PSNR_MARGIN_DB, "yes" if delta >= -PSNR_MARGIN_DB else "**NO**"])
            else:
                rows.append([img.name, "n/a", "n/a", "n/a", "≥ −%.1f dB" % PSNR_MARGIN_DB, "n/a"])
        md.append(table(["image", "imgmod render dB", "vipsthumbnail dB", "difference", "target", "met?"], rows))
        md.append("")
        tools = ["imgmod render", "imgmod thumb", "vips_multi", "vipsthumbnail", "sharp", "Pillow draft"]
        rows = []
        for img in images:
            row = [img.name]
            for t in tools:
                d = psnr.get((img.name, t))
                row.append("%.2f dB / %.0f KiB / %dx%d" % (d["psnr"], d["bytes"] / 1024.0, d["width"], d["height"])
                           if d else "n/a")
            rows.append(row)
        md.append("All 1024-px outputs (PSNR / size / dimensions):")
        md.append("")
        md.append(table(["image"] + tools, rows))
        methods = {d["method"] for d in psnr.values()}
        md.append("")
        md.append("PSNR computed with: %s." % ", ".join(sorted(methods)))
    md.append("")

    if stage_out:
        md.append("## Where imgmod's time goes (in-process, `bench/stages/imgmod_stages.c`)")
        md.append("")
        md.append("Medians of %d in-process repetitions through the public image-core API (no process start, "
                  "no file I/O). `render` columns split the real img_render_variants() call where the first "
                  "variant's raster is allocated (allocator trace). `load`/`resize`/`encode` re-run the stages "
                  "one by one at the size render decoded to (resize/encode summed over the variants, each "
                  "variant made from the previous one as render chains them)." % n)
        md.append("")
        rows = []
        for (name, label), lines in stage_out.items():
            d = {l[0]: (l[1], l[2] if len(l) > 2 else "") for l in lines}
            if "error" in d or "total" not in d:
                rows.append([name, label, "error: " + d.get("error", ("", "", "no output"))[1]] + [""] * 7)
                continue
            rs = sum(float(v[0]) for k, v in d.items() if k.startswith("resize"))
            en = sum(float(v[0]) for k, v in d.items() if k.startswith("encode"))
            rows.append([name, label, d["total"][0], d["render:decode"][0], d["render:variants"][0],
                         d["probe"][0], d["load"][0], "%.2f" % rs, "%.2f" % en, d["load"][1]])
        md.append(table(["image", "task", "render total ms", "render: decode ms", "render: variants ms",
                         "probe ms", "load ms", "resize ms", "encode ms", "decoded to"], rows))
        md.append("")
        rows = []
        for (name, label), lines in stage_out.items():
            if label != "4 presets":
                continue
            d = {l[0]: (l[1], l[2] if len(l) > 2 else "") for l in lines}
            rows.append([name] + ["%s (%s)" % d[k] if k in d else "n/a"
                                  for k in ("decode 1/8", "decode 2/8", "decode 4/8", "decode 8/8")]
                        + [d[k][0] if k in d else "n/a" for k in ("resize 1920", "encode 1920")])
        md.append("img_load() forced to each DCT scale (chroma replicated below 8/8 if the core does so for "
                  "shrinking loads), and the largest variant's resize and encode in the 4-preset task:")
        md.append("")
        md.append(table(["image", "1/8 ms", "2/8 ms", "4/8 ms", "8/8 ms", "resize to 1920 ms", "encode 1920 ms"],
                        rows))
        md.append("")

    md.append("## Details (wall min–max and CPU)")
    md.append("")
    drows = []
    for r in results:
        if not r.na:
            drows.extend(r.detail_rows({"4 presets": "imgmod-cli render", "1024 px": "imgmod-cli thumb",
                                        "upload": "imgmod-cli normalise"}[r.task]))
    md.append(table(["task", "image", "tool", "wall ms", "min–max ms", "CPU ms", "peak RSS"], drows))
    md.append("")
    missed = [r for r in results if r.time_met() is False or r.rss_met() is False]
    md.append("## Summary")
    md.append("")
    md.append("* Targets missed: %d of %d measured (time or RSS)." % (
        len(missed), sum(1 for r in results if r.time_met() is not None or r.rss_met() is not None)))
    for r in missed:
        what = []
        if r.time_met() is False:
            what.append("time %.2f× > %.2f×" % (r.ratio, r.target))
        if r.rss_met() is False:
            what.append("RSS %s > %s" % (mib(r.a_rss()), mib(r.b_rss())))
        md.append("  * %s vs %s, %s: %s" % (r.task, r.peer, r.image, "; ".join(what)))
    close = [r for r in results if r.time_met() is not None and abs(r.ratio - r.target) <= 0.05 * r.target]
    for r in close:
        md.append("* Within 5 %% of its target (noise level; rerun with a larger -n): %s vs %s, %s: %.3f× "
                  "against %.2f×" % (r.task, r.peer, r.image, r.ratio, r.target))
    nas = [r for r in results if r.na]
    for r in nas:
        md.append("* n/a: %s vs %s on %s: %s" % (r.task, r.peer, r.image, r.na))
    for e in errors:
        md.append("* ERROR: " + e.replace("\n", " "))
    md.append("* Raw per-run data: `%s`." % os.path.relpath(raw_path, os.path.dirname(HERE)))
    text = "\n".join(md) + "\n"
    with open(os.path.join(args.results, "latest.md"), "w") as f:
        f.write(text)
    write_json(os.path.join(args.results, "latest.json"), args, n, v, images, results, sql_rows, sql_na, psnr,
               psnr_na, floor_ms, errors, (load_start, load_end))
    print(text)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
