#!/usr/bin/env python3
"""CPU time by process kind while the pipeline benchmark runs.

    cpu_by_process.py STOPFILE [JSON]  samples /proc every 0.1 s until STOPFILE exists

Prints the machine's user/system/idle/iowait split over the run and the CPU
seconds used by imgmod workers, upload backends, the publisher, the S3
server (radosgw, ceph-osd, ceph-mon), Kafka and Redis, so the benchmark
shows where the cores went, not only the resulting rate.  With JSON, the
same figures (every process kind, in seconds) are also written there.
"""
import os, time, sys, collections, re, json
seen = {}
def label(pid):
    try:
        cmd = open(f'/proc/{pid}/cmdline','rb').read().replace(b'\0',b' ').decode(errors='replace')
    except Exception:
        return None
    if 'imgmod worker' in cmd: return 'imgmod worker'
    if 'imgmod publisher' in cmd: return 'imgmod publisher'
    if 'postgres:' in cmd and 'imgmod_bench' in cmd: return 'pg backend (upload)'
    if 'postgres:' in cmd or cmd.startswith('/usr/lib/postgresql'): return 'pg other'
    if 'radosgw' in cmd: return 'radosgw'
    if 'ceph-osd' in cmd: return 'ceph-osd'
    if 'ceph-mon' in cmd: return 'ceph-mon'
    if 'kafka' in cmd: return 'kafka'
    if 'redis' in cmd: return 'redis'
    if 'psql' in cmd: return 'psql'
    return 'other:' + cmd.split(' ')[0][-20:]
stop = sys.argv[1]
t0 = time.time()
idle0 = [int(x) for x in open('/proc/stat').readline().split()[1:]]
while not os.path.exists(stop):
    for pid in os.listdir('/proc'):
        if not pid.isdigit(): continue
        try:
            f = open(f'/proc/{pid}/stat').read()
        except Exception: continue
        parts = f.rsplit(')',1)[1].split()
        ticks = int(parts[11]) + int(parts[12])
        if pid not in seen:
            l = label(pid)
            if l is None: continue
            seen[pid] = [l, ticks, ticks]
        else:
            seen[pid][2] = ticks
    time.sleep(0.1)
idle1 = [int(x) for x in open('/proc/stat').readline().split()[1:]]
d = [b-a for a,b in zip(idle0, idle1)]
tot = collections.Counter()
for pid,(l,a,b) in seen.items(): tot[l] += b-a
el = time.time()-t0
hz = os.sysconf("SC_CLK_TCK")
print(f"wall {el:.1f} s on {os.cpu_count()} cores: user {d[0]/hz:.2f} s, system {d[2]/hz:.2f} s, idle {d[3]/hz:.2f} s, iowait {d[4]/hz:.2f} s")
for l,v in tot.most_common(15): print(f"{v/hz:8.2f} s  {l}")
if len(sys.argv) > 2:
    with open(sys.argv[2], 'w') as f:
        json.dump({'wall_s': round(el, 2), 'cores': os.cpu_count(), 'user_s': d[0]/hz, 'system_s': d[2]/hz,
                   'idle_s': d[3]/hz, 'iowait_s': d[4]/hz, 'by_process_s': {l: v/hz for l, v in tot.items() if v}},
                  f, indent=1, sort_keys=True)
