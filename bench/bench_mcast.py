#!/usr/bin/python3
"""Context multicast in a loopback federation (issue 7, DESIGN.md §5).

Usage: bench_mcast.py PATH/TO/psycgate [--servers N] [--contacts C] [--fanout K] [--rounds R]

N psycgate processes (default 50), each its own PSYC host and XMPP domain
(tests/mcast/mcastfed.py: fake XEP-0114 servers, FakeDNS, 127.0.0.1), run
twice in the same run: [multicast] enabled = yes (a tree of fan-out K among
the gateways) and enabled = no (the per-recipient baseline: one PSYC packet
per recipient). Per scenario and mode:
  origin pkts/bytes   what gateway 0 sent for the measured change
  link stress         the most copies of that one change on any one link
  total pkts/bytes    summed over every link of every gateway
  p50/p99             injection at alice's XMPP server -> arrival at the
                      contact's XMPP server (both include the presence
                      coalescer's 50 ms burst window, routing/coalesce.h)
Counts come from the gateways' own per-link counters ("mcast: link ..."
lines logged on SIGUSR1, gateway/mcast_ctx.h): bytes are each packet's
PSYC 1.0 size. Each round measures one change after warm-ups (the tree is
built); R rounds (default 3), counts averaged, latencies pooled. Latency
per tree level: the contacts grouped by their gateway's depth in the tree;
then once more with --depth-servers (default 15) processes and fan-out 2
(three levels, less CPU contention), multicast only, 10 rounds.

Scenario (a) one presence change of a user with C contacts (default 1000)
over N-1 servers. (b) a message in a 5000-occupant room and (c) a
5000-occupant join burst need places (MUC) and are reported as not
measured yet.
"""
import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "mcast"))
from mcastfed import Fail, Federation, host, run_main  # noqa: E402


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def diff(before, after):
    out = {}
    for k, links in after.items():
        for root, (pk, by) in links.items():
            b = before.get(k, {}).get(root, (0, 0))
            if pk - b[0]:
                out[(k, root)] = (pk - b[0], by - b[1])
    return out


def wait_received(fed, status, timeout=60):
    want = {fed.jid(c): c[1] for c in fed.contacts}
    end = time.monotonic() + timeout
    while True:
        got = {}
        for k in range(1, fed.n):
            for jid, recs in fed.received(k, status).items():
                for t, s in recs:
                    if s == status and jid not in got:
                        got[jid] = t
        if len(got) >= len(want):
            return got
        if time.monotonic() > end:
            raise Fail("only %d of %d contacts got presence %s" % (len(got), len(want), status))
        time.sleep(0.02)


def depths(fed):
    """{server k: depth in the tree}, from the gateways' assignments."""
    tree = fed.tree()
    parent = {k: p for k, (p, _) in tree.items()}
    by_root = {"psyc://%s/" % host(k): k for k in range(fed.n)}
    out = {}
    for k in range(1, fed.n):
        d, cur = 1, parent.get(k)
        while cur and by_root.get(cur, 0) != 0 and d < 64:
            d += 1
            cur = parent.get(by_root[cur])
        out[k] = d
    return out


def scenario_presence(binary, tmp, args, enabled):
    """(a): one presence change of alice@g0.test to C contacts."""
    fed = Federation(tmp, binary, args.servers, args.contacts, fanout=args.fanout, enabled=enabled,
                     name="presence-%s-%d" % ("mc" if enabled else "uc", args.servers))
    with contextlib.ExitStack() as st:
        st.callback(fed.close)
        fed.start()
        fed.subscribe_all(timeout=300)
        for w in ("w1", "w2"):
            fed.presence(w)
            wait_received(fed, w)
        if enabled:  # the tree: every route assigned once the peers ack
            end = time.monotonic() + 30
            while len(fed.tree()) < fed.n - 1 and time.monotonic() < end:
                time.sleep(0.1)
            fed.presence("w3")
            wait_received(fed, "w3")
        level = depths(fed) if enabled else {k: 1 for k in range(1, fed.n)}
        rounds, lat, lat_level, first_level = [], [], {}, {}
        for r in range(args.rounds):
            before = fed.metrics()
            status = "m%d" % r
            t0 = fed.presence(status, wait=False)
            got = wait_received(fed, status)
            time.sleep(0.3)  # stragglers (none expected) would show in the counters
            d = diff(before, fed.metrics())
            rounds.append(d)
            server = {fed.jid(c): c[1] for c in fed.contacts}
            first = {}
            for jid, t in got.items():
                ms = (t - t0) * 1000.0
                lat.append(ms)
                lat_level.setdefault(level[server[jid]], []).append(ms)
                k = server[jid]
                first[k] = min(first.get(k, ms), ms)
            for k, ms in first.items():  # a server's first stanza: the hop, not its local fan-out
                first_level.setdefault(level[k], []).append(ms)
        fed.stop_all()

    def avg(f):
        return statistics.mean(f(d) for d in rounds)

    return {
        "origin_pkts": avg(lambda d: sum(v[0] for (k, _), v in d.items() if k == 0)),
        "origin_bytes": avg(lambda d: sum(v[1] for (k, _), v in d.items() if k == 0)),
        "stress": max(max((v[0] for v in d.values()), default=0) for d in rounds),
        "total_pkts": avg(lambda d: sum(v[0] for v in d.values())),
        "total_bytes": avg(lambda d: sum(v[1] for v in d.values())),
        "p50": pct(lat, 50), "p99": pct(lat, 99),
        "levels": {lv: (pct(v, 50), pct(v, 99), len(v)) for lv, v in sorted(lat_level.items())},
        "first": {lv: (pct(v, 50), pct(v, 99), len(v)) for lv, v in sorted(first_level.items())},
    }


def print_levels(res, what):
    for key, which in (("levels", "every contact's stanza"), ("first", "each server's first stanza")):
        print("latency by tree level (%s; %s; p50/p99 ms, samples):" % (what, which))
        prev = None
        for lv, (p50, p99, n) in res[key].items():
            extra = "" if prev is None else ", +%.1f / +%.1f ms over level %d" % (p50 - prev[0], p99 - prev[1], lv - 1)
            print("  level %d: %.1f / %.1f (%d)%s" % (lv, p50, p99, n, extra))
            prev = (p50, p99)


def row(name, mc, uc):
    keys = [("origin_pkts", "%.0f"), ("origin_bytes", "%.0f"), ("stress", "%d"), ("total_pkts", "%.0f"),
            ("total_bytes", "%.0f"), ("p50", "%.1f"), ("p99", "%.1f")]
    print("| %-26s | %-9s | %s |" % (name, "multicast", " | ".join(f % mc[k] for k, f in keys)))
    print("| %-26s | %-9s | %s |" % ("", "unicast", " | ".join(f % uc[k] for k, f in keys)))
    print("| %-26s | %-9s | %s |" % ("", "ratio", " | ".join(
        "%.3f" % (mc[k] / uc[k]) if uc[k] else "-" for k, _ in keys)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--servers", type=int, default=50)
    ap.add_argument("--contacts", type=int, default=1000)
    ap.add_argument("--fanout", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--depth-servers", type=int, default=15)
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)
    tmp = tempfile.mkdtemp(prefix="psycgate-bench-mcast-")
    print("loopback federation: %d psycgate processes (own PSYC host and XMPP domain each), fan-out %d, "
          "%d rounds per mode" % (args.servers, args.fanout, args.rounds))
    t = time.monotonic()
    mc = scenario_presence(binary, tmp, args, True)
    uc = scenario_presence(binary, tmp, args, False)
    print("| scenario                   | mode      | origin pkts | origin bytes | link stress | total pkts | "
          "total bytes | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    row("(a) presence, %d contacts / %d servers" % (args.contacts, args.servers - 1), mc, uc)
    print("| (b) message, 5000 occupants / 50 servers | - | not measured yet (places) |")
    print("| (c) join burst, 5000 occupants | - | not measured yet (places) |")
    print_levels(mc, "%d servers, fan-out %d" % (args.servers, args.fanout))
    # A deeper tree on fewer processes: the hop latency with less CPU
    # contention (2 cores for every gateway and the fake servers).
    deep = argparse.Namespace(servers=args.depth_servers, contacts=10 * (args.depth_servers - 1), fanout=2,
                              rounds=10)
    print_levels(scenario_presence(binary, tmp, deep, True), "%d servers, fan-out 2" % deep.servers)
    print("unicast p50/p99: %.1f / %.1f ms; bench took %.0f s" % (uc["p50"], uc["p99"], time.monotonic() - t))
    targets = [
        ("origin sends at most k=%d copies" % args.fanout, mc["origin_pkts"] <= args.fanout),
        ("every link carries exactly one copy", mc["stress"] == 1),
        ("total bytes <= 10%% of per-recipient (%.1f%%)" % (100.0 * mc["total_bytes"] / uc["total_bytes"]),
         mc["total_bytes"] <= 0.1 * uc["total_bytes"]),
    ]
    for what, ok in targets:
        print("target: %s: %s" % (what, "met" if ok else "NOT met"))
    return 0


if __name__ == "__main__":
    run_main(main)
