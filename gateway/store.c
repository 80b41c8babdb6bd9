/* store.c: the SQLite store (see store.h). */
#include "gateway/store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STORE_SCHEMA_VERSION 1

/* Prepared statements, compiled once at open. */
enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_QPUSH,
    ST_QPEEK,
    ST_QREMOVE,
    ST_QATTEMPT,
    ST_QDEPTH,
    ST_QDEPTH_ALL,
    ST_QOLDEST,
    ST_QDESTS,
    ST_SUBSET,
    ST_SUBDEL,
    ST_SUBGET,
    ST_SUBEACH,
    ST_SUBREMOTE,
    ST_CADD,
    ST_CGET,
    ST_KVSET,
    ST_KVDEL,
    ST_KVGET,
    ST_KVEACH,
    ST_QREMOVE_UPTO,
    ST_SUBREMOTES,
    ST_CEACH,
    ST_COUNT_
};

static const char *const store_sql[ST_COUNT_] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_QPUSH] = "INSERT INTO queue(dest, origin, kind, created_ms, attempts, data) "
                 "VALUES(?1, ?2, ?3, ?4, 0, ?5)",
    [ST_QPEEK] = "SELECT id, dest, origin, kind, created_ms, attempts, data FROM queue "
                 "WHERE dest = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
    [ST_QREMOVE] = "DELETE FROM queue WHERE id = ?1",
    [ST_QATTEMPT] = "UPDATE queue SET attempts = attempts + 1 WHERE id = ?1",
    [ST_QDEPTH] = "SELECT count(*) FROM queue WHERE dest = ?1",
    [ST_QDEPTH_ALL] = "SELECT count(*) FROM queue",
    [ST_QOLDEST] = "SELECT id, dest, origin, kind, created_ms, attempts, data FROM queue "
                   "WHERE created_ms < ?1 ORDER BY id LIMIT 1",
    [ST_QDESTS] = "SELECT dest, count(*), min(id) AS first FROM queue GROUP BY dest ORDER BY first",
    [ST_SUBSET] = "INSERT INTO subscription(local, remote, state) VALUES(?1, ?2, ?3) "
                  "ON CONFLICT(local, remote) DO UPDATE SET state = excluded.state",
    [ST_SUBDEL] = "DELETE FROM subscription WHERE local = ?1 AND remote = ?2",
    [ST_SUBGET] = "SELECT state FROM subscription WHERE local = ?1 AND remote = ?2",
    [ST_SUBEACH] = "SELECT remote, state FROM subscription WHERE local = ?1 AND (state & ?2) != 0 "
                   "ORDER BY remote",
    [ST_SUBREMOTE] = "SELECT local, state FROM subscription WHERE remote = ?1 AND (state & ?2) != 0 "
                     "ORDER BY local",
    [ST_CADD] = "INSERT INTO counter(name, value) VALUES(?1, ?2) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
    [ST_CGET] = "SELECT value FROM counter WHERE name = ?1",
    [ST_KVSET] = "INSERT INTO kv(ns, key, value) VALUES(?1, ?2, ?3) "
                 "ON CONFLICT(ns, key) DO UPDATE SET value = excluded.value",
    [ST_KVDEL] = "DELETE FROM kv WHERE ns = ?1 AND key = ?2",
    [ST_KVGET] = "SELECT value FROM kv WHERE ns = ?1 AND key = ?2",
    [ST_KVEACH] = "SELECT key, value FROM kv WHERE ns = ?1 ORDER BY key",
    [ST_QREMOVE_UPTO] = "DELETE FROM queue WHERE dest = ?1 AND id <= ?2",
    [ST_SUBREMOTES] = "SELECT DISTINCT remote FROM subscription ORDER BY remote",
    [ST_CEACH] = "SELECT name, value FROM counter ORDER BY name",
};

/* The queue keeps insertion order with AUTOINCREMENT: ids are never
 * reused, so "after id X" stays meaningful across deletions and restarts. */
static const char store_schema[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS queue(id INTEGER PRIMARY KEY AUTOINCREMENT, dest TEXT NOT NULL,"
    " origin TEXT NOT NULL, kind INTEGER NOT NULL, created_ms INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL, data BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS queue_dest ON queue(dest, id);"
    "CREATE TABLE IF NOT EXISTS subscription(local TEXT NOT NULL, remote TEXT NOT NULL,"
    " state INTEGER NOT NULL, PRIMARY KEY(local, remote)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS subscription_remote ON subscription(remote, local);"
    "CREATE TABLE IF NOT EXISTS counter(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS kv(ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,"
    " PRIMARY KEY(ns, key)) WITHOUT ROWID;";

typedef struct store_pending_cb {
    store_commit_cb cb;
    void *ud;
} store_pending_cb;

struct store {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT_];
    int in_tx;         /* BEGIN ran, COMMIT not yet */
    int writes;        /* writes in the open transaction */
    store_pending_cb *cbs;
    size_t n_cbs, cap_cbs;
    char err[256];
};

static int store_fail(store *s, const char *what)
{
    snprintf(s->err, sizeof s->err, "%s: %s", what, sqlite3_errmsg(s->db));
    return STORE_ERR;
}

const char *store_error(const store *s)
{
    return s->err;
}

static sqlite3_stmt *store_stmt(store *s, int which)
{
    sqlite3_stmt *st = s->st[which];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* Runs a statement that returns no rows. */
static int store_exec_stmt(store *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? STORE_OK : store_fail(s, what);
}

/* Every write runs inside the turn's transaction (group commit). */
static int store_write_begin(store *s)
{
    if (s->in_tx)
        return STORE_OK;
    int rc = store_exec_stmt(s, store_stmt(s, ST_BEGIN), "begin");
    if (rc == STORE_OK)
        s->in_tx = 1;
    return rc;
}

static int store_write(store *s, sqlite3_stmt *st, const char *what)
{
    int rc = store_exec_stmt(s, st, what);
    if (rc == STORE_OK)
        s->writes++;
    return rc;
}

int store_open(const char *path, store **out, char *err, size_t errsz)
{
    *out = NULL;
    store *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    char *msg = NULL;
    /* WAL + FULL: a commit is on disk when COMMIT returns (the WAL is
     * fsynced at every commit), and readers never block the writer. */
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db,
                          "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
                          NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, store_schema, NULL, NULL, &msg);
    if (rc == SQLITE_OK) {
        char sql[128];
        snprintf(sql, sizeof sql, "INSERT OR IGNORE INTO meta(key, value) VALUES('schema', %d)",
                 STORE_SCHEMA_VERSION);
        rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    }
    for (int i = 0; rc == SQLITE_OK && i < ST_COUNT_; i++)
        rc = sqlite3_prepare_v3(s->db, store_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
    if (rc == SQLITE_OK) {
        /* A newer schema is not ours to write to. */
        sqlite3_stmt *v = NULL;
        rc = sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'schema'", -1, &v, NULL);
        if (rc == SQLITE_OK && sqlite3_step(v) == SQLITE_ROW &&
            sqlite3_column_int(v, 0) != STORE_SCHEMA_VERSION) {
            snprintf(err, errsz, "%s: schema version %d, this psycgate knows %d", path,
                     sqlite3_column_int(v, 0), STORE_SCHEMA_VERSION);
            sqlite3_finalize(v);
            store_close(s);
            return -1;
        }
        sqlite3_finalize(v);
    }
    if (rc != SQLITE_OK) {
        snprintf(err, errsz, "%s: %s", path, msg ? msg : s->db ? sqlite3_errmsg(s->db) : "cannot open");
        sqlite3_free(msg);
        store_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

void store_close(store *s)
{
    if (!s)
        return;
    if (s->db) {
        store_commit(s);
        for (int i = 0; i < ST_COUNT_; i++)
            sqlite3_finalize(s->st[i]);
        sqlite3_close(s->db);
    }
    free(s->cbs);
    free(s);
}

/* ------------------------------------------------------------------ */
/* Group commit                                                       */

static void store_run_callbacks(store *s, int ok)
{
    /* A callback may register the next one: take the list first. */
    store_pending_cb *cbs = s->cbs;
    size_t n = s->n_cbs;
    s->cbs = NULL;
    s->n_cbs = s->cap_cbs = 0;
    for (size_t i = 0; i < n; i++)
        cbs[i].cb(cbs[i].ud, ok);
    free(cbs);
}

int store_commit(store *s)
{
    if (!s->in_tx) {
        store_run_callbacks(s, 1);
        return 0;
    }
    int writes = s->writes;
    int rc = store_exec_stmt(s, store_stmt(s, ST_COMMIT), "commit");
    if (rc != STORE_OK) {
        store_exec_stmt(s, store_stmt(s, ST_ROLLBACK), "rollback");
        writes = rc;
    }
    s->in_tx = 0;
    s->writes = 0;
    store_run_callbacks(s, rc == STORE_OK);
    return writes;
}

int store_dirty(const store *s)
{
    return s->in_tx && s->writes > 0;
}

int store_after_commit(store *s, store_commit_cb cb, void *ud)
{
    if (!store_dirty(s)) {
        cb(ud, 1);
        return STORE_OK;
    }
    if (s->n_cbs == s->cap_cbs) {
        size_t cap = s->cap_cbs ? 2 * s->cap_cbs : 16;
        store_pending_cb *n = realloc(s->cbs, cap * sizeof *n);
        if (!n)
            return STORE_NOMEM;
        s->cbs = n;
        s->cap_cbs = cap;
    }
    s->cbs[s->n_cbs++] = (store_pending_cb){cb, ud};
    return STORE_OK;
}

/* ------------------------------------------------------------------ */
/* Queues                                                             */

void store_item_clear(store_item *it)
{
    free(it->dest);
    free(it->origin);
    free(it->data);
    memset(it, 0, sizeof *it);
}

int store_queue_push(store *s, const char *dest, const char *origin, int kind, const void *data,
                     size_t len, int64_t now_ms, int64_t *id)
{
    int rc = store_write_begin(s);
    if (rc != STORE_OK)
        return rc;
    sqlite3_stmt *st = store_stmt(s, ST_QPUSH);
    sqlite3_bind_text(st, 1, dest, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, origin ? origin : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, kind);
    sqlite3_bind_int64(st, 4, now_ms);
    sqlite3_bind_blob64(st, 5, len ? data : "", len, SQLITE_STATIC);
    rc = store_write(s, st, "queue push");
    if (rc == STORE_OK && id)
        *id = sqlite3_last_insert_rowid(s->db);
    return rc;
}

static char *store_col_strdup(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return strdup(t ? (const char *)t : "");
}

static int store_read_item(sqlite3_stmt *st, store_item *it)
{
    memset(it, 0, sizeof *it);
    it->id = sqlite3_column_int64(st, 0);
    it->dest = store_col_strdup(st, 1);
    it->origin = store_col_strdup(st, 2);
    it->kind = sqlite3_column_int(st, 3);
    it->created_ms = sqlite3_column_int64(st, 4);
    it->attempts = (uint32_t)sqlite3_column_int64(st, 5);
    const void *blob = sqlite3_column_blob(st, 6);
    it->len = (size_t)sqlite3_column_bytes(st, 6);
    it->data = malloc(it->len ? it->len : 1);
    if (!it->dest || !it->origin || !it->data) {
        store_item_clear(it);
        return STORE_NOMEM;
    }
    if (it->len)
        memcpy(it->data, blob, it->len);
    return STORE_OK;
}

int store_queue_peek(store *s, const char *dest, int64_t after_id, store_item *items, size_t max,
                     size_t *n)
{
    *n = 0;
    sqlite3_stmt *st = store_stmt(s, ST_QPEEK);
    sqlite3_bind_text(st, 1, dest, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, after_id);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)max);
    int rc, out = STORE_OK;
    while (*n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        out = store_read_item(st, &items[*n]);
        if (out != STORE_OK)
            break;
        (*n)++;
    }
    if (out == STORE_OK && *n < max && rc != SQLITE_DONE)
        out = store_fail(s, "queue peek");
    sqlite3_reset(st);
    if (out != STORE_OK) {
        while (*n)
            store_item_clear(&items[--*n]);
    }
    return out;
}

static int store_by_id(store *s, int which, int64_t id, const char *what)
{
    int rc = store_write_begin(s);
    if (rc != STORE_OK)
        return rc;
    sqlite3_stmt *st = store_stmt(s, which);
    sqlite3_bind_int64(st, 1, id);
    rc = store_write(s, st, what);
    if (rc == STORE_OK && sqlite3_changes(s->db) == 0)
        return STORE_NOTFOUND;
    return rc;
}

int store_queue_remove(store *s, int64_t id)
{
    return store_by_id(s, ST_QREMOVE, id, "queue remove");
}

int store_queue_attempted(store *s, int64_t id)
{
    return store_by_id(s, ST_QATTEMPT, id, "queue attempt");
}

int64_t store_queue_depth(store *s, const char *dest)
{
    sqlite3_stmt *st = store_stmt(s, dest ? ST_QDEPTH : ST_QDEPTH_ALL);
    if (dest)
        sqlite3_bind_text(st, 1, dest, -1, SQLITE_STATIC);
    int64_t depth = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0)
                                                   : store_fail(s, "queue depth");
    sqlite3_reset(st);
    return depth;
}

int store_queue_oldest_before(store *s, int64_t before_ms, store_item *it)
{
    sqlite3_stmt *st = store_stmt(s, ST_QOLDEST);
    sqlite3_bind_int64(st, 1, before_ms);
    int rc = sqlite3_step(st);
    int out = rc == SQLITE_ROW    ? store_read_item(st, it)
              : rc == SQLITE_DONE ? STORE_NOTFOUND
                                  : store_fail(s, "queue oldest");
    sqlite3_reset(st);
    return out;
}

int store_queue_destinations(store *s, void (*cb)(void *ud, const char *dest, int64_t depth), void *ud)
{
    sqlite3_stmt *st = store_stmt(s, ST_QDESTS);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cb(ud, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1));
    int out = rc == SQLITE_DONE ? STORE_OK : store_fail(s, "queue destinations");
    sqlite3_reset(st);
    return out;
}

typedef struct store_dests {
    const char *prefix;
    char **v;
    size_t n, cap;
    int nomem;
} store_dests;

static void store_collect_dest(void *ud, const char *dest, int64_t depth)
{
    (void)depth;
    store_dests *d = ud;
    if (strncmp(dest, d->prefix, strlen(d->prefix)) != 0)
        return;
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 8;
        char **v = realloc(d->v, cap * sizeof *v);
        if (!v) {
            d->nomem = 1;
            return;
        }
        d->v = v;
        d->cap = cap;
    }
    if (!(d->v[d->n] = strdup(dest)))
        d->nomem = 1;
    else
        d->n++;
}

int store_queue_each(store *s, const char *prefix, void (*cb)(void *ud, const store_item *it), void *ud)
{
    /* The destinations first: cb may write (remove) while we page. */
    store_dests d = {.prefix = prefix};
    int rc = store_queue_destinations(s, store_collect_dest, &d);
    if (rc == STORE_OK && d.nomem)
        rc = STORE_NOMEM;
    for (size_t i = 0; rc == STORE_OK && i < d.n; i++) {
        int64_t after = 0;
        size_t got;
        do {
            store_item items[64];
            got = 0;
            rc = store_queue_peek(s, d.v[i], after, items, 64, &got);
            for (size_t k = 0; k < got; k++) {
                after = items[k].id;
                cb(ud, &items[k]);
                store_item_clear(&items[k]);
            }
        } while (rc == STORE_OK && got == 64);
    }
    for (size_t i = 0; i < d.n; i++)
        free(d.v[i]);
    free(d.v);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Subscriptions                                                      */

int store_sub_set(store *s, const char *local, const char *remote, unsigned state)
{
    int rc = store_write_begin(s);
    if (rc != STORE_OK)
        return rc;
    sqlite3_stmt *st = store_stmt(s, state ? ST_SUBSET : ST_SUBDEL);
    sqlite3_bind_text(st, 1, local, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, remote, -1, SQLITE_STATIC);
    if (state)
        sqlite3_bind_int(st, 3, (int)state);
    return store_write(s, st, "subscription set");
}

int store_sub_get(store *s, const char *local, const char *remote)
{
    sqlite3_stmt *st = store_stmt(s, ST_SUBGET);
    sqlite3_bind_text(st, 1, local, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, remote, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int out = rc == SQLITE_ROW    ? sqlite3_column_int(st, 0)
              : rc == SQLITE_DONE ? 0
                                  : store_fail(s, "subscription get");
    sqlite3_reset(st);
    return out;
}

int store_sub_each(store *s, const char *local, unsigned mask,
                   void (*cb)(void *ud, const char *remote, unsigned state), void *ud)
{
    sqlite3_stmt *st = store_stmt(s, ST_SUBEACH);
    sqlite3_bind_text(st, 1, local, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, (int)mask);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cb(ud, (const char *)sqlite3_column_text(st, 0), (unsigned)sqlite3_column_int(st, 1));
    int out = rc == SQLITE_DONE ? STORE_OK : store_fail(s, "subscription each");
    sqlite3_reset(st);
    return out;
}

int store_sub_each_remote(store *s, const char *remote, unsigned mask,
                          void (*cb)(void *ud, const char *local, unsigned state), void *ud)
{
    sqlite3_stmt *st = store_stmt(s, ST_SUBREMOTE);
    sqlite3_bind_text(st, 1, remote, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, (int)mask);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cb(ud, (const char *)sqlite3_column_text(st, 0), (unsigned)sqlite3_column_int(st, 1));
    int out = rc == SQLITE_DONE ? STORE_OK : store_fail(s, "subscription each remote");
    sqlite3_reset(st);
    return out;
}

int store_sub_remotes(store *s, void (*cb)(void *ud, const char *remote), void *ud)
{
    sqlite3_stmt *st = store_stmt(s, ST_SUBREMOTES);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cb(ud, (const char *)sqlite3_column_text(st, 0));
    int out = rc == SQLITE_DONE ? STORE_OK : store_fail(s, "subscription remotes");
    sqlite3_reset(st);
    return out;
}

/* ------------------------------------------------------------------ */
/* Counters                                                           */

int store_counter_add(store *s, const char *name, int64_t delta)
{
    int rc = store_write_begin(s);
    if (rc != STORE_OK)
        return rc;
    sqlite3_stmt *st = store_stmt(s, ST_CADD);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, delta);
    return store_write(s, st, "counter add");
}

int store_counter_each(store *s, void (*cb)(void *ud, const char *name, int64_t value), void *ud)
{
    sqlite3_stmt *st = store_stmt(s, ST_CEACH);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cb(ud, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1));
    int out = rc == SQLITE_DONE ? STORE_OK : store_fail(s, "counter each");
    sqlite3_reset(st);
    return out;
}

int store_counter_get(store *s, const char *name, int64_t *value)
{
    sqlite3_stmt *st = store_stmt(s, ST_CGET);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *value = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    int out = rc == SQLITE_ROW || rc == SQLITE_DONE ? STORE_OK : store_fail(s, "counter get");
    sqlite3_reset(st);
    return out;
}

/* ------------------------------------------------------------------ */
/* Key-value records                                                  */

int store_kv_set(store *s, const char *ns, const char *key, const void *value, size_t len)
{
    int rc = store_write_begin(s);
    if (rc != STORE_OK)
        return rc;
    sqlite3_stmt *st = store_stmt(s, ST_KVSET);
    sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_blob64(st, 3, len ? value : "", len, SQLITE_STATIC);
    return store_write(s, st, "kv set");
}

int store_kv_del(store *s, const char *ns, const char *key)
{
    int rc = store_write_begin(s);
    if (rc != STORE_OK)
        return rc;
    sqlite3_stmt *st = store_stmt(s, ST_KVDEL);
    sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    rc = store_write(s, st, "kv del");
    if (rc == STORE_OK && sqlite3_changes(s->db) == 0)
        return STORE_NOTFOUND;
    return rc;
}

/* A copy of a blob column with a NUL after it, so text values can be used
 * as C strings. */
static void *store_col_blobdup(sqlite3_stmt *st, int col, size_t *len)
{
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    const void *b = sqlite3_column_blob(st, col);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    if (n)
        memcpy(out, b, n);
    out[n] = '\0';
    *len = n;
    return out;
}

int store_kv_get(store *s, const char *ns, const char *key, void **value, size_t *len)
{
    *value = NULL;
    *len = 0;
    sqlite3_stmt *st = store_stmt(s, ST_KVGET);
    sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int out = STORE_OK;
    if (rc == SQLITE_ROW) {
        *value = store_col_blobdup(st, 0, len);
        if (!*value)
            out = STORE_NOMEM;
    } else {
        out = rc == SQLITE_DONE ? STORE_NOTFOUND : store_fail(s, "kv get");
    }
    sqlite3_reset(st);
    return out;
}

int store_kv_each(store *s, const char *ns,
                  void (*cb)(void *ud, const char *key, const void *value, size_t len), void *ud)
{
    sqlite3_stmt *st = store_stmt(s, ST_KVEACH);
    sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cb(ud, (const char *)sqlite3_column_text(st, 0), sqlite3_column_blob(st, 1),
           (size_t)sqlite3_column_bytes(st, 1));
    int out = rc == SQLITE_DONE ? STORE_OK : store_fail(s, "kv each");
    sqlite3_reset(st);
    return out;
}

int store_queue_remove_upto(store *s, const char *dest, int64_t id)
{
    int rc = store_write_begin(s);
    if (rc != STORE_OK)
        return rc;
    sqlite3_stmt *st = store_stmt(s, ST_QREMOVE_UPTO);
    sqlite3_bind_text(st, 1, dest, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, id);
    rc = store_write(s, st, "queue remove upto");
    return rc == STORE_OK ? sqlite3_changes(s->db) : rc;
}
