#!/usr/bin/python3
"""XEP-0077 registration on the transport domain, and iq in psyced's terms
with a psyced-like PSYC 0.9 peer (issue 6: "The gateway as an XMPP entity",
"IQ").

Usage: test_register.py PATH/TO/psycgate

  Prosody xmpp.test (alice, carol) --XEP-0114 component psyc.xmpp.test--
  psycgate (host gw.test, [bridge] transport = psyc.xmpp.test) --PSYC 0.9--
  a fake psyced (psyc://psyced.test/, a Python 0.9 speaker on loopback that
  greets like psyced's captures and answers the way psyced does).

Everything on 127.0.0.1, DNS only from fakedns (gw.test and psyced.test A
127.0.0.1, SRV _psyc._tcp for both). Checks:
  1. disco#info of the transport lists jabber:iq:register; the form has
     <instructions/> and <nick/>; alice registers "Alice" and the form then
     says <registered/> with nick "alice"; carol cannot take "ALICE"
     (<conflict/>) nor "9lives" (<not-acceptable/>);
  2. alice's message to bob%psyced.test@T reaches psyced from
     psyc://gw.test/~alice (not ~alice@xmpp.test); psyced's reply to
     psyc://gw.test/~alice reaches alice from bob%psyced.test@T;
  3. psyced's _request_version (with _tag) to psyc://gw.test/~alice is asked
     of alice's client, and psyced gets _status_version with _tag_relay = the
     tag and the client's name and version;
     carol's client never answers one: after [bridge] iq_timeout psyced gets
     _failure_unsuccessful_delivery_timeout with _tag_relay;
  4. alice's XEP-0092 query to bob%psyced.test@T reaches psyced as
     _request_version with _tag; psyced's _status_version (_tag_reply, as
     psyced sends it) comes back as the iq result with <name/> and <version/>;
  5. after a restart the registration is still there (store); alice
     unregisters (<remove/>) and her messages come from ~alice@xmpp.test again;
  6. psycgate stops on SIGTERM with exit 0.
Exit 0 = pass.
"""
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bridgetest import (IP, Client, Fail, FakeDNS, Prosody, Psycgate, bare, check,  # noqa: E402
                        close_loop, deadline, free_ports, iq_get, psycgate_config, run)
from test_psyc_listener import parse09  # noqa: E402  (tests/gateway, on the path through bridgetest)

XMPP = "xmpp.test"
GW = "gw.test"
PSYCED = "psyced.test"
COMP = "psyc.xmpp.test"
SECRET = "register-secret"
ALICE, CAROL = "alice@" + XMPP, "carol@" + XMPP
BOB_JID = "bob%%%s@%s" % (PSYCED, COMP)
U_BOB = "psyc://%s/~bob" % PSYCED
NS_REG = "jabber:iq:register"
IQ_TIMEOUT = 3  # [bridge] iq_timeout, seconds
CAPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vectors", "psyc",
                    "psyced-0.9-captures", "1-circuit-greeting")


class FakePsyced:
    """psyc://psyced.test/ on a loopback port: accepts psycgate's circuit,
    greets after its '.' like psyced (captures 1-circuit-greeting/02-04),
    records every packet as (routing, entity, method, body) and sends on
    the same circuit (psyced uses the circuit the peer opened)."""

    def __init__(self, port):
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind((IP, port))
        self.ls.listen(4)
        self.ls.settimeout(0.2)
        self.conn, self.packets, self.stop_ = None, [], False
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop_:
            try:
                conn, _ = self.ls.accept()
            except socket.timeout:
                continue
            conn.settimeout(0.2)
            buf, greeted = b"", False
            while not self.stop_:
                try:
                    chunk = conn.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                buf += chunk
                if not greeted and buf.startswith(b".\n"):
                    greeted = True
                    buf = buf[2:]
                    conn.sendall(b"".join(open(os.path.join(CAPS, f), "rb").read() for f in
                                          ("02-out-dot.psyc09", "03-out-_notice_circuit_established.psyc09",
                                           "04-out-_status_circuit.psyc09")))
                    with self.lock:
                        self.conn = conn
                while greeted and b"\n.\n" in buf:
                    pkt, buf = buf.split(b"\n.\n", 1)
                    self._record(pkt)
            conn.close()

    def _record(self, pkt):
        routing, entity, method, body = parse09(pkt + b"\n.\n")
        with self.lock:
            self.packets.append((routing, entity, method, body))
        print("(psyced got %s %r)" % (method, routing))

    def wait(self, pred, what, timeout=20, since=0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                for p in self.packets[since:]:
                    if pred(p):
                        return p
            pump(0.05)
        raise Fail("psyced: no %s within %g s; got %r" % (what, timeout, [p[2] for p in self.packets]))

    def send(self, routing, entity, method, body=""):
        text = "".join(":%s\t%s\n" % kv for kv in routing) + "\n" + \
            "".join(":%s\t%s\n" % kv for kv in entity) + method + "\n" + (body + "\n" if body else "") + ".\n"
        with self.lock:
            check(self.conn is not None, "psyced has no circuit to send on")
            self.conn.sendall(text.encode())

    def close(self):
        self.stop_ = True
        self.t.join(2)
        self.ls.close()


def pump(seconds):
    """Lets the clients' asyncio loop run (slixmpp sends only while it runs)."""
    import asyncio
    if threading.current_thread() is threading.main_thread():
        run(asyncio.sleep(seconds), seconds + 5)
    else:
        time.sleep(seconds)


def register_iq(client, to, nick=None, remove=False, timeout=15):
    """An iq set jabber:iq:register (<nick/> or <remove/>): "result" or "error:CONDITION"."""
    async def go():
        import xml.etree.ElementTree as ET
        iq = client.c.make_iq_set(ito=to)
        q = ET.Element("{%s}query" % NS_REG)
        if remove:
            q.append(ET.Element("{%s}remove" % NS_REG))
        else:
            n = ET.Element("{%s}nick" % NS_REG)
            n.text = nick
            q.append(n)
        iq.append(q)
        try:
            await iq.send(timeout=timeout)
            return "result"
        except Exception as e:
            stanza = getattr(e, "iq", None)
            return "error:" + (str(stanza["error"]["condition"]) if stanza is not None else "timeout")
    return run(go(), timeout + 5)


def form_of(client):
    kind, st = iq_get(client, COMP, NS_REG)
    check(kind == "result", "register form: %s" % kind)
    return str(st)


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    binary = os.path.abspath(sys.argv[1])
    deadline(100)  # below the ctest TIMEOUT (120)
    tmp = tempfile.mkdtemp(prefix="psycgate-register-")
    os.chmod(tmp, 0o755)
    ok = False
    psyced = None
    try:
        with contextlib.ExitStack() as st:
            psyc1, psyc_fake = free_ports(2, IP)
            psyced = FakePsyced(psyc_fake)
            dns = st.enter_context(FakeDNS(tmp, a={GW: IP, PSYCED: IP, XMPP: IP},
                                           srv={"_psyc._tcp." + GW: ["%s:%d" % (GW, psyc1)],
                                                "_psyc._tcp." + PSYCED: ["%s:%d" % (PSYCED, psyc_fake)]}))
            pro = st.enter_context(Prosody(tmp, domain=XMPP, users={"alice": "alicepw", "carol": "carolpw"},
                                           component=(COMP, SECRET)))
            pro.start()
            conf = psycgate_config(GW, os.path.join(tmp, "state"), psyc1, dns_port=dns.port, component=COMP,
                                   comp_port=pro.comp_port, secret=SECRET, transport=COMP,
                                   extra="iq_timeout = %d\n" % IQ_TIMEOUT)  # in [bridge], the last section
            g = st.enter_context(Psycgate(tmp, binary, conf))
            g.wait_log(r"component %s linked" % re.escape(COMP), 15)

            alice = Client(ALICE, "alicepw", IP, pro.c2s_port)
            alice.c.register_plugin("xep_0092", pconfig={"software_name": "alice-client", "version": "4.2"})
            alice.connect(20)
            carol = Client(CAROL, "carolpw", IP, pro.c2s_port)
            carol.connect(20)

            # 1. registration
            kind, info = iq_get(alice, COMP, "http://jabber.org/protocol/disco#info")
            check(kind == "result" and "jabber:iq:register" in str(info),
                  "disco#info of %s lists no jabber:iq:register: %s %s" % (COMP, kind, info))
            form = form_of(alice)
            check("<instructions" in form and "<nick" in form and "<registered" not in form,
                  "the first form: %s" % form)
            check(register_iq(alice, COMP, "Alice") == "result", "alice could not register")
            form = form_of(alice)
            check("<registered" in form and re.search(r"<nick>alice</nick>", form), "the form after: %s" % form)
            print("ok - alice registered as alice; the form says so")
            r = register_iq(carol, COMP, "ALICE")
            check(r == "error:conflict", "carol taking alice's nick: %s" % r)
            r = register_iq(carol, COMP, "9lives")
            check(r == "error:not-acceptable", "carol's invalid nick: %s" % r)
            print("ok - carol: <conflict/> for ALICE, <not-acceptable/> for 9lives")

            # 2. a message both ways under the nick
            alice.send(BOB_JID, "hello psyced")
            p = psyced.wait(lambda p: p[2] == "_message_private" and p[3] == "hello psyced", "alice's message")
            check(p[0].get("_source") == "psyc://%s/~alice" % GW, "alice's message came from %r" % p[0])
            print("ok - psyced got alice's message from %s" % p[0]["_source"])
            psyced.send([("_target", "psyc://%s/~alice" % GW), ("_source", U_BOB)], [("_nick", "bob")],
                        "_message_private", "hi Alice")
            m = alice.wait_message(r"^hi Alice$", 20)
            check(bare(m.frm) == BOB_JID, "the reply came from %s" % m.frm)
            print("ok - psyced's reply to ~alice reached alice from %s" % m.frm)

            # 3. psyced asks alice's client its version
            alice.c.send_presence(pto=BOB_JID)  # psyced's friend: the gateway sees her resource
            psyced.wait(lambda p: p[2] and p[2].startswith("_notice_presence"), "alice's presence")
            n = len(psyced.packets)
            psyced.send([("_target", "psyc://%s/~alice" % GW), ("_source", U_BOB), ("_tag", "v42")],
                        [("_nick", "bob")], "_request_version")
            p = psyced.wait(lambda p: p[2] and p[2].startswith("_status_version"), "_status_version", since=n)
            check(p[0].get("_tag_relay") == "v42", "_status_version without _tag_relay v42: %r" % (p,))
            check(p[1].get("_version_description") == "alice-client" and p[1].get("_version") == "4.2",
                  "_status_version says %r" % p[1])
            print("ok - psyced's _request_version answered: %r %r" % (p[0], p[1]))

            # 3b. a client that never answers: psyced gets the timeout
            from slixmpp.xmlstream.handler import Callback
            from slixmpp.xmlstream.matcher import MatchXPath
            carol.c.register_handler(Callback("swallow version", MatchXPath(
                "{jabber:client}iq/{jabber:iq:version}query"), lambda iq: None))
            carol.c.send_presence(pto=BOB_JID)
            psyced.wait(lambda p: p[2] and p[2].startswith("_notice_presence") and "carol" in p[0].get("_source", ""),
                        "carol's presence")
            n = len(psyced.packets)
            psyced.send([("_target", "psyc://%s/~carol@%s" % (GW, XMPP)), ("_source", U_BOB), ("_tag", "v43")],
                        [("_nick", "bob")], "_request_version")
            p = psyced.wait(lambda p: p[0].get("_tag_relay") == "v43", "an answer for v43", since=n,
                            timeout=IQ_TIMEOUT + 10)
            check(p[2] == "_failure_unsuccessful_delivery_timeout", "the answer for v43 is %r" % (p,))
            print("ok - carol's client kept silent: psyced got %s with _tag_relay v43" % p[2])

            # 4. alice asks psyced's bob
            box = {}
            n = len(psyced.packets)

            def answer():
                try:
                    q = psyced.wait(lambda p: p[2] == "_request_version", "alice's _request_version", since=n)
                    box["tag"] = q[0].get("_tag")
                    psyced.send([("_target", q[0].get("_source", "")), ("_source", U_BOB),
                                 ("_tag_reply", box["tag"] or "")],
                                [("_version", "0.99"), ("_version_description", "psyced")], "_status_version")
                except Fail as e:
                    box["err"] = str(e)
            th = threading.Thread(target=answer, daemon=True)
            th.start()
            kind, res = iq_get(alice, BOB_JID, "jabber:iq:version", timeout=20)
            th.join(5)
            check("err" not in box and box.get("tag"), "psyced: %s" % box.get("err", "no _tag"))
            check(kind == "result" and "<name>psyced</name>" in str(res) and "<version>0.99</version>" in str(res),
                  "alice's version query: %s %s" % (kind, res))
            print("ok - alice's XEP-0092 query answered by psyced (_tag %s)" % box["tag"])

            # 5. the registration survives a restart; then alice removes it
            alice.disconnect()
            g.stop(20)
            g2 = st.enter_context(Psycgate(tmp, binary, conf, name="psycgate-again"))
            g2.wait_log(r"component %s linked" % re.escape(COMP), 15)
            g2.wait_log(r"XEP-0077 on %s: 1 registered nicks" % re.escape(COMP), 5)
            alice = Client(ALICE, "alicepw", IP, pro.c2s_port)
            alice.connect(20)
            check("<registered" in form_of(alice), "the registration did not survive the restart")
            check(register_iq(alice, COMP, remove=True) == "result", "alice could not unregister")
            check("<registered" not in form_of(alice), "still registered after <remove/>")
            n = len(psyced.packets)
            alice.send(BOB_JID, "plain again")
            p = psyced.wait(lambda p: p[3] == "plain again", "alice's message after <remove/>", since=n)
            check(p[0].get("_source") in ("psyc://%s/~alice@%s" % (GW, XMPP), "psyc://%s/~alice%%40%s" % (GW, XMPP)),
                  "after <remove/> alice's message came from %r" % p[0].get("_source"))
            print("ok - restart kept the registration; after <remove/> alice is %s again" % p[0]["_source"])
            alice.disconnect()
            carol.disconnect()
            g2.stop(20)
            print("ok - psycgate stopped cleanly on SIGTERM (exit 0)")
            ok = True
    except (Fail, subprocess.SubprocessError, OSError) as e:
        print("FAIL: %s" % e)
    finally:
        if psyced:
            psyced.close()
        close_loop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS bridge register" if ok else "FAIL bridge register")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
