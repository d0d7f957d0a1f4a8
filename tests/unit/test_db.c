/* test_db.c — common/db.c against the real test cluster (tests/run-tests.sh). */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/db.h"
#include "common/log.h"
#include "tests/harness/check_main.h"
#include "tests/harness/harness.h"

static const struct sw_db_migration migs_v2[] = {
    { 1, "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)" },
    /* Not idempotent on purpose: applying a migration twice would fail. */
    { 2, "ALTER TABLE items ADD COLUMN qty int NOT NULL DEFAULT 0 CHECK (qty >= 0);"
         "CREATE INDEX items_name ON items (name)" },
};
static const struct sw_db_migration migs_v3[] = {
    migs_v2[0], migs_v2[1], { 3, "ALTER TABLE items ADD COLUMN note text" },
};

static struct sw_db *open_db(const char *url, unsigned size)
{
    struct sw_db *db = NULL;
    struct sw_error err = { 0 };
    ck_assert_msg(sw_db_open(url, size, &db, &err) == SW_OK, "open: %s", err.msg);
    return db;
}

static struct sw_db *fresh(unsigned size) { return open_db(th_fresh_db("test_db"), size); }

/* Runs sql on a pooled connection; returns the first value of the result (static). */
static const char *query1(struct sw_db *db, const char *sql)
{
    static char val[256];
    struct sw_db_conn *c;
    struct sw_error err = { 0 };
    PGresult *r = NULL;

    ck_assert_msg(sw_db_acquire(db, &c, &err) == SW_OK, "acquire: %s", err.msg);
    ck_assert_msg(sw_db_exec(c, sql, 0, NULL, &r, &err) == SW_OK, "%s: %s", sql, err.msg);
    snprintf(val, sizeof(val), "%s", PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    sw_db_release(db, c);
    return val;
}

static int migrations_recorded(struct sw_db *db, const char *component)
{
    char sql[160];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM sw_schema_migrations WHERE component = '%s'", component);
    return atoi(query1(db, sql));
}

START_TEST(migrate_applies_once)
{
    static const struct sw_db_migration other[] = { { 1, "CREATE TABLE other_t (id int)" } };
    struct sw_db *db = fresh(2);
    struct sw_error err = { 0 };

    ck_assert_msg(sw_db_migrate(db, "td", migs_v2, 2, &err) == SW_OK, "%s", err.msg);
    ck_assert_msg(sw_db_migrate(db, "td", migs_v2, 2, &err) == SW_OK, "%s", err.msg);
    ck_assert_int_eq(migrations_recorded(db, "td"), 2);
    ck_assert_str_eq(query1(db, "SELECT count(*) FROM pg_indexes WHERE indexname = 'items_name'"),
                     "1");
    /* A newer binary applies only what is new; other components are independent. */
    ck_assert_msg(sw_db_migrate(db, "td", migs_v3, 3, &err) == SW_OK, "%s", err.msg);
    ck_assert_int_eq(migrations_recorded(db, "td"), 3);
    ck_assert_msg(sw_db_migrate(db, "other", other, 1, &err) == SW_OK, "%s", err.msg);
    ck_assert_int_eq(migrations_recorded(db, "other"), 1);
    sw_db_close(db);
}
END_TEST

START_TEST(migrate_failure_rolls_back)
{
    static const struct sw_db_migration bad[] = {
        { 1, "CREATE TABLE t1 (id int)" },
        { 2, "CREATE TABLE t2 (id int); SELECT no_such_function()" },
        { 3, "CREATE TABLE t3 (id int)" },
    };
    static const struct sw_db_migration unordered[] = { { 2, "SELECT 1" }, { 1, "SELECT 1" } };
    struct sw_db *db = fresh(2);
    struct sw_error err = { 0 };

    ck_assert_msg(sw_db_migrate(db, "good", bad, 1, &err) == SW_OK, "%s", err.msg);
    /* v2 fails: v3 must not run and v2's first statement must be undone. */
    ck_assert_int_eq(sw_db_migrate(db, "bad", bad + 1, 2, &err), SW_EDB);
    ck_assert_ptr_nonnull(strstr(err.msg, "migration bad v2"));
    ck_assert_str_eq(query1(db, "SELECT to_regclass('t2') IS NULL AND to_regclass('t3') IS NULL"),
                     "t");
    ck_assert_int_eq(migrations_recorded(db, "bad"), 0);
    ck_assert_int_eq(sw_db_migrate(db, "u", unordered, 2, &err), SW_EINVAL);
    sw_db_close(db);
}
END_TEST

struct migrate_arg {
    const char *url;
    int rc;
    char msg[SW_ERROR_MSG_MAX];
};

static void *migrate_thread(void *p)
{
    struct migrate_arg *a = p;
    struct sw_db *db = NULL;
    struct sw_error err = { 0 };

    a->rc = sw_db_open(a->url, 1, &db, &err);
    if (a->rc == SW_OK)
        a->rc = sw_db_migrate(db, "td", migs_v3, 3, &err);
    snprintf(a->msg, sizeof(a->msg), "%s", err.msg);
    sw_db_close(db);
    return NULL;
}

START_TEST(migrate_concurrently)
{
    char url[1024];
    struct migrate_arg a[4];
    pthread_t t[4];
    struct sw_db *db;

    snprintf(url, sizeof(url), "%s", th_fresh_db("test_db"));
    /* Separate pools, as separate daemon processes would have. */
    for (int i = 0; i < 4; i++) {
        a[i] = (struct migrate_arg){ .url = url };
        ck_assert_int_eq(pthread_create(&t[i], NULL, migrate_thread, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ck_assert_msg(a[i].rc == SW_OK, "thread %d: %s", i, a[i].msg);
    }
    db = open_db(url, 1);
    ck_assert_int_eq(migrations_recorded(db, "td"), 3);
    sw_db_close(db);
}
END_TEST

static struct sw_db *items_db(unsigned size)
{
    struct sw_db *db = fresh(size);
    struct sw_error err = { 0 };
    ck_assert_msg(sw_db_migrate(db, "td", migs_v3, 3, &err) == SW_OK, "%s", err.msg);
    ck_assert_int_eq(sw_db_prepare(db, "ins", "INSERT INTO items (id, name, qty, note) "
                                              "VALUES ($1, $2, $3, $4)"), SW_OK);
    ck_assert_int_eq(sw_db_prepare(db, "get", "SELECT name, qty, note FROM items WHERE id = $1"),
                     SW_OK);
    ck_assert_int_eq(sw_db_prepare(db, "get", "SELECT 1"), SW_EEXIST);
    return db;
}

static int insert(struct sw_db_conn *c, const char *id, const char *qty, struct sw_error *err)
{
    const char *v[] = { id, "name", qty, NULL };
    PGresult *r = NULL;
    int rc = sw_db_exec_prepared(c, "ins", 4, v, &r, err);
    PQclear(r);
    return rc;
}

START_TEST(prepared_statements)
{
    struct sw_db *db = items_db(2);
    struct sw_db_conn *c1, *c2;
    struct sw_error err = { 0 };
    const char *id[] = { "7" };
    PGresult *r = NULL;

    ck_assert_int_eq(sw_db_acquire(db, &c1, &err), SW_OK);
    ck_assert_int_eq(sw_db_acquire(db, &c2, &err), SW_OK);
    ck_assert_ptr_ne(sw_db_pgconn(c1), sw_db_pgconn(c2));
    ck_assert_msg(insert(c1, "7", "3", &err) == SW_OK, "%s", err.msg);
    /* c2 prepares "get" on its own session; c1 again reuses its "ins". */
    ck_assert_msg(sw_db_exec_prepared(c2, "get", 1, id, &r, &err) == SW_OK, "%s", err.msg);
    ck_assert_int_eq(PQntuples(r), 1);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "name");
    ck_assert_str_eq(PQgetvalue(r, 0, 1), "3");
    ck_assert(PQgetisnull(r, 0, 2));
    PQclear(r);
    ck_assert_msg(insert(c1, "8", "0", &err) == SW_OK, "%s", err.msg);
    ck_assert_int_eq(sw_db_exec_prepared(c1, "nope", 0, NULL, &r, &err), SW_EINVAL);
    sw_db_release(db, c1);
    sw_db_release(db, c2);
    ck_assert_str_eq(query1(db, "SELECT count(*) FROM items"), "2");
    sw_db_close(db);
}
END_TEST

START_TEST(sqlstate_classification)
{
    struct sw_db *db = items_db(1);
    struct sw_db_conn *c;
    struct sw_error err = { 0 };
    const char *bad_int[] = { "abc" };
    PGresult *r = NULL;

    ck_assert_int_eq(sw_db_acquire(db, &c, &err), SW_OK);
    ck_assert_int_eq(insert(c, "1", "1", &err), SW_OK);
    ck_assert_int_eq(insert(c, "1", "1", &err), SW_ECONFLICT);
    ck_assert_ptr_nonnull(strstr(err.msg, "duplicate key"));
    ck_assert_int_eq(insert(c, "abc", "1", &err), SW_EINVAL);
    ck_assert_int_eq(sw_db_exec(c, "SELECT $1::int", 1, bad_int, &r, &err), SW_EINVAL);
    ck_assert_int_eq(insert(c, "2", "-1", &err), SW_EINVAL); /* check constraint */
    ck_assert_int_eq(insert(c, "3", NULL, &err), SW_EINVAL); /* not null */
    ck_assert_int_eq(sw_db_exec(c, "SELEKT 1", 0, NULL, &r, &err), SW_EDB);
    ck_assert_int_eq(sw_db_exec(c, "SELECT * FROM missing", 0, NULL, &r, &err), SW_EDB);
    ck_assert_ptr_nonnull(strstr(err.msg, "missing"));
    /* A transaction left open is rolled back on release. */
    ck_assert_int_eq(sw_db_exec(c, "BEGIN", 0, NULL, &r, &err), SW_OK);
    PQclear(r);
    ck_assert_int_eq(insert(c, "4", "1", &err), SW_OK);
    sw_db_release(db, c);
    ck_assert_str_eq(query1(db, "SELECT count(*) FROM items"), "1");
    sw_db_close(db);
}
END_TEST

struct release_arg {
    struct sw_db *db;
    struct sw_db_conn *c;
};

static void *release_later(void *p)
{
    struct release_arg *a = p;
    usleep(200 * 1000);
    sw_db_release(a->db, a->c);
    return NULL;
}

START_TEST(pool_exhaustion)
{
    struct sw_db *db = fresh(2);
    struct sw_db_conn *c1, *c2, *c3;
    struct sw_error err = { 0 };
    struct release_arg ra;
    pthread_t t;
    int64_t t0;

    sw_db_set_acquire_timeout(db, 300);
    ck_assert_int_eq(sw_db_acquire(db, &c1, &err), SW_OK);
    ck_assert_int_eq(sw_db_acquire(db, &c2, &err), SW_OK);
    t0 = sw_mono_ms();
    ck_assert_int_eq(sw_db_acquire(db, &c3, &err), SW_ETIMEDOUT);
    ck_assert(sw_ms_since(t0) >= 250 && sw_ms_since(t0) < 2000);
    /* A waiter gets the connection another thread gives back. */
    sw_db_set_acquire_timeout(db, 5000);
    ra = (struct release_arg){ db, c2 };
    ck_assert_int_eq(pthread_create(&t, NULL, release_later, &ra), 0);
    ck_assert_int_eq(sw_db_acquire(db, &c3, &err), SW_OK);
    pthread_join(t, NULL);
    ck_assert_ptr_eq(c3, c2);
    sw_db_release(db, c1);
    sw_db_release(db, c3);
    sw_db_close(db);
}
END_TEST

START_TEST(bad_urls)
{
    struct sw_db *db = NULL;
    struct sw_error err = { 0 };

    ck_assert_int_eq(sw_db_open("postgresql://u:s3cret@[::1", 1, &db, &err), SW_EINVAL);
    ck_assert_ptr_null(strstr(err.msg, "s3cret"));
    /* Nothing listens on port 1: refused at once, reported as SW_EDB. */
    db = open_db("host=127.0.0.1 port=1 user=x password=s3cret dbname=x", 1);
    ck_assert_int_eq(sw_db_ping(db, &err), SW_EDB);
    ck_assert_ptr_null(strstr(err.msg, "s3cret"));
    sw_db_close(db);
}
END_TEST

/* Holds both connections at once so both get sessions (and "get" prepared). */
static int use_two(struct sw_db *db, struct sw_error *err)
{
    struct sw_db_conn *c[2] = { NULL, NULL };
    const char *id[] = { "1" };
    PGresult *r = NULL;
    int rc = SW_OK;

    for (int i = 0; i < 2 && rc == SW_OK; i++) {
        if ((rc = sw_db_acquire(db, &c[i], err)) == SW_OK) {
            rc = sw_db_exec_prepared(c[i], "get", 1, id, &r, err);
            PQclear(r);
            r = NULL;
        }
    }
    for (int i = 0; i < 2; i++)
        sw_db_release(db, c[i]);
    return rc;
}

START_TEST(database_outage)
{
    struct sw_db *db = items_db(2);
    struct sw_db_conn *held;
    struct sw_error err = { 0 };
    PGresult *r = NULL;
    int64_t t0;
    int rc = SW_EDB;

    ck_assert_msg(use_two(db, &err) == SW_OK, "%s", err.msg);
    ck_assert_int_eq(sw_db_acquire(db, &held, &err), SW_OK);
    ck_assert_int_eq(th_pg_stop(), 0);

    t0 = sw_mono_ms();
    ck_assert_int_eq(sw_db_ping(db, &err), SW_EDB);
    ck_assert_msg(sw_ms_since(t0) < 5000, "ping took %.1f s", sw_ms_since(t0) / 1e3);
    ck_assert_int_eq(sw_db_exec(held, "SELECT 1", 0, NULL, &r, &err), SW_EDB);
    sw_db_release(db, held);
    ck_assert_int_eq(use_two(db, &err), SW_EDB);

    ck_assert_int_eq(th_pg_start(), 0);
    t0 = sw_mono_ms();
    while (sw_ms_since(t0) < 10000 && (rc = sw_db_ping(db, &err)) != SW_OK)
        usleep(100 * 1000);
    ck_assert_msg(rc == SW_OK, "no recovery: %s", err.msg);
    ck_assert_msg(sw_ms_since(t0) < 5000, "recovery took %.1f s", sw_ms_since(t0) / 1e3);
    /* Both sessions are new and re-prepare their statements. */
    ck_assert_msg(use_two(db, &err) == SW_OK, "%s", err.msg);
    sw_db_close(db);
}
END_TEST

START_TEST(server_restart_is_transparent)
{
    struct sw_db *db = items_db(2);
    struct sw_error err = { 0 };

    ck_assert_msg(use_two(db, &err) == SW_OK, "%s", err.msg);
    ck_assert_int_eq(th_pg_stop(), 0);
    ck_assert_int_eq(th_pg_start(), 0);
    /* Idle sessions the server closed are noticed at acquire, before any query fails. */
    ck_assert_msg(use_two(db, &err) == SW_OK, "%s", err.msg);
    ck_assert_msg(sw_db_ping(db, &err) == SW_OK, "%s", err.msg);
    sw_db_close(db);
}
END_TEST

/* Runs in the runner process, so the cluster comes back even if the test died. */
static void restart_cluster(void) { th_pg_start(); }

static Suite *db_suite(void)
{
    Suite *s = suite_create("db");
    TCase *tc = tcase_create("db");
    TCase *outage = tcase_create("outage");

    tcase_add_test(tc, migrate_applies_once);
    tcase_add_test(tc, migrate_failure_rolls_back);
    tcase_add_test(tc, migrate_concurrently);
    tcase_add_test(tc, prepared_statements);
    tcase_add_test(tc, sqlstate_classification);
    tcase_add_test(tc, pool_exhaustion);
    tcase_add_test(tc, bad_urls);
    suite_add_tcase(s, tc);
    tcase_add_unchecked_fixture(outage, NULL, restart_cluster);
    tcase_add_test(outage, database_outage);
    tcase_add_test(outage, server_restart_is_transparent);
    suite_add_tcase(s, outage);
    return s;
}

static int init_log(void)
{
    sw_log_init("test_db");
    return 0;
}

const struct th_check_main th_check_main = { .suite = db_suite, .before = init_log };
