#!/usr/bin/python3
"""Transport mode meets natural mode (issue 6, bridge scenario 1).

Usage: test_transport.py PATH/TO/psycgate

  Prosody xmpp.test (alice) -- component psyc.xmpp.test -- psycgate-1
        (PSYC host gw1.test, [bridge] transport = psyc.xmpp.test)
            PSYC circuits, found by SRV _psyc._tcp
  Prosody b.test (bob)      -- component gw1.test       -- psycgate-2
        (PSYC host b.test, natural addresses)

For alice, bob is the PSYC person psyc://b.test/~bob, written
bob%b.test@psyc.xmpp.test; for bob, alice is psyc://gw1.test/~alice@xmpp.test,
written alice\\40xmpp.test@gw1.test (README "Addresses"). Checks: alice adds
bob and bob approves; both subscribe; presence with show and status crosses
both ways; messages and /me cross both ways; a XEP-0184 receipt crosses as a
PSYC delivery echo; alice's vCard query to bob's
account is answered by Prosody b.test and her software-version query to
bob's client by the client; both psycgates stop with exit 0. Everything on
127.0.0.1 with free ports; DNS only from fakedns. Exit 0 = pass.
"""
import asyncio
import contextlib
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bridgetest import (IP, Fail, FakeDNS, Prosody, Psycgate, RosterClient, bare, check,  # noqa: E402
                        close_loop, deadline, free_ports, iq_get, psycgate_config, run, wait_line)

X, B = "xmpp.test", "b.test"
T, G1 = "psyc.xmpp.test", "gw1.test"
SECRET = "transport-secret"
ALICE, BOB = "alice@" + X, "bob@" + B
BOB_AT_T = "bob%b.test@" + T                 # bob as alice sees him
ALICE_AT_G1 = "alice\\40xmpp.test@" + G1     # alice as bob sees her


def set_vcard(client, fn, timeout=15):
    async def go():
        import xml.etree.ElementTree as ET
        iq = client.c.make_iq_set()
        v = ET.Element("{vcard-temp}vCard")
        ET.SubElement(v, "{vcard-temp}FN").text = fn
        iq.append(v)
        return str((await iq.send(timeout=timeout))["type"])
    return run(go(), timeout + 5)


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    binary = os.path.abspath(sys.argv[1])
    deadline(200)
    tmp = tempfile.mkdtemp(prefix="psycgate-bridge-transport-")
    ok = False
    try:
        with contextlib.ExitStack() as st:
            p1, p2 = free_ports(2, IP)
            dns = st.enter_context(FakeDNS(
                tmp, a={G1: IP, B: IP},
                srv={"_psyc._tcp." + G1: ["%s:%d" % (G1, p1)], "_psyc._tcp." + B: ["%s:%d" % (B, p2)]}))
            px = st.enter_context(Prosody(tmp, domain=X, users={"alice": "alicepw"}, component=(T, SECRET),
                                          name="prosody-x"))
            # vcard-temp answered by Prosody b.test for bob's account (XEP-0054)
            pb = st.enter_context(Prosody(tmp, domain=B, users={"bob": "bobpw"}, component=(G1, SECRET),
                                          extra_config='VirtualHost "b.test"\n    modules_enabled = { "roster"; '
                                                       '"saslauth"; "tls"; "disco"; "ping"; "vcard"; }\n',
                                          name="prosody-b"))
            px.start()
            pb.start()
            g1 = st.enter_context(Psycgate(tmp, binary, psycgate_config(
                G1, os.path.join(tmp, "state-1"), p1, dns_port=dns.port, component=T, comp_port=px.comp_port,
                secret=SECRET, transport=T), name="psycgate-1"))
            g2 = st.enter_context(Psycgate(tmp, binary, psycgate_config(
                B, os.path.join(tmp, "state-2"), p2, dns_port=dns.port, component=G1, comp_port=pb.comp_port,
                secret=SECRET), name="psycgate-2"))
            g1.wait_log(r"component psyc\.xmpp\.test linked", 15)
            g2.wait_log(r"component gw1\.test linked", 15)
            print("ok - psycgate-1 (transport %s) and psycgate-2 (natural, b.test) linked" % T)

            alice = RosterClient(ALICE, "alicepw", IP, px.c2s_port)
            bob = RosterClient(BOB, "bobpw", IP, pb.c2s_port)
            bob.c.register_plugin("xep_0092", {"name": "bobclient", "version": "4.2"})
            bob.c.register_plugin("xep_0184")    # acknowledges receipt requests (auto_ack)
            alice.c.register_plugin("xep_0184")
            alice.connect(20)
            bob.connect(20)

            # subscriptions both ways
            alice.subscribe(BOB_AT_T)
            r = bob.wait_presence(lambda p: p["type"] == "subscribe" and bare(p["from"]) == ALICE_AT_G1,
                                  "subscribe from " + ALICE_AT_G1, 30)
            print("ok - bob got <presence type='subscribe'/> from %s" % r["from"])
            bob.approve(ALICE_AT_G1)
            alice.wait_presence(lambda p: p["type"] == "subscribed" and bare(p["from"]) == BOB_AT_T,
                                "subscribed from " + BOB_AT_T, 30)
            r = alice.wait_presence(lambda p: p["type"] == "available" and bare(p["from"]) == BOB_AT_T,
                                    "bob's presence", 30)
            print("ok - alice got subscribed and bob's presence from %s" % r["from"])
            bob.subscribe(ALICE_AT_G1)
            alice.wait_presence(lambda p: p["type"] == "subscribe" and bare(p["from"]) == BOB_AT_T,
                                "subscribe from bob", 30)
            alice.approve(BOB_AT_T)
            bob.wait_presence(lambda p: p["type"] == "subscribed" and bare(p["from"]) == ALICE_AT_G1,
                              "subscribed from alice", 30)
            print("ok - mutual subscription between %s and %s" % (ALICE, BOB))
            # both gateways keep the state (RFC 6121: both = each sees the other)
            l1 = wait_line(g1, ["subscription %s -> %s:" % (ALICE, BOB_AT_T), "now both"],
                           "psycgate-1: the subscription state", 5)
            l2 = wait_line(g2, ["subscription %s -> %s:" % (BOB, ALICE_AT_G1), "now both"],
                           "psycgate-2: the subscription state", 5)
            print("ok - both gateways stored the subscription as 'both': %s | %s"
                  % (l1.split(" bridge - ")[-1], l2.split(" bridge - ")[-1]))

            # presence both ways
            alice.presence(show="xa", status="on holiday")
            r = bob.wait_presence(lambda p: bare(p["from"]) == ALICE_AT_G1 and p["show"] == "xa"
                                  and p["status"] == "on holiday", "alice xa 'on holiday'", 30)
            print("ok - bob sees alice xa 'on holiday' (from %s)" % r["from"])
            bob.presence(show="chat", status="talk to me")
            r = alice.wait_presence(lambda p: bare(p["from"]) == BOB_AT_T and p["show"] == "chat"
                                    and p["status"] == "talk to me", "bob chat 'talk to me'", 30)
            print("ok - alice sees bob chat 'talk to me' (from %s)" % r["from"])

            # messages and /me both ways
            alice.send(BOB_AT_T, "hello psyc bob")
            r = bob.wait_message(r"^hello psyc bob$", 30)
            check(bare(r.frm) == ALICE_AT_G1, "bob got it from %s" % r.frm)
            bob.send(ALICE_AT_G1, "hello transport alice")
            r = alice.wait_message(r"^hello transport alice$", 30)
            check(bare(r.frm) == BOB_AT_T, "alice got it from %s" % r.frm)
            bob.send_me(ALICE_AT_G1, "bows")
            r = alice.wait_message(r"bows", 30)
            check(str(r) == "/me bows", "the /me arrived as %r" % str(r))
            print("ok - messages and /me cross both ways (%s <-> %s)" % (ALICE, BOB))

            # XEP-0184: bob's client acknowledges; the receipt crosses PSYC as
            # a delivery echo (_message_echo_private) and reaches alice.
            receipts = asyncio.Queue()
            # slixmpp has no "message" event for a body-less message
            alice.c.add_event_handler("receipt_received", lambda m: receipts.put_nowait(m))
            m = alice.c.make_message(mto=BOB_AT_T, mbody="did you get this?", mtype="chat")
            m["id"] = "rc1"
            m["request_receipt"] = True
            m.send()
            bob.wait_message(r"^did you get this\?$", 30)
            rm = run(receipts.get(), 30)
            check(str(rm["receipt"]) == "rc1", "alice got a receipt for %r, not rc1" % str(rm["receipt"]))
            r = type("R", (), {"frm": str(rm["from"])})
            wait_line(g2, ["-> _message_echo_private to psyc://gw1.test/~alice@xmpp.test"],
                      "psycgate-2: bob's receipt to PSYC", 5)
            print("ok - bob's XEP-0184 receipt for rc1 reached alice from %s as a PSYC delivery echo" % r.frm)

            # queries: vCard of bob's account (Prosody b.test), version of his client
            check(set_vcard(bob, "Bob Builder") == "result", "bob could not store his vCard")
            kind, r = iq_get(alice, BOB_AT_T, "vcard-temp", tag="vCard")
            check(kind == "result", "vCard query: %s" % kind)
            fn = r.xml.find(".//{vcard-temp}FN")
            check(fn is not None and fn.text == "Bob Builder", "bob's vCard arrived as %s" % r)
            check(bare(str(r["from"])) == BOB_AT_T, "the vCard answer came from %s" % r["from"])
            print("ok - alice's vCard query to %s answered by Prosody b.test (FN %r)" % (BOB_AT_T, fn.text))
            kind, r = iq_get(alice, BOB_AT_T + "/test", "jabber:iq:version")
            check(kind == "result", "version query to bob's client: %s" % kind)
            name = r.xml.find(".//{jabber:iq:version}name")
            check(name is not None and name.text == "bobclient", "bob's version answer: %s" % r)
            print("ok - alice's version query answered by bob's client ('%s')" % name.text)
            wait_line(g1, ["<message/> from " + ALICE, "-> _message_private to psyc://b.test/~bob"],
                      "psycgate-1: alice's message to PSYC", 5)
            wait_line(g2, ["_message_private from psyc://gw1.test/~alice@xmpp.test to psyc://b.test/~bob"],
                      "psycgate-2: alice's message to XMPP", 5)
            alice.disconnect()
            bob.disconnect()
            g1.stop()
            g2.stop()
            print("ok - both psycgates stopped cleanly on SIGTERM (exit 0)")
            ok = True
    except Fail as e:
        print("FAIL: %s" % e)
    finally:
        close_loop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS bridge transport meets natural" if ok else "FAIL bridge transport meets natural")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
