#!/usr/bin/python3
"""psycgate as a XEP-0114 component of a real Prosody (issue 5, test 4).

Usage: test_component_prosody.py PATH/TO/psycgate

Everything on 127.0.0.1, free ports, in a temporary directory (recipe of the
XMPP harness, notes §1, adapted; nothing under /etc is read or changed):
  1. a private Prosody (c2s + component psyc.xmpp.test with a secret, no s2s;
     user alice registered with prosodyctl) in the foreground (-F);
  2. psycgate with [component] pointing at Prosody's component port; the
     log must say "component psyc.xmpp.test linked to 127.0.0.1:PORT";
  3. a slixmpp client alice@xmpp.test sends "hello" to echo@psyc.xmpp.test
     and must get "echo: hello" from it;
  4. Prosody is stopped: psycgate logs the loss and reconnect attempts
     (backoff 1 s, 2 s, ...);
  5. Prosody is started again on the same ports: psycgate relinks and the
     echo answers again;
  6. SIGTERM stops psycgate cleanly (exit 0; under ASan that includes LSan).
Every wait is bounded; every process is killed at the end. Exit 0 = pass;
a missing Prosody or slixmpp is a failure, not a skip.
"""
import asyncio
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gateway"))
from gwtest import Fail, check, free_port, read, wait_for  # noqa: E402

DOMAIN = "xmpp.test"
COMPONENT = "psyc.xmpp.test"
# A second domain Prosody does not know: its link is refused with a stream
# error and retried with backoff, without disturbing the first one. (Prosody
# 0.12 answers an unknown host with a header without id and then
# <host-unknown/>, which is what must be logged.)
UNKNOWN = "nope.xmpp.test"
SECRET = "s3cr3t-component"
USER, PASSWORD = "alice", "alicepw"
IP = "127.0.0.1"


def port_open(port):
    try:
        with socket.create_connection((IP, port), timeout=0.5):
            return True
    except OSError:
        return False


def make_cert(name, d):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                    "-subj", "/CN=" + name, "-addext", "subjectAltName=DNS:%s,DNS:*.%s" % (name, name),
                    "-keyout", os.path.join(d, name + ".key"), "-out", os.path.join(d, name + ".crt")],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)


class Prosody:
    def __init__(self, tmp, c2s_port, comp_port):
        self.dir = os.path.join(tmp, "prosody")
        self.cfg = os.path.join(self.dir, "prosody.cfg.lua")
        self.c2s_port, self.comp_port = c2s_port, comp_port
        self.proc = None
        os.makedirs(os.path.join(self.dir, "data"))
        os.makedirs(os.path.join(self.dir, "certs"))
        os.chmod(self.dir, 0o700)
        make_cert(DOMAIN, os.path.join(self.dir, "certs"))
        with open(self.cfg, "w") as f:
            f.write("""-- private to this test run (tests/xmpp/test_component_prosody.py)
pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
certificates = "{d}/certs"
run_as_root = {root}
admin_socket = "{d}/prosody.sock"
interfaces = {{ "{ip}" }}
local_interfaces = {{ "{ip}" }}
c2s_ports = {{ {c2s} }}
component_ports = {{ {comp} }}
c2s_direct_tls_ports = {{ }}
s2s_direct_tls_ports = {{ }}
use_ipv6 = false
modules_enabled = {{ "roster"; "saslauth"; "tls"; "disco"; "ping"; }}
-- no s2s: nothing may leave loopback, and no DNS is needed
modules_disabled = {{ "offline"; "s2s"; }}
authentication = "internal_hashed"
storage = "internal"
allow_registration = false
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
log = {{
    {{ levels = {{ min = "debug" }}, to = "file", filename = "{d}/prosody.log" }};
    {{ levels = {{ min = "warn" }}, to = "console" }};
}}
VirtualHost "{dom}"
Component "{comp_dom}"
    component_secret = "{secret}"
""".format(d=self.dir, root="true" if os.getuid() == 0 else "false", ip=IP, c2s=c2s_port,
           comp=comp_port, dom=DOMAIN, comp_dom=COMPONENT, secret=SECRET))
        subprocess.run(["prosodyctl", "--config", self.cfg, "register", USER, DOMAIN, PASSWORD],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)

    def start(self):
        for p in (self.c2s_port, self.comp_port):
            check(not port_open(p), "port %d is already in use" % p)
        self.console = open(os.path.join(self.dir, "console.log"), "a")
        self.proc = subprocess.Popen(["prosody", "--config", self.cfg, "-F"], stdin=subprocess.DEVNULL,
                                     stdout=self.console, stderr=self.console, start_new_session=True)
        try:
            wait_for(lambda: self.proc.poll() is None and port_open(self.c2s_port)
                     and port_open(self.comp_port), "Prosody to listen", 20)
        except Fail:
            self.dump()
            raise

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None
        if getattr(self, "console", None):
            self.console.close()
            self.console = None

    def dump(self):
        for name in ("console.log", "prosody.log"):
            p = os.path.join(self.dir, name)
            if os.path.exists(p):
                print("--- %s (tail)\n%s" % (name, "".join(read(p).splitlines(True)[-40:])))


async def echo_round_trip(c2s_port, text, timeout=15):
    import slixmpp
    client = slixmpp.ClientXMPP("%s@%s/test" % (USER, DOMAIN), PASSWORD)
    client.ssl_context.check_hostname = False
    client.ssl_context.verify_mode = ssl.CERT_NONE
    online, replies = asyncio.Event(), asyncio.Queue()

    def on_session_start(_):
        client.send_presence()
        online.set()

    client.add_event_handler("session_start", on_session_start)
    client.add_event_handler("message", lambda m: replies.put_nowait(m))
    client.connect(address=(IP, c2s_port))
    try:
        await asyncio.wait_for(online.wait(), timeout)
        to = "echo@" + COMPONENT
        client.send_message(mto=to, mbody=text, mtype="chat")
        m = await asyncio.wait_for(replies.get(), timeout)
        return str(m["from"]), str(m["type"]), str(m["body"])
    finally:
        client.disconnect()
        await asyncio.sleep(0.2)


# One loop for the whole run: slixmpp leaves tasks behind on the loop a
# client ran on, and closing it under them only produces noise.
LOOP = asyncio.new_event_loop()
asyncio.set_event_loop(LOOP)


def echo(c2s_port, text):
    try:
        return LOOP.run_until_complete(asyncio.wait_for(echo_round_trip(c2s_port, text), 40))
    except asyncio.TimeoutError:
        raise Fail("no echo for %r within the time limit" % text)


def count(log_path, pattern):
    return len(re.findall(pattern, read(log_path)))


def main():
    if len(sys.argv) != 2:
        print("usage: test_component_prosody.py PSYCGATE", file=sys.stderr)
        return 2
    binary = sys.argv[1]
    if not shutil.which("prosody") or not shutil.which("prosodyctl"):
        print("FAIL: prosody is not installed (run scripts/install-deps)")
        return 1
    try:
        import slixmpp  # noqa: F401
    except ImportError:
        print("FAIL: python3-slixmpp is not installed (run scripts/install-deps)")
        return 1

    tmp = tempfile.mkdtemp(prefix="psycgate-comp-")
    prosody, gw, logf = None, None, None
    ok = False
    log_path = os.path.join(tmp, "psycgate.log")
    try:
        c2s_port, comp_port, psyc_port = free_port(), free_port(), free_port()
        prosody = Prosody(tmp, c2s_port, comp_port)
        prosody.start()
        print("ok - Prosody listening: c2s %d, component %d" % (c2s_port, comp_port))

        conf = os.path.join(tmp, "psycgate.conf")
        with open(conf, "w") as f:
            f.write("[gateway]\nhost = localhost\nstate_dir = %s\nlog_level = debug\n"
                    "[psyc]\nlisten = 127.0.0.1:%d\nlisten_tls = none\n"
                    "[tls]\ngenerate_self_signed = no\n"
                    "[component]\ndomain = %s, %s\nhost = %s\nport = %d\nsecret = %s\n"
                    % (os.path.join(tmp, "var"), psyc_port, COMPONENT, UNKNOWN, IP, comp_port, SECRET))
        logf = open(log_path, "w")
        gw = subprocess.Popen([binary, "-c", conf], stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
        linked = r"component %s linked to %s:%d" % (re.escape(COMPONENT), re.escape(IP), comp_port)
        wait_for(lambda: count(log_path, linked) >= 1, "the component link", 15)
        print("ok - psycgate linked as %s" % COMPONENT)
        wait_for(lambda: count(log_path, r"component %s link failed: stream error <host-unknown/>.*; "
                               r"reconnecting in 1 s" % re.escape(UNKNOWN)) >= 1,
                 "the refusal of %s to be logged" % UNKNOWN, 15)
        print("ok - %s refused by Prosody, logged, retried" % UNKNOWN)

        frm, typ, body = echo(c2s_port, "hello")
        check(frm.split("/")[0] == "echo@" + COMPONENT, "echo came from %r" % frm)
        check(body == "echo: hello", "echo body %r" % body)
        check(typ == "chat", "echo type %r" % typ)
        print("ok - alice got %r from %s" % (body, frm))

        prosody.stop()
        wait_for(lambda: count(log_path, r"component %s link lost: .*reconnecting in 1 s"
                               % re.escape(COMPONENT)) >= 1, "the loss to be logged", 15)
        wait_for(lambda: count(log_path, r"component %s link failed: connect failed: .*reconnecting in 2 s"
                               % re.escape(COMPONENT)) >= 1, "a failed reconnect with backoff", 15)
        print("ok - loss and reconnect attempts logged with backoff")
        check(gw.poll() is None, "psycgate died when Prosody went away")

        prosody.start()
        wait_for(lambda: count(log_path, linked) >= 2, "the component to relink", 30)
        print("ok - relinked after Prosody came back")
        frm, typ, body = echo(c2s_port, "again")
        check(body == "echo: again", "echo body after relink %r" % body)
        print("ok - echo answers after the relink")

        gw.send_signal(signal.SIGTERM)
        try:
            rc = gw.wait(15)
        except subprocess.TimeoutExpired:
            raise Fail("psycgate did not stop within 15 s of SIGTERM")
        check(rc == 0, "psycgate exited with %d after SIGTERM" % rc)
        check(count(log_path, r"component %s link closed: gateway shutting down"
                    % re.escape(COMPONENT)) == 1, "no clean close of the link in the log")
        print("ok - SIGTERM: link closed, exit 0")
        ok = True
    except (Fail, subprocess.SubprocessError, OSError) as e:
        print("FAIL: %s" % e)
    finally:
        if gw and gw.poll() is None:
            gw.kill()
            gw.wait(5)
        if logf:
            logf.close()
        if prosody:
            prosody.stop()
            if not ok:
                prosody.dump()
        if os.path.exists(log_path):
            lines = read(log_path).splitlines(True)
            print("--- psycgate log" + ("" if not ok else " (component lines)") + "\n" +
                  "".join(x for x in lines if not ok or " comp " in x))
        shutil.rmtree(tmp, ignore_errors=True)
        pending = asyncio.all_tasks(LOOP)
        for t in pending:
            t.cancel()
        LOOP.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        LOOP.close()
    print("PASS component link with Prosody" if ok else "FAIL component link with Prosody")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
