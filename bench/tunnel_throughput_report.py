"""Turns the raw outputs of bench/tunnel_throughput into the table and the JSON file.

usage: tunnel_throughput_report.py RESULTS_DIR PATHS SECONDS STARTED RR_MODE [JSON_FILE]

RESULTS_DIR/<path>/ holds, per client run NAME (tcp1_<k>, one per connection; tcp4; udp; rr_<k>,
one per connection), NAME.json (iperf3 --json or pingpong --json) and NAME.snmp0/NAME.snmp1
(/proc/net/snmp of the client namespace before and after it); cpu_ticks (the agents' clock ticks
during the TCP runs, agent paths only), machine_ticks and softirq_ticks (the whole machine's busy
and softirq clock ticks during the TCP runs, every path), syscalls (the agents' syscalls during the TCP runs, from
perf's raw_syscalls:sys_enter counter; agent paths, when perf is there) and, when the path could not run, a file "error" with the
reason.
"""
import json
import os
import platform
import subprocess
import sys

METRICS = [  # key, unit shown in the table, higher is better
    ("tcp1_gbps", "Gbit/s", True),
    ("tcp4_gbps", "Gbit/s", True),
    ("tcp4_retrans_pct", "%", False),
    ("udp_gbps", "Gbit/s", True),
    ("udp_loss_pct", "%", False),
    ("rr_p50_us", "us", False),
    ("rr_p99_us", "us", False),
    ("cpu_s_per_gb", "s/GB", False),
    ("machine_cpu_s_per_gb", "s/GB", False),
    ("softirq_s_per_gb", "s/GB", False),
    ("syscalls_per_gb", "1/GB", False),
]
OUR_PATHS = ("tunnel", "tunnel_v6", "tunnel_uring", "tunnel_no_offload", "tunnel_fastpath")
AGENT_PATHS = OUR_PATHS + ("reference",)  # paths whose agents' CPU time and syscalls are measured
AGENT_ONLY = ("cpu_s_per_gb", "syscalls_per_gb")
# The fast path's targets (issue 23), each against a kernel VXLAN path: (metric, path, factor,
# higher is better).
FASTPATH_TARGETS = [
    ("tcp1_gbps", "vxlan", 1.0, True),
    ("tcp1_gbps", "vxlan_bridge", 1.1, True),
    ("rr_p50_us", "vxlan", 1.0, False),
    ("machine_cpu_s_per_gb", "vxlan_bridge", 1.0, False),
]
RESULTS = ""


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def load_json(path):
    """Returns (object, None) or (None, reason)."""
    text = read(path)
    if text is None:
        return None, "not run"
    try:
        obj = json.loads(text)
    except ValueError:
        err = (read(path[: -len(".json")] + ".err") or "").strip() or text.strip()
        last = err.splitlines()[-1:] or ["no output (timed out?)"]
        return None, last[0][:160]
    if isinstance(obj, dict) and obj.get("error"):
        return None, obj["error"][:160]
    return obj, None


def tcp_counters(path):
    """OutSegs and RetransSegs from a /proc/net/snmp dump."""
    text = read(path)
    if text is None:
        return None
    lines = [l.split() for l in text.splitlines() if l.startswith("Tcp:")]
    if len(lines) < 2:
        return None
    return dict(zip(lines[0][1:], (int(v) for v in lines[1][1:])))


def retrans_pct(retransmits, snmp_pairs):
    """iperf3's retransmits over the segments the client namespace sent during the runs (each run
    has its own before/after pair: other paths' runs come between them)."""
    sent = 0
    for before, after in snmp_pairs:
        a, b = tcp_counters(before), tcp_counters(after)
        if not a or not b:
            return None
        sent += b["OutSegs"] - a["OutSegs"]
    return 100.0 * retransmits / sent if sent > 0 else None


def run_names(d, name):
    """NAME, or NAME_1, NAME_2... (one per connection): the runs whose NAME.json exists."""
    if os.path.exists(os.path.join(d, name + ".json")):
        return [name]
    names = []
    while os.path.exists(os.path.join(d, f"{name}_{len(names) + 1}.json")):
        names.append(f"{name}_{len(names) + 1}")
    return names


def load_runs(d, name):
    """([objects], None) for the runs of NAME, or (None, reason of the first that failed)."""
    names = run_names(d, name)
    if not names:
        return None, "not run"
    runs = []
    for n in names:
        obj, err = load_json(os.path.join(d, n + ".json"))
        if err:
            return None, err
        runs.append(obj)
    return runs, None


def median(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def collect(d, path):
    r = {k: None for k, _, _ in METRICS if k not in AGENT_ONLY or path in AGENT_PATHS}
    errors = {}
    reason = read(os.path.join(d, "error"))
    if reason is not None:
        r["error"] = reason.strip()
        return r
    tcp_bytes = 0
    for name in ("tcp1", "tcp4"):
        runs, err = load_runs(d, name)
        if err:
            errors[name] = err
            continue
        rates = [run["end"]["sum_received"]["bits_per_second"] / 1e9 for run in runs]
        r[name + "_gbps"] = median(rates)
        if len(rates) > 1:
            r[name + "_gbps_each"] = rates
        tcp_bytes += sum(run["end"]["sum_received"]["bytes"] for run in runs)
        retransmits = sum(run["end"]["sum_sent"].get("retransmits", 0) for run in runs)
        snmp = [(os.path.join(d, n + ".snmp0"), os.path.join(d, n + ".snmp1")) for n in run_names(d, name)]
        r[name + "_retrans_pct"] = retrans_pct(retransmits, snmp)
    run, err = load_json(os.path.join(d, "udp.json"))
    if err:
        errors["udp"] = err
    else:
        received = run["end"]["sum_received"]
        r["udp_gbps"] = received["bits_per_second"] / 1e9
        r["udp_loss_pct"] = received["lost_percent"]
    rrs, err = load_runs(d, "rr")
    if err:
        errors["rr"] = err
    else:
        r["rr_p50_us"] = median([rr["p50_us"] for rr in rrs])
        r["rr_p99_us"] = median([rr["p99_us"] for rr in rrs])
        r["rr_count"] = sum(rr["count"] for rr in rrs)
        if len(rrs) > 1:
            r["rr_p50_us_each"] = [rr["p50_us"] for rr in rrs]
    tcp_ok = tcp_bytes > 0 and "tcp1" not in errors and "tcp4" not in errors
    for key, name in (("machine_cpu_s_per_gb", "machine_ticks"), ("softirq_s_per_gb", "softirq_ticks")):
        ticks = read(os.path.join(d, name))
        if ticks and tcp_ok:
            r[key] = int(ticks) / os.sysconf("SC_CLK_TCK") / (tcp_bytes / 1e9)
    if path in AGENT_PATHS:
        ticks = read(os.path.join(d, "cpu_ticks"))
        if ticks and tcp_bytes > 0 and "tcp1" not in errors and "tcp4" not in errors:
            r["cpu_s_per_gb"] = int(ticks) / os.sysconf("SC_CLK_TCK") / (tcp_bytes / 1e9)
        calls = read(os.path.join(d, "syscalls"))
        if calls and tcp_bytes > 0 and "tcp1" not in errors and "tcp4" not in errors:
            r["syscalls_per_gb"] = int(calls) / (tcp_bytes / 1e9)
        for i in (1, 2):
            drops = metric_drops(os.path.join(d, f"metrics{i}.txt"),
                                 os.path.join(d, f"metrics{i}_before.txt"))
            if drops:
                r[f"agent{i}_drop_counters"] = drops
    if errors:
        r["errors"] = errors
    return r


def metric_drops(path, before_path=None):
    """Prometheus samples whose name mentions drops or errors that grew during the run (from
    before_path's values, or from zero)."""
    text = read(path)
    if not text:
        return {}
    before = metric_drops(before_path) if before_path else {}
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        parts = line.rsplit(None, 1)
        if len(parts) != 2 or not any(w in parts[0] for w in ("drop", "error", "overflow")):
            continue
        try:
            value = float(parts[1])
        except ValueError:
            continue
        value -= before.get(parts[0], 0)
        if value:
            out[parts[0]] = value
    return out


def fmt(v, key):
    if v is None:
        return "n/a"
    if key == "syscalls_per_gb":
        return f"{v:.0f}"
    if key.endswith("_us"):
        return f"{v:.0f}"
    if key.endswith("_pct"):
        return f"{v:.2f}"
    return f"{v:.3g}" if v < 1 else f"{v:.2f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}x"


def print_table(res, paths, seconds, started, rr_mode):
    print(f"tunnel_throughput  {started}  kernel {platform.release()}  {os.cpu_count()} cores  "
          f"{seconds} s per test  ({iperf3_version()})  ping-pong {rr_mode}  load average before: {load_before()}")
    width = max(18, *(len(p) + 2 for p in paths))
    print("metric".ljust(30) + "".join(p.rjust(width) for p in paths))
    for key, unit, _ in METRICS:
        if key in AGENT_ONLY and not any(p in AGENT_PATHS for p in paths):
            continue
        row = f"{key} ({unit})".ljust(30)
        for p in paths:
            row += (fmt(res[p].get(key), key) if key in res[p] else "-").rjust(width)
        print(row)
    each = [(p, k) for p in paths for k in ("tcp1_gbps_each", "rr_p50_us_each") if res[p].get(k)]
    if each:
        print("\nmedians above; per connection:")
        for p, k in each:
            print(f"  {p} {k[:-5]}: " + " ".join(fmt(v, k[:-5]) for v in res[p][k]))
    refs = [p for p in ("direct", "vxlan", "vxlan_bridge", "openvpn", "reference") if p in paths]
    for t in (p for p in OUR_PATHS if refs and p in paths and "error" not in res[p]):
        print()
        print(f"ratio {t} / ...".ljust(28) + "".join(p.rjust(14) for p in refs))
        for key, _, _ in METRICS:
            if (key in AGENT_ONLY and "reference" not in refs) or key.endswith("_pct"):
                continue  # a ratio of two near-zero percentages says nothing
            print(f"  {key}".ljust(28) + "".join(ratio(res[t].get(key), res[p].get(key)).rjust(14) for p in refs))
    for other, what in (("tunnel_uring", "the two I/O modes"),
                        ("tunnel_v6", "IPv6 and IPv4 inside the same tunnel"),
                        ("tunnel_fastpath", "eBPF fast path / userspace only")):
        if all(p in paths and "error" not in res[p] for p in ("tunnel", other)):
            print(f"\nratio {other} / tunnel ({what})")
            for key, _, _ in METRICS:
                if not key.endswith("_pct"):
                    print(f"  {key}".ljust(28) + ratio(res[other].get(key), res["tunnel"].get(key)).rjust(12))
    for p in paths:
        if "error" in res[p]:
            print(f"\n{p}: n/a: {res[p]['error']}")
        for name, err in res[p].get("errors", {}).items():
            print(f"\n{p} {name}: failed: {err}")
        for i in (1, 2):
            if res[p].get(f"agent{i}_drop_counters"):
                counters = ", ".join(f"{k} {v:.0f}" for k, v in res[p][f"agent{i}_drop_counters"].items())
                print(f"\n{p} agent {i} drop/error counters grown during the run: {counters}")
    print_targets(res)


def print_targets(res):
    """The goals of issues 5 and 7, evaluated on this run (ratios in the same run)."""
    t, n, v, o, t6 = (res.get(k, {}) for k in ("tunnel", "tunnel_no_offload", "vxlan", "openvpn", "tunnel_v6"))

    def check(label, a, b, factor, higher):
        if a is None or b is None:
            return f"  {label}: n/a"
        ok = a >= factor * b if higher else a <= factor * b
        return f"  {label}: {'met' if ok else 'MISSED'} ({a / b:.2f}x)" if b else f"  {label}: n/a"

    lines = [
        check("tcp1 >= 0.45x vxlan", t.get("tcp1_gbps"), v.get("tcp1_gbps"), 0.45, True),
        check("tcp1 >= 10x openvpn", t.get("tcp1_gbps"), o.get("tcp1_gbps"), 10, True),
        check("tcp4 >= 0.45x vxlan", t.get("tcp4_gbps"), v.get("tcp4_gbps"), 0.45, True),
        check("rr p50 <= 2.2x vxlan", t.get("rr_p50_us"), v.get("rr_p50_us"), 2.2, False),
        check("rr p50 <= no-offload p50", t.get("rr_p50_us"), n.get("rr_p50_us"), 1.0, False),
        check("cpu/GB <= 1/3 of no-offload", t.get("cpu_s_per_gb"), n.get("cpu_s_per_gb"), 1 / 3, False),
    ]
    if t6:
        lines += [
            check("tunnel_v6 tcp1 >= 0.9x tunnel (issue 20)", t6.get("tcp1_gbps"), t.get("tcp1_gbps"), 0.9, True),
            check("tunnel_v6 rr p50 <= 1.1x tunnel (issue 20)", t6.get("rr_p50_us"), t.get("rr_p50_us"), 1.1, False),
        ]
    pct = t.get("tcp4_retrans_pct")
    lines.append(f"  tcp4 retransmits < 1%: {'n/a' if pct is None else ('met' if pct < 1 else 'MISSED')}"
                 + ("" if pct is None else f" ({pct:.2f}%)"))
    if t and "error" not in t:
        print("\ntargets for the tunnel (issues 5 and 7):")
        print("\n".join(lines))
    f = res.get("tunnel_fastpath", {})
    if f and "error" not in f:
        print("\ntargets for the eBPF fast path (issue 23):")
        for key, ref, factor, higher in FASTPATH_TARGETS:
            label = f"{key} {'>=' if higher else '<='} {factor:g}x {ref}"
            print(check(label, f.get(key), res.get(ref, {}).get(key), factor, higher))


def fastpath_ratios(res):
    """tunnel_fastpath over vxlan and over vxlan_bridge, per metric (percentages left out), for
    the paths this run measured."""
    f = res.get("tunnel_fastpath")
    out = {}
    for ref in ("vxlan", "vxlan_bridge"):
        if not f or "error" in f or ref not in res or "error" in res[ref]:
            continue
        out[f"tunnel_fastpath/{ref}"] = {
            key: (f[key] / res[ref][key] if f.get(key) is not None and res[ref].get(key) else None)
            for key, _, _ in METRICS if not key.endswith("_pct") and key in f and key in res[ref]}
    return out


def load_before():
    """Other work on the 2 cores moves every number; the load average says how much there was."""
    return " ".join((read(os.path.join(RESULTS, "loadavg")) or "? ? ?").split()[:3])


def iperf3_version():
    try:
        return subprocess.run(["iperf3", "--version"], capture_output=True, text=True).stdout.split("(")[0].strip()
    except OSError:
        return "iperf3 ?"


def main():
    if len(sys.argv) < 6:
        sys.exit(__doc__)
    global RESULTS
    results, paths, seconds, started = sys.argv[1], sys.argv[2].split(","), sys.argv[3], sys.argv[4]
    rr_mode = sys.argv[5].lstrip("-")
    RESULTS = results
    json_file = sys.argv[6] if len(sys.argv) > 6 else ""
    res = {p: collect(os.path.join(results, p), p) for p in paths}
    if json_file:
        doc = {"started": started, "seconds_per_test": int(seconds), "kernel": platform.release(),
               "cores": os.cpu_count(), "iperf3": iperf3_version(), "loadavg_before": load_before(),
               "rr_mode": rr_mode}
        doc.update(res)
        doc["ratios"] = fastpath_ratios(res)
        with open(json_file, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
    print_table(res, paths, seconds, started, rr_mode)


if __name__ == "__main__":
    main()
