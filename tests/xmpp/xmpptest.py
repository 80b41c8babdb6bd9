"""Interop harness for psycgate's end-to-end XMPP tests (real Prosody 0.12,
real ejabberd 23.01, our daemon, slixmpp clients), all on 127.0.0.0/8.

Adapted from the recipes in ../shared/xmpp-harness/ (notes.md, prosody-up.sh,
ejabberd-up.sh). Nothing under /etc is changed; every process, file and port
is private to one test run. Run tests with /usr/bin/python3 (Debian's
slixmpp and dnslib). Import it from a test next to this file:

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from xmpptest import *   # or name what you use

Re-exported from ../gateway/gwtest.py: Fail, check, free_port, wait_for, read.

Typical use (every class is a context manager: leaving the block stops the
process, killing it if it does not stop in time, and on an exception first
prints the tail of its logs):

    tmp = tempfile.mkdtemp(prefix="psycgate-x-")
    with contextlib.ExitStack() as st:
        dns = st.enter_context(FakeDNS(tmp, a={"gw.test": "127.0.0.2"},
                                       srv={"_xmpp-server._tcp.gw.test": ["gw.test:%d" % p]}))
        pro = st.enter_context(Prosody(tmp, s2s=True, dns_port=dns.port,
                                       component=("psyc.xmpp.test", "secret")))
        pro.start()
        gw = st.enter_context(Psycgate(tmp, binary, CONFIG_TEXT))
        gw.wait_log(r"component \\S+ linked", 15)
        reply = chat_roundtrip("alice@xmpp.test", "alicepw", "127.0.0.1", pro.c2s_port,
                               "echo@psyc.xmpp.test", "hi", r"^echo: hi$", 20)
        gw.stop()                  # SIGTERM; raises Fail unless exit 0
    close_loop()                   # at the very end (also registered with atexit)

Helpers
  free_port(ip="127.0.0.1")     a free TCP port (bind(0)); free_ports(n) gives n
                                distinct ones; free_udp_tcp_port() one free for both.
  port_open(port, ip)           something accepts TCP there.
  make_cert(name, dir, sans=()) self-signed RSA cert dir/name.crt + dir/name.key
                                (SAN DNS:name, DNS:*.name and sans); returns the paths.
  tail(path, n=60)              the last n lines of a file ("" if missing).
  deadline(seconds)             Fail after seconds (SIGALRM) or on SIGTERM/SIGHUP,
                                so cleanup still runs: call it first, below the
                                ctest TIMEOUT (servers run in their own sessions).
  PY                            "/usr/bin/python3".

FakeDNS(tmp, zone="test", a={name: ip|[ip]}, aaaa=..., srv={name: ["target:port[:prio:weight]"]},
        exists=[], servfail=[], drop=[], ip="127.0.0.1", port=None, name="fakedns")
  Starts tests/dns/fakedns.py (authoritative for `zone` only, never recursive)
  on a free port (UDP and TCP) and waits for its ready file (10 s).
  .ip .port .addr ("ip:port")  .stop()  .kill()  .queries() (list of its
  "query NAME TYPE PROTO -> RCODE [...]" lines)  .log_text()  .dump()

Prosody(tmp, domain="xmpp.test", users={"alice": "alicepw"}, component=None,
        s2s=False, s2s_require_encryption=False, s2s_secure_auth=False,
        dns_port=None, dns_ip="127.0.0.1", extra_hosts=(), ip="127.0.0.1",
        c2s_port=None, s2s_port=None, comp_port=None, loglevel="debug",
        extra_config="", name="prosody")
  component: None, (domain, secret) or a list of such pairs.
  s2s=True enables s2s on .s2s_port with mod_dialback; it requires dns_port
  (libunbound then forwards only to 127.0.0.1@dns_port, resolvconf=false,
  hoststxt=false, local-zone "test. transparent", do-ip6 no). With
  s2s=False the s2s module is disabled and no DNS is used at all.
  Certificates (openssl) for domain, extra_hosts and component domains are
  in certs/; run_as_root when uid 0. Users are registered with prosodyctl
  before the start. extra_config: raw Lua appended to the global section.
  .start(timeout=20) (waits for c2s, and s2s/component when enabled)
  .stop(timeout=10) (SIGTERM, KILL fallback)  .kill()  .register(user, pw)
  .log_text() (prosody.log)  .dump()  .c2s_port .s2s_port .comp_port
  .dir .cfg .domain .ip

Ejabberd(tmp, domain="ejab.test", users={"alice": "alicepw"}, component=None,
         s2s=False, s2s_starttls="optional", dns_port=None, dns_ip="127.0.0.1",
         hosts={name: ip}, ip="127.0.0.1", c2s_port=None, s2s_port=None,
         comp_port=None, dist_port=None, loglevel="info", extra_yaml="",
         name="ejabberd")
  Needs root (Debian's ejabberdctl su's to the ejabberd user). Private
  conf/spool/logs under tmp/NAME (chowned to ejabberd; tmp and its parents
  up to the system temp dir get o+x, so tmp must be below it);
  ERL_INETRC -> conf/inetrc: no hosts file, no resolv.conf, nameserver
  127.0.0.1:dns_port only (no nameserver at all without dns_port);
  ERL_DIST_PORT on a free port of 127.0.0.1 (no epmd), node
  ejPORT@localhost, a random cookie of its own. The node
  runs inside `unshare --mount --propagation private` with a private
  /etc/hosts (localhost, domain and `hosts`) and /etc/resolv.conf
  (nameserver 127.0.0.1, 1 try, 1 s) bind-mounted, because ejabberd
  resolves the A record of an SRV target through glibc. s2s=False: no
  s2s_in listener and s2s_access none (no outgoing s2s either).
  .start(timeout=60) waits for the listening ports, then registers `users`
  .ctl(*args, timeout=30) -> CompletedProcess of ejabberdctl with the same flags
  .register(user, pw) (idempotent)  .stop(timeout=30) (ejabberdctl stop,
  then KILL of every process of the node as fallback)  .kill()
  .log_text() (logs/ejabberd.log)  .dump()  .c2s_port .s2s_port
  .comp_port .dist_port .dir .domain .ip

  Ports are chosen free (bind(0)) unless given. When fakedns must name a
  server's s2s port, choose the ports first and pass them to both:
      p_s2s, e_s2s = free_ports(2)
      dns = FakeDNS(tmp, a={"xmpp.test": "127.0.0.1", "ejab.test": "127.0.0.1"},
                    srv={"_xmpp-server._tcp.xmpp.test": ["xmpp.test:%d" % p_s2s],
                         "_xmpp-server._tcp.ejab.test": ["ejab.test:%d" % e_s2s]})
      Prosody(tmp, s2s=True, s2s_port=p_s2s, dns_port=dns.port)
      Ejabberd(tmp, s2s=True, s2s_port=e_s2s, dns_port=dns.port,
               hosts={"xmpp.test": "127.0.0.1"})

Psycgate(tmp, binary, config_text, name="psycgate", args=(), env=None, start=True)
  Writes tmp/NAME.conf and starts `binary -c CONF` (stdout+stderr to
  tmp/NAME.log). The config must have an [s2s] section with a `listen` key
  (`listen = none` unless the test uses S2S: the default 127.0.0.1:5269
  collides between parallel tests); ValueError otherwise.
  .start()  .alive()  .log_text()  .count(regex)
  .wait_log(regex, timeout=15, count=1) -> the last re.Match (Fail on
  timeout or if the daemon exits)  .stop(timeout=15) -> 0, SIGTERM and
  Fail unless it exits 0 in time (under ASan that includes LSan)
  .kill()  .dump(only=None)  .log_path .conf_path .proc
  Leaving its with-block kills it if it still runs: call .stop() to check
  a clean exit.

slixmpp (one asyncio loop for the whole test run; close_loop() at the end):
  chat_roundtrip(jid, password, host, port, to, body, expect_regex=None, timeout=20)
      logs in (STARTTLS if offered, certificates not checked, plain SASL
      allowed), sends a chat message and returns the body of the first
      message whose body matches expect_regex (any if None), as a Reply:
      a str with .frm, .type and .stanza. Raises Fail on timeout, failed
      login or an error stanza.
  Client(jid, password, host, port)  a client that stays online:
      .connect(timeout=20)  .send(to, body, mtype="chat")
      .ping(to, timeout=15) -> "result" | "error:CONDITION" (XEP-0199)
      .wait_message(regex=None, timeout=20, accept_errors=False) -> Reply
          (with accept_errors an error stanza is returned too: its text is
          the condition, e.g. "remote-server-not-found", .type "error")
      .disconnect()
  run(coro, timeout)  runs a coroutine on the shared loop (Fail on timeout).
"""
import asyncio
import atexit
import json
import os
import re
import shutil
import signal
import socket
import ssl
import secrets
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gateway"))
from gwtest import Fail, check, free_port as _gw_free_port, read, wait_for  # noqa: E402,F401

__all__ = ["Fail", "check", "deadline", "free_port", "free_ports", "free_udp_tcp_port", "wait_for", "read",
           "port_open", "make_cert", "tail", "PY", "FakeDNS", "Prosody", "Ejabberd", "Psycgate",
           "chat_roundtrip", "Client", "Reply", "run", "close_loop"]

PY = "/usr/bin/python3"
HERE = os.path.dirname(os.path.abspath(__file__))
FAKEDNS = os.path.join(HERE, "..", "dns", "fakedns.py")


# --- small helpers ---------------------------------------------------------

def free_port(ip="127.0.0.1"):
    if ip == "127.0.0.1":
        return _gw_free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


def free_ports(n, ip="127.0.0.1"):
    """n distinct free TCP ports (all sockets are held until every one is chosen)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((ip, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_udp_tcp_port(ip="127.0.0.1"):
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            t.bind((ip, 0))
            port = t.getsockname()[1]
            u.bind((ip, port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise Fail("no port free for both UDP and TCP on %s" % ip)


def port_open(port, ip="127.0.0.1"):
    try:
        with socket.create_connection((ip, port), timeout=0.5):
            return True
    except OSError:
        return False


def make_cert(name, d, sans=()):
    os.makedirs(d, exist_ok=True)
    crt, key = os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")
    san = ",".join("DNS:" + x for x in (name, "*." + name) + tuple(sans))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                    "-subj", "/CN=" + name, "-addext", "subjectAltName=" + san,
                    "-keyout", key, "-out", crt],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    return crt, key


def tail(path, n=60):
    if not os.path.exists(path):
        return ""
    return "".join(read(path).splitlines(True)[-n:])


def deadline(seconds):
    """Raises Fail in the main thread after `seconds` (SIGALRM), and on
    SIGTERM or SIGHUP, so that the with-blocks still stop every server
    (they run in sessions of their own and would outlive a killed test).
    Call it first, with a limit below the test's ctest TIMEOUT."""
    def handler(signum, frame):
        signal.alarm(0)
        if signum == signal.SIGALRM:
            raise Fail("the test's deadline of %d s was reached" % seconds)
        raise Fail("stopped by signal %d" % signum)
    for sig in (signal.SIGALRM, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)
    signal.alarm(int(seconds))


def _make_traversable(path):
    """Adds o+x to path and its ancestors up to the temp dir (mkdtemp makes
    0700 dirs), so that the ejabberd user can reach its files; refuses to
    touch anything outside the temp dir."""
    top = os.path.realpath(tempfile.gettempdir())
    p = os.path.realpath(path)
    while True:
        mode = os.stat(p).st_mode
        if not mode & 0o001:
            if not p.startswith(top + os.sep):
                raise Fail("the ejabberd user cannot enter %s (not below %s): use a "
                           "tempfile.mkdtemp() directory" % (p, top))
            os.chmod(p, (mode & 0o7777) | 0o111)
        if p == os.sep:
            return
        p = os.path.dirname(p)


def _alive(pid):
    """Running and not a zombie (orphans' zombies linger until init reaps them)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return False
    return st[st.rindex(")") + 2] not in "ZX"


def _descendants(pid):
    """Every process below pid (by walking /proc; su -c starts a new session)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _kill_tree(proc, extra_pids=()):
    """SIGKILL proc, its process group, every descendant and extra_pids."""
    if proc is None:
        return
    pids = set(extra_pids)
    if proc.poll() is None:
        pids |= set(_descendants(proc.pid))
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    try:
        proc.kill()
    except OSError:
        pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass


class _Proc:
    """Common context-manager behaviour: stop on exit, dump logs on error."""
    name = "process"

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is not None:
            self.dump()
        self.close()
        return False

    def close(self):
        """Stop without raising; kill when a clean stop fails."""
        try:
            self.stop()
        except Exception as e:  # noqa: BLE001
            print("%s: stop failed (%s), killing" % (self.name, e))
            self.kill()

    def dump(self):
        pass


# --- fakedns ---------------------------------------------------------------

class FakeDNS(_Proc):
    def __init__(self, tmp, zone="test", a=None, aaaa=None, srv=None, exists=(), servfail=(),
                 drop=(), ip="127.0.0.1", port=None, name="fakedns"):
        self.name, self.ip = name, ip
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.table = os.path.join(self.dir, "table.json")
        self.log_path = os.path.join(self.dir, "fakedns.log")
        self.ready = os.path.join(self.dir, "ready")
        zones = [zone] if isinstance(zone, str) else list(zone)
        with open(self.table, "w") as f:
            json.dump({"zones": zones, "a": a or {}, "aaaa": aaaa or {}, "srv": srv or {},
                       "exists": list(exists), "servfail": list(servfail), "drop": list(drop)}, f)
        self.proc, self._log = None, None
        for attempt in range(5):
            self.port = port or free_udp_tcp_port(ip)
            if self._start():
                return
            if port:
                break
        self.dump()
        raise Fail("fakedns did not start on %s:%d" % (ip, self.port))

    @property
    def addr(self):
        return "%s:%d" % (self.ip, self.port)

    def _start(self):
        if os.path.exists(self.ready):
            os.unlink(self.ready)
        self._log = open(self.log_path, "a")
        self.proc = subprocess.Popen([PY, FAKEDNS, "--listen", self.ip, "--port", str(self.port),
                                      "--json", self.table, "--ready-file", self.ready],
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                     start_new_session=True)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            if os.path.exists(self.ready):
                return True
            if self.proc.poll() is not None:  # port taken between probe and bind: retry
                self._log.close()
                return False
            time.sleep(0.05)
        self.kill()
        return False

    def queries(self):
        return [x for x in read(self.log_path).splitlines() if " query " in x]

    def log_text(self):
        return read(self.log_path) if os.path.exists(self.log_path) else ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                _kill_tree(self.proc)
        self._close_log()

    def kill(self):
        _kill_tree(self.proc)
        self._close_log()

    def _close_log(self):
        if self._log:
            self._log.close()
            self._log = None

    def dump(self):
        print("--- %s log (tail)\n%s" % (self.name, tail(self.log_path, 40)))


# --- Prosody ---------------------------------------------------------------

def _pairs(component):
    if component is None:
        return []
    if isinstance(component, tuple) and len(component) == 2 and isinstance(component[0], str):
        return [component]
    return list(component)


class Prosody(_Proc):
    def __init__(self, tmp, domain="xmpp.test", users=None, component=None, s2s=False,
                 s2s_require_encryption=False, s2s_secure_auth=False, dns_port=None,
                 dns_ip="127.0.0.1", extra_hosts=(), ip="127.0.0.1", c2s_port=None,
                 s2s_port=None, comp_port=None, loglevel="debug", extra_config="", name="prosody"):
        if not shutil.which("prosody") or not shutil.which("prosodyctl"):
            raise Fail("prosody is not installed (run scripts/install-deps)")
        if s2s and dns_port is None:
            raise ValueError("Prosody(s2s=True) needs dns_port (a FakeDNS): never the system resolver")
        self.name, self.domain, self.ip = name, domain, ip
        self.components = _pairs(component)
        self.s2s = s2s
        self.users = dict({"alice": "alicepw"} if users is None else users)
        self.dir = os.path.join(tmp, name)
        self.cfg = os.path.join(self.dir, "prosody.cfg.lua")
        self.log_path = os.path.join(self.dir, "prosody.log")
        self.console_path = os.path.join(self.dir, "console.log")
        ports = free_ports(3, ip)
        self.c2s_port = c2s_port or ports[0]
        self.s2s_port = (s2s_port or ports[1]) if s2s else None
        self.comp_port = (comp_port or ports[2]) if self.components else None
        self.proc, self.console = None, None
        certs = os.path.join(self.dir, "certs")
        os.makedirs(os.path.join(self.dir, "data"))
        os.makedirs(certs)
        os.chmod(self.dir, 0o700)
        for h in [domain] + list(extra_hosts) + [c[0] for c in self.components]:
            make_cert(h, certs)
        lua = ['-- private to this test run (tests/xmpp/xmpptest.py)',
               'pidfile = "%s/prosody.pid"' % self.dir,
               'data_path = "%s/data"' % self.dir,
               'certificates = "%s"' % certs,
               'run_as_root = %s' % ("true" if os.getuid() == 0 else "false"),
               'admin_socket = "%s/prosody.sock"' % self.dir,
               'interfaces = { "%s" }' % ip,
               'local_interfaces = { "%s" }' % ip,
               'c2s_ports = { %d }' % self.c2s_port,
               'c2s_direct_tls_ports = { }',
               's2s_direct_tls_ports = { }',
               'use_ipv6 = false']
        mods = ["roster", "saslauth", "tls", "disco", "ping"]
        disabled = ["offline"]
        if s2s:
            mods.append("dialback")  # not autoloaded (notes §1)
            lua += ['s2s_ports = { %d }' % self.s2s_port,
                    's2s_require_encryption = %s' % ("true" if s2s_require_encryption else "false"),
                    's2s_secure_auth = %s' % ("true" if s2s_secure_auth else "false"),
                    's2s_timeout = 20',
                    # libunbound forwards everything to our fakedns. forward is
                    # mandatory (without it libunbound recurses from the root
                    # hints), and its built-in static NXDOMAIN zone "test." must
                    # be made transparent, or fakedns is never asked (notes §2).
                    'unbound = {',
                    '    resolvconf = false; hoststxt = false;',
                    '    forward = "%s@%d";' % (dns_ip, dns_port),
                    '    options = { ["do-ip6:"] = "no"; ["local-zone:"] = "test. transparent"; };',
                    '}']
        else:
            disabled.append("s2s")  # nothing may leave loopback, no DNS needed
            lua.append('s2s_ports = { }')
        if self.components:
            lua.append('component_ports = { %d }' % self.comp_port)
            lua.append('component_interfaces = { "%s" }' % ip)
        else:
            lua.append('component_ports = { }')
        lua += ['modules_enabled = { %s }' % " ".join('"%s";' % m for m in mods),
                'modules_disabled = { %s }' % " ".join('"%s";' % m for m in disabled),
                'authentication = "internal_hashed"',
                'storage = "internal"',
                'allow_registration = false',
                'c2s_require_encryption = false',
                'allow_unencrypted_plain_auth = true',
                'log = {',
                '    { levels = { min = "%s" }, to = "file", filename = "%s" };' % (loglevel, self.log_path),
                '    { levels = { min = "warn" }, to = "console" };',
                '}',
                extra_config]
        for h in [domain] + list(extra_hosts):
            lua.append('VirtualHost "%s"' % h)
        for cdom, secret in self.components:
            lua += ['Component "%s"' % cdom, '    component_secret = "%s"' % secret]
        with open(self.cfg, "w") as f:
            f.write("\n".join(lua) + "\n")
        for u, pw in self.users.items():
            self.register(u, pw)

    def register(self, user, password, host=None):
        r = subprocess.run(["prosodyctl", "--config", self.cfg, "register", user, host or self.domain,
                            password], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        if r.returncode != 0:
            raise Fail("prosodyctl register %s failed: %s" % (user, r.stdout.decode(errors="replace")))

    def ports(self):
        return [p for p in (self.c2s_port, self.s2s_port, self.comp_port) if p]

    def start(self, timeout=20):
        for p in self.ports():
            check(not port_open(p, self.ip), "port %s:%d is already in use" % (self.ip, p))
        self.console = open(self.console_path, "a")
        self.proc = subprocess.Popen(["prosody", "--config", self.cfg, "-F"], stdin=subprocess.DEVNULL,
                                     stdout=self.console, stderr=self.console, start_new_session=True)
        try:
            wait_for(lambda: self.proc.poll() is None and all(port_open(p, self.ip) for p in self.ports()),
                     "%s to listen on %s" % (self.name, self.ports()), timeout)
        except Fail:
            self.dump()
            self.kill()
            raise

    def stop(self, timeout=10):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                print("%s did not stop within %d s, killing" % (self.name, timeout))
                _kill_tree(self.proc)
        self._close()

    def kill(self):
        _kill_tree(self.proc)
        self._close()

    def _close(self):
        if self.console:
            self.console.close()
            self.console = None

    def log_text(self):
        return read(self.log_path) if os.path.exists(self.log_path) else ""

    def dump(self):
        for p in (self.console_path, self.log_path):
            if os.path.exists(p):
                print("--- %s %s (tail)\n%s" % (self.name, os.path.basename(p), tail(p, 60)))


# --- ejabberd --------------------------------------------------------------

class Ejabberd(_Proc):
    def __init__(self, tmp, domain="ejab.test", users=None, component=None, s2s=False,
                 s2s_starttls="optional", dns_port=None, dns_ip="127.0.0.1", hosts=None,
                 ip="127.0.0.1", c2s_port=None, s2s_port=None, comp_port=None, dist_port=None,
                 loglevel="info", extra_yaml="", name="ejabberd"):
        if not shutil.which("ejabberdctl"):
            raise Fail("ejabberd is not installed (run scripts/install-deps)")
        if os.getuid() != 0:
            raise Fail("Ejabberd needs root (Debian's ejabberdctl su's to the ejabberd user)")
        self.name, self.domain, self.ip = name, domain, ip
        self.components = _pairs(component)
        self.users = dict({"alice": "alicepw"} if users is None else users)
        self.s2s = s2s
        self.dir = d = os.path.join(tmp, name)
        conf = os.path.join(d, "conf")
        for sub in ("conf", "spool", "logs", "certs"):
            os.makedirs(os.path.join(d, sub))
        # ejabberd runs as its own user: it must be able to walk down to d
        _make_traversable(tmp)
        ports = free_ports(4, ip)
        self.c2s_port = c2s_port or ports[0]
        self.s2s_port = (s2s_port or ports[1]) if s2s else None
        self.comp_port = (comp_port or ports[2]) if self.components else None
        self.dist_port = dist_port or ports[3]
        self.pidfile = os.path.join(d, "ejabberd.pid")
        self.log_path = os.path.join(d, "logs", "ejabberd.log")
        self.console_path = os.path.join(d, "console.log")
        self.proc, self.console = None, None

        crt, key = make_cert(domain, os.path.join(d, "certs"))
        pem = os.path.join(d, "certs", domain + ".pem")
        with open(pem, "w") as f:
            f.write(read(crt) + read(key))

        # Erlang's resolver (SRV lookups): no hosts file, no resolv.conf, fakedns only
        with open(os.path.join(conf, "inetrc"), "w") as f:
            f.write('{lookup, [file, dns]}.\n{hosts_file, ""}.\n{resolv_conf, ""}.\n'
                    '{host, {127,0,0,1}, ["localhost"]}.\n{timeout, 2000}.\n{retry, 2}.\n')
            if dns_port:
                f.write("{nameserver, {%s}, %d}.\n" % (dns_ip.replace(".", ","), dns_port))
        # A private cookie (no shared ~ejabberd/.erlang.cookie, which parallel
        # first runs would race to create); the dist interface is given
        # directly (INET_DIST_INTERFACE costs a BEAM boot per ejabberdctl call).
        ctl_cfg = os.path.join(conf, "ejabberdctl.cfg")
        with open(ctl_cfg, "w") as f:
            f.write("ERLANG_NODE=ej%d@localhost\nERL_DIST_PORT=%d\n"
                    "ERL_OPTIONS=\"-setcookie %s -kernel inet_dist_use_interface {127,0,0,1}\"\n"
                    "EJABBERD_PID_PATH=%s\nEJABBERD_BYPASS_WARNINGS=true\n"
                    % (self.dist_port, self.dist_port, secrets.token_hex(16), self.pidfile))
        os.chmod(ctl_cfg, 0o600)
        # glibc (A lookups of SRV targets, notes §3): private hosts and resolv.conf
        self.hosts_file = os.path.join(conf, "hosts")
        self.resolv_file = os.path.join(conf, "resolv.conf")
        with open(self.hosts_file, "w") as f:
            f.write("127.0.0.1 localhost\n%s %s\n" % (ip, domain))
            for h, hip in (hosts or {}).items():
                f.write("%s %s\n" % (hip, h))
        with open(self.resolv_file, "w") as f:
            f.write("nameserver 127.0.0.1\noptions attempts:1 timeout:1\n")
        os.chmod(self.hosts_file, 0o644)
        os.chmod(self.resolv_file, 0o644)

        y = ['# private to this test run (tests/xmpp/xmpptest.py)',
             'hosts:', '  - "%s"' % domain,
             'loglevel: %s' % loglevel,
             'log_rotate_count: 0',
             'certfiles:', '  - "%s"' % pem,
             'listen:',
             '  - port: %d' % self.c2s_port,
             '    ip: "%s"' % ip,
             '    module: ejabberd_c2s',
             '    starttls: true',
             '    access: c2s']
        if s2s:
            y += ['  - port: %d' % self.s2s_port, '    ip: "%s"' % ip, '    module: ejabberd_s2s_in']
        if self.components:
            y += ['  - port: %d' % self.comp_port, '    ip: "%s"' % ip,
                  '    module: ejabberd_service', '    hosts:']
            for cdom, secret in self.components:
                y += ['      "%s":' % cdom, '        password: "%s"' % secret]
        y += ['s2s_use_starttls: %s' % s2s_starttls,
              's2s_access: %s' % ("all" if s2s else "none"),
              's2s_dns_timeout: 3',
              's2s_dns_retries: 1',
              'outgoing_s2s_families: [ipv4]',
              'auth_method: internal',
              'auth_password_format: plain',
              'acl:', '  local:', '    user_regexp: ""',
              'access_rules:', '  local:', '    allow: local', '  c2s:', '    allow: all',
              'api_permissions:', '  "console commands":', '    from:', '      - ejabberd_ctl',
              '    who: all', '    what: "*"',
              'modules:', '  mod_disco: {}', '  mod_ping: {}', '  mod_roster: {}',
              '  mod_s2s_dialback: {}',
              extra_yaml]
        self.yml = os.path.join(conf, "ejabberd.yml")
        with open(self.yml, "w") as f:
            f.write("\n".join(y) + "\n")
        subprocess.run(["chown", "-R", "ejabberd:ejabberd", d], check=True, timeout=30)
        self.ctl_cmd = ["ejabberdctl", "--config-dir", conf, "--config", self.yml,
                        "--ctl-config", os.path.join(conf, "ejabberdctl.cfg"),
                        "--logs", os.path.join(d, "logs"), "--spool", os.path.join(d, "spool")]
        self._registered = False

    def ports(self):
        return [p for p in (self.c2s_port, self.s2s_port, self.comp_port) if p]

    def _beam_pid(self):
        try:
            return int(read(self.pidfile).strip())
        except (OSError, ValueError):
            return None

    def start(self, timeout=60):
        for p in self.ports() + [self.dist_port]:
            check(not port_open(p, self.ip), "port %s:%d is already in use" % (self.ip, p))
        self.console = open(self.console_path, "a")
        # a private mount namespace: /etc/hosts and /etc/resolv.conf of this
        # process tree only; nothing global changes, the mounts die with it
        cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
               'mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf && shift 2 && exec "$@"',
               "sh", self.hosts_file, self.resolv_file] + self.ctl_cmd + ["foreground"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.console,
                                     stderr=self.console, start_new_session=True)
        try:
            wait_for(lambda: self.proc.poll() is None and all(port_open(p, self.ip) for p in self.ports()),
                     "%s to listen on %s" % (self.name, self.ports()), timeout)
            if not self._registered:
                for u, pw in self.users.items():
                    self.register(u, pw)
                self._registered = True
        except Fail:
            self.dump()
            self.kill()
            raise

    def ctl(self, *args, timeout=30):
        try:
            return subprocess.run(self.ctl_cmd + list(args), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Fail("ejabberdctl %s: no answer within %d s" % (" ".join(args), timeout))

    def register(self, user, password):
        r = self.ctl("register", user, self.domain, password)
        out = r.stdout.decode(errors="replace")
        if r.returncode != 0 and "already registered" not in out:
            raise Fail("ejabberdctl register %s@%s failed: %s" % (user, self.domain, out.strip()))

    def stop(self, timeout=30):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            beam = self._beam_pid()
            end = time.monotonic() + timeout
            try:
                self.ctl("stop", timeout=max(5, timeout // 2))
            except Fail as e:
                print("%s: %s" % (self.name, e))
            while time.monotonic() < end and (self.proc.poll() is None or (beam and _alive(beam))):
                time.sleep(0.1)
            if self.proc.poll() is None or (beam and _alive(beam)):
                print("%s did not stop within %d s, killing" % (self.name, timeout))
                self.kill()
                return
        self._close()

    def kill(self):
        beam = self._beam_pid()
        _kill_tree(self.proc, [beam] if beam and _alive(beam) else [])
        self._close()

    def _close(self):
        self.proc = None
        if os.path.exists(self.pidfile):
            try:
                os.unlink(self.pidfile)
            except OSError:
                pass
        if self.console:
            self.console.close()
            self.console = None

    def log_text(self):
        return read(self.log_path) if os.path.exists(self.log_path) else ""

    def dump(self):
        for p in (self.console_path, self.log_path, os.path.join(self.dir, "logs", "error.log")):
            if os.path.exists(p):
                print("--- %s %s (tail)\n%s" % (self.name, os.path.basename(p), tail(p, 60)))


# --- psycgate --------------------------------------------------------------

def _has_s2s_listen(text):
    section = None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            section = s[1:-1].strip()
        elif section == "s2s" and re.match(r"listen\s*=", s):
            return True
    return False


class Psycgate(_Proc):
    def __init__(self, tmp, binary, config_text, name="psycgate", args=(), env=None, start=True):
        if not _has_s2s_listen(config_text):
            raise ValueError("psycgate config without [s2s] listen: the default 127.0.0.1:5269 "
                             "collides between parallel tests; write `listen = none`")
        self.name, self.binary, self.args, self.env = name, binary, list(args), env
        self.conf_path = os.path.join(tmp, name + ".conf")
        self.log_path = os.path.join(tmp, name + ".log")
        with open(self.conf_path, "w") as f:
            f.write(config_text)
        self.proc, self._log = None, None
        if start:
            self.start()

    def start(self):
        check(self.proc is None or self.proc.poll() is not None, "%s is already running" % self.name)
        self._log = open(self.log_path, "a")
        self.proc = subprocess.Popen([self.binary, "-c", self.conf_path] + self.args,
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                     env=self.env)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        return read(self.log_path) if os.path.exists(self.log_path) else ""

    def count(self, regex):
        return len(re.findall(regex, self.log_text(), re.M))

    def wait_log(self, regex, timeout=15, count=1):
        end = time.monotonic() + timeout
        while True:
            found = list(re.finditer(regex, self.log_text(), re.M))
            if len(found) >= count:
                return found[-1]
            if not self.alive():
                raise Fail("%s exited (%s) while waiting for /%s/" % (
                    self.name, self.proc.returncode if self.proc else "not started", regex))
            if time.monotonic() > end:
                raise Fail("timed out after %g s waiting for /%s/ (x%d) in the %s log"
                           % (timeout, regex, count, self.name))
            time.sleep(0.05)

    def stop(self, timeout=15):
        """SIGTERM; Fail unless the daemon exits 0 within timeout (then it is killed)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise Fail("%s did not stop within %d s of SIGTERM" % (self.name, timeout))
        self._close_log()
        rc = self.proc.returncode
        check(rc == 0, "%s exited with %d after SIGTERM" % (self.name, rc))
        return rc

    def close(self):
        if self.alive():
            self.kill()
        self._close_log()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self._close_log()

    def _close_log(self):
        if self._log:
            self._log.close()
            self._log = None

    def dump(self, only=None):
        lines = self.log_text().splitlines(True)
        if only:
            lines = [x for x in lines if re.search(only, x)]
        print("--- %s log%s\n%s" % (self.name, " (/%s/)" % only if only else "", "".join(lines)))


# --- slixmpp ---------------------------------------------------------------

_LOOP = None


def _loop():
    """One asyncio loop for the whole run: slixmpp leaves tasks behind on the
    loop a client ran on, and closing it under them only produces noise."""
    global _LOOP
    if _LOOP is None or _LOOP.is_closed():
        _LOOP = asyncio.new_event_loop()
        asyncio.set_event_loop(_LOOP)
    return _LOOP


def close_loop():
    global _LOOP
    if _LOOP is None or _LOOP.is_closed():
        return
    pending = asyncio.all_tasks(_LOOP)
    for t in pending:
        t.cancel()
    _LOOP.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    _LOOP.close()
    _LOOP = None


atexit.register(close_loop)


def run(coro, timeout):
    try:
        return _loop().run_until_complete(asyncio.wait_for(coro, timeout))
    except asyncio.TimeoutError:
        raise Fail("timed out after %g s" % timeout)


class Reply(str):
    """A message body, with .frm (full JID), .type and .stanza (slixmpp's)."""
    frm = ""
    type = ""
    stanza = None


class Client:
    def __init__(self, jid, password, host, port):
        _loop()
        try:
            import slixmpp
        except ImportError:
            raise Fail("python3-slixmpp is not installed (run scripts/install-deps)")
        self.jid, self.host, self.port = jid, host, port
        if "/" not in jid:
            jid += "/test"
        self.c = slixmpp.ClientXMPP(jid, password)
        # the servers' certificates are self-signed: STARTTLS yes, checks no
        self.c.ssl_context.check_hostname = False
        self.c.ssl_context.verify_mode = ssl.CERT_NONE
        self.online, self.messages = asyncio.Event(), asyncio.Queue()
        self.auth_failed = False

        def on_session_start(_):
            self.c.send_presence()
            self.online.set()

        def on_failed_auth(_):
            self.auth_failed = True

        self.c.add_event_handler("session_start", on_session_start)
        self.c.add_event_handler("failed_auth", on_failed_auth)
        self.c.add_event_handler("message", lambda m: self.messages.put_nowait(m))
        # slixmpp fires only "message_error" (not "message") for type='error'
        self.c.add_event_handler("message_error", lambda m: self.messages.put_nowait(m))

    def connect(self, timeout=20):
        async def go():
            self.c.connect(address=(self.host, self.port))
            while not self.online.is_set():
                if self.auth_failed:
                    raise Fail("%s: authentication failed" % self.jid)
                try:
                    await asyncio.wait_for(self.online.wait(), 0.1)
                except asyncio.TimeoutError:
                    pass
        try:
            run(go(), timeout)
        except Fail as e:
            raise Fail("%s could not log in at %s:%d: %s" % (self.jid, self.host, self.port, e))

    def send(self, to, body, mtype="chat"):
        self.c.send_message(mto=to, mbody=body, mtype=mtype)

    def wait_message(self, regex=None, timeout=20, accept_errors=False):
        async def go():
            while True:
                m = await self.messages.get()
                if str(m["type"]) == "error":
                    if not accept_errors:
                        raise Fail("error stanza from %s: %s" % (m["from"], m["error"]))
                    r = Reply(str(m["error"]["condition"]))
                    r.frm, r.type, r.stanza = str(m["from"]), "error", m
                    return r
                body = str(m["body"])
                if regex is None or re.search(regex, body):
                    r = Reply(body)
                    r.frm, r.type, r.stanza = str(m["from"]), str(m["type"]), m
                    return r
                print("(%s ignored a message from %s: %r)" % (self.jid, m["from"], body))
        try:
            return run(go(), timeout)
        except Fail as e:
            raise Fail("%s: no message%s: %s" % (self.jid, " matching /%s/" % regex if regex else "", e))

    def ping(self, to, timeout=15):
        """XEP-0199 ping to `to`: "result", or "error:CONDITION" (or "error:timeout")."""
        async def go():
            import xml.etree.ElementTree as ET
            iq = self.c.make_iq_get(ito=to)
            iq.append(ET.Element("{urn:xmpp:ping}ping"))
            try:
                r = await iq.send(timeout=timeout)
                return str(r["type"])
            except Exception as e:  # slixmpp: IqError (type='error') or IqTimeout
                iq_ = getattr(e, "iq", None)
                return "error:%s" % (iq_["error"]["condition"] if iq_ is not None else "timeout")
        return run(go(), timeout + 5)

    def disconnect(self):
        async def go():
            self.c.disconnect()
            await asyncio.sleep(0.2)
        try:
            run(go(), 5)
        except Fail:
            pass


def chat_roundtrip(jid, password, host, port, to, body, expect_regex=None, timeout=20):
    """Log in, send one chat message, return the first matching reply (a Reply)."""
    end = time.monotonic() + timeout
    c = Client(jid, password, host, port)
    try:
        c.connect(timeout)
        c.send(to, body)
        return c.wait_message(expect_regex, max(1.0, end - time.monotonic()))
    finally:
        c.disconnect()
