#!/usr/bin/python3
"""Context multicast trees in a loopback federation (issue 7).

Usage: test_federation.py PATH/TO/psycgate [N [SYNTAX]]

N (default 10) psycgate processes speaking PSYC SYNTAX (1.0 or 0.9; default
1.0) to each other, each its own PSYC host gK.test and XMPP
domain (tests/mcast/mcastfed.py: fake XEP-0114 servers, FakeDNS), fan-out
2 so the presence context of alice@g0.test has relays two levels deep.
9 contacts on each of g1..g(N-1) subscribe to alice (through the
gateways, so the stores hold the subscriptions).

  1. a warm-up presence reaches every contact; once the circuits know
     each other as psycgates (acknowledged delivery), the master builds
     the tree: every route gets an assignment, some relay for others;
  2. a burst of 20 presence changes: every contact receives each exactly
     once and in the order alice sent them;
  3. a burst of 40 changes during which a relay with children is killed
     (SIGKILL) after the 10th: every contact on the other servers still
     receives all 40 exactly once and in order (those below the relay are
     re-parented, the changes the relay swallowed are resent by the master
     on their `_counter` gap), the master logs the repair;
  4. the relay is restarted: the master takes it back into the tree once
     its circuit is up again, and a burst of 10 changes reaches every
     contact on all servers once and in order;
  5. every gateway stops on SIGTERM with exit 0.
Exit 0 = pass.
"""
import contextlib
import os
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mcastfed import Fail, Federation, check, host, run_main  # noqa: E402
from xmpptest import deadline  # noqa: E402


def expect_all(fed, servers, statuses, what, timeout):
    """Each contact on `servers` gets exactly `statuses`, in order."""
    end = time.monotonic() + timeout
    want = [c for c in fed.contacts if c[1] in servers]
    while True:
        bad = []
        for k in servers:
            got = fed.received(k, statuses[0][0])
            for c in (c for c in want if c[1] == k):
                seq = [s for _, s in got.get(fed.jid(c), [])]
                if seq != statuses:
                    bad.append((fed.jid(c), seq))
        if not bad:
            print("ok - %s: %d contacts on %d servers got all %d changes once, in order"
                  % (what, len(want), len(servers), len(statuses)))
            return
        if time.monotonic() > end:
            for jid, seq in bad[:5]:
                print("# %s got %s" % (jid, seq))
            raise Fail("%s: %d contacts did not get %d changes exactly once in order" % (what, len(bad), len(statuses)))
        time.sleep(0.1)


def burst(fed, prefix, count, gap, actions=None):
    statuses = ["%s%d" % (prefix, i) for i in range(1, count + 1)]
    for i, s in enumerate(statuses, 1):
        fed.presence(s)
        if actions and i in actions:
            actions[i]()
        time.sleep(gap)
    return statuses


def main():
    if len(sys.argv) not in (2, 3, 4):
        print(__doc__)
        return 2
    binary = os.path.abspath(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) >= 3 else 10
    syntax = sys.argv[3] if len(sys.argv) == 4 else "1.0"
    deadline(160)  # below the ctest TIMEOUT (180)
    tmp = tempfile.mkdtemp(prefix="psycgate-mcast-")
    with contextlib.ExitStack() as st:
        fed = Federation(tmp, binary, n, contacts=9 * (n - 1), fanout=2, syntax=syntax,
                         log_level=os.environ.get("MCAST_LOG_LEVEL", "info"))
        st.callback(fed.close)
        fed.start()
        print("ok - %d gateways up, each with its fake XMPP server and component links" % n)
        fed.subscribe_all()
        print("ok - %d contacts on %d servers subscribed to alice@%s" % (len(fed.contacts), n - 1, host(0)))
        servers = list(range(1, n))

        # 1. warm-up, then the tree
        fed.presence("w1")
        expect_all(fed, servers, ["w1"], "warm-up", 30)
        end = time.monotonic() + 20
        while True:
            tree = fed.tree()
            relays = [k for k, (parent, kids) in tree.items() if kids > 0]
            if len(tree) == n - 1 and relays:
                break
            check(time.monotonic() < end, "no tree after 20 s: assignments %s" % tree)
            time.sleep(0.1)
        below = [k for k, (parent, kids) in tree.items() if parent != "psyc://%s/" % host(0)]
        print("ok - tree: %d routes assigned, relays %s, %d servers below a relay"
              % (len(tree), ["g%d" % k for k in relays], len(below)))
        check(below, "fan-out 2 with %d routes must put some below a relay" % (n - 1))

        # 2. a burst through the tree
        st2 = burst(fed, "a", 20, 0.1)
        expect_all(fed, servers, st2, "burst through the tree", 30)

        # 3. a relay killed during a burst
        top = [k for k in relays if tree[k][0] == "psyc://%s/" % host(0)]
        victim = top[0] if top else relays[0]

        def freeze():
            # Stopped first: what the master writes to it meanwhile sits
            # unread in its socket and dies with it (the swallowed packets).
            fed.gws[victim].killed = True
            os.kill(fed.gws[victim].proc.pid, signal.SIGSTOP)

        def kill():
            fed.gws[victim].kill()
            print("ok - relay g%d (%d children) stopped after change 10, killed after 20 (SIGKILL)"
                  % (victim, tree[victim][1]))

        st3 = burst(fed, "b", 40, 0.03, {10: freeze, 20: kill})
        rest = [k for k in servers if k != victim]
        expect_all(fed, rest, st3, "burst with a relay killed", 40)
        fed.gws[0].wait_log(r"link lost: routed around it", 10)
        resent = sum(g.count(r"resent [1-9]\d* packets") for g in fed.gws[:1])
        gaps = sum(g.count(r"gap: asking the master") for g in fed.gws[1:] if g.alive())
        print("ok - the master routed around g%d; %d gap requests, %d resends" % (victim, gaps, resent))

        # 4. the relay comes back: it is a route again (its queued copies
        # arrive when psyc_out reconnects, with backoff) and relays again
        g = fed.gws[victim]
        g.start()
        g.killed = False
        fed.gws[0].wait_log(r"psyc://%s/ psycgate reachable: relays again" % host(victim), 60)
        print("ok - g%d restarted; the master put it back into the tree" % victim)
        st4 = burst(fed, "c", 10, 0.03)
        expect_all(fed, servers, st4, "burst after the restart", 40)

        fed.stop_all()
        print("ok - %d gateways stopped cleanly on SIGTERM (exit 0)" % n)
    print("PASS mcast federation")
    return 0


if __name__ == "__main__":
    run_main(main)
