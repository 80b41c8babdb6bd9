/*
 * test_store.c: the SQLite store (gateway/store.h) on real files in a
 * temporary directory: queues in order across reopen, group commit and its
 * callbacks, subscriptions, counters, and SIGKILL in the middle of a burst
 * (a forked writer is killed; everything it had committed is there, in
 * order, exactly once, and nothing it had not committed).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "gateway/store.h"

static char dir[256];
static char db_path[300];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/psycgate-store-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(db_path, sizeof db_path, "%s/state.db", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static store *open_store(void)
{
    char err[256] = "";
    store *s = NULL;
    if (store_open(db_path, &s, err, sizeof err) != 0)
        fail_msg("store_open: %s", err);
    return s;
}

static void test_queue_order_and_reopen(void **state)
{
    (void)state;
    store *s = open_store();
    int64_t ids[5];
    for (int i = 0; i < 5; i++) {
        char msg[32];
        snprintf(msg, sizeof msg, "message %d", i);
        assert_int_equal(store_queue_push(s, i % 2 ? "xmpp:b.example" : "psyc:a.example",
                                          "alice@example.org", 1, msg, strlen(msg), 1000 + i, &ids[i]),
                         STORE_OK);
        if (i)
            assert_true(ids[i] > ids[i - 1]);
    }
    assert_true(store_dirty(s));
    assert_int_equal(store_commit(s), 5);
    assert_false(store_dirty(s));
    assert_int_equal(store_queue_depth(s, "psyc:a.example"), 3);
    assert_int_equal(store_queue_depth(s, NULL), 5);
    store_close(s);

    s = open_store();
    store_item items[8];
    size_t n = 0;
    assert_int_equal(store_queue_peek(s, "psyc:a.example", 0, items, 8, &n), STORE_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(items[0].data, "message 0", 9);
    assert_memory_equal(items[1].data, "message 2", 9);
    assert_memory_equal(items[2].data, "message 4", 9);
    assert_string_equal(items[1].origin, "alice@example.org");
    assert_int_equal(items[2].created_ms, 1004);
    int64_t second = items[1].id;
    for (size_t i = 0; i < n; i++)
        store_item_clear(&items[i]);
    /* Paging after an id, removal, attempts. */
    assert_int_equal(store_queue_peek(s, "psyc:a.example", second, items, 8, &n), STORE_OK);
    assert_int_equal(n, 1);
    store_item_clear(&items[0]);
    assert_int_equal(store_queue_attempted(s, ids[0]), STORE_OK);
    assert_int_equal(store_queue_remove(s, ids[2]), STORE_OK);
    assert_int_equal(store_queue_remove(s, ids[2]), STORE_NOTFOUND);
    assert_int_equal(store_commit(s), 3);
    assert_int_equal(store_queue_peek(s, "psyc:a.example", 0, items, 8, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(items[0].attempts, 1);
    assert_memory_equal(items[1].data, "message 4", 9);
    for (size_t i = 0; i < n; i++)
        store_item_clear(&items[i]);

    /* Give-up scan and the list of destinations to resume. */
    store_item it;
    assert_int_equal(store_queue_oldest_before(s, 1001, &it), STORE_OK);
    assert_int_equal(it.id, ids[0]);
    store_item_clear(&it);
    assert_int_equal(store_queue_oldest_before(s, 1000, &it), STORE_NOTFOUND);
    store_close(s);
}

typedef struct seen {
    char dest[4][64];
    int64_t depth[4];
    int n;
} seen;

static void on_dest(void *ud, const char *dest, int64_t depth)
{
    seen *sn = ud;
    snprintf(sn->dest[sn->n], sizeof sn->dest[0], "%s", dest);
    sn->depth[sn->n++] = depth;
}

static void test_destinations(void **state)
{
    (void)state;
    store *s = open_store();
    assert_int_equal(store_queue_push(s, "xmpp:late.example", "a", 0, "x", 1, 1, NULL), 0);
    assert_int_equal(store_queue_push(s, "psyc:early.example", "a", 0, "x", 1, 1, NULL), 0);
    assert_int_equal(store_queue_push(s, "xmpp:late.example", "a", 0, "x", 1, 1, NULL), 0);
    store_commit(s);
    seen sn = {0};
    assert_int_equal(store_queue_destinations(s, on_dest, &sn), STORE_OK);
    assert_int_equal(sn.n, 2);
    assert_string_equal(sn.dest[0], "xmpp:late.example"); /* its first item is older */
    assert_int_equal(sn.depth[0], 2);
    store_close(s);
}

static int commits_seen;
static void on_commit(void *ud, int ok)
{
    (void)ud;
    if (ok)
        commits_seen++;
}

static void test_group_commit_callbacks(void **state)
{
    (void)state;
    store *s = open_store();
    commits_seen = 0;
    assert_int_equal(store_after_commit(s, on_commit, NULL), STORE_OK); /* nothing pending: at once */
    assert_int_equal(commits_seen, 1);
    store_counter_add(s, "stanzas_in", 1);
    store_after_commit(s, on_commit, NULL);
    store_after_commit(s, on_commit, NULL);
    assert_int_equal(commits_seen, 1); /* not before the commit */
    assert_int_equal(store_commit(s), 1);
    assert_int_equal(commits_seen, 3);
    assert_int_equal(store_commit(s), 0);

    /* Uncommitted writes are gone when another connection looks. */
    store_counter_add(s, "stanzas_in", 41);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT value FROM counter WHERE name='stanzas_in'", -1,
                                        &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    /* WAL mode is what the file says. */
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
    store_commit(s);
    int64_t v;
    assert_int_equal(store_counter_get(s, "stanzas_in", &v), STORE_OK);
    assert_int_equal(v, 42);
    assert_int_equal(store_counter_get(s, "never", &v), STORE_OK);
    assert_int_equal(v, 0);
    store_close(s);
}

typedef struct subs {
    char remote[4][64];
    unsigned state[4];
    int n;
} subs;

static void on_sub(void *ud, const char *remote, unsigned st)
{
    subs *ss = ud;
    snprintf(ss->remote[ss->n], sizeof ss->remote[0], "%s", remote);
    ss->state[ss->n++] = st;
}

typedef struct kvs {
    int n;
    char keys[4][32];
    char vals[4][32];
} kvs;

static void on_kv(void *ud, const char *key, const void *value, size_t len)
{
    kvs *k = ud;
    if (k->n < 4) {
        snprintf(k->keys[k->n], sizeof k->keys[0], "%s", key);
        snprintf(k->vals[k->n], sizeof k->vals[0], "%.*s", (int)len, (const char *)value);
    }
    k->n++;
}

static void on_remote(void *ud, const char *remote)
{
    on_kv(ud, remote, "", 0);
}

static void test_subscriptions(void **state)
{
    (void)state;
    store *s = open_store();
    const char *alice = "psyc://example.org/~alice";
    assert_int_equal(store_sub_get(s, alice, "psyc://b.example/~bob"), 0);
    store_sub_set(s, alice, "psyc://b.example/~bob", STORE_SUB_PENDING_OUT);
    store_sub_set(s, alice, "psyc://c.example/~carol", STORE_SUB_TO | STORE_SUB_FROM);
    store_sub_set(s, alice, "psyc://b.example/~bob", STORE_SUB_TO);
    store_commit(s);
    store_close(s);
    s = open_store();
    assert_int_equal(store_sub_get(s, alice, "psyc://b.example/~bob"), STORE_SUB_TO);
    subs ss = {0};
    assert_int_equal(store_sub_each(s, alice, STORE_SUB_FROM, on_sub, &ss), STORE_OK);
    assert_int_equal(ss.n, 1);
    assert_string_equal(ss.remote[0], "psyc://c.example/~carol");
    /* Who sees carol: by the remote side. */
    store_sub_set(s, "psyc://example.org/~dave", "psyc://c.example/~carol", STORE_SUB_TO);
    subs by_remote = {0};
    assert_int_equal(store_sub_each_remote(s, "psyc://c.example/~carol", STORE_SUB_TO, on_sub, &by_remote),
                     STORE_OK);
    assert_int_equal(by_remote.n, 2);
    assert_string_equal(by_remote.remote[0], "psyc://example.org/~alice");
    assert_string_equal(by_remote.remote[1], "psyc://example.org/~dave");
    /* Every remote once, sorted. */
    kvs r = {0};
    assert_int_equal(store_sub_remotes(s, on_remote, &r), STORE_OK);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.keys[0], "psyc://b.example/~bob");
    assert_string_equal(r.keys[1], "psyc://c.example/~carol");
    store_sub_set(s, alice, "psyc://c.example/~carol", 0);
    store_commit(s);
    assert_int_equal(store_sub_get(s, alice, "psyc://c.example/~carol"), 0);
    store_close(s);
}

/* Key-value records survive a reopen, are per namespace, ordered by key;
 * remove_upto acknowledges a queue prefix of one destination only. */
static void test_kv_and_remove_upto(void **state)
{
    (void)state;
    store *s = open_store();
    assert_int_equal(store_kv_set(s, "reg", "bob@b.test", "bobby", 5), STORE_OK);
    assert_int_equal(store_kv_set(s, "reg", "alice@a.test", "al", 2), STORE_OK);
    assert_int_equal(store_kv_set(s, "other", "alice@a.test", "x", 1), STORE_OK);
    assert_int_equal(store_kv_set(s, "reg", "alice@a.test", "alice", 5), STORE_OK);
    int64_t ids[4];
    for (int i = 0; i < 3; i++)
        store_queue_push(s, "psyc:b.test", "o", 1, "m", 1, 1, &ids[i]);
    store_queue_push(s, "psyc:c.test", "o", 1, "m", 1, 1, &ids[3]);
    store_commit(s);
    store_close(s);
    s = open_store();
    void *v = NULL;
    size_t len = 0;
    assert_int_equal(store_kv_get(s, "reg", "alice@a.test", &v, &len), STORE_OK);
    assert_int_equal(len, 5);
    assert_string_equal((char *)v, "alice");
    free(v);
    assert_int_equal(store_kv_get(s, "reg", "nobody", &v, &len), STORE_NOTFOUND);
    assert_null(v);
    kvs k = {0};
    assert_int_equal(store_kv_each(s, "reg", on_kv, &k), STORE_OK);
    assert_int_equal(k.n, 2);
    assert_string_equal(k.keys[0], "alice@a.test");
    assert_string_equal(k.vals[1], "bobby");
    assert_int_equal(store_kv_del(s, "reg", "alice@a.test"), STORE_OK);
    assert_int_equal(store_kv_del(s, "reg", "alice@a.test"), STORE_NOTFOUND);
    assert_int_equal(store_queue_remove_upto(s, "psyc:b.test", ids[1]), 2);
    store_commit(s);
    assert_int_equal(store_queue_depth(s, "psyc:b.test"), 1);
    assert_int_equal(store_queue_depth(s, "psyc:c.test"), 1);
    store_close(s);
}

typedef struct walked {
    store *s;
    int n;
    int64_t ids[200];
} walked;

static void on_item(void *ud, const store_item *it)
{
    walked *w = ud;
    if (w->n < 200)
        w->ids[w->n] = it->id;
    w->n++;
    store_queue_remove(w->s, it->id); /* removing while walking is allowed */
}

/* Every queue with the prefix, each in order, past one page (64 items). */
static void test_queue_each(void **state)
{
    (void)state;
    store *s = open_store();
    int64_t id, first_a = 0, first_b = 0;
    for (int i = 0; i < 100; i++) {
        store_queue_push(s, i % 2 ? "psyc:a.test" : "psyc:b.test", "o", 0, "m", 1, 1, &id);
        if (i == 0)
            first_b = id;
        if (i == 1)
            first_a = id;
    }
    store_queue_push(s, "xmpp-s2s:x y", "o", 0, "m", 1, 1, &id);
    store_commit(s);
    walked w = {.s = s};
    assert_int_equal(store_queue_each(s, "psyc:", on_item, &w), STORE_OK);
    assert_int_equal(w.n, 100);
    /* b.test's queue first (its oldest item is older), each in order */
    assert_int_equal(w.ids[0], first_b);
    assert_int_equal(w.ids[50], first_a);
    for (int i = 1; i < 100; i++)
        if (i != 50)
            assert_true(w.ids[i] > w.ids[i - 1]);
    store_commit(s);
    assert_int_equal(store_queue_depth(s, NULL), 1);
    store_close(s);
}

/* The child pushes messages, committing every 10 (one "loop turn") and
 * telling the parent through a pipe what is committed; the parent kills it
 * with SIGKILL mid-burst. */
static void test_kill9_mid_burst(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        store *s = NULL;
        char err[256];
        if (store_open(db_path, &s, err, sizeof err) != 0)
            _exit(2);
        for (int i = 0; i < 1000000; i++) {
            char msg[32];
            int len = snprintf(msg, sizeof msg, "%d", i);
            if (store_queue_push(s, "psyc:far.example", "alice", 0, msg, (size_t)len, i, NULL) != 0)
                _exit(3);
            if (i % 10 == 9) {
                if (store_commit(s) != 10)
                    _exit(4);
                int32_t done = i + 1;
                if (write(fds[1], &done, sizeof done) != sizeof done)
                    _exit(5);
            }
        }
        _exit(0);
    }
    close(fds[1]);
    int32_t committed = 0, v;
    /* Let it commit a few hundred, then kill it wherever it is. */
    while (committed < 300 && read(fds[0], &v, sizeof v) == sizeof v)
        committed = v;
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    while (read(fds[0], &v, sizeof v) == sizeof v)
        committed = v; /* reports written before the kill */
    close(fds[0]);

    store *s = open_store();
    int64_t depth = store_queue_depth(s, "psyc:far.example");
    /* Every reported commit is there; at most the batch in flight (never
     * reported) may or may not be. Exactly once and in order. */
    assert_true(depth >= committed);
    assert_true(depth <= committed + 10);
    assert_int_equal(depth % 10, 0);
    int64_t after = 0, expect = 0;
    store_item items[64];
    size_t n;
    do {
        assert_int_equal(store_queue_peek(s, "psyc:far.example", after, items, 64, &n), STORE_OK);
        for (size_t i = 0; i < n; i++) {
            char want[32];
            int len = snprintf(want, sizeof want, "%lld", (long long)expect++);
            assert_int_equal(items[i].len, (size_t)len);
            assert_memory_equal(items[i].data, want, (size_t)len);
            after = items[i].id;
            store_item_clear(&items[i]);
        }
    } while (n);
    assert_int_equal(expect, depth);
    store_close(s);
}

static void test_open_errors(void **state)
{
    (void)state;
    char err[256] = "";
    store *s = (store *)1;
    assert_int_equal(store_open("/nonexistent-dir/x/state.db", &s, err, sizeof err), -1);
    assert_null(s);
    assert_non_null(strstr(err, "/nonexistent-dir/x/state.db"));
    /* Not a database. */
    char path[400];
    snprintf(path, sizeof path, "%s/garbage.db", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("this is not an SQLite file, just text long enough to have a header............", f);
    fclose(f);
    assert_int_equal(store_open(path, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "garbage.db"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_queue_order_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destinations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_callbacks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subscriptions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_mid_burst, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kv_and_remove_upto, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_each, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
