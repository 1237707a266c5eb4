/* test_remote_write.c - unit tests for Remote-Write 1.0 body decoding and label validation:
 * valid, truncated and corrupt snappy/protobuf bodies, and every validation rule. Bodies are
 * built with the protoc-c generated packer and real snappy compression. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>

#include "ag_labels.h"
#include "ag_remote_write.h"
#include "remote.pb-c.h"

static const ag_rw_limits_t k_lim = {1 << 20, 32, 64, 256};

typedef struct body {
    char *data;
    size_t len;
} body_t;

/* Builds a one-series request from "name=value" label strings and n samples. */
static body_t make_body(const char **labels, size_t nl, size_t nsamples, bool histogram)
{
    Augur__Remote__Label lab[16], *lp[16];
    for (size_t i = 0; i < nl; i++) {
        augur__remote__label__init(&lab[i]);
        const char *eq = strchr(labels[i], '=');
        lab[i].name.data = (uint8_t *)labels[i];
        lab[i].name.len = (size_t)(eq - labels[i]);
        lab[i].value.data = (uint8_t *)eq + 1;
        lab[i].value.len = strlen(eq + 1);
        lp[i] = &lab[i];
    }
    Augur__Remote__Sample smp[8], *sp[8];
    for (size_t i = 0; i < nsamples; i++) {
        augur__remote__sample__init(&smp[i]);
        smp[i].timestamp = 1000 * (int64_t)(i + 1);
        smp[i].value = (double)i + 0.5;
        sp[i] = &smp[i];
    }
    Augur__Remote__Histogram h, *hp = &h;
    augur__remote__histogram__init(&h);
    Augur__Remote__TimeSeries ts, *tsp = &ts;
    augur__remote__time_series__init(&ts);
    ts.n_labels = nl;
    ts.labels = lp;
    ts.n_samples = nsamples;
    ts.samples = sp;
    if (histogram) {
        ts.n_histograms = 1;
        ts.histograms = &hp;
    }
    Augur__Remote__WriteRequest wr;
    augur__remote__write_request__init(&wr);
    wr.n_timeseries = 1;
    wr.timeseries = &tsp;
    size_t plen = augur__remote__write_request__get_packed_size(&wr);
    uint8_t *pb = malloc(plen + 1);
    augur__remote__write_request__pack(&wr, pb);
    body_t b;
    b.len = snappy_max_compressed_length(plen);
    b.data = malloc(b.len);
    assert_int_equal(snappy_compress((char *)pb, plen, b.data, &b.len), SNAPPY_OK);
    free(pb);
    return b;
}

static int decode(body_t b, ag_rw_request_t *r, ag_rw_reason_t *why, ag_errmsg_t *e)
{
    int rc = ag_rw_decode(b.data, b.len, &k_lim, r, why, e);
    free(b.data);
    return rc;
}

static void valid_request(void **state)
{
    (void)state;
    const char *l[] = {"__name__=up", "instance=h:9100", "job=node"};
    ag_rw_request_t r;
    ag_rw_reason_t why;
    ag_errmsg_t e = {{0}, -1};
    assert_int_equal(decode(make_body(l, 3, 3, false), &r, &why, &e), 0);
    assert_int_equal(r.req.nseries, 1);
    assert_int_equal(r.req.series[0].nlabels, 3);
    assert_string_equal(r.req.series[0].labels[1].value, "h:9100");
    assert_int_equal(r.req.series[0].nsamples, 3);
    assert_int_equal(r.req.series[0].samples[2].t, 3000);
    assert_true(r.req.series[0].samples[2].v == 2.5);
    assert_int_equal(r.samples, 3);
    ag_rw_request_free(&r);
}

static void expect_invalid(const char **l, size_t nl, bool hist, int code, const char *needle)
{
    ag_rw_request_t r;
    ag_rw_reason_t why;
    ag_errmsg_t e = {{0}, -1};
    assert_int_equal(decode(make_body(l, nl, 1, hist), &r, &why, &e), code);
    if (!strstr(e.msg, needle)) fail_msg("message \"%s\" lacks \"%s\"", e.msg, needle);
    assert_null(r.arena);
}

static void invalid_labels(void **state)
{
    (void)state;
    const char *unsorted[] = {"__name__=up", "job=a", "instance=b"};
    expect_invalid(unsorted, 3, false, AG_EINVAL, "not sorted");
    const char *dup[] = {"__name__=up", "job=a", "job=b"};
    expect_invalid(dup, 3, false, AG_EINVAL, "duplicate label name");
    const char *noname[] = {"job=a"};
    expect_invalid(noname, 1, false, AG_EINVAL, "no __name__");
    const char *badmetric[] = {"__name__=1up"};
    expect_invalid(badmetric, 1, false, AG_EINVAL, "invalid metric name");
    const char *badlabel[] = {"__name__=up", "a-b=c"};
    expect_invalid(badlabel, 2, false, AG_EINVAL, "invalid label name");
    const char *empty[] = {"__name__=up", "job="};
    expect_invalid(empty, 2, false, AG_EINVAL, "empty value");
    const char *utf8[] = {"__name__=up", "job=\xc3\x28"};
    expect_invalid(utf8, 2, false, AG_EINVAL, "UTF-8");
    const char *hist[] = {"__name__=up"};
    expect_invalid(hist, 1, true, AG_EUNSUPPORTED, "native histograms");
    const char *none[] = {"__name__=up"};
    expect_invalid(none, 0, false, AG_EINVAL, "no labels");
    (void)none;
}

static void nul_in_value(void **state)
{
    (void)state;
    /* A label value with an embedded NUL cannot be built from C strings: patch the body. */
    const char *l[] = {"__name__=up", "job=aXb"};
    Augur__Remote__Label lab[2], *lp[2];
    for (int i = 0; i < 2; i++) {
        augur__remote__label__init(&lab[i]);
        lp[i] = &lab[i];
    }
    lab[0].name.data = (uint8_t *)"__name__";
    lab[0].name.len = 8;
    lab[0].value.data = (uint8_t *)"up";
    lab[0].value.len = 2;
    lab[1].name.data = (uint8_t *)"job";
    lab[1].name.len = 3;
    lab[1].value.data = (uint8_t *)"a\0b";
    lab[1].value.len = 3;
    Augur__Remote__Sample smp, *sp = &smp;
    augur__remote__sample__init(&smp);
    Augur__Remote__TimeSeries ts, *tsp = &ts;
    augur__remote__time_series__init(&ts);
    ts.n_labels = 2;
    ts.labels = lp;
    ts.n_samples = 1;
    ts.samples = &sp;
    Augur__Remote__WriteRequest wr;
    augur__remote__write_request__init(&wr);
    wr.n_timeseries = 1;
    wr.timeseries = &tsp;
    uint8_t pb[256];
    size_t plen = augur__remote__write_request__pack(&wr, pb);
    char comp[512];
    size_t clen = sizeof comp;
    assert_int_equal(snappy_compress((char *)pb, plen, comp, &clen), SNAPPY_OK);
    ag_rw_request_t r;
    ag_rw_reason_t why;
    ag_errmsg_t e = {{0}, -1};
    assert_int_equal(ag_rw_decode(comp, clen, &k_lim, &r, &why, &e), AG_EINVAL);
    assert_non_null(strstr(e.msg, "NUL"));
    (void)l;
}

static void corrupt_bodies(void **state)
{
    (void)state;
    ag_rw_request_t r;
    ag_rw_reason_t why;
    ag_errmsg_t e = {{0}, -1};
    /* Not snappy at all. */
    assert_int_equal(ag_rw_decode("\xff\xff\xff\xff\xff\xff\xff", 7, &k_lim, &r, &why, &e), AG_EINVAL);
    assert_int_equal(why, AG_RW_BAD_SNAPPY);
    /* Every truncation of a valid body is rejected cleanly (or decodes, if it happens to be a
     * shorter valid stream); none crashes. */
    const char *l[] = {"__name__=up", "job=node"};
    body_t b = make_body(l, 2, 5, false);
    for (size_t n = 0; n < b.len; n++) {
        int rc = ag_rw_decode(b.data, n, &k_lim, &r, &why, &e);
        assert_true(rc == AG_EINVAL || rc == AG_OK);
        if (rc == AG_OK) ag_rw_request_free(&r);
    }
    /* Flipped bytes after the length header. */
    for (size_t i = 1; i < b.len; i++) {
        char *c = malloc(b.len);
        memcpy(c, b.data, b.len);
        c[i] ^= 0x5a;
        int rc = ag_rw_decode(c, b.len, &k_lim, &r, &why, &e);
        assert_true(rc == AG_EINVAL || rc == AG_OK || rc == AG_EUNSUPPORTED);
        if (rc == AG_OK) ag_rw_request_free(&r);
        free(c);
    }
    free(b.data);
    /* Valid snappy wrapping garbage protobuf. */
    const char junk[] = "\x0a\xff\xff\xff\xff\x0f";
    char comp[64];
    size_t clen = sizeof comp;
    snappy_compress(junk, sizeof junk - 1, comp, &clen);
    assert_int_equal(ag_rw_decode(comp, clen, &k_lim, &r, &why, &e), AG_EINVAL);
    assert_int_equal(why, AG_RW_BAD_PROTOBUF);
}

static void size_limit_before_allocation(void **state)
{
    (void)state;
    /* A 6-byte body whose header claims 4 GiB of output. */
    const char huge[] = "\x80\x80\x80\x80\x0f\x00"; /* claims 3.75 GiB */
    ag_rw_request_t r;
    ag_rw_reason_t why;
    ag_errmsg_t e = {{0}, -1};
    assert_int_equal(ag_rw_decode(huge, 6, &k_lim, &r, &why, &e), AG_ETOOBIG);
    assert_int_equal(why, AG_RW_TOO_LARGE);
}

static void limits(void **state)
{
    (void)state;
    char longv[300];
    memset(longv, 'v', sizeof longv);
    memcpy(longv, "job=", 4);
    longv[299] = 0;
    const char *l[] = {"__name__=up", longv};
    expect_invalid(l, 2, false, AG_EINVAL, "exceeds the limit");
}

static void utf8_rules(void **state)
{
    (void)state;
    assert_true(ag_utf8_valid("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15));
    assert_false(ag_utf8_valid("\xc0\xaf", 2));         /* overlong */
    assert_false(ag_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    assert_false(ag_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_false(ag_utf8_valid("\xe2\x82", 2));         /* truncated */
    assert_true(ag_metric_name_valid("a:b_c1", 6));
    assert_false(ag_label_name_valid("a:b", 3));
    assert_false(ag_label_name_valid("", 0));
}

/* Prometheus' rules, one byte at a time: [a-zA-Z_][a-zA-Z0-9_]* (metric names also ':'). */
static bool ref_name_valid(const unsigned char *s, size_t n, bool colon)
{
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

/* Name validation against the rules written out byte by byte: every byte value at every
 * position of names of 1..40 bytes (the rest valid), and random names. (A word-at-a-time
 * validator was tried against it: it ran more instructions than the table, so it was not kept.) */
static void name_rules_every_byte(void **state)
{
    (void)state;
    unsigned char s[40];
    for (size_t n = 1; n <= sizeof s; n++) {
        for (size_t pos = 0; pos < n; pos++) {
            for (unsigned c = 0; c < 256; c++) {
                for (size_t i = 0; i < n; i++) s[i] = "aZ_9y:"[(i * 7 + n) % 5]; /* no ':' */
                s[0] = 'a';
                s[pos] = (unsigned char)c;
                assert_int_equal(ag_label_name_valid((const char *)s, n),
                                 ref_name_valid(s, n, false));
                assert_int_equal(ag_metric_name_valid((const char *)s, n),
                                 ref_name_valid(s, n, true));
            }
        }
    }
    uint64_t x = 88172645463325252ULL;
    const char alpha[] = "az_AZ09:.-/\x80\xff {}=";
    for (int k = 0; k < 200000; k++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t n = 1 + x % 30;
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            /* mostly valid characters, now and then one that is not */
            s[i] = x % 16 ? "abcxyzABCXYZ019_"[x % 16] : (unsigned char)alpha[(x >> 8) % (sizeof alpha - 1)];
        }
        assert_int_equal(ag_label_name_valid((const char *)s, n), ref_name_valid(s, n, false));
        assert_int_equal(ag_metric_name_valid((const char *)s, n), ref_name_valid(s, n, true));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_request),        cmocka_unit_test(invalid_labels),
        cmocka_unit_test(nul_in_value),         cmocka_unit_test(corrupt_bodies),
        cmocka_unit_test(size_limit_before_allocation), cmocka_unit_test(limits),
        cmocka_unit_test(utf8_rules),           cmocka_unit_test(name_rules_every_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
