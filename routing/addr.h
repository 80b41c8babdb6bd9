/*
 * addr.h: JID <-> PSYC uniform mapping (issue 6 "Addresses", DESIGN.md §2,
 * PSYC.md §3.2). Pure functions: no I/O, no global state.
 *
 * Two modes cover the three deployments of DESIGN.md §2:
 *
 * NATURAL (domain federation and standalone S2S): the JID and the uniform
 * name the same entity on the same host, psyced's convention:
 *
 *     nick@host            <-> psyc://host/~nick        person
 *     *room@host           <-> psyc://host/@room        place
 *     $svc@host            <-> psyc://host/$svc         service
 *     host                 <-> psyc://host/             server (root)
 *     xmpp:u@h/r            -> u@h/r                    (uniform side only)
 *
 * TRANSPORT (psycgate is the component domain T of an XMPP server, our PSYC
 * host is G): PSYC entities live under T with biboumi's '%' host separator,
 * local XMPP users appear on G:
 *
 *     nick%host@T          <-> psyc://host/~nick
 *     *room%host@T         <-> psyc://host/@room
 *     $svc%host@T          <-> psyc://host/$svc
 *     %host@T              <-> psyc://host/
 *     nick%host\3a4405@T   <-> psyc://host:4405/~nick   (':' escaped, XEP-0106)
 *     nick@T               <-> psyc://G/~nick           (entities hosted on G)
 *     T                    <-> psyc://G/
 *     alice@example.org    <-> psyc://G/~alice@example.org   (any other domain)
 *     example.org          <-> psyc://G/~@example.org        (its server)
 *     bob@example.org      <-> psyc://G/~NICK   (registered with that nick, addr_registry)
 *
 * Names. A JID localpart carries the name XEP-0106-escaped: the ten
 * characters a localpart cannot hold (space " & ' / : < > @ \) are written
 * \20 \22 \26 \27 \2f \3a \3c \3e \40 \5c; in TRANSPORT mode also '%' as
 * \25 (it separates the host). A person's name that begins with '*' or '$'
 * writes that first character \2a or \24, so it is not read as a place or
 * a service. Unlike plain XEP-0106, a backslash is always escaped: a
 * localpart with a backslash that starts none of these sequences has no
 * uniform (ADDR_ERR_BACKSLASH); without this rule two JIDs would map to one
 * uniform. In a uniform the name is percent-encoded: every byte other than
 * letters, digits and $ & ' ( ) * + , - . : ; _ ! ? = ~ becomes %xx with
 * lower-case hex, because psyced lower-cases every uniform it receives
 * (PSYC.md §3.1). Both sides are compared in their normalised forms: JIDs
 * as jid_parse gives them (local part case-folded), uniforms as
 * psyc_uniform_normalize gives them (host and name lower case, default
 * port dropped), so unmap(map(x)) == x holds for normalised x.
 *
 * Hosts: a JID domain with non-ASCII labels becomes its IDNA A-label form
 * in the uniform (PSYC hosts are ASCII, PSYC.md §3.1) and comes back in
 * Unicode form; IPv6 literal domains and uniforms with a channel ("#x")
 * have no counterpart; NATURAL mode cannot carry a port or transport.
 *
 * Resources are not part of the entity: the JID's resource is handed out
 * separately (a MUC occupant's nick, a client's resource) and given back
 * when mapping the other way. Resources are never case-folded, so two
 * occupants whose nicks differ only in case stay distinct;
 * addr_resource_lookalike() flags such pairs for display.
 */
#ifndef PSYCGATE_ROUTING_ADDR_H
#define PSYCGATE_ROUTING_ADDR_H

#include <stddef.h>

#include "psyc/psyc.h"

typedef enum addr_mode {
    ADDR_MODE_NATURAL = 0,
    ADDR_MODE_TRANSPORT = 1,
} addr_mode;

/* TRANSPORT: users of other domains registered with a nick (XEP-0077,
 * routing/register.h) appear as psyc://G/~NICK instead of
 * psyc://G/~user@domain, both ways. nick_of: the (lower-case) nick of a
 * bare JID, or NULL; jid_of: the bare JID of a nick, or NULL. The table
 * belongs to the caller (the gateway fills it from its store); addr only
 * asks. NULL functions: nobody is registered. */
typedef struct addr_registry {
    const char *(*nick_of)(void *ud, const char *bare_jid);
    const char *(*jid_of)(void *ud, const char *nick);
    void *ud;
} addr_registry;

typedef struct addr_map {
    addr_mode mode;
    const char *gw_host;   /* TRANSPORT: our PSYC host G (lower case) */
    const char *transport; /* TRANSPORT: the component domain T (lower case) */
    addr_registry reg;     /* TRANSPORT: registered nicks (may be all NULL) */
} addr_map;

typedef enum addr_err {
    ADDR_OK = 0,
    ADDR_ERR_NOMEM = -1,
    ADDR_ERR_JID = -2,       /* not a valid JID */
    ADDR_ERR_UNIFORM = -3,   /* not a valid uniform, or a scheme we do not map */
    ADDR_ERR_BACKSLASH = -4, /* a backslash in a localpart that is no escape of ours */
    ADDR_ERR_PORT = -5,      /* NATURAL mode: a uniform with a port or transport */
    ADDR_ERR_CHANNEL = -6,   /* a uniform with a #channel */
    ADDR_ERR_DOMAIN = -7,    /* a domain without a PSYC host form (IPv6, bad IDNA) */
    ADDR_ERR_NAME = -8,      /* a name that makes no valid localpart, or an empty one */
    ADDR_ERR_HOST = -9,      /* TRANSPORT: the host after '%' is not a valid host */
} addr_err;

const char *addr_strerror(int err);

/* Maps a JID (any form; normalised first) to a uniform, appended to
 * `uniform`. The resource, if any, is appended to `resource` (may be NULL:
 * then it is dropped). 0 or a negative addr_err (outputs unchanged). */
int addr_jid_to_uniform(const addr_map *m, const char *jid, psyc_buf *uniform, psyc_buf *resource);

/* Maps a uniform (or an "xmpp:" address) to a JID, appended to `jid`. A
 * non-NULL, non-empty `resource` becomes the JID's resource (an "xmpp:"
 * address keeps its own unless one is given). 0 or a negative addr_err. */
int addr_uniform_to_jid(const addr_map *m, const char *uniform, const char *resource, psyc_buf *jid);

/* 1 when a and b differ but are equal after Unicode case folding (RFC 3454
 * table B.2) and NFKC: two MUC nicks or resources a reader could take for
 * the same. 0 otherwise (also when either is not UTF-8). */
int addr_resource_lookalike(const char *a, const char *b);

#endif
