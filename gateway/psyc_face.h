/*
 * psyc_face.h: the PSYC face at the core boundary (issue 5). Every packet
 * that passed host authentication on a circuit goes to routing/ through
 * psyc_face_deliver; what routing decides is sent through psyc_out (which
 * reuses the peer's circuit when it may).
 */
#ifndef GATEWAY_PSYC_FACE_H
#define GATEWAY_PSYC_FACE_H

#include "gateway/gw.h"
#include "psyc/psyc.h"

void psyc_face_deliver(gw *g, psyc_circuit *c, const psyc_packet *p);

/* [psyc] trusted (PSYC.md §5 rule 1): 1 if `ip` (a peer address) or
 * `host` (a host name) is listed. */
int psyc_face_peer_trusted(gw *g, const char *ip);
int psyc_face_host_trusted(gw *g, const char *host);

#endif /* GATEWAY_PSYC_FACE_H */
