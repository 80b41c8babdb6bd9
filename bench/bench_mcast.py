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
over N-1 servers. (b) one message in a room (a place on gateway 0, joined
as a MUC room) with O occupants (--occupants or MCAST_OCCUPANTS, default
2000) spread over N-1 servers, and (c) the join burst of those occupants;
the baseline sends each cast once per member (as an XMPP MUC does).
"""
import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "mcast"))
from mcastfed import Fail, Federation, check, host, run_main  # noqa: E402


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


def wait_for(pred, what, timeout, fed):
    end = time.monotonic() + timeout
    while not pred():
        for k, g in enumerate(fed.gws):
            check(g.alive(), "gw%d died:\n%s" % (k, g.log_text()[-2000:]))
        check(time.monotonic() < end, "timed out after %d s: %s" % (timeout, what))
        time.sleep(0.1)


def counts(d):
    return {
        "origin_pkts": sum(v[0] for (k, _), v in d.items() if k == 0),
        "origin_bytes": sum(v[1] for (k, _), v in d.items() if k == 0),
        "stress": max((v[0] for v in d.values()), default=0),
        "total_pkts": sum(v[0] for v in d.values()),
        "total_bytes": sum(v[1] for v in d.values()),
    }


def scenario_room(binary, tmp, args, enabled):
    """(c) the join burst of O occupants into psyc://g0.test/@room (as the
    MUC room *room@g0.test) from N-1 servers, then (b) one message there.
    Counts: what every gateway sent for it (casts, copies, the joiners'
    echo/subject unicasts); latency: injection to the self-presence (c),
    to the groupchat at each occupant (b)."""
    fed = Federation(tmp, binary, args.servers, 0, fanout=args.fanout, enabled=enabled,
                     name="room-%s-%d" % ("mc" if enabled else "uc", args.servers))
    per = max(1, args.occupants // (args.servers - 1))
    occ = fed.occupants(per)
    out = {}
    with contextlib.ExitStack() as st:
        st.callback(fed.close)
        fed.start()
        # warm-up: one occupant per server opens the circuits (and, with
        # trees, makes every route a settled relay)
        first = [o for o in occ if o[0].startswith("o0@")]
        rest = [o for o in occ if not o[0].startswith("o0@")]
        fed.join(first)
        wait_for(lambda: len(fed.joined(first)) == len(first), "the warm-up joins", 120, fed)
        fed.groupchat(first[0], "warm")
        wait_for(lambda: len(fed.heard("warm")) == len(first), "the warm-up message", 60, fed)
        time.sleep(1.5)  # young routes join the tree (gateway/mcast_ctx.c MCX_YOUNG_MS)
        before = fed.metrics()
        t0 = fed.join(rest)
        wait_for(lambda: len(fed.joined(rest)) == len(rest), "%d joins" % len(rest), 600, fed)
        got = fed.joined(rest)
        time.sleep(0.5)
        c = counts(diff(before, fed.metrics()))
        c["p50"] = pct([(t - t0) * 1000.0 for t in got.values()], 50)
        c["p99"] = pct([(t - t0) * 1000.0 for t in got.values()], 99)
        c["joins"] = len(rest)
        c["stress"] = c["stress"] / float(len(rest))  # per join: the burst is one cast and the joiner's unicasts each
        out["c"] = c
        # (b) one message to everyone in the room
        time.sleep(1.0)
        before = fed.metrics()
        t0 = fed.groupchat(first[0], "measured")
        wait_for(lambda: len(fed.heard("measured")) >= len(occ), "the message at %d occupants" % len(occ), 300, fed)
        got = fed.heard("measured")
        time.sleep(0.5)
        b = counts(diff(before, fed.metrics()))
        b["p50"] = pct([(t - t0) * 1000.0 for t in got.values()], 50)
        b["p99"] = pct([(t - t0) * 1000.0 for t in got.values()], 99)
        out["b"] = b
        fed.stop_all()
    out["occupants"] = len(occ)
    return out


def print_levels(res, what):
    for key, which in (("levels", "every contact's stanza"), ("first", "each server's first stanza")):
        print("latency by tree level (%s; %s; p50/p99 ms, samples):" % (what, which))
        prev = None
        for lv, (p50, p99, n) in res[key].items():
            extra = "" if prev is None else ", +%.1f / +%.1f ms over level %d" % (p50 - prev[0], p99 - prev[1], lv - 1)
            print("  level %d: %.1f / %.1f (%d)%s" % (lv, p50, p99, n, extra))
            prev = (p50, p99)


def row(name, mc, uc):
    keys = [("origin_pkts", "%.0f"), ("origin_bytes", "%.0f"), ("stress", "%.3g"), ("total_pkts", "%.0f"),
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
    ap.add_argument("--occupants", type=int, default=int(os.environ.get("MCAST_OCCUPANTS", "2000")))
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
    rmc = scenario_room(binary, tmp, args, True)
    ruc = scenario_room(binary, tmp, args, False)
    row("(b) message, %d occupants / %d servers" % (rmc["occupants"], args.servers - 1), rmc["b"], ruc["b"])
    row("(c) join burst, %d joins" % rmc["c"]["joins"], rmc["c"], ruc["c"])
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
