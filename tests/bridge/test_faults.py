#!/usr/bin/python3
"""Delivery when the far gateway is away (issue 6, bridge test 4, first part).

Usage: test_faults.py PATH/TO/psycgate

The domain federation of test_federation.py (Prosody a.test + psycgate-A
serving b.test, Prosody b.test + psycgate-B serving a.test, PSYC between the
psycgates, DNS from fakedns), with psycgate-A's `[psyc] give_up = 8`:
  1. psycgate-B is stopped; alice sends three chat messages to bob@b.test:
     psycgate-A queues them (logged), retrying with backoff;
  2. psycgate-B starts again: bob receives the three, in order, once each;
  3. an iq crosses whole: alice's software-version query to bob's client
     (bob@b.test/test, XEP-0092) is answered by it through both psycgates;
  4. psycgate-B is stopped again and stays down: an iq to bob@b.test gets
     <remote-server-timeout/> after psycgate-A's [bridge] iq_timeout (2 s);
     alice's next message comes
     back after the give-up time as an error from bob@b.test with
     <recipient-unavailable/> (PSYC _failure_unsuccessful_delivery), to the
     resource that sent it (matched by the message id);
  5. every psycgate stops on SIGTERM with exit 0 (LSan under ASan).
  2b. with B down again, two messages wait at A; A is killed with SIGKILL
     and started again: it resumes them from its store, and when B is back
     bob gets both, in order.
Not here yet: a burst of 1000 with exactly-once delivery across the crash
of the receiving gateway (needs acknowledgements between gateways).
Exit 0 = pass.
"""
import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bridgetest import (Federation, IP, Psycgate, RosterClient, check, iq_get, run, scenario,  # noqa: E402
                        wait_line)

A, B = "a.test", "b.test"
SECRET = "faults-secret"
ALICE, BOB = "alice@" + A, "bob@" + B


def send_with_id(client, to, body, mid):
    m = client.c.make_message(mto=to, mbody=body, mtype="chat")
    m["id"] = mid
    m.send()
    run(asyncio.sleep(0.2), 5)  # let slixmpp's loop write it


def scenario_body(st, tmp, binary):
    fed = Federation(st, tmp, SECRET, users_a={"alice": "alicepw"}, users_b={"bob": "bobpw"}, a=A, b=B)
    pa, pb = fed.pa, fed.pb
    cfg_b = fed.config_b()
    cfg_a = fed.config_a(extra="[bridge]\niq_timeout = 2\n").replace(
        "[psyc]\nlisten", "[psyc]\ngive_up = 8\nlisten")
    ga = st.enter_context(Psycgate(tmp, binary, cfg_a, name="psycgate-a"))
    ga.wait_log(r"component b\.test linked", 15)
    alice = RosterClient(ALICE, "alicepw", IP, pa.c2s_port)
    bob = RosterClient(BOB, "bobpw", IP, pb.c2s_port)
    bob.c.register_plugin("xep_0092", {"name": "bobclient", "version": "4.2"})
    alice.connect(20)
    bob.connect(20)

    # 1. B is down (not started yet): messages wait at A.
    for i in (1, 2, 3):
        send_with_id(alice, BOB, "queued %d" % i, "q%d" % i)
    wait_line(ga, ["psyc", "b.test", "packets wait, retrying in"], "psycgate-A queueing for b.test", 20)
    print("ok - psycgate-B is down: psycgate-A queues alice's messages and retries")

    # 2. B comes up: the three arrive in order, once each.
    gb = st.enter_context(Psycgate(tmp, binary, cfg_b, name="psycgate-b"))
    gb.wait_log(r"component a\.test linked", 15)
    got = [str(bob.wait_message(r"^queued \d$", 30)) for _ in range(3)]
    check(got == ["queued 1", "queued 2", "queued 3"], "bob got %r" % got)
    print("ok - psycgate-B back: bob got %r in order" % got)

    # 2b. What waits survives a crash of the sending gateway: B down,
    # two messages wait at A (in the store), A is killed with SIGKILL
    # and started again; when B is back, bob gets both, in order.
    gb.stop()
    for i in (1, 2):
        send_with_id(alice, BOB, "kept %d" % i, "k%d" % i)
    n = ga.count(r"packets wait, retrying in")
    ga.wait_log(r"2 packets wait, retrying in", 20, count=1)
    ga.kill()
    ga = st.enter_context(Psycgate(tmp, binary, cfg_a, name="psycgate-a2"))
    ga.wait_log(r"component b\.test linked", 15)
    ga.wait_log(r"resuming 2 packets kept in the store", 15)
    gb = st.enter_context(Psycgate(tmp, binary, cfg_b, name="psycgate-b2"))
    gb.wait_log(r"component a\.test linked", 15)
    got = [str(bob.wait_message(r"^kept \d$", 30)) for _ in range(2)]
    check(got == ["kept 1", "kept 2"], "after the crash bob got %r" % got)
    print("ok - psycgate-A killed with SIGKILL while 2 messages waited; restarted, it resumed them "
          "from the store and bob got %r in order (%d retries logged before)" % (got, n))

    # 3. An iq crosses whole and bob's client answers it.
    kind, r = iq_get(alice, BOB + "/test", "jabber:iq:version")
    check(kind == "result", "version query to bob@b.test/test: %s" % kind)
    name = r.xml.find(".//{jabber:iq:version}name")
    check(name is not None and name.text == "bobclient", "bob's version answer: %s" % r)
    check(str(r["from"]) == BOB + "/test", "the answer came from %s" % r["from"])
    print("ok - XEP-0092 query to bob@b.test/test answered by bob's client ('%s') via PSYC"
          % name.text)

    # 4. B goes down for good: an iq times out, a message is given up.
    gb.stop()
    time.sleep(0.5)
    t0 = time.monotonic()
    kind, r = iq_get(alice, BOB, "jabber:iq:version")
    check(kind == "error:remote-server-timeout", "version iq with psycgate-B down: %s" % kind)
    check(time.monotonic() - t0 >= 1.5, "the timeout came too early")
    print("ok - iq to bob@b.test while psycgate-B is down: <remote-server-timeout/> after %.1f s"
          % (time.monotonic() - t0))
    time.sleep(0.5)
    t0 = time.monotonic()
    send_with_id(alice, BOB, "doomed", "d1")
    r = alice.wait_message(timeout=40, accept_errors=True)
    waited = time.monotonic() - t0
    check(r.type == "error", "alice got a %s message %r instead of an error" % (r.type, str(r)))
    check(str(r) == "recipient-unavailable", "the error is <%s/>, not <recipient-unavailable/>" % r)
    check(r.frm.split("/")[0] == BOB, "the error came from %s, not bob@b.test" % r.frm)
    check(str(r.stanza["id"]) == "d1", "the error's id is %r, not d1" % str(r.stanza["id"]))
    check(waited >= 7.5, "the bounce came after %.1f s, before give_up (8 s)" % waited)
    line = wait_line(ga, ["giving up on _message_private after"], "psycgate-A's give-up", 5)
    print("ok - after %.1f s alice got <recipient-unavailable/> from %s for message d1 (%s)"
          % (waited, r.frm, line.split(" psyc ")[-1]))
    print("ok - no bounce went to a bare JID: %s" % (ga.count(r"the bounce has no XMPP sender") == 0))
    alice.disconnect()
    bob.disconnect()
    ga.stop()
    print("ok - psycgates stopped cleanly on SIGTERM (exit 0)")


def main():
    return scenario(__doc__, "bridge faults", "psycgate-bridge-faults-", 200, scenario_body)


if __name__ == "__main__":
    sys.exit(main())
