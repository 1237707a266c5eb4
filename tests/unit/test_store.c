/* test_store.c - unit tests for the LMDB store: real LMDB files in a temporary directory.
 * The test names are the ones storage/store.c's invariants cite. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <lmdb.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ag_store.h"

#define STALE 0x7ff0000000000002ULL

static char g_dir[256];

static double from_bits(uint64_t b)
{
    double d;
    memcpy(&d, &b, 8);
    return d;
}

static uint64_t bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, 8);
    return b;
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/augur-test-store-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static ag_store_t *open_store(uint64_t map_size, unsigned chunk_samples)
{
    ag_store_opts_t o;
    ag_store_opts_default(&o);
    o.path = g_dir;
    if (map_size) o.map_size = map_size;
    if (chunk_samples) o.chunk_samples = chunk_samples;
    ag_store_t *s = NULL;
    ag_errmsg_t e = {{0}, -1};
    int rc = ag_store_open(&o, &s, &e);
    if (rc) fprintf(stderr, "open: %s\n", e.msg);
    assert_int_equal(rc, 0);
    return s;
}

/* Writes one series (labels as name,value,... NULL-terminated) with the given samples. */
static int write1(ag_store_t *s, const ag_sample_t *smp, size_t n, ...)
{
    ag_label_t l[16];
    size_t nl = 0;
    va_list ap;
    va_start(ap, n);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k) break;
        l[nl].name = k;
        l[nl].value = va_arg(ap, const char *);
        nl++;
    }
    va_end(ap);
    ag_series_in_t in = {l, nl, smp, n};
    ag_write_req_t req = {&in, 1, NULL, 0, NULL, NULL, 0};
    ag_write_res_t res;
    return ag_store_write(s, &req, &res);
}

static size_t count_select(ag_store_t *s, ag_match_type_t t, const char *name, const char *value,
                           ag_selection_t *keep)
{
    ag_matcher_t m;
    ag_errmsg_t e = {{0}, -1};
    assert_int_equal(ag_matcher_init(&m, t, name, value, strlen(value), &e), 0);
    ag_selection_t sel;
    assert_int_equal(ag_store_select(s, &m, 1, INT64_MIN / 2, INT64_MAX / 2, true, 0, &sel, &e), 0);
    ag_matcher_free(&m);
    size_t n = sel.n;
    if (keep) *keep = sel;
    else ag_selection_free(&sel);
    return n;
}

/* Runs body(arg) in a child process that then exits at once (as abruptly as kill -9 for the
 * store: nothing after the last acknowledged write runs) and checks it returned 0. */
static void in_child(int (*body)(void *), void *arg)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(body(arg));
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void write_then_select(void **state)
{
    (void)state;
    ag_store_t *s = open_store(0, 0);
    ag_sample_t smp[] = {{1000, 1.5}, {2000, from_bits(STALE)}, {3000, -0.0}, {4000, INFINITY}};
    assert_int_equal(write1(s, smp, 4, "__name__", "up", "job", "a", NULL), 0);
    ag_selection_t sel;
    assert_int_equal(count_select(s, AG_MATCH_EQ, "__name__", "up", &sel), 1);
    assert_int_equal(sel.series[0].n, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(sel.series[0].samples[i].t, smp[i].t);
        assert_int_equal(bits(sel.series[0].samples[i].v), bits(smp[i].v));
    }
    ag_selection_free(&sel);
    ag_store_close(s);
}

static void durable_after_write_then_reopen(void **state)
{
    (void)state;
    ag_store_t *s = open_store(0, 0);
    ag_sample_t smp[] = {{10, 1}, {20, 2}, {30, from_bits(STALE)}};
    assert_int_equal(write1(s, smp, 3, "__name__", "m", NULL), 0);
    ag_store_close(s);
    s = open_store(0, 0);
    ag_selection_t sel;
    assert_int_equal(count_select(s, AG_MATCH_EQ, "__name__", "m", &sel), 1);
    assert_int_equal(sel.series[0].n, 3);
    assert_int_equal(bits(sel.series[0].samples[2].v), STALE);
    ag_selection_free(&sel);
    /* Appends continue after the recovered head. */
    ag_sample_t more[] = {{40, 4}};
    assert_int_equal(write1(s, more, 1, "__name__", "m", NULL), 0);
    ag_store_close(s);
}

/* A child process writes and exits without closing (no checkpoint): the WAL must carry it. */
static void replay_without_checkpoint(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ag_store_t *s = open_store(0, 5);
        for (int i = 0; i < 23; i++) {
            ag_sample_t smp = {1000 + i, (double)i};
            if (write1(s, &smp, 1, "__name__", "crash", "i", "1", NULL)) _exit(1);
        }
        _exit(0); /* as abrupt as kill -9 for the store: nothing after the last 2xx runs */
    }
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ag_store_t *s = open_store(0, 5);
    ag_selection_t sel;
    assert_int_equal(count_select(s, AG_MATCH_EQ, "__name__", "crash", &sel), 1);
    assert_int_equal(sel.series[0].n, 23);
    for (int i = 0; i < 23; i++) assert_int_equal(sel.series[0].samples[i].t, 1000 + i);
    ag_selection_free(&sel);
    ag_store_close(s);
}

/* The WAL stores values compactly (integers, two- and four-digit decimals as varints) and
 * timestamps as deltas: after an abrupt exit every value comes back bit for bit, whatever it
 * is, and timestamps far apart (negative, huge) too. */
static void wal_values_replay_exactly(void **state)
{
    (void)state;
    static const uint64_t raw[] = {
        0x7ff0000000000002ULL, 0x7ff8000000000001ULL, 0xfff8000000000000ULL, 0x8000000000000000ULL,
        0x0000000000000001ULL, 0x7ff0000000000000ULL, 0xfff0000000000000ULL, 0x7fefffffffffffffULL,
    };
    static const double dec[] = {0, 1, -1, 0.07, 0.1 + 0.2, 123.45, -5.5, 1e300, 4503599627370497.0,
                                 12345.6789, 0.0001, -0.01, 9007199254740993.0, 1.0 / 3, 42e-7};
    enum { N = sizeof raw / sizeof raw[0] + sizeof dec / sizeof dec[0] };
    ag_sample_t smp[N];
    for (size_t i = 0; i < N; i++) {
        smp[i].t = i < 3 ? -4000000000000LL + (int64_t)i : 1700000000000LL + (int64_t)i * 1234567;
        if (i < sizeof raw / sizeof raw[0]) smp[i].v = from_bits(raw[i]);
        else smp[i].v = dec[i - sizeof raw / sizeof raw[0]];
    }
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ag_store_t *s = open_store(0, 0);
        if (write1(s, smp, N, "__name__", "walv", NULL)) _exit(1);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ag_store_t *s = open_store(0, 0);
    ag_selection_t sel;
    assert_int_equal(count_select(s, AG_MATCH_EQ, "__name__", "walv", &sel), 1);
    assert_int_equal(sel.series[0].n, N);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(sel.series[0].samples[i].t, smp[i].t);
        assert_int_equal(bits(sel.series[0].samples[i].v), bits(smp[i].v));
    }
    ag_selection_free(&sel);
    ag_store_close(s);
}

/* Checkpoints while running copy the open chunks in their head form (CHUNK_HEADFMT); an abrupt
 * exit right after such checkpoints must bring back every sample bit for bit, and a clean close
 * afterwards packs them (the reopened head then continues from either form). */
typedef struct {
    double v[3][150];
    const char *names[3];
} copied_t;

static int write_with_copied_checkpoints(void *arg)
{
    const copied_t *c = arg;
    ag_store_opts_t o;
    ag_store_opts_default(&o);
    o.path = g_dir;
    o.chunk_samples = 100;
    o.checkpoint_wal_bytes = 1; /* a checkpoint after every write */
    ag_store_t *s = NULL;
    ag_errmsg_t e = {{0}, -1};
    if (ag_store_open(&o, &s, &e)) return 1;
    for (int i = 0; i < 150; i++)
        for (int k = 0; k < 3; k++) {
            ag_sample_t smp = {1000LL * i, c->v[k][i]};
            if (write1(s, &smp, 1, "__name__", c->names[k], NULL)) return 1;
        }
    return 0;
}

static void crash_after_copied_checkpoints(void **state)
{
    (void)state;
    enum { N = 150 };
    static const uint64_t odd[] = {0x7ff0000000000002ULL, 0x8000000000000000ULL,
                                   0x7ff8000000000001ULL, 0x7ff0000000000000ULL};
    static copied_t c = {.names = {"c0", "c1", "c2"}};
    double(*v)[N] = c.v;
    const char **names = c.names;
    for (int i = 0; i < N; i++) {
        v[0][i] = (double)(i * 17);
        v[1][i] = i % 29 == 5 ? from_bits(odd[(i / 29) % 4]) : round(5000 + 900 * sin(i / 7.0)) / 100;
        v[2][i] = 1.0 / (i + 3.0);
    }
    in_child(write_with_copied_checkpoints, &c);
    for (int round = 0; round < 2; round++) {
        ag_store_t *s = open_store(0, 100);
        for (int k = 0; k < 3; k++) {
            ag_selection_t sel;
            assert_int_equal(count_select(s, AG_MATCH_EQ, "__name__", names[k], &sel), 1);
            assert_int_equal(sel.series[0].n, N + round);
            for (int i = 0; i < N; i++) {
                assert_int_equal(sel.series[0].samples[i].t, 1000LL * i);
                assert_int_equal(bits(sel.series[0].samples[i].v), bits(v[k][i]));
            }
            ag_selection_free(&sel);
            if (round == 0) {
                ag_sample_t more = {1000LL * N, 0.5};
                assert_int_equal(write1(s, &more, 1, "__name__", names[k], NULL), 0);
            }
        }
        ag_store_close(s); /* packs the open chunks */
    }
}

/* WAL entries: one of 300 samples (its count needs a wider varint) and requests whose first
 * series adds nothing (a resend: its entry and the record header are taken back out) replay
 * exactly after an abrupt exit. */
static int write_long_and_empty(void *arg)
{
    (void)arg;
    enum { N = 300 };
    ag_store_t *s = open_store(0, 0);
    ag_sample_t smp[N];
    for (int i = 0; i < N; i++) smp[i] = (ag_sample_t){1000 + i * 10, i * 0.5};
    if (write1(s, smp, N, "__name__", "long", NULL)) return 1;
    /* Resend of "long" (nothing new) together with a new sample of "short". */
    ag_label_t l1[] = {{"__name__", "long"}}, l2[] = {{"__name__", "short"}};
    ag_sample_t one = {5000, 7};
    ag_series_in_t in[2] = {{l1, 1, smp, N}, {l2, 1, &one, 1}};
    ag_write_req_t req = {0};
    req.series = in;
    req.nseries = 2;
    ag_write_res_t res;
    if (ag_store_write(s, &req, &res) || res.appended != 1) return 2;
    return 0;
}

static void wal_long_and_empty_entries_replay(void **state)
{
    (void)state;
    enum { N = 300 };
    in_child(write_long_and_empty, NULL);
    ag_store_t *s = open_store(0, 0);
    ag_selection_t sel;
    assert_int_equal(count_select(s, AG_MATCH_EQ, "__name__", "long", &sel), 1);
    assert_int_equal(sel.series[0].n, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(sel.series[0].samples[i].t, 1000 + i * 10);
        assert_true(sel.series[0].samples[i].v == i * 0.5);
    }
    ag_selection_free(&sel);
    assert_int_equal(count_select(s, AG_MATCH_EQ, "__name__", "short", &sel), 1);
    assert_int_equal(sel.series[0].n, 1);
    assert_true(sel.series[0].samples[0].v == 7);
    ag_selection_free(&sel);
    ag_store_close(s);
}

static off_t file_size(const char *name)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    struct stat st;
    return stat(p, &st) == 0 ? st.st_size : -1;
}

/* A clean close gives the WAL's freed pages back: the data file shrinks to what is in use, every
 * sample reads back, and a compacted copy left by a crash is removed at open. */
static void close_compacts_the_file(void **state)
{
    (void)state;
    enum { SERIES = 20, PER = 15000 };
    ag_store_opts_t o;
    ag_store_opts_default(&o);
    o.path = g_dir;
    o.checkpoint_wal_bytes = 8u << 20; /* the WAL grows, then the close frees it */
    o.compact_min_bytes = 0;
    ag_store_t *s = NULL;
    ag_errmsg_t e = {{0}, -1};
    assert_int_equal(ag_store_open(&o, &s, &e), 0);
    char name[32];
    for (int i = 0; i < PER; i += 100) {
        for (int k = 0; k < SERIES; k++) {
            ag_sample_t smp[100];
            for (int j = 0; j < 100; j++) smp[j] = (ag_sample_t){(i + j) * 15000LL, (i + j) * 0.25 + k};
            snprintf(name, sizeof name, "s%d", k);
            assert_int_equal(write1(s, smp, 100, "__name__", "cm", "k", name, NULL), 0);
        }
    }
    off_t before = file_size("data.mdb");
    ag_store_close(s);
    off_t after = file_size("data.mdb");
    assert_true(before > 0 && after > 0);
    assert_true(after * 2 < before);
    assert_int_equal(file_size("data.mdb.compact"), -1);
    /* A copy left over by a crash in the middle of compacting is removed. */
    char p[4200];
    snprintf(p, sizeof p, "%s/data.mdb.compact", g_dir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("partial", f);
    fclose(f);
    s = open_store(0, 0);
    assert_int_equal(file_size("data.mdb.compact"), -1);
    ag_selection_t sel;
    assert_int_equal(count_select(s, AG_MATCH_EQ, "__name__", "cm", &sel), SERIES);
    for (size_t k = 0; k < sel.n; k++) {
        assert_int_equal(sel.series[k].n, PER);
        for (int i = 0; i < PER; i += 997) assert_int_equal(sel.series[k].samples[i].t, i * 15000LL);
    }
    ag_selection_free(&sel);
    ag_sample_t more = {PER * 15000LL, 1};
    assert_int_equal(write1(s, &more, 1, "__name__", "cm", "k", "s0", NULL), 0);
    ag_store_close(s);
    /* The rewritten file is an ordinary store: it takes writes and reopens with everything. */
    s = open_store(0, 0);
    assert_int_equal(count_select(s, AG_MATCH_EQ, "k", "s0", &sel), 1);
    assert_int_equal(sel.series[0].n, PER + 1);
    assert_true(sel.series[0].samples[PER].v == 1);
    ag_selection_free(&sel);
    assert_int_equal(count_select(s, AG_MATCH_EQ, "__name__", "cm", &sel), SERIES);
    ag_selection_free(&sel);
    ag_store_close(s);
}

static void reopen_after_checkpoint(void **state)
{
    (void)state;
    ag_store_t *s = open_store(0, 7);
    for (int i = 0; i < 50; i++) {
        ag_sample_t smp = {i * 15000, (double)i * 1.25};
        assert_int_equal(write1(s, &smp, 1, "__name__", "ck", NULL), 0);
    }
    ag_store_close(s); /* checkpoints */
    s = open_store(0, 7);
    for (int i = 50; i < 60; i++) {
        ag_sample_t smp = {i * 15000, (double)i * 1.25};
        assert_int_equal(write1(s, &smp, 1, "__name__", "ck", NULL), 0);
    }
    ag_store_close(s);
    s = open_store(0, 7);
    ag_selection_t sel;
    assert_int_equal(count_select(s, AG_MATCH_EQ, "__name__", "ck", &sel), 1);
    assert_int_equal(sel.series[0].n, 60);
    for (int i = 0; i < 60; i++) {
        assert_int_equal(sel.series[0].samples[i].t, i * 15000);
        assert_true(sel.series[0].samples[i].v == (double)i * 1.25);
    }
    ag_selection_free(&sel);
    /* A window in the middle, crossing sealed chunks. */
    ag_matcher_t m;
    ag_errmsg_t e = {{0}, -1};
    ag_matcher_init(&m, AG_MATCH_EQ, "__name__", "ck", 2, &e);
    assert_int_equal(ag_store_select(s, &m, 1, 100000, 400000, true, 0, &sel, &e), 0);
    assert_int_equal(sel.n, 1);
    assert_int_equal(sel.series[0].n, 20); /* 105000 .. 390000 */
    assert_int_equal(sel.series[0].samples[0].t, 105000);
    ag_selection_free(&sel);
    /* The sample limit is a clean error. */
    assert_int_equal(ag_store_select(s, &m, 1, 0, 1000000, true, 10, &sel, &e), AG_ELIMIT);
    ag_matcher_free(&m);
    ag_store_close(s);
}

static void conflict_changes_nothing(void **state)
{
    (void)state;
    ag_store_t *s = open_store(0, 0);
    ag_sample_t a[] = {{100, 1}, {200, 2}};
    assert_int_equal(write1(s, a, 2, "__name__", "x", NULL), 0);
    /* Exact resend: accepted silently. */
    assert_int_equal(write1(s, a, 2, "__name__", "x", NULL), 0);
    /* A request with a new series and an out-of-order sample is refused as a whole. */
    ag_label_t l1[] = {{"__name__", "fresh"}}, l2[] = {{"__name__", "x"}};
    ag_sample_t s1[] = {{500, 5}}, s2[] = {{150, 9}};
    ag_series_in_t in[] = {{l1, 1, s1, 1}, {l2, 1, s2, 1}};
    ag_write_req_t req = {in, 2, NULL, 0, NULL, NULL, 0};
    ag_write_res_t res;
    assert_int_equal(ag_store_write(s, &req, &res), AG_ECONFLICT);
    assert_non_null(strstr(res.err.msg, "out of order"));
    assert_int_equal(count_select(s, AG_MATCH_EQ, "__name__", "fresh", NULL), 0);
    /* Same timestamp, different value. */
    ag_sample_t d[] = {{200, 3}};
    assert_int_equal(write1(s, d, 1, "__name__", "x", NULL), AG_ECONFLICT);
    /* The same series twice in one request (Prometheus sends a sample per entry): the second
     * entry continues the first; going back in time across entries is out of order. */
    ag_sample_t later[] = {{300, 3}}, later2[] = {{400, 4}}, earlier[] = {{250, 5}};
    ag_series_in_t back[] = {{l2, 1, later, 1}, {l2, 1, earlier, 1}};
    req.series = back;
    assert_int_equal(ag_store_write(s, &req, &res), AG_ECONFLICT);
    ag_series_in_t twice[] = {{l2, 1, later, 1}, {l2, 1, later2, 1}};
    req.series = twice;
    assert_int_equal(ag_store_write(s, &req, &res), 0);
    assert_int_equal(res.appended, 2);
    ag_selection_t sel;
    assert_int_equal(count_select(s, AG_MATCH_EQ, "__name__", "x", &sel), 1);
    assert_int_equal(sel.series[0].n, 4);
    assert_true(sel.series[0].samples[1].v == 2);
    assert_true(sel.series[0].samples[3].v == 4);
    ag_selection_free(&sel);
    ag_strlist_t names;
    ag_errmsg_t e = {{0}, -1};
    assert_int_equal(ag_store_label_values(s, "__name__", NULL, 0, INT64_MIN / 2, INT64_MAX / 2,
                                           &names, &e),
                     0);
    assert_int_equal(names.n, 1);
    assert_string_equal(names.items[0], "x");
    ag_strlist_free(&names);
    ag_store_close(s);
}

static void matchers_all_types(void **state)
{
    (void)state;
    ag_store_t *s = open_store(0, 0);
    ag_sample_t smp = {1, 1};
    assert_int_equal(write1(s, &smp, 1, "__name__", "m", "env", "prod", "job", "api", NULL), 0);
    assert_int_equal(write1(s, &smp, 1, "__name__", "m", "env", "dev", "job", "api", NULL), 0);
    assert_int_equal(write1(s, &smp, 1, "__name__", "m", "job", "db", NULL), 0);
    assert_int_equal(write1(s, &smp, 1, "__name__", "other", "job", "db", NULL), 0);
    assert_int_equal(count_select(s, AG_MATCH_EQ, "job", "api", NULL), 2);
    assert_int_equal(count_select(s, AG_MATCH_NEQ, "env", "prod", NULL), 3); /* missing = "" */
    assert_int_equal(count_select(s, AG_MATCH_RE, "env", "pr.*|de.", NULL), 2);
    assert_int_equal(count_select(s, AG_MATCH_RE, "env", "pro", NULL), 0);  /* anchored */
    assert_int_equal(count_select(s, AG_MATCH_NRE, "env", "p.*", NULL), 3);
    assert_int_equal(count_select(s, AG_MATCH_EQ, "env", "", NULL), 2);      /* no env label */
    assert_int_equal(count_select(s, AG_MATCH_RE, "env", ".*", NULL), 4);
    assert_int_equal(count_select(s, AG_MATCH_RE, "env", ".+", NULL), 2);
    assert_int_equal(count_select(s, AG_MATCH_NEQ, "nope", "x", NULL), 4);
    /* Several matchers intersect. */
    ag_matcher_t m[3];
    ag_errmsg_t e = {{0}, -1};
    ag_matcher_init(&m[0], AG_MATCH_EQ, "__name__", "m", 1, &e);
    ag_matcher_init(&m[1], AG_MATCH_NRE, "env", "dev", 3, &e);
    ag_matcher_init(&m[2], AG_MATCH_RE, "job", "api|db", 6, &e);
    ag_selection_t sel;
    assert_int_equal(ag_store_select(s, m, 3, 0, 10, false, 0, &sel, &e), 0);
    assert_int_equal(sel.n, 2); /* {env=prod,job=api} and {job=db} */
    ag_selection_free(&sel);
    for (int i = 0; i < 3; i++) ag_matcher_free(&m[i]);
    /* Label names over everything, sorted. */
    ag_strlist_t names;
    assert_int_equal(ag_store_label_values(s, NULL, NULL, 0, 0, 10, &names, &e), 0);
    assert_int_equal(names.n, 3);
    assert_string_equal(names.items[0], "__name__");
    assert_string_equal(names.items[1], "env");
    assert_string_equal(names.items[2], "job");
    ag_strlist_free(&names);
    /* Outside the time range nothing matches. */
    assert_int_equal(ag_store_label_values(s, NULL, NULL, 0, 100, 200, &names, &e), 0);
    assert_int_equal(names.n, 0);
    ag_strlist_free(&names);
    ag_store_close(s);
}

/* Which series a one-matcher select gives, as "name:value of label" strings joined by ",". */
static void select_ids(ag_store_t *s, ag_match_type_t t, const char *name, const char *value,
                       const char *show, char *out, size_t outlen)
{
    ag_selection_t sel;
    count_select(s, t, name, value, &sel);
    out[0] = 0;
    for (size_t i = 0; i < sel.n; i++) {
        size_t nl = 0, vl = 0;
        const char *nm = ag_labels_get(sel.series[i].labels, sel.series[i].labels_len, "__name__", &nl);
        const char *v = ag_labels_get(sel.series[i].labels, sel.series[i].labels_len, show, &vl);
        size_t u = strlen(out);
        snprintf(out + u, outlen - u, "%s%.*s:%.*s", i ? "," : "", (int)nl, nm ? nm : "",
                 (int)vl, v ? v : "");
    }
    ag_selection_free(&sel);
}

/* A label value held by one series, right after a value held by several: the postings read
 * for it must be its own (LMDB's GET_MULTIPLE on a single-value key after a step from a
 * multi-value key returns the previous key's duplicates). Hot postings, then cold ones after
 * a compacting close, with new hot postings beside them. */
static void postings_single_after_multi(void **state)
{
    (void)state;
    ag_store_t *s = open_store(0, 0);
    ag_sample_t smp = {1, 1};
    assert_int_equal(write1(s, &smp, 1, "__name__", "x", "i", "a", NULL), 0);
    assert_int_equal(write1(s, &smp, 1, "__name__", "y", "i", "a", NULL), 0);
    assert_int_equal(write1(s, &smp, 1, "__name__", "x", "i", "b", NULL), 0);
    assert_int_equal(write1(s, &smp, 1, "__name__", "x", "i", "c", NULL), 0);
    assert_int_equal(write1(s, &smp, 1, "__name__", "z", "i", "c", NULL), 0);
    assert_int_equal(write1(s, &smp, 1, "__name__", "x", "i", "d", NULL), 0);
    char got[256];
    for (int round = 0; round < 2; round++) {
        select_ids(s, AG_MATCH_RE, "i", "b", "i", got, sizeof got);
        assert_string_equal(got, "x:b");
        select_ids(s, AG_MATCH_RE, "i", "b|d", "i", got, sizeof got);
        assert_string_equal(got, "x:b,x:d");
        select_ids(s, AG_MATCH_NRE, "i", "b|d", "i", got, sizeof got);
        assert_string_equal(got, "x:a,x:c,y:a,z:c");
        select_ids(s, AG_MATCH_NEQ, "i", "a", "i", got, sizeof got);
        assert_string_equal(got, "x:b,x:c,x:d,z:c");
        select_ids(s, AG_MATCH_RE, "__name__", "x", "i", got, sizeof got);
        assert_string_equal(got, "x:a,x:b,x:c,x:d");
        if (round == 0) {
            ag_store_close(s); /* postings fold into cold lists */
            s = open_store(0, 0);
        }
    }
    assert_int_equal(write1(s, &smp, 1, "__name__", "w", "i", "a", NULL), 0);
    assert_int_equal(write1(s, &smp, 1, "__name__", "v", "i", "b2", NULL), 0);
    select_ids(s, AG_MATCH_RE, "i", "a|b2", "i", got, sizeof got);
    assert_string_equal(got, "v:b2,w:a,x:a,y:a");
    ag_store_close(s);
}

/* A select over a window that a series' chunk spans without a sample inside it: that series
 * is dropped and the next one fills its slot (it once kept the dropped series' freed samples
 * and freed them again). */
static void select_drops_series_without_samples_in_range(void **state)
{
    (void)state;
    ag_store_t *s = open_store(0, 0);
    ag_sample_t gap[] = {{1000, 1}, {2000, 2}, {9000, 3}, {10000, 4}};
    ag_sample_t full[] = {{1000, 5}, {4000, 6}, {5000, 7}, {10000, 8}};
    assert_int_equal(write1(s, gap, 4, "__name__", "m", "i", "a", NULL), 0);
    assert_int_equal(write1(s, full, 4, "__name__", "m", "i", "b", NULL), 0);
    assert_int_equal(write1(s, gap, 4, "__name__", "m", "i", "c", NULL), 0);
    assert_int_equal(write1(s, full, 4, "__name__", "m", "i", "d", NULL), 0);
    ag_matcher_t m;
    ag_errmsg_t e = {{0}, -1};
    assert_int_equal(ag_matcher_init(&m, AG_MATCH_EQ, "__name__", "m", 1, &e), 0);
    for (int round = 0; round < 2; round++) {
        ag_selection_t sel;
        assert_int_equal(ag_store_select(s, &m, 1, 3000, 6000, true, 0, &sel, &e), 0);
        assert_int_equal(sel.n, 2);
        for (size_t i = 0; i < 2; i++) {
            size_t vl = 0;
            const char *v = ag_labels_get(sel.series[i].labels, sel.series[i].labels_len, "i", &vl);
            assert_true(vl == 1 && v[0] == (i ? 'd' : 'b'));
            assert_int_equal(sel.series[i].n, 2);
            assert_int_equal(sel.series[i].samples[0].t, 4000);
            assert_true(sel.series[i].samples[1].v == 7);
        }
        ag_selection_free(&sel);
        ag_store_close(s); /* then the same from sealed, packed chunks */
        s = open_store(0, 0);
    }
    ag_matcher_free(&m);
    ag_store_close(s);
}

/* Writes that bring their keys (as the remote-write decoder does) land on the series the keys
 * name, also after a rejected request created a series and the head removed it again. */
static void keyed_writes_land_on_their_series(void **state)
{
    (void)state;
    ag_store_t *s = open_store(0, 0);
    enum { N = 40 };
    ag_label_t l[N][2];
    char val[N][12];
    ag_buf_t enc[N];
    ag_series_in_t in[N];
    ag_series_key_t keys[N];
    ag_sample_t smp[N][3];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            snprintf(val[i], sizeof val[i], "%d", i);
            l[i][0] = (ag_label_t){"__name__", "k"};
            l[i][1] = (ag_label_t){"i", val[i]};
            enc[i] = (ag_buf_t)AG_BUF_INIT;
            ag_labels_encode(l[i], 2, &enc[i]);
            keys[i] = (ag_series_key_t){enc[i].data, enc[i].len, ag_labels_hash(enc[i].data, enc[i].len)};
            smp[i][0] = (ag_sample_t){round * 10 + 1, i * 100 + round};
            in[i] = (ag_series_in_t){l[i], 2, smp[i], 1};
        }
        ag_write_req_t req = {in, N, NULL, 0, keys, NULL, 0};
        ag_write_res_t res;
        assert_int_equal(ag_store_write(s, &req, &res), 0);
        /* A request that creates a series and then fails (a sample too old for series 0):
         * the new series is removed from the head again. */
        ag_label_t nl[2] = {{"__name__", "k"}, {"i", "new"}};
        ag_buf_t ne = AG_BUF_INIT;
        ag_labels_encode(nl, 2, &ne);
        ag_sample_t ok = {round * 10 + 1, 1}, old = {-1000000000, 1};
        ag_series_in_t bad[2] = {{nl, 2, &ok, 1}, {l[0], 2, &old, 1}};
        ag_series_key_t bk[2] = {{ne.data, ne.len, ag_labels_hash(ne.data, ne.len)}, keys[0]};
        ag_write_req_t breq = {bad, 2, NULL, 0, bk, NULL, 0};
        assert_int_not_equal(ag_store_write(s, &breq, &res), 0);
        ag_buf_free(&ne);
        for (int i = 0; i < N; i++) ag_buf_free(&enc[i]);
    }
    ag_selection_t sel;
    assert_int_equal(count_select(s, AG_MATCH_EQ, "__name__", "k", &sel), N);
    for (size_t i = 0; i < sel.n; i++) {
        size_t vl = 0;
        const char *v = ag_labels_get(sel.series[i].labels, sel.series[i].labels_len, "i", &vl);
        int id = atoi(v);
        assert_int_equal(sel.series[i].n, 3);
        for (int r = 0; r < 3; r++) assert_true(sel.series[i].samples[r].v == id * 100 + r);
    }
    ag_selection_free(&sel);
    ag_store_close(s);
}

static void long_label_values(void **state)
{
    (void)state;
    ag_store_t *s = open_store(0, 0);
    char big1[2001], big2[2001];
    memset(big1, 'a', 2000);
    big1[2000] = 0;
    memcpy(big2, big1, 2001);
    big2[1999] = 'b'; /* differs only past the part that fits in a key */
    ag_sample_t smp = {1, 1};
    assert_int_equal(write1(s, &smp, 1, "__name__", "m", "v", big1, NULL), 0);
    assert_int_equal(write1(s, &smp, 1, "__name__", "m", "v", big2, NULL), 0);
    assert_int_equal(count_select(s, AG_MATCH_EQ, "v", big1, NULL), 1);
    assert_int_equal(count_select(s, AG_MATCH_EQ, "v", big2, NULL), 1);
    assert_int_equal(count_select(s, AG_MATCH_RE, "v", "a*b", NULL), 1);
    assert_int_equal(count_select(s, AG_MATCH_NEQ, "v", big1, NULL), 1);
    ag_store_close(s);
}

static void map_full_fails_and_keeps_data(void **state)
{
    (void)state;
    ag_store_t *s = open_store(1 << 20, 0); /* 1 MiB map */
    ag_sample_t first = {1, 42};
    assert_int_equal(write1(s, &first, 1, "__name__", "keep", NULL), 0);
    int rc = 0;
    char name[64];
    for (int i = 0; i < 100000 && rc == 0; i++) {
        snprintf(name, sizeof name, "filler_%d", i);
        ag_label_t l[] = {{"__name__", name}, {"pad", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}};
        ag_sample_t smp = {1, i};
        ag_series_in_t in = {l, 2, &smp, 1};
        ag_write_req_t req = {&in, 1, NULL, 0, NULL, NULL, 0};
        ag_write_res_t res;
        rc = ag_store_write(s, &req, &res);
    }
    assert_int_equal(rc, AG_EFULL);
    ag_selection_t sel;
    assert_int_equal(count_select(s, AG_MATCH_EQ, "__name__", "keep", &sel), 1);
    assert_true(sel.series[0].samples[0].v == 42);
    ag_selection_free(&sel);
    /* The failed request's series is not there. */
    assert_int_equal(count_select(s, AG_MATCH_EQ, "__name__", name, NULL), 0);
    ag_store_close(s);
    /* With room again, everything acknowledged is still there and writes work. */
    s = open_store(64ULL << 20, 0);
    assert_int_equal(count_select(s, AG_MATCH_EQ, "__name__", "keep", NULL), 1);
    ag_sample_t next = {2, 43};
    assert_int_equal(write1(s, &next, 1, "__name__", "keep", NULL), 0);
    ag_store_close(s);
}

typedef struct {
    ag_store_t *s;
    int n;
} writer_arg_t;

static void *writer(void *p)
{
    writer_arg_t *a = p;
    for (int i = 0; i < a->n; i++) {
        ag_sample_t smp = {i, (double)i};
        if (write1(a->s, &smp, 1, "__name__", "cc", NULL)) return (void *)1;
    }
    return NULL;
}

static void concurrent_read_write(void **state)
{
    (void)state;
    ag_store_t *s = open_store(0, 10);
    writer_arg_t a = {s, 400};
    pthread_t th;
    pthread_create(&th, NULL, writer, &a);
    size_t last = 0;
    for (int k = 0; k < 200; k++) {
        ag_selection_t sel;
        size_t n = count_select(s, AG_MATCH_EQ, "__name__", "cc", &sel);
        if (n) {
            /* Never a gap or a duplicate: samples are exactly 0..n-1. */
            size_t got = sel.series[0].n;
            for (size_t i = 0; i < got; i++) assert_int_equal(sel.series[0].samples[i].t, (int64_t)i);
            assert_true(got >= last);
            last = got;
        }
        ag_selection_free(&sel);
    }
    void *ret;
    pthread_join(th, &ret);
    assert_null(ret);
    assert_int_equal(count_select(s, AG_MATCH_EQ, "__name__", "cc", NULL), 1);
    ag_store_stats_t st;
    ag_store_stats(s, &st);
    assert_int_equal(st.samples_appended, 400);
    ag_store_close(s);
}

static void metadata_roundtrip(void **state)
{
    (void)state;
    ag_store_t *s = open_store(0, 0);
    ag_metadata_in_t md = {"http_requests_total", "counter", "Requests.", ""};
    ag_write_req_t req = {NULL, 0, &md, 1, NULL, NULL, 0};
    ag_write_res_t res;
    assert_int_equal(ag_store_write(s, &req, &res), 0);
    ag_metadata_list_t l;
    assert_int_equal(ag_store_metadata(s, NULL, &l), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.items[0].type, "counter");
    assert_string_equal(l.items[0].help, "Requests.");
    ag_metadata_list_free(&l);
    ag_store_close(s);
}

static void second_open_is_refused(void **state)
{
    (void)state;
    ag_store_t *s = open_store(0, 0);
    pid_t pid = fork();
    if (pid == 0) {
        ag_store_opts_t o;
        ag_store_opts_default(&o);
        o.path = g_dir;
        ag_store_t *t = NULL;
        ag_errmsg_t e = {{0}, -1};
        _exit(ag_store_open(&o, &t, &e) == AG_EIO && strstr(e.msg, "in use") ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ag_store_close(s);
}

/* The write hook sees the oldest sample a commit appended, and the samples are visible to a
 * reader the hook itself cannot start (it runs with readers held off), so it checks a later one;
 * duplicates, conflicts and metadata-only writes do not call it. */
typedef struct hook_log {
    int calls;
    int64_t last;
} hook_log_t;

static void record_hook(void *ctx, int64_t min_t)
{
    hook_log_t *h = ctx;
    h->calls++;
    h->last = min_t;
}

static void write_hook_reports_oldest_sample(void **state)
{
    (void)state;
    ag_store_t *s = open_store(0, 0);
    hook_log_t h = {0, 0};
    ag_sample_t a[] = {{5000, 1}, {6000, 2}};
    assert_int_equal(write1(s, a, 2, "__name__", "m", "i", "1", NULL), 0);
    assert_int_equal(h.calls, 0); /* no hook installed yet */
    ag_store_set_write_hook(s, record_hook, &h);
    ag_sample_t b[] = {{7000, 3}, {8000, 4}};
    assert_int_equal(write1(s, b, 2, "__name__", "m", "i", "1", NULL), 0);
    assert_int_equal(h.calls, 1);
    assert_int_equal(h.last, 7000);
    /* a new series with old samples: the oldest is reported */
    ag_sample_t c[] = {{100, 1}, {200, from_bits(STALE)}};
    assert_int_equal(write1(s, c, 2, "__name__", "m", "i", "2", NULL), 0);
    assert_int_equal(h.calls, 2);
    assert_int_equal(h.last, 100);
    ag_selection_t sel;
    assert_int_equal(count_select(s, AG_MATCH_EQ, "__name__", "m", &sel), 2);
    ag_selection_free(&sel);
    /* an exact resend appends nothing; an out-of-order sample is refused: no call */
    assert_int_equal(write1(s, b, 2, "__name__", "m", "i", "1", NULL), 0);
    ag_sample_t ooo[] = {{1000, 9}};
    assert_int_equal(write1(s, ooo, 1, "__name__", "m", "i", "1", NULL), AG_ECONFLICT);
    assert_int_equal(h.calls, 2);
    /* only the newly appended part of a partly resent batch counts */
    ag_sample_t d[] = {{8000, 4}, {9000, 5}};
    assert_int_equal(write1(s, d, 2, "__name__", "m", "i", "1", NULL), 0);
    assert_int_equal(h.calls, 3);
    assert_int_equal(h.last, 9000);
    ag_store_set_write_hook(s, NULL, NULL);
    ag_sample_t e2[] = {{10000, 6}};
    assert_int_equal(write1(s, e2, 1, "__name__", "m", "i", "1", NULL), 0);
    assert_int_equal(h.calls, 3);
    ag_store_close(s);
}

/* ag_store_scan visits exactly what ag_store_select returns, in the same order, on the
 * one-thread path (few series) and the two-thread path (SCAN_PARALLEL_MIN_SAMPLES expected,
 * some with sealed chunks and a head, some only a head); an error from the callback stops the
 * scan and is returned as is; the sample limit fails the scan cleanly. */
typedef struct scan_check {
    const ag_selection_t *sel;
    size_t seen;
    size_t fail_at; /* return AG_EEXEC at this series (SIZE_MAX = never) */
} scan_check_t;

static int scan_cb(void *ctx, const char *labels, size_t len, const ag_sample_t *smp, size_t n)
{
    scan_check_t *c = ctx;
    if (c->seen == c->fail_at) return AG_EEXEC;
    assert_true(c->seen < c->sel->n);
    const ag_series_data_t *sd = &c->sel->series[c->seen++];
    assert_int_equal(len, sd->labels_len);
    assert_memory_equal(labels, sd->labels, len);
    assert_int_equal(n, sd->n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(smp[i].t, sd->samples[i].t);
        assert_int_equal(bits(smp[i].v), bits(sd->samples[i].v));
    }
    return 0;
}

static void scan_matches_select(void **state)
{
    (void)state;
    ag_store_t *s = open_store(0, 16);
    enum { NSERIES = 2500, NSAMPLES = 40 };
    ag_label_t l[3];
    char name[32], inst[32];
    ag_sample_t smp[NSAMPLES];
    for (size_t i = 0; i < NSERIES; i++) {
        snprintf(name, sizeof name, "m%zu", i % 7);
        snprintf(inst, sizeof inst, "i%05zu", (i * 7919) % NSERIES);
        l[0] = (ag_label_t){"__name__", name};
        l[1] = (ag_label_t){"inst", inst};
        l[2] = (ag_label_t){"job", "scan"};
        /* Odd series get few samples (head only), even ones several sealed chunks. */
        size_t n = i % 2 ? 5 : NSAMPLES;
        for (size_t k = 0; k < n; k++)
            smp[k] = (ag_sample_t){(int64_t)(k + 1) * 15000, k == 3 ? from_bits(STALE) : (double)(i * k)};
        ag_series_in_t in = {l, 3, smp, n};
        ag_write_req_t req = {&in, 1, NULL, 0, NULL, NULL, 0};
        ag_write_res_t res;
        assert_int_equal(ag_store_write(s, &req, &res), 0);
    }
    ag_matcher_t m;
    ag_errmsg_t e = {{0}, -1};
    for (int round = 0; round < 4; round++) {
        /* rounds: all series over a middle window (two threads); one metric (one thread);
         * a failing callback; a sample limit. */
        if (round == 1) assert_int_equal(ag_matcher_init(&m, AG_MATCH_EQ, "__name__", "m3", 2, &e), 0);
        else assert_int_equal(ag_matcher_init(&m, AG_MATCH_EQ, "job", "scan", 4, &e), 0);
        int64_t mint = 60000, maxt = 1000000; /* 2500 series x 940 s: enough for two threads */
        ag_selection_t sel;
        assert_int_equal(ag_store_select(s, &m, 1, mint, maxt, true, 0, &sel, &e), 0);
        assert_true(round == 1 ? sel.n < 1024 && sel.n > 100 : sel.n > 1024);
        scan_check_t c = {&sel, 0, round == 2 ? 1000 : SIZE_MAX};
        int rc = ag_store_scan(s, &m, 1, mint, maxt, round == 3 ? 20000 : 0, scan_cb, &c, &e);
        if (round < 2) {
            assert_int_equal(rc, 0);
            assert_int_equal(c.seen, sel.n);
        } else if (round == 2) {
            assert_int_equal(rc, AG_EEXEC);
            assert_int_equal(c.seen, 1000);
        } else {
            assert_int_equal(rc, AG_ELIMIT);
            assert_non_null(strstr(e.msg, "too many samples"));
        }
        ag_selection_free(&sel);
        ag_matcher_free(&m);
    }
    ag_store_close(s);
}

/* Readers during commits (invariant 5): requests of 13 samples for two series, with chunks of 8
 * samples, so most groups seal chunks - sometimes two per series - that stay in memory until
 * their commit returned while readers keep reading. Every read, by select and by scan, must see
 * whole requests only: both series with the same count, a multiple of 13, samples exactly
 * 0..n-1 with no duplicate or hole. */
typedef struct commit_reader {
    ag_store_t *s;
    _Atomic int *stop;
    int use_scan, reads, bad;
} commit_reader_t;

static int count_cb(void *ctx, const char *labels, size_t len, const ag_sample_t *smp, size_t n)
{
    (void)labels;
    (void)len;
    size_t *counts = ctx;
    for (size_t i = 0; i < n; i++)
        if (smp[i].t != (int64_t)i || smp[i].v != (double)i) return AG_EEXEC;
    counts[counts[2]++ & 1] = n;
    return 0;
}

static void *commit_reader_main(void *p)
{
    commit_reader_t *r = p;
    ag_matcher_t m;
    ag_errmsg_t e = {{0}, -1};
    if (ag_matcher_init(&m, AG_MATCH_EQ, "__name__", "cw", 2, &e)) return (void *)1;
    while (!atomic_load(r->stop)) {
        size_t counts[3] = {0, 0, 0};
        if (r->use_scan) {
            if (ag_store_scan(r->s, &m, 1, INT64_MIN / 2, INT64_MAX / 2, 0, count_cb, counts, &e)) r->bad++;
        } else {
            ag_selection_t sel;
            if (ag_store_select(r->s, &m, 1, INT64_MIN / 2, INT64_MAX / 2, true, 0, &sel, &e)) {
                r->bad++;
                continue;
            }
            for (size_t k = 0; k < sel.n; k++)
                if (count_cb(counts, sel.series[k].labels, sel.series[k].labels_len,
                             sel.series[k].samples, sel.series[k].n))
                    r->bad++;
            ag_selection_free(&sel);
        }
        if (counts[2] == 2 && (counts[0] != counts[1] || counts[0] % 13)) r->bad++;
        if (counts[2] == 1) r->bad++; /* one series without the other */
        r->reads++;
    }
    ag_matcher_free(&m);
    return NULL;
}

static void scan_during_commits(void **state)
{
    (void)state;
    ag_store_t *s = open_store(0, 8);
    _Atomic int stop = 0;
    commit_reader_t rd[2] = {{s, &stop, 0, 0, 0}, {s, &stop, 1, 0, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, commit_reader_main, &rd[i]);
    ag_label_t l0[2] = {{"__name__", "cw"}, {"i", "0"}}, l1[2] = {{"__name__", "cw"}, {"i", "1"}};
    ag_sample_t smp[13];
    for (int k = 0; k < 150; k++) {
        for (int j = 0; j < 13; j++) smp[j] = (ag_sample_t){k * 13 + j, (double)(k * 13 + j)};
        ag_series_in_t in[2] = {{l0, 2, smp, 13}, {l1, 2, smp, 13}};
        ag_write_req_t req = {in, 2, NULL, 0, NULL, NULL, 0};
        ag_write_res_t res;
        assert_int_equal(ag_store_write(s, &req, &res), 0);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(rd[i].bad, 0);
        assert_true(rd[i].reads > 10);
    }
    ag_store_stats_t st;
    ag_store_stats(s, &st);
    assert_true(st.chunks_sealed >= 2 * (150 * 13 / 8 - 1));
    ag_store_close(s);
}

/* Series limits: a request that would create a series beyond max_series or beyond
 * max_series_per_metric fails whole with AG_ELIMIT and changes nothing (its other new series
 * are not created either); stored series keep receiving samples; raising the limit at runtime
 * lets the refused series in; the per-metric count survives a restart. */
static void series_limits(void **state)
{
    (void)state;
    ag_store_opts_t o;
    ag_store_opts_default(&o);
    o.path = g_dir;
    o.max_series = 3;
    o.max_series_per_metric = 2;
    ag_store_t *s = NULL;
    ag_errmsg_t e = {{0}, -1};
    assert_int_equal(ag_store_open(&o, &s, &e), 0);
    ag_sample_t a = {1000, 1}, b = {2000, 2};
    assert_int_equal(write1(s, &a, 1, "__name__", "m", "i", "1", NULL), 0);
    assert_int_equal(write1(s, &a, 1, "__name__", "m", "i", "2", NULL), 0);
    /* A third series of m: per-metric limit. */
    ag_label_t l3[2] = {{"__name__", "m"}, {"i", "3"}}, lo[2] = {{"__name__", "other"}, {"i", "1"}};
    ag_series_in_t in[2] = {{l3, 2, &a, 1}, {lo, 2, &a, 1}};
    ag_write_req_t req = {in, 2, NULL, 0, NULL, NULL, 0};
    ag_write_res_t res;
    memset(&res, 0, sizeof res);
    assert_int_equal(ag_store_write(s, &req, &res), AG_ELIMIT);
    assert_non_null(strstr(res.err.msg, "limits.max_series_per_metric"));
    /* A new series before the refused one in the same request is not created either. */
    ag_store_set_limits(s, 10, 2);
    ag_series_in_t in2[2] = {{lo, 2, &a, 1}, {l3, 2, &a, 1}};
    ag_write_req_t req2 = {in2, 2, NULL, 0, NULL, NULL, 0};
    memset(&res, 0, sizeof res);
    assert_int_equal(ag_store_write(s, &req2, &res), AG_ELIMIT);
    assert_non_null(strstr(res.err.msg, "metric m has 2 series"));
    assert_int_equal(count_select(s, AG_MATCH_EQ, "__name__", "other", NULL), 0); /* all or nothing */
    ag_store_set_limits(s, 3, 2);
    /* Stored series still take samples; another metric fits under the total. */
    assert_int_equal(write1(s, &b, 1, "__name__", "m", "i", "1", NULL), 0);
    assert_int_equal(write1(s, &a, 1, "__name__", "other", "i", "1", NULL), 0);
    /* A fourth series: the total limit. */
    memset(&res, 0, sizeof res);
    ag_series_in_t in4 = {lo, 2, &b, 1};
    ag_label_t l4[2] = {{"__name__", "x"}, {"i", "1"}};
    in4.labels = l4;
    ag_write_req_t req4 = {&in4, 1, NULL, 0, NULL, NULL, 0};
    assert_int_equal(ag_store_write(s, &req4, &res), AG_ELIMIT);
    assert_non_null(strstr(res.err.msg, "limits.max_series is 3"));
    /* Raised at runtime: both refused series get in. */
    ag_store_set_limits(s, 4, 3);
    assert_int_equal(ag_store_write(s, &req4, &res), 0);
    ag_series_in_t in3 = {l3, 2, &a, 1};
    ag_write_req_t req3 = {&in3, 1, NULL, 0, NULL, NULL, 0};
    memset(&res, 0, sizeof res);
    assert_int_equal(ag_store_write(s, &req3, &res), AG_ELIMIT); /* now the total (4) is full */
    ag_store_set_limits(s, 0, 3);
    assert_int_equal(ag_store_write(s, &req3, &res), 0);
    ag_store_close(s);
    /* After a restart the counts are rebuilt: m has 3 series, the per-metric limit of 3 holds. */
    o.max_series = 0;
    o.max_series_per_metric = 3;
    assert_int_equal(ag_store_open(&o, &s, &e), 0);
    memset(&res, 0, sizeof res);
    ag_label_t l5[2] = {{"__name__", "m"}, {"i", "5"}};
    ag_series_in_t in5 = {l5, 2, &b, 1};
    ag_write_req_t req5 = {&in5, 1, NULL, 0, NULL, NULL, 0};
    assert_int_equal(ag_store_write(s, &req5, &res), AG_ELIMIT);
    ag_store_close(s);
}

/* Out-of-order window, randomised against a model: 3 series get in-order samples with random
 * gaps and, in between, random out-of-order samples within the window (into the head, into
 * sealed chunks, into gaps, before the first sample), some of them resent; every sample must
 * come back exactly once, in time order, before and after reopening the store. Samples beyond
 * the window are refused and change nothing. */
static int cmp_smp(const void *a, const void *b)
{
    const ag_sample_t *x = a, *y = b;
    return x->t < y->t ? -1 : x->t > y->t;
}


/* ---- state records and the sample observer ------------------------------------------------ */

typedef struct {
    int calls, ends, ends_failed;
    uint64_t seen;
    uint64_t slot_before; /* the slot's count when last called */
    uint8_t status_before;
} obs_ctx_t;

/* A test observer: slot bytes 0..7 count the samples passed for the series. */
static bool obs_samples(void *ctx, const char *labels, size_t len, uint8_t *slot, uint8_t *status,
                        const ag_sample_t *smp, size_t n)
{
    obs_ctx_t *o = ctx;
    o->calls++;
    o->seen += n;
    uint64_t c;
    memcpy(&c, slot, 8);
    o->slot_before = c;
    o->status_before = *status;
    c += n;
    memcpy(slot, &c, 8);
    *status = 7;
    return true;
}

static void obs_end(void *ctx, bool committed)
{
    obs_ctx_t *o = ctx;
    o->ends++;
    if (!committed) o->ends_failed++;
}

typedef struct {
    char keys[8][16], vals[8][16];
    size_t klen[8];
    int n;
} blobs_t;

static int blob_cb(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    blobs_t *b = ctx;
    assert_true(b->n < 8 && klen < 16 && vlen < 16);
    memcpy(b->keys[b->n], key, klen);
    b->klen[b->n] = klen;
    memcpy(b->vals[b->n], val, vlen);
    b->vals[b->n][vlen] = 0;
    b->n++;
    return 0;
}

static blobs_t list_blobs(ag_store_t *s, const char *prefix, size_t plen)
{
    blobs_t b;
    memset(&b, 0, sizeof b);
    assert_int_equal(ag_store_blobs(s, prefix, plen, blob_cb, &b), 0);
    return b;
}

/* Cold groups: an observer that keeps each series' sample count in its slot and records, by
 * the series' "k" label, the count and status it found. */
#define GRP_SERIES 300
typedef struct {
    uint64_t before[GRP_SERIES + 40];
    uint8_t status[GRP_SERIES + 40];
} grp_obs_t;

static bool grp_samples(void *ctx, const char *labels, size_t len, uint8_t *slot, uint8_t *status,
                        const ag_sample_t *smp, size_t n)
{
    grp_obs_t *o = ctx;
    size_t vl;
    const char *k = ag_labels_get(labels, len, "k", &vl);
    assert_non_null(k);
    int i = atoi(k);
    uint64_t c;
    memcpy(&c, slot, 8);
    o->before[i] = c;
    o->status[i] = *status;
    c += n;
    memcpy(slot, &c, 8);
    slot[AG_STORE_SLOT_SIZE - 1] = (uint8_t)i; /* the slot's last byte names its series */
    *status = 7;
    return true;
}

static void grp_end(void *ctx, bool committed)
{
    (void)ctx;
    assert_true(committed);
}

/* Opens table `table` of the closed store at g_dir for reading, with a cursor on it. */
static void open_table(const char *table, MDB_env **env, MDB_txn **txn, MDB_cursor **c)
{
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(env), 0);
    assert_int_equal(mdb_env_set_maxdbs(*env, 16), 0);
    assert_int_equal(mdb_env_open(*env, g_dir, MDB_RDONLY, 0644), 0);
    assert_int_equal(mdb_txn_begin(*env, NULL, MDB_RDONLY, txn), 0);
    assert_int_equal(mdb_dbi_open(*txn, table, 0, &dbi), 0);
    assert_int_equal(mdb_cursor_open(*txn, dbi, c), 0);
}

static void close_table(MDB_env *env, MDB_txn *txn, MDB_cursor *c)
{
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    mdb_env_close(env);
}

/* Entries of a table of the closed store at g_dir, and how many have keys of klen bytes. */
static size_t table_keys(const char *table, size_t klen, size_t *with_len)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_cursor *c;
    MDB_val k, v;
    size_t n = 0;
    *with_len = 0;
    open_table(table, &env, &txn, &c);
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        n++;
        if (k.mv_size == klen) (*with_len)++;
    }
    close_table(env, txn, c);
    return n;
}

/* A store whose clean close does not compact (as with a file over 1 GiB in use). */
static ag_store_t *open_keeping(void)
{
    ag_store_opts_t o;
    ag_store_opts_default(&o);
    o.path = g_dir;
    o.compact_min_bytes = UINT64_MAX;
    ag_store_t *s = NULL;
    ag_errmsg_t e = {{0}, -1};
    assert_int_equal(ag_store_open(&o, &s, &e), 0);
    return s;
}

static void grp_write(ag_store_t *s, int from, int to, int64_t t, int every)
{
    char k[16];
    for (int i = from; i < to; i += every) {
        ag_sample_t smp = {t, i};
        snprintf(k, sizeof k, "%d", i);
        assert_int_equal(write1(s, &smp, 1, "__name__", "grp", "k", k, "host", "h-0:9100", NULL),
                         0);
    }
}

/* A clean stop folds series labels and observer slots into cold groups (ranges of ids in one
 * compressed record); they load back exactly, a slot saved later overrides its grouped copy,
 * series created later join their range at the next stop, and a file with groups still takes
 * every kind of write. */
static void cold_groups_keep_series_and_slots(void **state)
{
    (void)state;
    static grp_obs_t oc;
    memset(&oc, 0, sizeof oc);
    ag_store_observer_t o = {grp_samples, grp_end, &oc};
    ag_store_t *s = open_store(0, 0);
    ag_store_set_observer(s, &o);
    grp_write(s, 0, GRP_SERIES, 1000, 1);
    grp_write(s, 0, GRP_SERIES, 2000, 1);
    ag_store_set_observer(s, &o);
    ag_store_close(s); /* checkpoint, then the compaction folds ids 1..300 */
    /* The file now holds groups only: 3 ranges of series, 10 of slots, no hot postings. */
    size_t ng;
    assert_int_equal(table_keys("series", 9, &ng), 3);
    assert_int_equal(ng, 3);
    assert_int_equal(table_keys("models", 10, &ng), 10);
    assert_int_equal(ng, 10);
    assert_int_equal(table_keys("postings", 0, &ng), 0);
    assert_true(table_keys("postings_cold", 0, &ng) >= 300 + 2);

    s = open_keeping(); /* this close leaves the file as it is */
    ag_selection_t sel;
    assert_int_equal(count_select(s, AG_MATCH_EQ, "__name__", "grp", &sel), GRP_SERIES);
    for (size_t i = 0; i < sel.n; i++) assert_int_equal(sel.series[i].n, 2);
    ag_selection_free(&sel);
    assert_int_equal(count_select(s, AG_MATCH_EQ, "k", "257", &sel), 1);
    assert_int_equal(sel.series[0].samples[1].v, 257);
    ag_selection_free(&sel);
    memset(&oc, 0, sizeof oc);
    ag_store_set_observer(s, &o);
    grp_write(s, 0, GRP_SERIES, 3000, 3); /* a third of the slots change: saved per id */
    grp_write(s, GRP_SERIES, GRP_SERIES + 40, 3000, 1); /* new ids 301..340 */
    ag_store_set_observer(s, &o);
    for (int i = 0; i < GRP_SERIES; i += 3) {
        assert_int_equal(oc.status[i], AG_SLOT_LOADED);
        assert_int_equal(oc.before[i], 2);
    }
    assert_int_equal(oc.status[GRP_SERIES + 5], 0);
    ag_store_close(s); /* per-id slots beside their groups; a range part grouped, part not */
    assert_int_equal(table_keys("series", 8, &ng), 3 + 40);
    assert_int_equal(table_keys("models", 9, &ng), 10 + 100 + 40);
    assert_true(table_keys("postings", 0, &ng) >= 40 * 3);

    for (int round = 0; round < 2; round++) { /* round 0 reads both forms, then compacts */
        s = open_store(0, 0);
        memset(&oc, 0, sizeof oc);
        ag_store_set_observer(s, &o);
        grp_write(s, 0, GRP_SERIES + 40, 4000 + round * 1000, 1);
        ag_store_set_observer(s, &o);
        for (int i = 0; i < GRP_SERIES + 40; i++) {
            uint64_t want = (i >= GRP_SERIES ? 1 : i % 3 == 0 ? 3 : 2) + (uint64_t)round;
            assert_int_equal(oc.status[i], AG_SLOT_LOADED);
            assert_int_equal(oc.before[i], want);
        }
        assert_int_equal(count_select(s, AG_MATCH_EQ, "__name__", "grp", &sel), GRP_SERIES + 40);
        ag_selection_free(&sel);
        assert_int_equal(count_select(s, AG_MATCH_EQ, "k", "320", &sel), 1);
        assert_int_equal(sel.series[0].n, 2 + round);
        ag_selection_free(&sel);
        /* Postings: ids 1..300 in cold lists, 301..340 (k 300..339) posted one by one in round
         * 0, all cold in round 1; every matcher sees the union. */
        assert_int_equal(count_select(s, AG_MATCH_EQ, "k", "5", NULL), 1);
        assert_int_equal(count_select(s, AG_MATCH_RE, "k", "3..", NULL), 40);
        assert_int_equal(count_select(s, AG_MATCH_NRE, "k", "1.*", NULL), 340 - 111);
        assert_int_equal(count_select(s, AG_MATCH_NEQ, "k", "7", NULL), 339);
        assert_int_equal(count_select(s, AG_MATCH_EQ, "host", "h-0:9100", NULL), 340);
        ag_store_set_observer(s, NULL);
        ag_store_close(s);
        assert_int_equal(table_keys("series", 9, &ng), 3); /* ids 1..340: 3 ranges of 128 */
        assert_int_equal(ng, 3);
        assert_int_equal(table_keys("models", 10, &ng), 11); /* 11 ranges of 32 */
        assert_int_equal(ng, 11);
    }
}

/* Packed chunk values of the closed store at g_dir, and how many lack the first timestamp
 * their key repeats (flag 8, CHUNK_T0KEY). */
static size_t chunk_flags(size_t *stripped)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_cursor *c;
    MDB_val k, v;
    size_t n = 0;
    *stripped = 0;
    open_table("chunks", &env, &txn, &c);
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        const unsigned char *f = v.mv_data;
        if (!(f[0] & 2)) continue;
        n++;
        if (f[0] & 8) (*stripped)++;
    }
    close_table(env, txn, c);
    return n;
}

static void expect_series(ag_store_t *s, size_t n, int64_t ooo_t)
{
    ag_selection_t sel;
    assert_int_equal(count_select(s, AG_MATCH_EQ, "__name__", "sc", &sel), 1);
    assert_int_equal(sel.series[0].n, n);
    for (size_t i = 0, j = 0; i < n; i++) {
        const ag_sample_t *x = &sel.series[0].samples[i];
        if (x->t == ooo_t) {
            assert_true(x->v == -1);
            continue;
        }
        assert_int_equal(x->t, (int64_t)j * 15000 - 3600000);
        assert_true(x->v == (double)j * 0.25);
        j++;
    }
    ag_selection_free(&sel);
}

/* The compaction leaves out each packed chunk's first timestamp (its key has it): reads, the
 * head's reload, an out-of-order merge into such a chunk and the next compaction all see the
 * same samples. */
static void stripped_chunks_read_and_merge(void **state)
{
    (void)state;
    ag_store_opts_t o;
    ag_store_opts_default(&o);
    o.path = g_dir;
    o.ooo_window_ms = 7200000;
    ag_store_t *s = NULL;
    ag_errmsg_t e = {{0}, -1};
    assert_int_equal(ag_store_open(&o, &s, &e), 0);
    ag_sample_t smp[300];
    for (int i = 0; i < 300; i++) smp[i] = (ag_sample_t){i * 15000LL - 3600000, i * 0.25};
    assert_int_equal(write1(s, smp, 300, "__name__", "sc", NULL), 0);
    ag_store_close(s);
    size_t stripped;
    assert_int_equal(chunk_flags(&stripped), 3); /* two sealed, the open one packed at stop */
    assert_int_equal(stripped, 3);
    assert_int_equal(ag_store_open(&o, &s, &e), 0);
    expect_series(s, 300, INT64_MIN);
    ag_sample_t late = {50 * 15000LL - 3600000 + 7, -1}; /* inside the first sealed chunk */
    assert_int_equal(write1(s, &late, 1, "__name__", "sc", NULL), 0);
    expect_series(s, 301, late.t);
    ag_store_close(s);
    assert_int_equal(chunk_flags(&stripped), 3);
    assert_int_equal(stripped, 3); /* the merged chunk is stripped again */
    assert_int_equal(ag_store_open(&o, &s, &e), 0);
    expect_series(s, 301, late.t);
    ag_store_close(s);
}

/* Sets (v != 0) and returns the stored schema version of the closed store at g_dir. */
static uint64_t schema_version(uint64_t v)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {6, "schema"}, val;
    unsigned char b[8];
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
    assert_int_equal(mdb_env_open(env, g_dir, 0, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    if (v) {
        for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (56 - 8 * i));
        val.mv_size = 8;
        val.mv_data = b;
        assert_int_equal(mdb_put(txn, dbi, &k, &val, 0), 0);
    }
    assert_int_equal(mdb_get(txn, dbi, &k, &val), 0);
    assert_int_equal(val.mv_size, 8);
    uint64_t got = 0;
    for (int i = 0; i < 8; i++) got = got << 8 | ((unsigned char *)val.mv_data)[i];
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    return got;
}

/* A version 1 store (before cold records) opens and is marked version 2; a version this
 * augurd does not know is refused with a clear error. */
static void schema_upgrade_and_unknown_version(void **state)
{
    (void)state;
    ag_store_t *s = open_store(0, 0);
    ag_sample_t smp = {1000, 1};
    assert_int_equal(write1(s, &smp, 1, "__name__", "v", NULL), 0);
    ag_store_close(s);
    assert_int_equal(schema_version(0), 2);
    schema_version(1);
    s = open_store(0, 0);
    assert_int_equal(count_select(s, AG_MATCH_EQ, "__name__", "v", NULL), 1);
    ag_store_close(s);
    assert_int_equal(schema_version(0), 2);
    schema_version(3);
    ag_store_opts_t o;
    ag_store_opts_default(&o);
    o.path = g_dir;
    ag_errmsg_t e = {{0}, -1};
    assert_int_equal(ag_store_open(&o, &s, &e), AG_ECORRUPT);
    assert_non_null(strstr(e.msg, "schema version"));
}

static void blobs_and_observer_slots_survive_reopen(void **state)
{
    ag_store_t *s = open_store(0, 0);
    obs_ctx_t oc = {0};
    ag_store_observer_t o = {obs_samples, obs_end, &oc};
    ag_store_set_observer(s, &o);
    ag_sample_t smp[3] = {{1000, 1}, {2000, 2}, {3000, 3}};
    ag_label_t l[1] = {{"__name__", "m"}};
    ag_series_in_t in = {l, 1, smp, 3};
    ag_blob_in_t b[3] = {{"m\0a", 3, "one", 3}, {"m\0b", 3, "two", 3}, {"n", 1, "x", 1}};
    ag_write_req_t req = {&in, 1, NULL, 0, NULL, b, 3};
    ag_write_res_t res;
    assert_int_equal(ag_store_write(s, &req, &res), 0);
    /* The observer runs after the writer was answered: re-installing it waits for the groups
     * that use it to finish. */
    ag_store_set_observer(s, &o);
    assert_int_equal(oc.calls, 1);
    assert_int_equal(oc.seen, 3);
    assert_int_equal(oc.status_before, 0); /* a new series */
    assert_int_equal(oc.ends, 1);
    blobs_t got = list_blobs(s, "m", 2); /* "m\0" */
    assert_int_equal(got.n, 2);
    assert_int_equal(got.klen[0], 3);
    assert_memory_equal(got.keys[0], "m\0a", 3);
    assert_string_equal(got.vals[0], "one");
    assert_string_equal(got.vals[1], "two");
    /* A delete and a replace in a request without samples; a bad key refuses it whole. */
    ag_blob_in_t b2[2] = {{"m\0a", 3, NULL, 0}, {"n", 1, "y", 1}};
    ag_write_req_t req2 = {NULL, 0, NULL, 0, NULL, b2, 2};
    assert_int_equal(ag_store_write(s, &req2, &res), 0);
    ag_blob_in_t bad[2] = {{"n", 1, "z", 1}, {"", 0, "q", 1}};
    ag_write_req_t req3 = {NULL, 0, NULL, 0, NULL, bad, 2};
    assert_int_equal(ag_store_write(s, &req3, &res), AG_EINVAL);
    got = list_blobs(s, "", 0);
    assert_int_equal(got.n, 2);
    assert_memory_equal(got.keys[0], "m\0b", 3);
    assert_string_equal(got.vals[1], "y");
    /* Every accepted request's samples for the series are passed, seen or not. */
    ag_sample_t more[2] = {{3000, 3}, {4000, 4}};
    assert_int_equal(write1(s, more, 2, "__name__", "m", NULL), 0);
    ag_store_set_observer(s, &o);
    assert_int_equal(oc.seen, 5);
    assert_int_equal(oc.slot_before, 3);
    assert_int_equal(oc.status_before, 7);
    /* A refused request is not observed. */
    ag_sample_t old[1] = {{-100000000, 1}};
    assert_int_equal(write1(s, old, 1, "__name__", "m", NULL), AG_ECONFLICT);
    ag_store_set_observer(s, &o);
    assert_int_equal(oc.seen, 5);
    ag_store_set_observer(s, NULL);
    assert_int_equal(write1(s, more + 1, 1, "__name__", "m", NULL), 0);
    assert_int_equal(oc.calls, 2);
    ag_store_close(s); /* checkpoints: the slot is saved */

    for (int round = 0; round < 2; round++) {
        s = open_store(0, 0);
        oc = (obs_ctx_t){0};
        ag_store_set_observer(s, &o);
        ag_sample_t next[1] = {{5000 + round * 1000, 5}};
        assert_int_equal(write1(s, next, 1, "__name__", "m", NULL), 0);
        ag_store_set_observer(s, &o);
        assert_int_equal(oc.calls, 1);
        assert_int_equal(oc.status_before, AG_SLOT_LOADED);
        assert_int_equal(oc.slot_before, 5 + round); /* restored, not started again */
        got = list_blobs(s, "n", 1);
        assert_int_equal(got.n, 1);
        assert_string_equal(got.vals[0], "y");
        ag_store_set_observer(s, NULL);
        ag_store_close(s);
    }
}

static void ooo_window_random(void **state)
{
    (void)state;
    ag_store_opts_t o;
    ag_store_opts_default(&o);
    o.path = g_dir;
    o.chunk_samples = 16;
    o.ooo_window_ms = 100000;
    ag_store_t *s = NULL;
    ag_errmsg_t e = {{0}, -1};
    assert_int_equal(ag_store_open(&o, &s, &e), 0);
    enum { NS = 3, MAXN = 4000 };
    static ag_sample_t model[NS][MAXN];
    size_t nm[NS] = {0};
    int64_t newest[NS];
    uint64_t rnd = 12345;
    char iv[NS][16];
    for (int i = 0; i < NS; i++) {
        newest[i] = 1000000;
        snprintf(iv[i], sizeof iv[i], "%d", i);
    }
    for (int round = 0; round < 800; round++) {
        rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
        int i = (int)((rnd >> 33) % NS);
        int64_t t;
        bool ooo = (rnd >> 40) % 3 == 0 && nm[i] > 0;
        if (ooo) {
            t = newest[i] - 1 - (int64_t)((rnd >> 20) % 99000);
        } else {
            t = newest[i] + 1 + (int64_t)((rnd >> 20) % 3000);
            newest[i] = t;
        }
        bool dup = false;
        for (size_t k = 0; k < nm[i]; k++)
            if (model[i][k].t == t) dup = true;
        double v = dup ? 0 : (double)((rnd >> 10) % 100000) / 100.0;
        if (dup) {
            for (size_t k = 0; k < nm[i]; k++)
                if (model[i][k].t == t) v = model[i][k].v; /* resend the stored value */
        }
        ag_sample_t smp = {t, v};
        assert_int_equal(write1(s, &smp, 1, "__name__", "ooo", "i", iv[i], NULL), 0);
        if (!dup) model[i][nm[i]++] = smp;
    }
    /* Beyond the window: refused. */
    ag_sample_t old = {newest[0] - 100001, 1};
    assert_int_equal(write1(s, &old, 1, "__name__", "ooo", "i", iv[0], NULL), AG_ECONFLICT);
    for (int pass = 0; pass < 2; pass++) {
        ag_selection_t sel;
        assert_int_equal(count_select(s, AG_MATCH_EQ, "__name__", "ooo", &sel), NS);
        for (int i = 0; i < NS; i++) {
            qsort(model[i], nm[i], sizeof model[i][0], cmp_smp);
            /* sel is in label order: i="0", "1", "2" */
            assert_int_equal(sel.series[i].n, nm[i]);
            for (size_t k = 0; k < nm[i]; k++) {
                assert_int_equal(sel.series[i].samples[k].t, model[i][k].t);
                assert_true(sel.series[i].samples[k].v == model[i][k].v);
            }
        }
        ag_selection_free(&sel);
        ag_store_close(s);
        assert_int_equal(ag_store_open(&o, &s, &e), 0);
    }
    ag_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(write_then_select, setup, teardown),
        cmocka_unit_test_setup_teardown(durable_after_write_then_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(replay_without_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(wal_values_replay_exactly, setup, teardown),
        cmocka_unit_test_setup_teardown(reopen_after_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(close_compacts_the_file, setup, teardown),
        cmocka_unit_test_setup_teardown(cold_groups_keep_series_and_slots, setup, teardown),
        cmocka_unit_test_setup_teardown(schema_upgrade_and_unknown_version, setup, teardown),
        cmocka_unit_test_setup_teardown(stripped_chunks_read_and_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(wal_long_and_empty_entries_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(crash_after_copied_checkpoints, setup, teardown),
        cmocka_unit_test_setup_teardown(conflict_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(matchers_all_types, setup, teardown),
        cmocka_unit_test_setup_teardown(postings_single_after_multi, setup, teardown),
        cmocka_unit_test_setup_teardown(select_drops_series_without_samples_in_range, setup, teardown),
        cmocka_unit_test_setup_teardown(keyed_writes_land_on_their_series, setup, teardown),
        cmocka_unit_test_setup_teardown(long_label_values, setup, teardown),
        cmocka_unit_test_setup_teardown(map_full_fails_and_keeps_data, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_read_write, setup, teardown),
        cmocka_unit_test_setup_teardown(metadata_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(second_open_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(write_hook_reports_oldest_sample, setup, teardown),
        cmocka_unit_test_setup_teardown(scan_matches_select, setup, teardown),
        cmocka_unit_test_setup_teardown(scan_during_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(series_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(ooo_window_random, setup, teardown),
        cmocka_unit_test_setup_teardown(blobs_and_observer_slots_survive_reopen, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
