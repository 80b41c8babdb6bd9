/*
 * fuzz_addr.c: libFuzzer target for the JID <-> uniform mapping
 * (routing/addr.h). The first byte picks the mode (bit 0) and the side the
 * rest starts from (bit 1). Properties, abort() on a violation:
 *  - a JID that maps comes back as itself (normalised), resource included,
 *    except where a JID can spell one address in several ways: an A-label
 *    domain comes back in Unicode (RFC 7622 §3.2.1), and a TRANSPORT host
 *    after '%' comes back in the uniform's normal form (no default port,
 *    no leading zeros); then that JID maps to the same uniform;
 *  - a uniform that maps to a JID: that JID maps again, and back to the
 *    same JID (map and unmap agree on canonical forms);
 *  - a refusal leaves the outputs untouched and has a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "routing/addr.h"
#include "xmpp/jid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const addr_map fuzz_maps[2] = {
    {.mode = ADDR_MODE_NATURAL},
    {.mode = ADDR_MODE_TRANSPORT, .gw_host = "gw.example.net", .transport = "psyc.example.org"},
};

static void addr_fuzz_check(int ok)
{
    if (!ok)
        abort();
}

/* jid -> uniform -> jid; returns 1 when it mapped. */
static int addr_fuzz_jid(const addr_map *m, const char *jid, psyc_buf *back)
{
    psyc_buf u, r;
    psyc_buf_init(&u);
    psyc_buf_init(&r);
    int rc = addr_jid_to_uniform(m, jid, &u, &r);
    addr_fuzz_check(addr_strerror(rc) != NULL);
    if (rc != ADDR_OK) {
        addr_fuzz_check(u.len == 0 && r.len == 0);
    } else {
        addr_fuzz_check(psyc_buf_putc(&u, '\0') == 0 && psyc_buf_putc(&r, '\0') == 0);
        addr_fuzz_check(addr_uniform_to_jid(m, u.data, r.data, back) == ADDR_OK);
    }
    psyc_buf_free(&u);
    psyc_buf_free(&r);
    return rc == ADDR_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    const addr_map *m = &fuzz_maps[data[0] & 1];
    int from_uniform = data[0] & 2;
    char *s = malloc(size);
    if (!s)
        return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';

    psyc_buf j1, j2;
    psyc_buf_init(&j1);
    psyc_buf_init(&j2);
    if (!from_uniform) {
        jid_t jn = JID_INIT;
        if (jid_parse_cstr(&jn, s) == JID_OK && addr_fuzz_jid(m, jn.full, &j1)) {
            int ace = strncmp(jn.domain, "xn--", 4) == 0 || strstr(jn.domain, ".xn--") != NULL;
            int host = m->mode == ADDR_MODE_TRANSPORT && jn.local &&
                       memchr(jn.local, '%', jn.local_len) != NULL;
            if (!ace && !host) {
                addr_fuzz_check(j1.len == jn.full_len && memcmp(j1.data, jn.full, j1.len) == 0);
            } else {
                addr_fuzz_check(psyc_buf_putc(&j1, '\0') == 0);
                addr_fuzz_check(addr_fuzz_jid(m, j1.data, &j2));
                addr_fuzz_check(j2.len + 1 == j1.len && memcmp(j1.data, j2.data, j2.len) == 0);
            }
        }
        jid_free(&jn);
    } else {
        int rc = addr_uniform_to_jid(m, s, NULL, &j1);
        addr_fuzz_check(addr_strerror(rc) != NULL && (rc == ADDR_OK || j1.len == 0));
        /* An "xmpp:" address is taken as the JID it names, whatever it is;
         * psyc: uniforms make JIDs that map onward and come back. */
        if (rc == ADDR_OK && strncmp(s, "xmpp:", 5) == 0) {
            jid_t jx = JID_INIT;
            addr_fuzz_check(jid_parse(&jx, j1.data, j1.len) == JID_OK);
            jid_free(&jx);
        } else if (rc == ADDR_OK) {
            addr_fuzz_check(psyc_buf_putc(&j1, '\0') == 0);
            addr_fuzz_check(addr_fuzz_jid(m, j1.data, &j2));
            addr_fuzz_check(j2.len + 1 == j1.len && memcmp(j1.data, j2.data, j2.len) == 0);
        }
    }
    psyc_buf_free(&j1);
    psyc_buf_free(&j2);
    free(s);
    return 0;
}
