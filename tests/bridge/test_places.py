#!/usr/bin/python3
"""MUC over PSYC places (issue 7; issue 6 lookalikes; XEP-0045, PSYC.md §4.2).

Usage: test_places.py PATH/TO/psycgate

  Prosody a.test (alice, dave) -- component b.test -- psycgate-A (host a.test)
        PSYC circuits (0.9), found by SRV _psyc._tcp.{a,b}.test
  Prosody b.test (bob)  -- components a.test, rooms.b.test -- psycgate-B (host b.test)
  (Prosody a.test also hands psyced.test to psycgate-A: a fake psyced there)

psycgate-B hosts the place psyc://b.test/@room. a.test users reach it as
*room@b.test (natural addresses: Prosody a.test hands b.test to
psycgate-A, which speaks PSYC to psycgate-B); bob, whose own domain is
b.test, reaches it as room@rooms.b.test ([places] domain = rooms.b.test).
Everything on 127.0.0.1 with free ports; DNS only from fakedns.

Checks (every wait bounded):
  1. bob joins first (owner): self-presence with 110, 100, 170 and
     affiliation owner, then the (empty) subject; bob sets a subject and
     says something (history);
  2. alice joins: the burst arrives in XEP-0045 §7.2 order: bob's
     presence, her self-presence (110/100/170, her real JID), the history
     message with <delay/>, the subject;
  3. disco#info of the room (conference/text); dave joins as "alice"
     without history (maxstanzas='0'): two occupants Alice and alice
     (issue 6), each flagged "lookalike of ..." in its presence;
  4. a groupchat from alice reaches bob, alice and dave; ONE packet for it
     crossed to psycgate-A (one cast line at B with 1 route, one fan-out
     line at A with 2 stanzas);
  5. private message dave -> Bob through the room;
  6. nick change: dave to "Bob" is refused (<conflict/> from room/Bob);
     alice -> Alicia: 303 and the new presence;
  7. kick of "alice" (dave) by the owner: 307 (+110 for dave), iq result;
  8. alice leaves: 110 unavailable for her, unavailable for bob;
  9. dave joins a psyced place (*lab@psyced.test, a psyced-like PSYC 0.9
     peer answering with the packets of psyced's captures): the burst from
     _echo_place_enter, the subject; a gap in the casts' _counter makes
     psycgate-A ask _request_members, and the member who entered during
     the gap is shown; dave leaves (110);
 10. PSYC people in an XMPP MUC room (issue 7, second part): bob and
     carol join room@conference.a.test (Prosody a.test's MUC; psycgate-A,
     [places] muc) as *room@conference.a.test; alice is in it by XMPP;
     alice's message crosses PSYC ONCE for both; bob speaks and leaves;
 11. disco#items of rooms.b.test lists room@rooms.b.test;
 12. psycgate-B restarts: while it is down, carol (still in the XMPP room)
     is lost for psycgate-A after [places] netsplit and leaves the room;
     the place, bob as its owner and the subject come back from the store;
 13. netsplit: alice is in again and psycgate-A stops; bob's next message
     waits for a circuit to a.test longer than [places] netsplit: alice
     leaves with _notice_place_leave_netburp (status "netsplit");
 14. both psycgates stop on SIGTERM with exit 0.
"""
import asyncio
import contextlib
import os
import re
import sys
import tempfile
import shutil
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bridgetest import (IP, Fail, FakeDNS, Prosody, Psycgate, check, close_loop, deadline,  # noqa: E402
                        free_ports, iq_get, psycgate_config, run, wait_line)
from xmpptest import Client  # noqa: E402
from test_register import FakePsyced  # noqa: E402  (a psyced-like PSYC 0.9 peer)

A, B, ROOMS, PSYCED, CONF = "a.test", "b.test", "rooms.b.test", "psyced.test", "conference.a.test"
SECRET = "places-secret"
ROOM_A = "*room@" + B          # as a.test users see it
ROOM_B = "room@" + ROOMS        # as bob sees it
MUC = "http://jabber.org/protocol/muc"
MUC_USER = MUC + "#user"
MUC_ADMIN = MUC + "#admin"


class MucClient(Client):
    """Records every presence and message stanza (as ElementTree
    elements) in arrival order."""

    def __init__(self, jid, password, host, port):
        super().__init__(jid, password, host, port)
        from slixmpp.xmlstream.handler import Callback
        from slixmpp.xmlstream.matcher import MatchXPath
        self.got = []
        for kind in ("presence", "message", "iq"):
            self.c.register_handler(Callback("rec-" + kind, MatchXPath("{jabber:client}%s" % kind),
                                             lambda st: self.got.append(st.xml)))

    def raw(self, xml):
        self.c.send_raw(xml)

    def wait(self, pred, what, timeout=20, since=0):
        async def go():
            while True:
                for i in range(since, len(self.got)):
                    if pred(self.got[i]):
                        return i, self.got[i]
                await asyncio.sleep(0.05)
        try:
            return run(go(), timeout)
        except Fail:
            raise Fail("%s: no %s within %g s; got:\n  %s" % (self.jid, what, timeout, "\n  ".join(
                ET.tostring(x, encoding="unicode") for x in self.got[since:][-15:])))

    def from_room(self, room, since=0):
        return [(i, x) for i, x in enumerate(self.got) if i >= since and x.get("from", "").split("/")[0] == room]


def codes(st):
    x = st.find("{%s}x" % MUC_USER)
    return set() if x is None else {s.get("code") for s in x.findall("{%s}status" % MUC_USER)}


def item(st):
    x = st.find("{%s}x" % MUC_USER)
    return None if x is None else x.find("{%s}item" % MUC_USER)


def text(st, name):
    e = st.find("{jabber:client}%s" % name)
    return None if e is None else (e.text or "")


def is_pres(st, frm, typ=None):
    return st.tag == "{jabber:client}presence" and st.get("from") == frm and st.get("type") == typ


def is_msg(st, frm, body=None, mtype="groupchat"):
    return (st.tag == "{jabber:client}message" and st.get("from") == frm and st.get("type") == mtype
            and (body is None or text(st, "body") == body))


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
    deadline(170)  # below the ctest TIMEOUT (180): cleanup must still run
    tmp = tempfile.mkdtemp(prefix="psycgate-places-")
    ok = False
    try:
        with contextlib.ExitStack() as st:
            psyc_a, psyc_b, psyc_p = free_ports(3, IP)
            dns = st.enter_context(FakeDNS(
                tmp, a={A: IP, B: IP, PSYCED: IP, CONF: IP},
                srv={"_psyc._tcp." + A: ["%s:%d" % (A, psyc_a)], "_psyc._tcp." + B: ["%s:%d" % (B, psyc_b)],
                     "_psyc._tcp." + CONF: ["%s:%d" % (CONF, psyc_a)],
                     "_psyc._tcp." + PSYCED: ["%s:%d" % (PSYCED, psyc_p)]}))
            psyced = FakePsyced(psyc_p)
            st.callback(psyced.close)
            pa = st.enter_context(Prosody(tmp, domain=A, users={"alice": "alicepw", "dave": "davepw"},
                                          component=[(B, SECRET), (PSYCED, SECRET)], name="prosody-a",
                                          extra_config='Component "%s" "muc"\n    muc_room_locking = false\n' % CONF))
            pb = st.enter_context(Prosody(tmp, domain=B, users={"bob": "bobpw", "carol": "carolpw"},
                                          component=[(A, SECRET), (ROOMS, SECRET), (CONF, SECRET)],
                                          name="prosody-b"))
            pa.start()
            pb.start()
            ga = st.enter_context(Psycgate(tmp, binary, psycgate_config(
                A, os.path.join(tmp, "state-a"), psyc_a, dns_port=dns.port, component="%s, %s" % (B, PSYCED),
                comp_port=pa.comp_port, extra="[places]\nmuc = %s\nnetsplit = 2\n" % CONF,
                secret=SECRET), name="psycgate-a"))
            conf_b = psycgate_config(
                B, os.path.join(tmp, "state-b"), psyc_b, dns_port=dns.port, component="%s, %s, %s" % (A, ROOMS, CONF),
                comp_port=pb.comp_port, secret=SECRET, extra="[places]\ndomain = %s\nhistory = 10\nnetsplit = 2\n" % ROOMS)
            gb = st.enter_context(Psycgate(tmp, binary, conf_b, name="psycgate-b"))
            ga.wait_log(r"component b\.test linked", 15)
            gb.wait_log(r"component a\.test linked", 15)
            gb.wait_log(r"component rooms\.b\.test linked", 15)
            print("ok - psycgate-A serves b.test at Prosody a.test; psycgate-B serves a.test and rooms.b.test")

            bob = MucClient("bob@" + B + "/phone", "bobpw", IP, pb.c2s_port)
            alice = MucClient("alice@" + A + "/pc", "alicepw", IP, pa.c2s_port)
            dave = MucClient("dave@" + A + "/laptop", "davepw", IP, pa.c2s_port)
            for c in (bob, alice, dave):
                c.connect(20)
            print("ok - bob@b.test, alice@a.test, dave@a.test online")

            # 1. bob creates the room (owner)
            bob.raw("<presence to='%s/Bob'><x xmlns='%s'/></presence>" % (ROOM_B, MUC))
            i, me = bob.wait(lambda x: is_pres(x, ROOM_B + "/Bob") and "110" in codes(x), "bob's self-presence")
            check({"110", "100", "170"} <= codes(me), "bob's self-presence codes %r" % codes(me))
            check(item(me).get("affiliation") == "owner" and item(me).get("role") == "moderator",
                  "bob is %r" % item(me).attrib)
            _, subj = bob.wait(lambda x: x.tag.endswith("message") and x.find("{jabber:client}subject") is not None,
                               "the subject after bob's self-presence", 10, since=i)
            print("ok - bob joined %s: self-presence %s as owner, then the subject" % (ROOM_B, sorted(codes(me))))
            bob.raw("<message to='%s' type='groupchat'><subject>Welcome to the room</subject></message>" % ROOM_B)
            bob.wait(lambda x: is_msg(x, ROOM_B + "/Bob") and text(x, "subject") == "Welcome to the room",
                     "bob's subject echoed", 10)
            bob.raw("<message to='%s' type='groupchat'><body>first message</body></message>" % ROOM_B)
            bob.wait(lambda x: is_msg(x, ROOM_B + "/Bob", "first message"), "bob's message back", 10)
            print("ok - bob set the subject and spoke")

            # 2. alice joins from a.test: the XEP-0045 §7.2 burst, in order
            alice.raw("<presence to='%s/Alice'><x xmlns='%s'/></presence>" % (ROOM_A, MUC))
            alice.wait(lambda x: x.tag.endswith("message") and text(x, "subject") == "Welcome to the room",
                       "alice's subject (end of the burst)", 30)
            burst = [x for _, x in alice.from_room(ROOM_A)]
            kinds = []
            for x in burst:
                if is_pres(x, ROOM_A + "/Bob"):
                    kinds.append("others")
                elif is_pres(x, ROOM_A + "/Alice") and "110" in codes(x):
                    kinds.append("self")
                elif is_msg(x, ROOM_A + "/Bob", "first message"):
                    kinds.append("history")
                elif text(x, "subject") is not None:
                    kinds.append("subject")
                else:
                    kinds.append("other:" + ET.tostring(x, encoding="unicode"))
            check(kinds == ["others", "self", "history", "subject"], "alice's burst: %r" % kinds)
            self_p = burst[1]
            check({"110", "100", "170"} <= codes(self_p), "alice's self-presence codes %r" % codes(self_p))
            check(item(self_p).get("jid") == "alice@a.test/pc", "alice's own item %r" % item(self_p).attrib)
            check(item(burst[0]).get("jid") == "bob@b.test" and item(burst[0]).get("affiliation") == "owner",
                  "bob as alice sees him: %r" % item(burst[0]).attrib)
            check(burst[2].find("{urn:xmpp:delay}delay") is not None, "the history message has no <delay/>")
            print("ok - alice's join burst in order: %s; self %s; history with <delay/>" % (kinds, sorted(codes(self_p))))
            bob.wait(lambda x: is_pres(x, ROOM_B + "/Alice"), "alice's presence at bob", 10)
            wait_line(ga, ["<presence/> from alice@a.test/pc", "-> _request_enter to psyc://b.test/@room"],
                      "psycgate-A: alice's enter to PSYC", 5)
            wait_line(gb, ["_request_enter from psyc://a.test/~alice to psyc://b.test/@room"],
                      "psycgate-B: the place got alice's enter", 5)

            # 3. dave joins as "alice": a lookalike of "Alice" (issue 6)
            kind, info = iq_get(dave, ROOM_A, "http://jabber.org/protocol/disco#info")
            check(kind == "result" and 'category="conference"' in ET.tostring(info.xml, encoding="unicode"),
                  "disco#info of %s: %s" % (ROOM_A, kind))
            dave.raw("<presence to='%s/alice'><x xmlns='%s'><history maxstanzas='0'/></x></presence>" % (ROOM_A, MUC))
            dave.wait(lambda x: x.tag.endswith("message") and text(x, "subject") is not None, "dave's burst", 30)
            check(not [x for _, x in dave.from_room(ROOM_A) if text(x, "body") is not None],
                  "dave asked for no history and got some")
            _, a_at_d = dave.wait(lambda x: is_pres(x, ROOM_A + "/Alice"), "Alice at dave", 5)
            check(text(a_at_d, "status") == "lookalike of alice", "Alice at dave: status %r" % text(a_at_d, "status"))
            for who, room in ((bob, ROOM_B), (alice, ROOM_A)):
                _, d = who.wait(lambda x: is_pres(x, room + "/alice"), "dave (alice) at %s" % who.jid, 10)
                check(text(d, "status") == "lookalike of Alice", "dave at %s: status %r" % (who.jid, text(d, "status")))
            print("ok - occupants 'Alice' and 'alice' are distinct and flagged as lookalikes")

            # 4. groupchat reaches all three; one packet crossed to psycgate-A
            marks = [len(c.got) for c in (bob, alice, dave)]
            a_log = len(ga.log_text().splitlines())
            alice.raw("<message to='%s' type='groupchat'><body>hello everyone</body></message>" % ROOM_A)
            bob.wait(lambda x: is_msg(x, ROOM_B + "/Alice", "hello everyone"), "alice's groupchat at bob", 20, marks[0])
            alice.wait(lambda x: is_msg(x, ROOM_A + "/Alice", "hello everyone"), "her own groupchat back", 20, marks[1])
            dave.wait(lambda x: is_msg(x, ROOM_A + "/Alice", "hello everyone"), "alice's groupchat at dave", 20,
                      marks[2])
            cast = wait_line(gb, ["psyc://b.test/@room: cast _message_public #", "-> 1 routes and our own occupants"],
                             "psycgate-B: one cast to one route", 5)
            n = re.search(r"#(\d+)", cast).group(1)
            # The cast goes down the place's distribution tree
            # (gateway/mcast_ctx.h), which numbers it with its own _counter.
            wait_line(gb, ["psyc://b.test/@room #", ": _message_public to 1 routes"], "psycgate-B: the cast in the tree", 5)
            lines = [x for x in ga.log_text().splitlines()[a_log:] if "psyc://b.test/@room: _message_public #" in x]
            check(len(lines) == 1 and "-> 2 stanzas to 2 occupants here" in lines[0],
                  "psycgate-A got cast #%s as %r" % (n, lines))
            print("ok - groupchat reached bob, alice, dave; ONE copy crossed to psycgate-A: %s" % lines[0].split(" place ")[-1])

            # 5. a private message through the room
            dave.raw("<message to='%s/Bob' type='chat'><body>psst, bob</body></message>" % ROOM_A)
            _, pm = bob.wait(lambda x: is_msg(x, ROOM_B + "/alice", "psst, bob", "chat"), "dave's whisper at bob", 20)
            print("ok - private message through the room: bob got it from %s" % pm.get("from"))

            # 6. nick change: to a nick in use refused (XEP-0045 §7.6), then done
            m0 = len(dave.got)
            dave.raw("<presence to='%s/Bob'><x xmlns='%s'/></presence>" % (ROOM_A, MUC))
            _, e = dave.wait(lambda x: is_pres(x, ROOM_A + "/Bob", "error"), "the conflict of dave's nick change", 20,
                             m0)
            check(e.find("{jabber:client}error/{urn:ietf:params:xml:ns:xmpp-stanzas}conflict") is not None,
                  "dave's refused nick change: %s" % ET.tostring(e, encoding="unicode"))
            marks = [len(c.got) for c in (bob, alice, dave)]
            alice.raw("<presence to='%s/Alicia'><x xmlns='%s'/></presence>" % (ROOM_A, MUC))
            _, gone = alice.wait(lambda x: is_pres(x, ROOM_A + "/Alice", "unavailable"), "303 at alice", 20, marks[1])
            check({"303", "110"} <= codes(gone) and item(gone).get("nick") == "Alicia",
                  "alice's nick change: %r %r" % (codes(gone), item(gone).attrib))
            alice.wait(lambda x: is_pres(x, ROOM_A + "/Alicia") and "110" in codes(x), "alice's new self-presence", 10,
                       marks[1])
            _, g = bob.wait(lambda x: is_pres(x, ROOM_B + "/Alice", "unavailable"), "303 at bob", 10, marks[0])
            check("303" in codes(g) and "110" not in codes(g), "bob saw the nick change with %r" % codes(g))
            bob.wait(lambda x: is_pres(x, ROOM_B + "/Alicia"), "Alicia at bob", 10, marks[0])
            print("ok - nick change Alice -> Alicia (303, new presence)")

            # 7. the owner kicks "alice" (dave)
            marks = [len(c.got) for c in (bob, alice, dave)]
            bob.raw("<iq type='set' id='kick1' to='%s'><query xmlns='%s'><item nick='alice' role='none'>"
                    "<reason>lookalike</reason></item></query></iq>" % (ROOM_B, MUC_ADMIN))
            _, k = dave.wait(lambda x: is_pres(x, ROOM_A + "/alice", "unavailable"), "dave kicked", 20, marks[2])
            check({"307", "110"} <= codes(k), "dave's kick codes %r" % codes(k))
            _, k = alice.wait(lambda x: is_pres(x, ROOM_A + "/alice", "unavailable"), "dave's kick at alice", 10,
                              marks[1])
            check("307" in codes(k), "alice saw the kick with %r" % codes(k))
            bob.wait(lambda x: x.tag.endswith("iq") and x.get("id") == "kick1" and x.get("type") == "result",
                     "bob's kick result", 10, marks[0])
            print("ok - the owner kicked 'alice' (307; 110 for dave; iq result)")

            # 8. alice leaves
            marks = [len(c.got) for c in (bob, alice, dave)]
            alice.raw("<presence to='%s/Alicia' type='unavailable'/>" % ROOM_A)
            _, l = alice.wait(lambda x: is_pres(x, ROOM_A + "/Alicia", "unavailable"), "alice's own leave", 20,
                              marks[1])
            check("110" in codes(l), "alice's leave codes %r" % codes(l))
            bob.wait(lambda x: is_pres(x, ROOM_B + "/Alicia", "unavailable"), "alice's leave at bob", 10, marks[0])
            print("ok - alice left")

            # 9. a psyced place: dave joins *lab@psyced.test; psyced's packets
            #    (captures 4-place) become the burst; a cast counter gap makes
            #    psycgate-A ask _request_members and show who it missed
            room_p, u_lab, u_dave = "*lab@" + PSYCED, "psyc://%s/@lab" % PSYCED, "psyc://a.test/~dave"
            n0 = len(psyced.packets)
            dave.raw("<presence to='%s/dave'><x xmlns='%s'/></presence>" % (room_p, MUC))
            _, ent, _, _ = psyced.wait(lambda p: p[2] == "_request_enter" and p[0].get("_source") == u_dave,
                                       "dave's _request_enter", 20, n0)
            check(ent.get("_nick") == "dave", "dave's enter: %r" % ent)
            ctx = [("_source_relay", "psyc://%s/~carl" % PSYCED), ("_context", u_lab)]
            psyced.send([("_target", u_dave), ("_source", u_lab)],
                        [("_nick", "dave"), ("_nick_place", "lab"), ("_list_members", "psyc://%s/~carl" % PSYCED),
                         ("", u_dave), ("_list_members_nicks", "carl"), ("", "dave"), ("_topic", "lab topic"),
                         ("_duty", "member")], "_echo_place_enter", "[_nick] enters [_nick_place].")
            psyced.send([("_target", u_dave), ("_source", u_lab)],
                        [("_nick_place", "lab"), ("_topic", "lab topic"), ("_time_place", "1795578462"),
                         ("_nick", "carl")], "_status_place_topic", "Topic by [_nick]: [_topic]")
            dave.wait(lambda x: text(x, "subject") == "lab topic", "the psyced place's subject", 20)
            burst = [x for _, x in dave.from_room(room_p)]
            check(len(burst) == 3 and is_pres(burst[0], room_p + "/carl") and "110" in codes(burst[1])
                  and "170" not in codes(burst[1]), "dave's burst from psyced: %r"
                  % [ET.tostring(x, encoding="unicode") for x in burst])
            psyced.send(ctx + [("_counter", "1")], [("_nick_place", "lab"), ("_nick", "carl")], "_message_public",
                        "hello room from carl")
            dave.wait(lambda x: is_msg(x, room_p + "/carl", "hello room from carl"), "carl's message", 20)
            n0 = len(psyced.packets)
            psyced.send(ctx + [("_counter", "3")], [("_nick_place", "lab"), ("_nick", "carl")], "_message_public",
                        "after a gap")
            dave.wait(lambda x: is_msg(x, room_p + "/carl", "after a gap"), "the message after the gap", 20)
            psyced.wait(lambda p: p[2] == "_request_members" and p[0].get("_target") == u_lab,
                        "the resync request after the gap", 20, n0)
            psyced.send([("_target", u_dave), ("_source", u_lab)],
                        [("_list_members", "psyc://%s/~carl" % PSYCED), ("", "psyc://%s/~erin" % PSYCED),
                         ("", u_dave), ("_list_members_nicks", "carl"), ("", "erin"), ("", "dave"),
                         ("_nick_place", "lab")], "_status_place_members", "In [_nick_place]: [_list_members_nicks].")
            dave.wait(lambda x: is_pres(x, room_p + "/erin"), "erin, who entered during the gap", 20)
            print("ok - dave in a psyced place: burst from _echo_place_enter, subject, a cast gap resynced "
                  "with _request_members (erin shown)")
            n0 = len(psyced.packets)
            m0 = len(dave.got)
            dave.raw("<presence to='%s/dave' type='unavailable'/>" % room_p)
            psyced.wait(lambda p: p[2] == "_request_leave" and p[0].get("_source") == u_dave, "dave's leave", 20, n0)
            psyced.send([("_source_relay", u_dave), ("_context", u_lab)], [("_nick", "dave"), ("_nick_place", "lab")],
                        "_notice_place_leave", "[_nick] leaves [_nick_place].")
            _, l = dave.wait(lambda x: is_pres(x, room_p + "/dave", "unavailable"), "dave's leave", 20, m0)
            check("110" in codes(l), "dave's leave from psyced's place: %r" % codes(l))
            print("ok - dave left the psyced place (110)")

            # 10. PSYC people in an XMPP MUC room (issue 7, second part): bob and
            #     carol (b.test, behind psycgate-B) join room@conference.a.test
            #     (Prosody a.test's MUC) as the place psyc://conference.a.test/@room
            #     mastered by psycgate-A; alice is in the room by plain XMPP
            muc_x, muc_p = "room@" + CONF, "*room@" + CONF
            m0 = len(alice.got)
            alice.raw("<presence to='%s/Alice'><x xmlns='%s'/></presence>" % (muc_x, MUC))
            alice.wait(lambda x: is_pres(x, muc_x + "/Alice") and "110" in codes(x), "alice in the XMPP room", 20, m0)
            carol = MucClient("carol@" + B + "/tablet", "carolpw", IP, pb.c2s_port)
            carol.connect(20)
            m0 = len(bob.got)
            bob.raw("<presence to='%s/Bob'><x xmlns='%s'/></presence>" % (muc_p, MUC))
            bob.wait(lambda x: is_pres(x, muc_p + "/Bob") and "110" in codes(x), "bob's self-presence in the MUC room",
                     30, m0)
            bob.wait(lambda x: text(x, "subject") is not None and x.get("from", "").startswith(muc_p),
                     "bob's subject from the MUC room", 10, m0)
            seen = [x.get("from") for _, x in bob.from_room(muc_p, m0) if x.tag.endswith("presence")]
            check(seen[:2] == [muc_p + "/Alice", muc_p + "/Bob"], "bob's burst from the MUC room: %r" % seen)
            carol.raw("<presence to='%s/Carol'><x xmlns='%s'/></presence>" % (muc_p, MUC))
            carol.wait(lambda x: is_pres(x, muc_p + "/Carol") and "110" in codes(x), "carol in the MUC room", 30)
            bob.wait(lambda x: is_pres(x, muc_p + "/Carol"), "carol's presence at bob", 10, m0)
            alice.wait(lambda x: is_pres(x, muc_x + "/Carol"), "carol's presence at alice", 10)
            print("ok - bob and carol (PSYC members through psycgate-B) are occupants of %s; alice sees them" % muc_x)
            mb, mc = len(bob.got), len(carol.got)
            alice.raw("<message to='%s' type='groupchat'><body>hello psyc people</body></message>" % muc_x)
            bob.wait(lambda x: is_msg(x, muc_p + "/Alice", "hello psyc people"), "alice's MUC message at bob", 20, mb)
            carol.wait(lambda x: is_msg(x, muc_p + "/Alice", "hello psyc people"), "alice's MUC message at carol", 20,
                       mc)
            casts = [x for x in ga.log_text().splitlines()
                     if "psyc://conference.a.test/@room: cast _message_public" in x]
            check(len(casts) == 1 and "-> 1 routes" in casts[0], "psycgate-A's casts of alice's message: %r" % casts)
            wait_line(gb, ["psyc://conference.a.test/@room: _message_public", "-> 2 stanzas to 2 occupants here"],
                      "psycgate-B: one packet, two stanzas", 5)
            print("ok - alice's MUC message crossed PSYC ONCE for bob and carol (%s)" % casts[0].split(" place ")[-1])
            m0 = len(alice.got)
            bob.raw("<message to='%s' type='groupchat'><body>hello from psyc</body></message>" % muc_p)
            alice.wait(lambda x: is_msg(x, muc_x + "/Bob", "hello from psyc"), "bob's message in the XMPP room", 20, m0)
            carol.wait(lambda x: is_msg(x, muc_p + "/Bob", "hello from psyc"), "bob's message at carol", 20, mc)
            bob.raw("<presence to='%s/Bob' type='unavailable'/>" % muc_p)
            bob.wait(lambda x: is_pres(x, muc_p + "/Bob", "unavailable") and "110" in codes(x), "bob out of the room",
                     20, mb)
            alice.wait(lambda x: is_pres(x, muc_x + "/Bob", "unavailable"), "bob's leave at alice", 20, m0)
            carol.wait(lambda x: is_pres(x, muc_p + "/Bob", "unavailable"), "bob's leave at carol", 20, mc)
            print("ok - bob spoke to the XMPP room through PSYC and left it")

            # 11. disco#items of the places domain
            kind, r = iq_get(bob, ROOMS, "http://jabber.org/protocol/disco#items")
            check(kind == "result", "disco#items of %s: %s" % (ROOMS, kind))
            items = [x.get("jid") for x in r.xml.iter("{http://jabber.org/protocol/disco#items}item")]
            check(items == [ROOM_B], "disco#items of %s: %r" % (ROOMS, items))
            print("ok - disco#items of %s lists %s" % (ROOMS, items))

            # 12. psycgate-B restarts: the place, its owner and subject are
            #     back from the store (members are not: bob enters again)
            gb.stop(20)
            #     meanwhile carol's server is gone: psycgate-A's casts for it
            #     wait longer than [places] netsplit, she leaves the XMPP room
            m0 = len(alice.got)
            alice.raw("<message to='%s' type='groupchat'><body>anyone from b.test?</body></message>" % muc_x)
            alice.wait(lambda x: is_pres(x, muc_x + "/Carol", "unavailable"), "carol's netsplit in the XMPP room", 20,
                       m0)
            wait_line(ga, ["psyc://conference.a.test/@room: psyc://b.test/ unreachable",
                           "psyc://b.test/~carol leaves the XMPP room room@conference.a.test (netsplit)"],
                      "psycgate-A: carol's netsplit", 5)
            print("ok - psycgate-B down: after [places] netsplit carol left the XMPP room")
            carol.disconnect()
            gb = st.enter_context(Psycgate(tmp, binary, conf_b, name="psycgate-b2"))
            gb.wait_log(r"component rooms\.b\.test linked", 15)
            gb.wait_log(r"hosting 1 places from the store", 5)
            m0 = len(bob.got)
            bob.raw("<presence to='%s/Bob'><x xmlns='%s'/></presence>" % (ROOM_B, MUC))
            _, me = bob.wait(lambda x: is_pres(x, ROOM_B + "/Bob") and "110" in codes(x), "bob's self-presence again",
                             20, m0)
            check(item(me).get("affiliation") == "owner", "after the restart bob is %r" % item(me).attrib)
            bob.wait(lambda x: text(x, "subject") == "Welcome to the room", "the subject after the restart", 10, m0)
            print("ok - after a restart of psycgate-B the place, its owner and its subject are back")

            # 13. netsplit: alice is in again, psycgate-A dies; the next cast
            #     waits for a circuit longer than [places] netsplit (2 s):
            #     her server is lost, bob sees her leave (netburp)
            alice.raw("<presence to='%s/Alice'><x xmlns='%s'/></presence>" % (ROOM_A, MUC))
            bob.wait(lambda x: is_pres(x, ROOM_B + "/Alice"), "alice in again at bob", 20, m0)
            ga.stop(20)
            print("ok - psycgate-A stopped cleanly (SIGTERM, exit 0)")
            m0 = len(bob.got)
            bob.raw("<message to='%s' type='groupchat'><body>anyone on a.test?</body></message>" % ROOM_B)
            _, ns = bob.wait(lambda x: is_pres(x, ROOM_B + "/Alice", "unavailable"), "alice's netsplit at bob", 20, m0)
            check(text(ns, "status") == "netsplit", "alice left with status %r" % text(ns, "status"))
            wait_line(gb, ["psyc://b.test/@room: psyc://a.test/ unreachable", "1 members leave (netburp)"],
                      "psycgate-B: the netsplit", 5)
            print("ok - psycgate-A gone: after [places] netsplit its member left with _notice_place_leave_netburp")

            for c in (bob, alice, dave):
                c.disconnect()
            gb.stop(20)
            print("ok - psycgate-B stopped cleanly")
            ok = True
    except Fail as e:
        print("FAIL: %s" % e)
    finally:
        close_loop()
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("(logs kept in %s)" % tmp)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
