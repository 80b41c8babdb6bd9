#!/usr/bin/python3
"""Domain federation over PSYC (issue 6, bridge test 1; DESIGN.md §2.2).

Usage: test_federation.py PATH/TO/psycgate

  Prosody a.test (user alice) -- component b.test -- psycgate-A (host a.test)
        PSYC circuits (0.9), found by SRV _psyc._tcp.{a,b}.test
  Prosody b.test (user bob)   -- component a.test -- psycgate-B (host b.test)

Everything on 127.0.0.1 with free ports; DNS only from fakedns
(tests/dns/fakedns.py): a.test and b.test A 127.0.0.1 (PSYC host
authentication compares the peer's address with them), SRV _psyc._tcp.X ->
psycgate-X's PSYC port, and SRV _xmpp-server._tcp.X -> Prosody-X's s2s port,
so that Prosody COULD federate by S2S: both have s2s enabled (resolving
through fakedns), and the test checks that they never did (no
_xmpp-server query, no s2s session in either Prosody's log): every stanza
crossed as PSYC between the two psycgates.

Checks, with slixmpp clients alice@a.test and bob@b.test (natural JIDs):
  1. alice asks bob@b.test for a subscription; bob gets it from
     alice@a.test, approves it; alice gets `subscribed` from bob@b.test
     and bob's presence; bob subscribes back, alice approves, bob gets
     `subscribed` and alice's presence;
  2. presence with show, status and priority crosses both ways; broadcasts
     cross as one context multicast per host (issue 7 presence offload):
     with bob and carol@b.test both subscribed to alice, psycgate-A sends
     ONE packet for her presence change and psycgate-B fans it out to two;
  3. chat messages cross both ways with their natural JIDs and type chat;
     `/me waves` arrives as `/me waves`;
  4. each psycgate logged the hop (XMPP -> PSYC at one, PSYC -> XMPP at the
     other);
  5. (soft: recorded, the test goes on, fails at the end) a chat state
     alone (<composing/>), types normal and headline, an error from
     Prosody a.test (service-unavailable for nobody@a.test) back to bob,
     a presence probe (bob logs in again and sees alice's current
     presence), and at the end unsubscribed + unsubscribe;
  6. a second session of alice comes and goes: bob sees it unavailable;
  7. both psycgates stop on SIGTERM with exit 0 (LSan under ASan).
Exit 0 = pass; a missing Prosody or slixmpp is a failure, not a skip.
"""
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bridgetest import (IP, Fail, Federation, Psycgate, RosterClient, assert_no_s2s, bare,  # noqa: E402
                        check, close_loop, deadline, soft, wait_line)

A, B = "a.test", "b.test"
SECRET = "federation-secret"
ALICE, BOB = "alice@" + A, "bob@" + B
UA, UB = "psyc://a.test/~alice", "psyc://b.test/~bob"


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    binary = os.path.abspath(sys.argv[1])
    try:
        import slixmpp  # noqa: F401
    except ImportError:
        print("FAIL: python3-slixmpp is not installed (run scripts/install-deps)")
        return 1
    deadline(200)  # below the ctest TIMEOUT (240): cleanup must still run
    tmp = tempfile.mkdtemp(prefix="psycgate-bridge-fed-")
    ok = False
    problems = []
    try:
        with contextlib.ExitStack() as st:
            fed = Federation(st, tmp, SECRET, users_a={"alice": "alicepw"},
                             users_b={"bob": "bobpw", "carol": "carolpw"}, a=A, b=B, s2s=True)
            dns, pa, pb = fed.dns, fed.pa, fed.pb
            print("ok - Prosody a.test (c2s %d, component b.test on %d), b.test (c2s %d, component a.test on %d)"
                  % (pa.c2s_port, pa.comp_port, pb.c2s_port, pb.comp_port))
            ga = st.enter_context(Psycgate(tmp, binary, fed.config_a(), name="psycgate-a"))
            gb = st.enter_context(Psycgate(tmp, binary, fed.config_b(), name="psycgate-b"))
            ga.wait_log(r"component b\.test linked to 127\.0\.0\.1:%d" % pa.comp_port, 15)
            gb.wait_log(r"component a\.test linked to 127\.0\.0\.1:%d" % pb.comp_port, 15)
            print("ok - psycgate-A serves b.test at Prosody a.test, psycgate-B serves a.test at Prosody b.test")

            alice = RosterClient(ALICE, "alicepw", IP, pa.c2s_port)
            bob = RosterClient(BOB, "bobpw", IP, pb.c2s_port)
            alice.connect(20)
            bob.connect(20)
            clients = [bob]
            print("ok - alice@a.test and bob@b.test online (rosters fetched)")

            # 1. subscriptions, both ways
            alice.subscribe(BOB)
            r = bob.wait_presence(lambda p: p["type"] == "subscribe" and bare(p["from"]) == ALICE,
                                  "subscribe from alice@a.test", 30)
            print("ok - bob got <presence type='subscribe'/> from %s" % r["from"])
            wait_line(ga, ["<presence/> from " + ALICE, "-> _request_friendship to " + UB],
                      "psycgate-A: alice's subscribe to PSYC")
            wait_line(gb, ["_request_friendship from %s to %s -> <presence/>" % (UA, UB)],
                      "psycgate-B: alice's subscribe to XMPP")
            bob.approve(ALICE)
            r = alice.wait_presence(lambda p: p["type"] == "subscribed" and bare(p["from"]) == BOB,
                                    "subscribed from bob@b.test", 30)
            print("ok - alice got <presence type='subscribed'/> from %s" % r["from"])
            wait_line(gb, ["<presence/> from " + BOB, "-> _notice_friendship_established to " + UA],
                      "psycgate-B: bob's subscribed to PSYC")
            r = alice.wait_presence(lambda p: p["type"] == "available" and bare(p["from"]) == BOB,
                                    "available from bob@b.test (after the approval)", 30)
            print("ok - alice sees bob's presence: %s" % r["from"])
            bob.subscribe(ALICE)
            alice.wait_presence(lambda p: p["type"] == "subscribe" and bare(p["from"]) == BOB,
                                "subscribe from bob@b.test", 30)
            alice.approve(BOB)
            bob.wait_presence(lambda p: p["type"] == "subscribed" and bare(p["from"]) == ALICE,
                              "subscribed from alice@a.test", 30)
            r = bob.wait_presence(lambda p: p["type"] == "available" and bare(p["from"]) == ALICE,
                                  "available from alice@a.test", 30)
            print("ok - mutual subscription; bob sees alice's presence: %s" % r["from"])

            # 2. presence with show, status, priority
            alice.presence(show="away", status="out for lunch", priority=5)
            r = bob.wait_presence(lambda p: bare(p["from"]) == ALICE and p["show"] == "away"
                                  and p["status"] == "out for lunch", "away/'out for lunch' from alice", 30)
            check(r["priority"] == 5, "alice's priority arrived as %r (sent 5)" % r["priority"])
            print("ok - bob sees alice away, 'out for lunch', priority 5 (from %s)" % r["from"])
            bob.presence(show="dnd", status="busy coding")
            r = alice.wait_presence(lambda p: bare(p["from"]) == BOB and p["show"] == "dnd"
                                    and p["status"] == "busy coding", "dnd/'busy coding' from bob", 30)
            print("ok - alice sees bob dnd, 'busy coding' (from %s)" % r["from"])
            # broadcasts cross as one context multicast per host (issue 7),
            # fanned out by the receiving gateway to its subscribers
            wait_line(ga, ["presence of " + ALICE, "-> one _notice_presence_away multicast to psyc://b.test/"],
                      "psycgate-A: alice's away presence to PSYC")
            wait_line(gb, ["presence of " + BOB, "-> one _notice_presence_here_busy multicast to psyc://a.test/"],
                      "psycgate-B: bob's dnd presence to PSYC")

            # 2b. presence offload (issue 7): with two subscribers on b.test,
            #     Prosody a.test sends two copies of alice's broadcast;
            #     psycgate-A sends ONE multicast, psycgate-B fans out two.
            carol = RosterClient("carol@" + B, "carolpw", IP, pb.c2s_port)
            carol.connect(20)
            clients.append(carol)
            carol.subscribe(ALICE)
            alice.wait_presence(lambda p: p["type"] == "subscribe" and bare(p["from"]) == "carol@" + B,
                                "subscribe from carol@b.test", 30)
            alice.approve("carol@" + B)
            carol.wait_presence(lambda p: p["type"] == "subscribed" and bare(p["from"]) == ALICE,
                                "subscribed from alice", 30)
            alice.presence(show="chat", status="back from lunch")
            for who in (bob, carol):
                who.wait_presence(lambda p: bare(p["from"]) == ALICE and p["show"] == "chat"
                                  and p["status"] == "back from lunch", "alice chat 'back from lunch'", 30)
            la = wait_line(ga, ["presence of " + ALICE, "-> one _notice_presence_here_talkative multicast to "
                                "psyc://b.test/ for 2 subscribers"], "psycgate-A: one multicast for 2", 10)
            lb = wait_line(gb, ["_notice_presence_here_talkative multicast of " + ALICE, "-> 2 stanzas"],
                           "psycgate-B: fan-out to 2", 10)
            print("ok - alice's presence to bob and carol crossed as ONE packet: %s | %s"
                  % (la.split(" bridge - ")[-1], lb.split(" bridge ")[-1]))

            # 3. chat both ways, /me
            alice.send(BOB, "hello bob, from a.test")
            r = bob.wait_message(r"^hello bob, from a\.test$", 30)
            check(bare(r.frm) == ALICE and r.type == "chat", "bob got %r from %s type %s" % (str(r), r.frm, r.type))
            print("ok - bob got %r from %s (type %s)" % (str(r), r.frm, r.type))
            bob.send(ALICE, "hi alice, from b.test")
            r = alice.wait_message(r"^hi alice, from b\.test$", 30)
            check(bare(r.frm) == BOB and r.type == "chat", "alice got %r from %s type %s" % (str(r), r.frm, r.type))
            print("ok - alice got %r from %s (type %s)" % (str(r), r.frm, r.type))
            alice.send_me(BOB, "waves")
            r = bob.wait_message(r"waves", 30)
            check(str(r) == "/me waves" and bare(r.frm) == ALICE, "the /me arrived as %r from %s" % (str(r), r.frm))
            print("ok - alice's '/me waves' arrived as %r" % str(r))

            # 4. every hop logged (gateway/bridge.c: "<message/> from JID to JID -> METHOD to
            #    UNIFORM" toward PSYC, "METHOD from UNIFORM to UNIFORM -> <message/> from ..." back)
            for g, what, needles in (
                    (ga, "alice's chat to PSYC", ["<message/> from " + ALICE, "to " + BOB,
                                                  "-> _message_private to " + UB]),
                    (gb, "alice's chat to XMPP", ["_message_private from %s to %s -> <message/> from %s"
                                                  % (UA, UB, ALICE)]),
                    (gb, "bob's chat to PSYC", ["<message/> from " + BOB, "to " + ALICE,
                                                "-> _message_private to " + UA]),
                    (ga, "bob's chat to XMPP", ["_message_private from %s to %s -> <message/> from %s"
                                                % (UB, UA, BOB)])):
                line = wait_line(g, needles, "%s: %s" % (g.name, what), 5)
                print("ok - %s logged %s: %s" % (g.name, what, line.strip()))

            # 5. more of the translation, checked softly (each failure is
            #    recorded, the test goes on and fails at the end)
            def chatstate():
                alice.send_chatstate(BOB, "composing")
                return "bob got <composing/> from %s" % bob.wait_chatstate(ALICE, "composing", 20)
            soft(problems, "chat state alice -> bob", chatstate)

            def typed(mtype):
                def go():
                    alice.send(BOB, "a %s message" % mtype, mtype=mtype)
                    r = bob.wait_message(r"^a %s message$" % mtype, 20)
                    check(r.type == mtype and bare(r.frm) == ALICE,
                          "arrived as type %r from %s" % (r.type, r.frm))
                    return "bob got type %s from %s" % (r.type, r.frm)
                return go
            soft(problems, "type normal alice -> bob", typed("normal"))
            soft(problems, "type headline alice -> bob", typed("headline"))

            def error_roundtrip():
                # Prosody a.test refuses a message to nobody@a.test; its error
                # crosses PSYC back to bob
                bob.send("nobody@" + A, "anyone there?")
                r = bob.wait_message(None, 20, accept_errors=True)
                check(r.type == "error" and str(r) == "service-unavailable" and bare(r.frm) == "nobody@" + A,
                      "bob got %s %r from %s (expected <service-unavailable/> from nobody@a.test)"
                      % (r.type, str(r), r.frm))
                wait_line(ga, ["<message/> from nobody@" + A, "-> _failure_unavailable_service to " + UB],
                          "psycgate-A: Prosody's error to PSYC", 5)
                return "bob got <%s/> from %s" % (r, r.frm)
            soft(problems, "error nobody@a.test -> bob", error_roundtrip)

            def probe():
                # bob logs in again: Prosody b.test probes alice (a PSYC
                # _request_status_person), Prosody a.test answers with her
                # current presence (chat, 'back from lunch')
                bob.disconnect()
                bob2 = RosterClient(BOB + "/again", "bobpw", IP, pb.c2s_port)
                clients.append(bob2)
                bob2.connect(20)
                r = bob2.wait_presence(lambda p: bare(p["from"]) == ALICE and p["show"] == "chat"
                                       and p["status"] == "back from lunch", "alice's presence after a probe", 20)
                wait_line(gb, ["<presence/> from " + BOB, "-> _request_status_person to " + UA],
                          "psycgate-B: bob's probe to PSYC", 5)
                wait_line(ga, ["_request_status_person from %s to %s -> <presence/>" % (UB, UA)],
                          "psycgate-A: bob's probe to XMPP", 5)
                return "bob's new session sees alice chatty (%s)" % r["from"]
            soft(problems, "presence probe b.test -> alice", probe)

            bob = clients[-1]

            # 6. unavailable: a second session of alice logs in and out
            n = len(bob.presences)
            alice2 = RosterClient(ALICE + "/two", "alicepw", IP, pa.c2s_port)
            alice2.connect(20)
            bob.wait_presence(lambda p: p["from"] == ALICE + "/two" and p["type"] != "unavailable",
                              "available from alice@a.test/two", 20, since=n)
            alice2.disconnect()
            r = bob.wait_presence(lambda p: p["from"] == ALICE + "/two" and p["type"] == "unavailable",
                                  "unavailable from alice@a.test/two (after its logout)", 20, since=n)
            print("ok - bob sees alice's second session come and go (%s unavailable)" % r["from"])
            wait_line(ga, ["presence of %s/two" % ALICE, "-> one _notice_presence_absent multicast to psyc://b.test/"],
                      "psycgate-A: alice's unavailable to PSYC", 5)

            # 7. ending the subscriptions: alice cancels bob's subscription
            #    (unsubscribed), then drops her own (unsubscribe)
            def unsubscribe():
                n = len(bob.presences)
                alice.cancel(BOB)
                bob.wait_presence(lambda p: p["type"] == "unsubscribed" and bare(p["from"]) == ALICE,
                                  "unsubscribed from alice", 20, since=n)
                wait_line(ga, ["<presence/> from " + ALICE, "-> _notice_friendship_removed to " + UB],
                          "psycgate-A: alice's unsubscribed to PSYC", 5)
                alice.unsubscribe(BOB)
                bob.wait_presence(lambda p: p["type"] == "unsubscribe" and bare(p["from"]) == ALICE,
                                  "unsubscribe from alice", 20, since=n)
                wait_line(ga, ["<presence/> from " + ALICE, "-> _notice_friendship_removed_request to " + UB],
                          "psycgate-A: alice's unsubscribe to PSYC", 5)
                return "bob got unsubscribed, then unsubscribe, from alice@a.test"
            soft(problems, "unsubscribed / unsubscribe alice -> bob", unsubscribe)
            alice.disconnect()
            bob.disconnect()

            # never S2S between the Prosodys
            assert_no_s2s(dns, pa, pb)
            n = [x for x in dns.queries() if "_psyc._tcp." in x]
            check(n, "no _psyc._tcp query in the fakedns log: the psycgates did not find each other by DNS")
            print("ok - no S2S between the Prosodys (no _xmpp-server query, no s2s session); PSYC lookups: %d"
                  % len(n))

            ga.stop(20)
            gb.stop(20)
            print("ok - both psycgates stopped cleanly on SIGTERM (exit 0)")
            check(not problems, "; ".join(problems))
            ok = True
    except (Fail, subprocess.SubprocessError, OSError) as e:
        print("FAIL: %s" % e)
    finally:
        close_loop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS bridge domain federation" if ok else "FAIL bridge domain federation")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
