#!/usr/bin/python3
"""psycgate's XMPP S2S face against a real Prosody (issue 5, tests 1 and 2).

Usage: test_s2s_prosody.py PATH/TO/psycgate

Everything on 127.0.0.1 with free ports, DNS only from our own fakedns
(tests/dns/fakedns.py): SRV _xmpp-server._tcp.gw.test -> psycgate's [s2s]
listen port, _xmpp-server._tcp.xmpp.test -> Prosody's s2s port. Prosody
resolves through lua-unbound forwarding to fakedns; psycgate through
`[dns] server`. Three rounds, each with a fresh Prosody and psycgate:

  plain      psycgate [s2s] tls = none, Prosody default: dialback only;
             a second domain gw2.test shares psycgate's stream to
             xmpp.test (XEP-0220 §2.6)
  starttls   psycgate tls = optional: Prosody uses STARTTLS on its stream,
             psycgate on its own (Prosody offers it)
  reqenc     Prosody s2s_require_encryption = true, psycgate tls = required

In every round a slixmpp client alice@xmpp.test sends to echo@gw.test:
  1. Prosody opens a stream to gw.test and sends db:result; psycgate asks
     Prosody (the authoritative server) with db:verify, gets valid;
  2. the message reaches routing's echo; the answer leaves on psycgate's
     OWN stream to xmpp.test (psycgate initiates, test 2): Prosody checks
     psycgate's key by calling back (db:verify over its stream to gw.test,
     answered by psycgate from its dialback secret);
  3. alice gets "echo: ..." back; an iq to gw.test (XEP-0199 ping) is
     answered; a message to nobody@gw.test comes back as
     <service-unavailable/>;
  4. psycgate pings its outgoing stream (ping_interval = 2) and logs the
     answer; SIGTERM stops it cleanly (exit 0, LSan under ASan).
Exit 0 = pass. A missing Prosody or slixmpp is a failure, not a skip.
"""
import contextlib
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xmpptest import (Client, Fail, FakeDNS, Prosody, Psycgate, check, close_loop,  # noqa: E402
                      free_ports)

GW = "gw.test"
XMPP = "xmpp.test"
IP = "127.0.0.1"


def gw_config(state, s2s_port, dns_port, tls, psyc_port, domains):
    return """
[gateway]
host = %(gw)s
state_dir = %(state)s
log_level = debug
[psyc]
listen = %(ip)s:%(psyc)d
listen_tls = none
[s2s]
listen = %(ip)s:%(port)d
domain = %(domains)s
tls = %(tls)s
ping_interval = 2
idle_timeout = 600
give_up = 20
[dns]
server = %(ip)s:%(dns)d
timeout_ms = 500
""" % {"gw": GW, "state": state, "ip": IP, "port": s2s_port, "dns": dns_port, "tls": tls,
                 "psyc": psyc_port, "domains": ", ".join(domains)}


def wait_error(client, frm_prefix, condition, timeout=15):
    """The next error message from frm_prefix... must carry `condition`."""
    r = client.wait_message(None, timeout, accept_errors=True)
    check(r.type == "error" and r.frm.startswith(frm_prefix) and str(r) == condition,
          "expected <%s/> from %s, got %s %r from %s" % (condition, frm_prefix, r.type, str(r), r.frm))


def one_round(binary, tmp, name, gw_tls, reqenc, second_domain=None):
    print("=== round %s: psycgate tls=%s, Prosody s2s_require_encryption=%s" % (name, gw_tls, reqenc))
    d = os.path.join(tmp, name)
    os.makedirs(d)
    gw_port, p_s2s, psyc_port = free_ports(3, IP)
    with contextlib.ExitStack() as st:
        srv = {"_xmpp-server._tcp." + GW: ["%s:%d" % (GW, gw_port)],
               "_xmpp-server._tcp." + XMPP: ["%s:%d" % (XMPP, p_s2s)]}
        domains = [GW]
        if second_domain:
            srv["_xmpp-server._tcp." + second_domain] = ["%s:%d" % (GW, gw_port)]
            domains.append(second_domain)
        dns = st.enter_context(FakeDNS(d, a={GW: IP, XMPP: IP}, srv=srv))
        pro = st.enter_context(Prosody(d, s2s=True, s2s_port=p_s2s, dns_port=dns.port,
                                       s2s_require_encryption=reqenc))
        pro.start()
        gw = st.enter_context(Psycgate(d, binary, gw_config(os.path.join(d, "gwstate"), gw_port,
                                                             dns.port, gw_tls, psyc_port, domains)))
        gw.wait_log(r"listening for XMPP S2S on %s:%d" % (IP, gw_port), 15)
        try:
            alice = Client("alice@" + XMPP, "alicepw", IP, pro.c2s_port)
            alice.connect(20)
            alice.send("echo@" + GW, "hello " + name)
            r = alice.wait_message(r"^echo: hello " + name + "$", 30)
            check(str(r.frm).startswith("echo@" + GW), "echo came from %s" % r.frm)
            print("ok   echo round trip: %r from %s" % (str(r), r.frm))
            # Prosody's stream to us: dialback verified by asking Prosody.
            gw.wait_log(r"s2s-in: %s -> %s authenticated \(dialback, %s\)" % (XMPP, GW,
                        "TLSv1\\.[23]" if gw_tls != "none" else "no TLS"), 5)
            # Our stream to Prosody: Prosody verified our key by calling back.
            gw.wait_log(r"db:verify %s asks about our key for %s id=\S+: valid" % (XMPP, GW), 5)
            gw.wait_log(r"s2s-out: %s -> %s authenticated \(dialback, %s\)" % (GW, XMPP,
                        "TLSv1\\.[23]" if gw_tls != "none" else "no TLS"), 5)
            if gw_tls != "none":
                gw.wait_log(r"s2s-in: TLS established \(TLSv1\.[23]", 5)
                gw.wait_log(r"s2s-out: TLS established \(TLSv1\.[23]", 5)
            if second_domain:
                # XEP-0220 §2.6: the answer from our second domain joins the
                # authenticated stream to xmpp.test (Prosody offers
                # <errors/>) instead of opening another one.
                alice.send("echo@" + second_domain, "hello again")
                r = alice.wait_message(r"^echo: hello again$", 30)
                check(str(r.frm).startswith("echo@" + second_domain), "echo came from %s" % r.frm)
                gw.wait_log(r"s2s-out: %s -> %s authenticated \(dialback" % (second_domain, XMPP), 5)
                n = gw.count(r"s2s-out %s -> %s: connecting to \S+ \(\S+\)$" % (second_domain, XMPP))
                check(n == 0, "a second stream was opened for %s (%d)" % (second_domain, n))
                print("ok   second domain %s multiplexed on the stream to %s" % (second_domain, XMPP))
            # XEP-0199 to the gateway's domain, and an unrouted message.
            t = alice.ping(GW)
            check(t == "result", "ping to %s answered with %s" % (GW, t))
            print("ok   XEP-0199 ping to %s: result" % GW)
            alice.send("nobody@" + GW, "anyone?")
            wait_error(alice, "nobody@" + GW, "service-unavailable")
            gw.wait_log(r"refused <message/> from alice@%s\S* to nobody@%s with <service-unavailable/>"
                        % (XMPP, GW), 10)
            print("ok   message to nobody@%s refused with service-unavailable" % GW)
            # Our own liveness ping on the outgoing stream (ping_interval 2 s).
            gw.wait_log(r"ping %s -> %s answered \(result\)" % (GW, XMPP), 15)
            print("ok   psycgate's XEP-0199 ping on its stream to %s answered" % XMPP)
            alice.disconnect()
            gw.stop(20)
            text = gw.log_text()
            check("stream to %s closed" % XMPP in text, "the outgoing stream's close is logged")
            check("stanzas in" in text, "counters are logged at close")
            print("ok   %s: clean stop" % name)
        except Exception:
            gw.dump()
            pro.dump()
            raise


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    binary = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="psycgate-s2s-prosody-")
    os.chmod(tmp, 0o755)
    try:
        one_round(binary, tmp, "plain", "none", False, second_domain="gw2.test")
        one_round(binary, tmp, "starttls", "optional", False)
        one_round(binary, tmp, "reqenc", "required", True)
    except Fail as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        close_loop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
