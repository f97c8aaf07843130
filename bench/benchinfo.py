#!/usr/bin/env python3
"""Machine-readable result files for the benchmarks (read by bench/report.py).

    benchinfo.py OUT.json --bench NAME [--versions a,b,...] [--version NAME=VALUE]
                 [--set KEY=VALUE] [--json KEY=FILE] [--tsv KEY=FILE]

Writes OUT.json: {"bench", "date" (UTC), "machine" (CPU model, cores, RAM
from /proc, OS, kernel), "versions" (of the tools named with --versions,
plus any --version given), "results" (--set values, numbers where they
parse; --json files embedded; --tsv files with a header line as a list of
rows)}, keys sorted.  Prints nothing.  bench/harness.py imports machine()
and versions() from here.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _first_line(cmd):
    if not shutil.which(cmd[0]):
        return None
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = (p.stdout + p.stderr).strip()
    return out.splitlines()[0] if out else None


def _dpkg(pkg):
    v = _first_line(["dpkg-query", "-W", "-f", "${Version}", pkg])
    return v if v and "no packages found" not in v else None


def _imgmod():
    return _first_line(["git", "-C", ROOT, "describe", "--always", "--dirty", "--abbrev=12"])


def _sharp():
    try:
        with open(os.path.join(HERE, "node_modules", "sharp", "package.json")) as f:
            return json.load(f).get("version")
    except (OSError, ValueError):
        return None


def _pillow():
    try:
        import PIL
        return PIL.__version__
    except ImportError:
        return None


def _match(cmd, pattern):
    line = _first_line(cmd)
    m = re.search(pattern, line or "")
    return m.group(1) if m else line


VERSIONS = {
    "imgmod": _imgmod,
    "libjpeg-turbo": lambda: _dpkg("libjpeg62-turbo"),
    "libvips": lambda: _match(["vips", "--version"], r"vips-(\S+)"),
    "sharp": _sharp,
    "Pillow": _pillow,
    "node": lambda: _first_line(["node", "--version"]),
    "PostgreSQL": lambda: _match(["pg_config", "--version"], r"PostgreSQL (\S+)"),
    "Varnish": lambda: _match(["varnishd", "-V"], r"varnish-(\S+?)\s"),
    "nginx": lambda: _match(["nginx", "-v"], r"nginx/(\S+)"),
    "wrk": lambda: _match(["wrk", "-v"], r"wrk (\S+)"),
    "Redis": lambda: _match(["redis-server", "--version"], r"v=(\S+)"),
    "Ceph": lambda: _match(["radosgw", "--version"], r"ceph version (\S+)"),
}


def versions(names):
    """{name: version or "not installed"} for the names in VERSIONS."""
    return {n: VERSIONS[n]() or "not installed" for n in names}


def _field(path, prefix):
    """The rest of the first line of PATH that starts with PREFIX, or None."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(prefix):
                    return line[len(prefix):].strip()
    except OSError:
        pass
    return None


def machine():
    cpu = _field("/proc/cpuinfo", "model name")
    mem = _field("/proc/meminfo", "MemTotal:")
    osname = _field("/etc/os-release", "PRETTY_NAME=")
    return {"cores": os.cpu_count(), "kernel": platform.release(),
            "cpu": cpu.lstrip(":").strip() if cpu else platform.processor() or "?",
            "ram_gib": round(int(mem.split()[0]) / 1048576, 1) if mem else None,
            "os": osname.strip('"') if osname else platform.system()}


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def value(s):
    for conv in (int, float):
        try:
            return conv(s)
        except ValueError:
            pass
    return s


def read_tsv(path):
    with open(path) as f:
        lines = [l.rstrip("\n").split("\t") for l in f if l.strip()]
    return [{k: value(v) for k, v in zip(lines[0], row)} for row in lines[1:]]


def write(path, doc):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--bench", required=True)
    ap.add_argument("--versions", default="", help="comma-separated names: " + ", ".join(sorted(VERSIONS)))
    ap.add_argument("--version", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--json", action="append", default=[], metavar="KEY=FILE")
    ap.add_argument("--tsv", action="append", default=[], metavar="KEY=FILE")
    args = ap.parse_args()

    v = versions([n for n in args.versions.split(",") if n])
    v.update(x.split("=", 1) for x in args.version)
    results = {k: value(s) for k, s in (x.split("=", 1) for x in args.set)}
    for x in args.json:
        k, path = x.split("=", 1)
        with open(path) as f:
            results[k] = json.load(f)
    for x in args.tsv:
        k, path = x.split("=", 1)
        results[k] = read_tsv(path)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write(args.out, {"bench": args.bench, "date": now(), "machine": machine(), "versions": v, "results": results})


if __name__ == "__main__":
    main()
