#!/usr/bin/python3
"""Authoritative-only DNS server for psycgate's loopback DNS tests.

Adapted from ../shared/xmpp-harness/fakedns.py (python3-dnslib). It never
recurses and never forwards, so a test that points its resolver here can
not leak a query off the machine.

Answers, for a name asked with some type:
  outside every --zone                 REFUSED
  listed with --drop                   no answer at all (the client times out)
  listed with --servfail               SERVFAIL
  unknown inside a zone                NXDOMAIN
  known, but no record of that type    NOERROR with no answer (NODATA)
  known, with records of that type     the records
A name is known when it has a record of any type or is listed with --exists.

The table comes from the command line, a JSON file, or both:

  fakedns.py --listen 127.0.0.1 --port 15353 --zone test \\
      --a gw.test=127.0.0.2 --aaaa gw.test=::2 \\
      --srv _xmpp-server._tcp.gw.test=gw.test:15270[:PRIO:WEIGHT] \\
      --srv _psyc._tcp.off.test=.:0            (target "." = no service) \\
      --exists _xmpp-server._tcp.nodata.test --servfail broken.test --drop slow.test

  --json FILE with {"zones": [...], "a": {"name": "ip" | ["ip", ...]},
                    "aaaa": {...}, "srv": {"name": ["target:port[:prio:weight]", ...]},
                    "exists": [...], "servfail": [...], "drop": [...]}

Every query is logged on stdout, one line each ("query NAME TYPE ... -> RCODE
[answers]"), so a test can assert which names were (not) asked. With
--ready-file, the file is created once both the UDP and TCP sockets listen.
"""
import argparse
import json
import os
import signal
import sys
import time

from dnslib import AAAA, QTYPE, RCODE, RR, SRV, A, DNSError, DNSLabel
from dnslib.server import BaseResolver, DNSLogger, DNSServer


def norm(name):
    return str(DNSLabel(name)).lower()


class Table:
    def __init__(self):
        self.zones = []
        self.records = {}  # (name, qtype) -> [rdata]
        self.known = set()
        self.servfail = set()
        self.drop = set()

    def add(self, name, qtype, rdata):
        n = norm(name)
        self.records.setdefault((n, qtype), []).append(rdata)
        self.known.add(n)

    def add_srv(self, name, spec):
        parts = spec.split(":")
        if len(parts) not in (2, 4):
            raise SystemExit("bad SRV spec %r: want target:port[:prio:weight]" % spec)
        prio = int(parts[2]) if len(parts) > 2 else 0
        weight = int(parts[3]) if len(parts) > 3 else 0
        self.add(name, "SRV", SRV(priority=prio, weight=weight, port=int(parts[1]), target=parts[0]))

    def load_json(self, path):
        with open(path) as f:
            t = json.load(f)
        self.zones += [DNSLabel(z) for z in t.get("zones", [])]
        for key, cls in (("a", A), ("aaaa", AAAA)):
            for name, ips in t.get(key, {}).items():
                for ip in ips if isinstance(ips, list) else [ips]:
                    self.add(name, key.upper(), cls(ip))
        for name, specs in t.get("srv", {}).items():
            for spec in specs if isinstance(specs, list) else [specs]:
                self.add_srv(name, spec)
        for name in t.get("exists", []):
            self.known.add(norm(name))
        self.servfail |= {norm(n) for n in t.get("servfail", [])}
        self.drop |= {norm(n) for n in t.get("drop", [])}


def pair(item):
    if "=" not in item:
        raise SystemExit("expected NAME=VALUE, got %r" % item)
    return item.split("=", 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=15353)
    ap.add_argument("--zone", action="append", default=[], help="authoritative zone (default: test)")
    ap.add_argument("--json", help="table in a JSON file (see above)")
    ap.add_argument("--a", action="append", default=[], help="name=ipv4")
    ap.add_argument("--aaaa", action="append", default=[], help="name=ipv6")
    ap.add_argument("--srv", action="append", default=[], help="_svc._proto.name=target:port[:prio:weight]")
    ap.add_argument("--exists", action="append", default=[], help="name that exists without records")
    ap.add_argument("--servfail", action="append", default=[], help="name answered with SERVFAIL")
    ap.add_argument("--drop", action="append", default=[], help="name never answered")
    ap.add_argument("--ttl", type=int, default=5)
    ap.add_argument("--ready-file", help="created once listening")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()

    if not args.listen.startswith("127.") and args.listen != "::1":
        raise SystemExit("fakedns listens on loopback only, not %s" % args.listen)

    t = Table()
    t.zones = [DNSLabel(z) for z in args.zone]
    if args.json:
        t.load_json(args.json)
    if not t.zones:
        t.zones = [DNSLabel("test")]
    for item in args.a:
        n, ip = pair(item)
        t.add(n, "A", A(ip))
    for item in args.aaaa:
        n, ip = pair(item)
        t.add(n, "AAAA", AAAA(ip))
    for item in args.srv:
        t.add_srv(*pair(item))
    t.known |= {norm(n) for n in args.exists}
    t.servfail |= {norm(n) for n in args.servfail}
    t.drop |= {norm(n) for n in args.drop}

    def log(line):
        if not args.quiet:
            print("%.3f %s" % (time.time(), line), flush=True)

    class Resolver(BaseResolver):
        def resolve(self, request, handler):
            reply = request.reply()
            reply.header.ra = 0
            q = request.q
            qname = norm(q.qname)
            qtype = QTYPE.get(q.qtype, str(q.qtype))
            proto = getattr(handler, "protocol", "?")
            if not any(q.qname.matchSuffix(z) for z in t.zones):
                reply.header.rcode = RCODE.REFUSED
                reply.header.aa = 0
            elif qname in t.drop:
                log("query %s %s %s -> DROPPED" % (qname, qtype, proto))
                raise DNSError("dropped on purpose")  # dnslib then sends nothing
            elif qname in t.servfail:
                reply.header.rcode = RCODE.SERVFAIL
            elif qname not in t.known:
                reply.header.rcode = RCODE.NXDOMAIN
                reply.header.aa = 1
            else:
                reply.header.aa = 1
                for rdata in t.records.get((qname, qtype), []):
                    reply.add_answer(RR(q.qname, q.qtype, rdata=rdata, ttl=args.ttl))
            log("query %s %s %s -> %s %s" % (qname, qtype, proto, RCODE[reply.header.rcode],
                                            [str(r.rdata) for r in reply.rr]))
            return reply

    logger = DNSLogger(logf=lambda s: None)  # we print our own lines
    resolver = Resolver()
    servers = [DNSServer(resolver, port=args.port, address=args.listen, logger=logger),
               DNSServer(resolver, port=args.port, address=args.listen, logger=logger, tcp=True)]
    for s in servers:
        s.start_thread()

    def stop(*_):
        # No state to flush; dnslib's server.stop() polls for ~1 s per server.
        sys.stdout.flush()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log("fakedns listening on %s:%d zones=%s records=%d" % (
        args.listen, args.port, [str(z) for z in t.zones], sum(len(v) for v in t.records.values())))
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(tmp, args.ready_file)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
