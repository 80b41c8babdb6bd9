/* helper_stanza.c: see helper_stanza.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "helper_stanza.h"
#include "xmpp/xml.h"

typedef struct ts_one {
    xml_node *st;
    int n;
} ts_one;

static void ts_keep_one(void *ud, xml_node *st)
{
    ts_one *o = ud;
    if (o->n++ == 0)
        o->st = st;
    else
        xml_node_free(st);
}

xml_node *ts_parse(const char *text)
{
    static const char open[] = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
                               "xmlns='jabber:server'>";
    ts_one o = {0};
    xml_stream_handler h = {.stanza = ts_keep_one};
    xml_stream *s = xml_stream_new(NULL, &h, &o);
    assert_int_equal(xml_stream_feed(s, open, sizeof open - 1, NULL), XML_STREAM_OK);
    assert_int_equal(xml_stream_feed(s, text, strlen(text), NULL), XML_STREAM_OK);
    xml_stream_free(s);
    assert_int_equal(o.n, 1);
    return o.st;
}

char *ts_text(const xml_node *n)
{
    static char buf[8192];
    psyc_buf b;
    psyc_buf_init(&b);
    xml_nsmap map;
    xml_nsmap_init(&map, XML_NS_SERVER);
    assert_int_equal(xml_serialize(&b, n, &map), 0);
    assert_true(b.len < sizeof buf);
    memcpy(buf, b.data, b.len);
    buf[b.len] = '\0';
    psyc_buf_free(&b);
    return buf;
}

void ts_to_packet(const addr_map *m, const char *stanza, psyc_packet *p)
{
    xml_node *st = ts_parse(stanza);
    psyc_packet_init(p);
    const char *cond = "unset";
    int rc = translate_from_xmpp(m, st, p, &cond);
    if (rc != TRANSLATE_OK)
        fail_msg("%s: %s (%s)", stanza, translate_strerror(rc), cond ? cond : "-");
    assert_null(cond);
    xml_node_free(st);
}

void ts_expect_var(const psyc_packet *p, const char *name, const char *value)
{
    psyc_str v;
    if (!psyc_packet_get(p, name, &v))
        fail_msg("no %s", name);
    if (!psyc_str_eq_c(v, value))
        fail_msg("%s is '%.*s', want '%s'", name, (int)v.len, v.ptr, value);
}

void ts_expect_method(const psyc_packet *p, const char *method)
{
    if (!psyc_str_eq_c(p->method, method))
        fail_msg("method %.*s, want %s", (int)p->method.len, p->method.ptr, method);
}

void ts_round_trip(const addr_map *m, const char *stanza)
{
    psyc_packet p;
    ts_to_packet(m, stanza, &p);
    xml_node *back = NULL;
    int rc = translate_to_xmpp(m, &p, &back);
    if (rc != TRANSLATE_OK)
        fail_msg("%s: back: %s", stanza, translate_strerror(rc));
    xml_node *orig = ts_parse(stanza);
    char want[8192];
    snprintf(want, sizeof want, "%s", ts_text(orig));
    assert_string_equal(ts_text(back), want);
    xml_node_free(orig);
    xml_node_free(back);
    psyc_packet_free(&p);
}
