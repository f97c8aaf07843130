#!/usr/bin/python3
"""Image edits against jpegtran, and where an edit's time goes.  Driven by
bench/edit.sh (see there and bench/README.md); three steps:

  edit.py core --cli CLI --stages EDIT_STAGES --work DIR --n N PHOTO...
      normalises each photo (imgmod-cli normalise: the master the edit
      worker starts from), picks the ops, and times each op on that master:
        * whole processes, paired A/B like harness.py: `imgmod-cli edit`
          against `jpegtran` with the equivalent arguments;
        * in-process (bench/build/edit_stages): img_edit_apply() against
          tjTransform() with jpegtran's options, and img_render_variants()
          of every preset from the edited master.
      Writes DIR/core.json and DIR/ops.tsv (photo, op, jsonb) for the
      PostgreSQL step.
  edit.py report --work DIR [--pg DIR/pg.tsv] --out FILE
      the tables (markdown) to FILE and stdout.

The ops, per photo (W x H, MCU from the sampling factors):
  rotate 90      jpegtran -rotate 90 -perfect when H is a whole number of
                 MCUs; otherwise -perfect fails and jpegtran runs with -trim
                 (drops the partial MCU row), while imgmod re-encodes the
                 whole picture (one decode, one encode at quality 92) to
                 keep every pixel: not the same output, said in the table
  rotate 90 trim only when H is not aligned: imgmod asked for exactly what
                 jpegtran -trim does, a crop to whole MCU rows then the
                 rotation (crop:W:H':0:0,rotate:90), lossless on both sides
  crop           the centre half: W/2 x H/2 from (W/4, H/4) rounded down to
                 the MCU; jpegtran -crop WxH+X+Y
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402  (Runner, jpeg_info, med, table, cpu_model)

MCU = {"4:4:4": (8, 8), "4:2:2": (16, 8), "4:2:0": (16, 16), "gray": (8, 8)}


def ops_for(w, h, samp):
    """[(label, imgmod spec, jpegtran args, jsonb, note)] for one master."""
    mw, mh = MCU.get(samp, (0, 0))
    if not mw:
        raise SystemExit("edit.py: sampling %s: MCU unknown" % samp)
    ops = []
    if h % mh == 0:
        ops.append(("rotate 90", "rotate:90", ["-rotate", "90", "-perfect"],
                    '[{"op":"rotate","degrees":90}]', "same output"))
    else:
        ops.append(("rotate 90", "rotate:90", ["-rotate", "90", "-trim"],
                    '[{"op":"rotate","degrees":90}]',
                    "height %d is not a multiple of the %d-row MCU: jpegtran -perfect fails, so jpegtran runs "
                    "with -trim (drops %d rows); imgmod keeps them and re-encodes" % (h, mh, h % mh)))
        ht = h - h % mh
        ops.append(("rotate 90 trim", "crop:%d:%d:0:0,rotate:90" % (w, ht), ["-rotate", "90", "-trim"],
                    '[{"op":"crop","x":0,"y":0,"width":%d,"height":%d},{"op":"rotate","degrees":90}]' % (w, ht),
                    "imgmod asked for jpegtran -trim's output: crop to %d rows, rotate" % ht))
    cw, ch = w // 2, h // 2
    cx, cy = (w // 4) // mw * mw, (h // 4) // mh * mh
    ops.append(("crop", "crop:%d:%d:%d:%d" % (cw, ch, cx, cy), ["-crop", "%dx%d+%d+%d" % (cw, ch, cx, cy)],
                '[{"op":"crop","x":%d,"y":%d,"width":%d,"height":%d}]' % (cx, cy, cw, ch),
                "centre half, %dx%d+%d+%d" % (cw, ch, cx, cy)))
    return ops


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit("edit.py: %s failed: %s" % (" ".join(cmd), p.stderr.strip()[-400:]))
    return p.stdout


def core(args):
    work = args.work
    os.makedirs(os.path.join(work, "masters"), exist_ok=True)
    os.makedirs(os.path.join(work, "out"), exist_ok=True)
    raw = open(os.path.join(work, "core-raw.tsv"), "w")
    runner = harness.Runner(work, raw)
    rows, optsv = [], []
    for photo in args.photos:
        name = os.path.splitext(os.path.basename(photo))[0]
        master = os.path.join(work, "masters", name + ".jpg")
        run([args.cli, "normalise", photo, master])
        w, h, coding, samp = harness.jpeg_info(master)
        for label, spec, jt_args, jsonb, note in ops_for(w, h, samp):
            harness.log("== %s: %s" % (name, label))
            jt = ["jpegtran", "-copy", "none"] + jt_args
            out_a = os.path.join(work, "out", "imgmod.jpg")
            out_b = os.path.join(work, "out", "jpegtran.jpg")
            a, b, ratios = runner.paired("edit " + label, name, "imgmod-cli edit",
                                         [args.cli, "edit", master, out_a, spec],
                                         "jpegtran", jt + ["-outfile", out_b, master], args.n)
            method = run([args.cli, "edit", master, out_a, spec]).split()[1]
            inproc = {}
            for line in run([args.stages, master, str(args.n), spec] + ["-copy", "none"] + jt_args).splitlines():
                k, m, lo, info = line.split("\t")
                inproc[k] = {"med": float(m), "min": float(lo), "info": info}
            rows.append({
                "photo": name, "size": "%dx%d" % (w, h), "coding": coding, "sampling": samp,
                "op": label, "spec": spec, "jpegtran": " ".join(jt + ["IN"]), "note": note, "method": method,
                "proc_imgmod": harness.med([r.wall_ms for r in a]), "proc_imgmod_min": min(r.wall_ms for r in a),
                "proc_jpegtran": harness.med([r.wall_ms for r in b]), "proc_jpegtran_min": min(r.wall_ms for r in b),
                "proc_ratio": harness.med(ratios), "inproc": inproc,
            })
            optsv.append("%s\t%s\t%s\n" % (name, label, jsonb))
    floor = runner.single("floor", "-", "true", ["true"], args.n)
    with open(os.path.join(work, "core.json"), "w") as f:
        json.dump({"rows": rows, "n": args.n, "cpu": harness.cpu_model(), "nproc": os.cpu_count(),
                   "floor_ms": harness.med([r.wall_ms for r in floor]), "imgmod": args.imgmod,
                   "jpegtran": run(["sh", "-c", "jpegtran -version 2>&1 | head -n 1"]).strip()}, f, indent=1)
    with open(os.path.join(work, "ops.tsv"), "w") as f:
        f.writelines(optsv)


def pct(values, p):
    """Nearest-rank percentile."""
    v = sorted(values)
    return v[max(0, min(len(v) - 1, -(-len(v) * p // 100) - 1))]


def report(args):
    with open(os.path.join(args.work, "core.json")) as f:
        c = json.load(f)
    pg, pg_na = {}, args.pg_na
    if args.pg and os.path.exists(args.pg):
        with open(args.pg) as f:
            for line in f:
                photo, op, run_, ms, method = line.rstrip("\n").split("\t")
                if run_ != "warmup":
                    pg.setdefault((photo, op), {"ms": [], "methods": set()})
                    pg[(photo, op)]["ms"].append(float(ms))
                    pg[(photo, op)]["methods"].add(method)
    f1 = lambda v: "%.0f" % v if v >= 10 else "%.1f" % v  # noqa: E731
    out = ["# Image edits: imgmod against jpegtran, and edit-to-ready", "",
           "CPU: %s, %s cores; %s; imgmod: %s; N = %d (1 warm-up + N, medians; min in brackets)." % (
               c["cpu"], c["nproc"], c["jpegtran"], c["imgmod"], c["n"]), ""]
    out += ["## The lossless part: imgmod against jpegtran on the normalised master", "",
            "Whole process (`imgmod-cli edit` vs `jpegtran -copy none …`, paired, process + timer floor "
            "%.1f ms on both sides) and in-process (`img_edit_apply()` vs `tjTransform()` with jpegtran's "
            "options, same bytes in memory). Target: imgmod ≤ 1.2× jpegtran." % c["floor_ms"], ""]
    head = ["photo", "op", "imgmod method", "jpegtran ms", "imgmod-cli ms", "ratio", "tjTransform ms",
            "img_edit_apply ms", "in-process ratio", "same bytes", "met?"]
    rows, notes = [], []
    for r in c["rows"]:
        ip = r["inproc"]
        lossless = r["method"] == "lossless"
        worst = max(r["proc_ratio"], ip["edit/tj"]["med"])
        rows.append([r["photo"], r["op"], r["method"], f1(r["proc_jpegtran"]), f1(r["proc_imgmod"]),
                     "%.2f×" % r["proc_ratio"], "%s (%s)" % (f1(ip["tjtransform"]["med"]), f1(ip["tjtransform"]["min"])),
                     "%s (%s)" % (f1(ip["edit"]["med"]), f1(ip["edit"]["min"])), "%.2f×" % ip["edit/tj"]["med"],
                     ip["same_bytes"]["info"],
                     ("yes" if worst <= 1.2 else "**NO**") if lossless else "n/a (re-encode)"])
        if r["note"] != "same output" and not r["note"].startswith("centre"):
            notes.append("* %s %s (%s, %s): %s." % (r["photo"], r["op"], r["size"], r["sampling"], r["note"]))
    out += [harness.table(head, rows), ""] + notes + [""]
    out += ["## Where edit-to-ready goes", "",
            "Core, in-process: `img_edit_apply()` then `img_render_variants()` of the compressed master "
            "(2560 box, q85) and the seeded presets (large 1920, medium 1024, small 512, thumb 256×256 cover, "
            "q80) from the edited master. Edit-to-ready: `SELECT imgmod.edit(id, ops, 1)` in autocommit to "
            "`imgmod.wait(id)` returning ready (commit, worker wake-up and claim, reading the base master, "
            "the edit, every preset, storing the objects, registering the version), p50 / p95 of N.", ""]
    head = ["photo", "op", "edit ms", "render ms", "core total ms", "edit-to-ready p50 ms", "p95 ms",
            "p50 − core ms", "worker's method"]
    rows = []
    for r in c["rows"]:
        ip = r["inproc"]
        total = ip["edit"]["med"] + ip["render"]["med"]
        p = pg.get((r["photo"], r["op"]))
        if p:
            p50, p95 = pct(p["ms"], 50), pct(p["ms"], 95)
            pgcols = [f1(p50), f1(p95), f1(p50 - total), "/".join(sorted(p["methods"]))]
        else:
            pgcols = ["n/a", "n/a", "n/a", "n/a"]
        rows.append([r["photo"], r["op"], f1(ip["edit"]["med"]), f1(ip["render"]["med"]), f1(total)] + pgcols)
    out += [harness.table(head, rows), ""]
    if not pg:
        out += ["Edit-to-ready: n/a: %s" % (pg_na or "no PostgreSQL results"), ""]
    out += ["Inputs:", ""]
    seen = set()
    for r in c["rows"]:
        if r["photo"] not in seen:
            seen.add(r["photo"])
            out.append("* %s: %s %s %s (normalised master)" % (r["photo"], r["size"], r["coding"], r["sampling"]))
    out += ["", "Commands per op:", ""]
    for r in c["rows"]:
        out.append("* %s %s: `imgmod-cli edit IN OUT %s` / `%s`" % (r["photo"], r["op"], r["spec"], r["jpegtran"]))
    text = "\n".join(out) + "\n"
    with open(args.out, "w") as f:
        f.write(text)
    sys.stdout.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("core")
    c.add_argument("--cli", required=True)
    c.add_argument("--stages", required=True)
    c.add_argument("--work", required=True)
    c.add_argument("--n", type=int, default=7)
    c.add_argument("--imgmod", default="")
    c.add_argument("photos", nargs="+")
    r = sub.add_parser("report")
    r.add_argument("--work", required=True)
    r.add_argument("--pg")
    r.add_argument("--pg-na", default="")
    r.add_argument("--out", required=True)
    args = ap.parse_args()
    core(args) if args.cmd == "core" else report(args)


if __name__ == "__main__":
    main()
