/*
 * psyc_ack.h: the receiving half of acknowledged delivery between
 * psycgates (psyc/link.h explains the wire; gateway/psyc_out.h the sending
 * half). A packet that carries `_counter_delivery` "<epoch>:<n>" is taken
 * once: the highest n seen per (sender host, epoch) is kept in the store
 * (namespace "psyc_in"), written in the same loop-turn transaction as
 * whatever the packet caused (queued packets, subscriptions), and only
 * after that commit does `_status_delivery` go back ([psyc] ack_delay
 * milliseconds later when set: one acknowledgement then covers every
 * packet of that time). A packet at or below
 * the mark was taken before (its acknowledgement was lost with a circuit
 * or a crash): it is dropped and acknowledged again.
 *
 * What this cannot cover: the hop into the XMPP server. XEP-0114 and
 * RFC 6120 streams have no acknowledgement, so a stanza written to the
 * server just before a crash, whose mark was not committed yet, is
 * written again after the restart (at least once, never lost).
 */
#ifndef GATEWAY_PSYC_ACK_H
#define GATEWAY_PSYC_ACK_H

#include <stdint.h>

#include "psyc/psyc.h"

typedef struct gw gw;
typedef struct psyc_circuit psyc_circuit;
typedef struct psyc_ack psyc_ack;

/* Reads [psyc] ack_delay. NULL when out of memory. */
psyc_ack *psyc_ack_new(gw *g);
/* Sends the acknowledgements of what is committed (call after the last
 * commit, before the circuits close) and closes the timer; anything
 * later is not acknowledged: peers write it again, we drop it as taken. */
void psyc_ack_stop(psyc_ack *a);
/* After the loop ran dry. */
void psyc_ack_free(psyc_ack *a);

/* An authenticated packet from circuit c: 1 to deliver it, 0 when it is a
 * duplicate (dropped; acknowledged again). Packets without a counter are
 * always delivered. */
int psyc_ack_receive(psyc_ack *a, psyc_circuit *c, const psyc_packet *p);
/* The circuit is closing: nothing more is acknowledged on it. */
void psyc_ack_circuit_gone(psyc_ack *a, psyc_circuit *c);

/* Packets dropped as duplicates since start. */
uint64_t psyc_ack_duplicates(const psyc_ack *a);

#endif
