/*
 * test_mcast.c: multicast distribution (routing/mcast.h).
 *
 * Unit checks of the tree layout and of in-order delivery, then a
 * deterministic simulation: one master and 2000 servers (70 % relays) in
 * one process, FIFO links, random joins, leaves, crashes and restarts while
 * the master sends; assignments, retransmit requests and a final heartbeat
 * travel as messages like everything else. Invariant: every server
 * delivers counters strictly in order, never one twice, and every member
 * at the end has every counter from its join on, and sees the tree (its
 * parent and children) exactly as the master has it: an assignment the
 * change tracking forgot would show here. Also: the master sends at most k
 * relay copies per packet (plus one per non-relay server).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "routing/mcast.h"

/* ------------------------------------------------------------------ */
/* Tree layout                                                         */

static void expect_children(const mc_tree *t, const char *host, const char *want)
{
    const char *c[64];
    size_t n = mc_tree_children(t, host, c, 64);
    char got[512] = "";
    for (size_t i = 0; i < n; i++) {
        strcat(got, i ? " " : "");
        strcat(got, c[i]);
    }
    assert_string_equal(got, want);
}

static void test_tree_layout(void **state)
{
    (void)state;
    mc_tree *t = mc_tree_new(2);
    static const char *const relays[] = {"a", "b", "c", "d", "e", "f", "g"};
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(mc_tree_add(t, relays[i], 1), 1);
    assert_int_equal(mc_tree_add(t, "a", 1), 0);
    assert_int_equal(mc_tree_add(t, "psyced1", 0), 1);
    /*        master
     *     a    b    psyced1
     *    c d  e f
     *    g                         */
    expect_children(t, NULL, "psyced1 a b");
    expect_children(t, "a", "c d");
    expect_children(t, "b", "e f");
    expect_children(t, "c", "g");
    expect_children(t, "psyced1", "");
    int found;
    assert_null(mc_tree_parent(t, "a", &found));
    assert_true(found);
    assert_string_equal(mc_tree_parent(t, "g", &found), "c");
    assert_null(mc_tree_parent(t, "nobody", &found));
    assert_false(found);
    const char *const *ch;
    assert_int_equal(mc_tree_take_changes(t, &ch), 8);
    assert_int_equal(mc_tree_take_changes(t, &ch), 0);

    /* b fails: g (the last) takes its place; b's children follow g. */
    assert_int_equal(mc_tree_remove(t, "b"), 1);
    expect_children(t, NULL, "psyced1 a g");
    expect_children(t, "g", "e f");
    expect_children(t, "c", "");
    size_t n = mc_tree_take_changes(t, &ch);
    char got[256] = "";
    /* g (moved), c (lost its child), e and f (new parent); the master's own
     * list is not a route. Order is not promised: compare as a set. */
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++)
        strcat(strcat(got, ch[i]), ",");
    assert_non_null(strstr(got, "g,"));
    assert_non_null(strstr(got, "c,"));
    assert_non_null(strstr(got, "e,"));
    assert_non_null(strstr(got, "f,"));
    assert_int_equal(mc_tree_remove(t, "b"), 0);
    assert_int_equal(mc_tree_size(t), 7);

    /* Removing the parent of the last relay (it moves into its parent's place). */
    assert_int_equal(mc_tree_remove(t, "psyced1"), 1);
    mc_tree_take_changes(t, &ch);
    assert_int_equal(mc_tree_remove(t, "a"), 1); /* last is f, child of g */
    expect_children(t, NULL, "f g");
    expect_children(t, "f", "c d");
    expect_children(t, "g", "e");
    mc_tree_free(t);
}

static int sim_index_of(const char *host)
{
    return atoi(host + 1);
}

static void test_tree_many(void **state)
{
    (void)state;
    /* Thousands of adds and removes keep the table and the heap consistent. */
    mc_tree *t = mc_tree_new(8);
    char host[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(host, sizeof host, "s%d.example", i);
        assert_int_equal(mc_tree_add(t, host, i % 3 != 0), 1);
    }
    for (int i = 0; i < 5000; i += 2) {
        snprintf(host, sizeof host, "s%d.example", i);
        assert_int_equal(mc_tree_remove(t, host), 1);
    }
    assert_int_equal(mc_tree_size(t), 2500);
    /* Breadth-first from the master: every route is reached exactly once,
     * relays have at most k children, and each child names its parent. */
    static const char *queue[5000];
    size_t qh = 0, qt = mc_tree_children(t, NULL, queue, 5000), reached = 0, direct_relays = 0;
    for (size_t i = 0; i < qt; i++) {
        int found;
        assert_null(mc_tree_parent(t, queue[i], &found));
        assert_true(found);
        direct_relays += (sim_index_of(queue[i]) % 3) != 0;
    }
    assert_int_equal(direct_relays, 8);
    while (qh < qt) {
        const char *h = queue[qh++], *c[64];
        reached++;
        size_t k = mc_tree_children(t, h, c, 64);
        assert_true(k <= 8);
        for (size_t i = 0; i < k; i++) {
            int found;
            assert_string_equal(mc_tree_parent(t, c[i], &found), h);
            queue[qt++] = c[i];
        }
    }
    assert_int_equal(reached, 2500);
    mc_tree_free(t);
}

/* ------------------------------------------------------------------ */
/* Order                                                               */

static uint64_t delivered[64];
static size_t n_delivered;
static void record(void *ud, uint64_t c, void *pkt)
{
    (void)ud;
    (void)pkt;
    delivered[n_delivered++] = c;
}

static void test_seq(void **state)
{
    (void)state;
    mc_seq s;
    assert_int_equal(mc_seq_init(&s, 10, 4), 0);
    n_delivered = 0;
    int pkt;
    assert_int_equal(mc_seq_offer(&s, 9, &pkt, record, NULL), MC_SEQ_DUPLICATE);
    assert_int_equal(mc_seq_offer(&s, 12, &pkt, record, NULL), MC_SEQ_HELD);
    assert_int_equal(mc_seq_offer(&s, 12, &pkt, record, NULL), MC_SEQ_DUPLICATE);
    assert_int_equal(mc_seq_offer(&s, 15, &pkt, record, NULL), MC_SEQ_TOO_EARLY);
    uint64_t first;
    assert_int_equal(mc_seq_missing(&s, 16, &first), 2); /* 10, 11 */
    assert_int_equal(first, 10);
    assert_int_equal(mc_seq_offer(&s, 14, &pkt, record, NULL), MC_SEQ_HELD);
    assert_int_equal(mc_seq_offer(&s, 11, &pkt, record, NULL), MC_SEQ_HELD);
    assert_int_equal(mc_seq_offer(&s, 10, &pkt, record, NULL), MC_SEQ_DELIVERED);
    assert_int_equal(n_delivered, 3); /* 10 11 12 */
    assert_int_equal(delivered[2], 12);
    assert_int_equal(s.next, 13);
    assert_int_equal(mc_seq_missing(&s, 16, &first), 1); /* 13; 14 is held */
    assert_int_equal(mc_seq_offer(&s, 13, &pkt, record, NULL), MC_SEQ_DELIVERED);
    assert_int_equal(n_delivered, 5);
    assert_int_equal(mc_seq_missing(&s, 15, &first), 0);
    mc_seq_free(&s, NULL, NULL);
}

/* The master's history moved on (or the receiver joined later): held
 * packets below the resync point are still delivered, the rest skipped. */
static void test_seq_skip(void **state)
{
    (void)state;
    mc_seq s;
    assert_int_equal(mc_seq_init(&s, 5, 8), 0);
    n_delivered = 0;
    int pkt;
    assert_int_equal(mc_seq_offer(&s, 7, &pkt, record, NULL), MC_SEQ_HELD);
    assert_int_equal(mc_seq_offer(&s, 10, &pkt, record, NULL), MC_SEQ_HELD);
    assert_int_equal(mc_seq_offer(&s, 11, &pkt, record, NULL), MC_SEQ_HELD);
    /* 5, 6, 8, 9 are gone: 7 is delivered, then 10 and 11 follow. */
    assert_int_equal(mc_seq_skip(&s, 10, record, NULL), 4);
    assert_int_equal(n_delivered, 3);
    assert_int_equal(delivered[0], 7);
    assert_int_equal(delivered[1], 10);
    assert_int_equal(delivered[2], 11);
    assert_int_equal(s.next, 12);
    assert_int_equal(mc_seq_skip(&s, 3, record, NULL), 0); /* behind: nothing */
    assert_int_equal(mc_seq_offer(&s, 10, &pkt, record, NULL), MC_SEQ_DUPLICATE);
    mc_seq_free(&s, NULL, NULL);
}

/* Route listing and the relay flag (gateway/mcast_ctx.c's view). */
static void test_tree_routes(void **state)
{
    (void)state;
    mc_tree *t = mc_tree_new(2);
    assert_non_null(t);
    assert_int_equal(mc_tree_add(t, "psyc://a/", 1), 1);
    assert_int_equal(mc_tree_add(t, "psyc://psyced/", 0), 1);
    assert_int_equal(mc_tree_add(t, "psyc://b/", 1), 1);
    assert_int_equal(mc_tree_is_relay(t, "psyc://a/"), 1);
    assert_int_equal(mc_tree_is_relay(t, "psyc://psyced/"), 0);
    assert_int_equal(mc_tree_is_relay(t, "psyc://nobody/"), 0);
    const char *r[4];
    assert_int_equal(mc_tree_routes(t, r, 4), 3);
    assert_string_equal(r[0], "psyc://a/"); /* relays in heap order, then the others */
    assert_string_equal(r[1], "psyc://b/");
    assert_string_equal(r[2], "psyc://psyced/");
    assert_int_equal(mc_tree_routes(t, r, 1), 3); /* counts beyond max */
    mc_tree_remove(t, "psyc://a/");
    assert_int_equal(mc_tree_routes(t, r, 4), 2);
    assert_string_equal(r[0], "psyc://b/");
    mc_tree_free(t);
}

/* ------------------------------------------------------------------ */
/* Simulation                                                          */

#define SIM_SERVERS 2000
#define SIM_K 8
#define SIM_MASTER (-1)

enum { MSG_DATA, MSG_RETRANS, MSG_ASSIGN, MSG_REQUEST, MSG_HEARTBEAT };

typedef struct sim_msg {
    int kind, from, to;
    uint64_t counter, count; /* DATA/RETRANS: counter; REQUEST: first + count; HEARTBEAT: master's last */
    int epoch_to;            /* the receiver's incarnation when sent: a restart drops old traffic */
    int parent, children[SIM_K], n_children; /* ASSIGN: the tree as it was when sent */
    struct sim_msg *next;
} sim_msg;

typedef struct sim_server {
    char host[16];
    int relay, up, member, epoch;
    int has_parent;      /* assigned at least once */
    int parent;          /* SIM_MASTER or a server index */
    int children[SIM_K];
    int n_children;
    mc_seq seq;
    int seq_live;
    uint64_t asked;      /* retransmits requested up to (exclusive) */
    uint64_t last_delivered, join_point;
    uint64_t deliveries;
} sim_server;

typedef struct sim {
    sim_server s[SIM_SERVERS];
    mc_tree *tree;
    uint64_t counter; /* last counter the master sent */
    sim_msg *head, *tail;
    size_t queued;
    uint64_t rng;
    uint64_t first_hop_max, fresh_copies, messages;
} sim;

static uint32_t sim_rand(sim *w)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return (uint32_t)(w->rng >> 11);
}

static int sim_index(const char *host)
{
    return atoi(host + 1);
}

static sim_msg *sim_send(sim *w, int kind, int from, int to, uint64_t counter, uint64_t count)
{
    sim_msg *m = calloc(1, sizeof *m);
    assert_non_null(m);
    m->kind = kind;
    m->from = from;
    m->to = to;
    m->counter = counter;
    m->count = count;
    m->epoch_to = to == SIM_MASTER ? 0 : w->s[to].epoch;
    if (w->tail)
        w->tail->next = m;
    else
        w->head = m;
    w->tail = m;
    w->queued++;
    w->messages++;
    return m;
}

/* The master tells every server whose place in the tree changed. */
static void sim_announce(sim *w)
{
    const char *const *hosts;
    size_t n = mc_tree_take_changes(w->tree, &hosts);
    for (size_t i = 0; i < n; i++) {
        sim_msg *m = sim_send(w, MSG_ASSIGN, SIM_MASTER, sim_index(hosts[i]), w->counter + 1, 0);
        int found;
        const char *parent = mc_tree_parent(w->tree, hosts[i], &found);
        m->parent = parent ? sim_index(parent) : SIM_MASTER;
        const char *c[SIM_K];
        m->n_children = (int)mc_tree_children(w->tree, hosts[i], c, SIM_K);
        for (int j = 0; j < m->n_children; j++)
            m->children[j] = sim_index(c[j]);
    }
}

static void sim_master_send(sim *w)
{
    w->counter++;
    const char *c[SIM_SERVERS];
    size_t n = mc_tree_children(w->tree, NULL, c, SIM_SERVERS);
    size_t relays_first = 0;
    for (size_t i = 0; i < n; i++) {
        relays_first += w->s[sim_index(c[i])].relay;
        sim_send(w, MSG_DATA, SIM_MASTER, sim_index(c[i]), w->counter, 0);
    }
    assert_true(relays_first <= SIM_K);
    if (n > w->first_hop_max)
        w->first_hop_max = n;
}

static void sim_deliver(void *ud, uint64_t c, void *pkt)
{
    sim_server *s = ud;
    (void)pkt;
    /* The invariant: strictly in order, never twice. */
    if (s->deliveries && c != s->last_delivered + 1 && c <= s->last_delivered)
        fail_msg("%s delivered %llu after %llu", s->host, (unsigned long long)c,
                 (unsigned long long)s->last_delivered);
    if (s->deliveries && s->member && c > s->last_delivered + 1 && s->last_delivered + 1 >= s->join_point)
        fail_msg("%s skipped from %llu to %llu", s->host, (unsigned long long)s->last_delivered,
                 (unsigned long long)c);
    s->last_delivered = c;
    s->deliveries++;
}

static void sim_ask(sim *w, int idx, uint64_t upto)
{
    sim_server *s = &w->s[idx];
    uint64_t first, n = mc_seq_missing(&s->seq, upto, &first);
    if (!n)
        return;
    /* Ask once per gap (a new ask only beyond what is already asked). */
    if (first + n <= s->asked)
        return;
    if (first < s->asked) {
        n -= s->asked - first;
        first = s->asked;
    }
    sim_send(w, MSG_REQUEST, idx, SIM_MASTER, first, n);
    s->asked = first + n;
}

static void sim_on_data(sim *w, sim_msg *m)
{
    sim_server *s = &w->s[m->to];
    if (!s->member || !s->seq_live)
        return;
    /* Only the master or the assigned parent may send (see mcast.h). */
    if (m->from != SIM_MASTER && (!s->has_parent || s->parent != m->from))
        return;
    mc_seq_result r = mc_seq_offer(&s->seq, m->counter, s, sim_deliver, s);
    if (r == MC_SEQ_DUPLICATE)
        return;
    if (r == MC_SEQ_HELD || r == MC_SEQ_TOO_EARLY)
        sim_ask(w, m->to, m->counter + 1);
    if (m->kind == MSG_DATA && s->relay) {
        for (int i = 0; i < s->n_children; i++) {
            sim_send(w, MSG_DATA, m->to, s->children[i], m->counter, 0);
            w->fresh_copies++;
        }
    }
}

static void sim_on_assign(sim *w, sim_msg *m)
{
    sim_server *s = &w->s[m->to];
    if (!s->member)
        return; /* it left again before this arrived */
    s->has_parent = 1;
    s->parent = m->parent;
    s->n_children = m->n_children;
    memcpy(s->children, m->children, sizeof s->children);
    if (!s->seq_live) {
        /* A fresh member starts at the master's next counter. */
        assert_int_equal(mc_seq_init(&s->seq, m->counter, 4096), 0);
        s->seq_live = 1;
        s->asked = m->counter;
        s->join_point = m->counter;
        if (s->deliveries)
            s->last_delivered = m->counter - 1; /* a new membership period */
    }
}

static void sim_step(sim *w)
{
    sim_msg *m = w->head;
    w->head = m->next;
    if (!w->head)
        w->tail = NULL;
    w->queued--;
    int to_up = m->to == SIM_MASTER || (w->s[m->to].up && w->s[m->to].epoch == m->epoch_to);
    int from_up = m->from == SIM_MASTER || w->s[m->from].up;
    if (to_up && from_up) {
        switch (m->kind) {
        case MSG_DATA:
        case MSG_RETRANS:
            sim_on_data(w, m);
            break;
        case MSG_ASSIGN:
            sim_on_assign(w, m);
            break;
        case MSG_REQUEST:
            /* The master keeps the whole history here; the real one keeps
             * a window and answers older gaps with a state resync. */
            if (mc_tree_has(w->tree, w->s[m->from].host))
                for (uint64_t c = m->counter; c < m->counter + m->count && c <= w->counter; c++)
                    sim_send(w, MSG_RETRANS, SIM_MASTER, m->from, c, 0);
            break;
        case MSG_HEARTBEAT:
            if (w->s[m->to].member && w->s[m->to].seq_live)
                sim_ask(w, m->to, m->counter + 1);
            break;
        }
    }
    free(m);
}

static void sim_leave(sim *w, int i)
{
    sim_server *s = &w->s[i];
    s->member = 0;
    if (s->seq_live) {
        mc_seq_free(&s->seq, NULL, NULL);
        s->seq_live = 0;
    }
    s->has_parent = 0;
    s->n_children = 0;
    mc_tree_remove(w->tree, s->host);
    sim_announce(w);
}

static void sim_join(sim *w, int i)
{
    sim_server *s = &w->s[i];
    s->member = 1;
    assert_int_equal(mc_tree_add(w->tree, s->host, s->relay), 1);
    sim_announce(w);
}

static void test_simulation(void **state)
{
    (void)state;
    static sim w;
    memset(&w, 0, sizeof w);
    w.rng = 0x2545F4914F6CDD1Du;
    w.tree = mc_tree_new(SIM_K);
    for (int i = 0; i < SIM_SERVERS; i++) {
        snprintf(w.s[i].host, sizeof w.s[i].host, "s%d", i);
        w.s[i].relay = sim_rand(&w) % 10 < 7;
        w.s[i].up = 1;
    }
    /* Most servers join at once, then everything happens at random. */
    for (int i = 0; i < SIM_SERVERS; i++)
        if (sim_rand(&w) % 4)
            sim_join(&w, i);
    for (int op = 0; op < 3000; op++) {
        uint32_t r = sim_rand(&w) % 100;
        int i = (int)(sim_rand(&w) % SIM_SERVERS);
        sim_server *s = &w.s[i];
        if (r < 50) {
            sim_master_send(&w);
        } else if (r < 62) {
            if (s->up && !s->member)
                sim_join(&w, i);
        } else if (r < 72) {
            if (s->up && s->member)
                sim_leave(&w, i);
        } else if (r < 77) {
            /* Crash: the link goes down; the master routes around it. The
             * server keeps (on disk) what it delivered. */
            if (s->up && s->member) {
                s->up = 0;
                s->epoch++;
                mc_tree_remove(w.tree, s->host);
                sim_announce(&w);
                s->has_parent = 0;
            }
        } else if (r < 82) {
            /* Restart: the same members come back, resuming where they were. */
            if (!s->up) {
                s->up = 1;
                s->epoch++;
                if (s->member) {
                    assert_int_equal(mc_tree_add(w.tree, s->host, s->relay), 1);
                    sim_announce(&w);
                }
            }
        }
        /* Let the network run a while, so messages interleave with ops. */
        for (uint32_t n = sim_rand(&w) % 4000; n && w.head; n--)
            sim_step(&w);
    }
    /* Heal: bring everyone up, then a heartbeat finds tail gaps. */
    for (int i = 0; i < SIM_SERVERS; i++)
        if (!w.s[i].up) {
            w.s[i].up = 1;
            w.s[i].epoch++;
            if (w.s[i].member) {
                mc_tree_add(w.tree, w.s[i].host, w.s[i].relay);
                sim_announce(&w);
            }
        }
    while (w.head)
        sim_step(&w);
    for (int i = 0; i < SIM_SERVERS; i++)
        if (w.s[i].member)
            sim_send(&w, MSG_HEARTBEAT, SIM_MASTER, i, w.counter, 0);
    while (w.head)
        sim_step(&w);

    size_t members = 0;
    for (int i = 0; i < SIM_SERVERS; i++) {
        sim_server *s = &w.s[i];
        if (!s->member)
            continue;
        members++;
        assert_true(s->seq_live);
        if (s->seq.next != w.counter + 1)
            fail_msg("%s: next %llu, master at %llu (joined at %llu)", s->host,
                     (unsigned long long)s->seq.next, (unsigned long long)w.counter,
                     (unsigned long long)s->join_point);
        if (s->join_point <= w.counter)
            assert_int_equal(s->last_delivered, w.counter);
        /* Its view of the tree is the master's. */
        int found;
        const char *parent = mc_tree_parent(w.tree, s->host, &found);
        assert_true(found && s->has_parent);
        assert_int_equal(s->parent, parent ? sim_index(parent) : SIM_MASTER);
        const char *c[SIM_K];
        int n = (int)mc_tree_children(w.tree, s->host, c, SIM_K);
        assert_int_equal(s->n_children, n);
        for (int j = 0; j < n; j++)
            assert_int_equal(s->children[j], sim_index(c[j]));
    }
    for (int i = 0; i < SIM_SERVERS; i++)
        if (w.s[i].seq_live)
            mc_seq_free(&w.s[i].seq, NULL, NULL);
    print_message("simulation: %zu members at the end, %llu packets, %llu messages, "
                  "first hop at most %llu copies, %llu relayed copies\n",
                  members, (unsigned long long)w.counter, (unsigned long long)w.messages,
                  (unsigned long long)w.first_hop_max, (unsigned long long)w.fresh_copies);
    assert_true(members > SIM_SERVERS / 4);
    assert_true(w.counter > 1000);
    mc_tree_free(w.tree);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_layout),
        cmocka_unit_test(test_tree_many),
        cmocka_unit_test(test_seq),
        cmocka_unit_test(test_seq_skip),
        cmocka_unit_test(test_tree_routes),
        cmocka_unit_test(test_simulation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
