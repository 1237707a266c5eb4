/* test_webhook.c - webhook signing (daemon/forecast/webhooks.c): HMAC-SHA256 against the RFC
 * 4231 test vectors, and a Standard Webhooks signature against the specification's example. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ag_webhook.h"

static void hex(const unsigned char *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", b[i]);
}

static void test_rfc4231(void **state)
{
    (void)state;
    unsigned char k1[20], k3[20], d3[50], k4[25], d4[50], k6[131];
    memset(k1, 0x0b, sizeof k1);
    memset(k3, 0xaa, sizeof k3);
    memset(d3, 0xdd, sizeof d3);
    for (int i = 0; i < 25; i++) k4[i] = (unsigned char)(i + 1);
    memset(d4, 0xcd, sizeof d4);
    memset(k6, 0xaa, sizeof k6);
    const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    const char *m7 = "This is a test using a larger than block-size key and a larger than "
                     "block-size data. The key needs to be hashed before being used by the HMAC "
                     "algorithm.";
    struct {
        const void *k;
        size_t kl;
        const void *m;
        size_t ml;
        const char *want;
    } cases[] = {
        {k1, 20, "Hi There", 8,
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {"Jefe", 4, "what do ya want for nothing?", 28,
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {k3, 20, d3, 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        {k4, 25, d4, 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
        {k6, 131, m6, strlen(m6),
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
        {k6, 131, m7, strlen(m7),
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char mac[32];
        char got[65];
        assert_int_equal(ag_hmac_sha256(cases[i].k, cases[i].kl, cases[i].m, cases[i].ml, mac), 0);
        hex(mac, 32, got);
        assert_string_equal(got, cases[i].want);
    }
}

static void test_standard_webhooks(void **state)
{
    (void)state;
    char sig[128];
    /* the example of the Standard Webhooks specification */
    assert_int_equal(ag_webhook_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                     "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330",
                                     "{\"test\": 2432232314}", sig, sizeof sig),
                     0);
    assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    /* a plain secret is used as its bytes; a malformed whsec_ is refused; short buffers too */
    assert_int_equal(ag_webhook_sign("s3cret", "id", "1", "{}", sig, sizeof sig), 0);
    assert_int_equal(strncmp(sig, "v1,", 3), 0);
    assert_int_equal(strlen(sig), 3 + 44);
    assert_int_equal(ag_webhook_sign("whsec_abc", "id", "1", "{}", sig, sizeof sig), -1);
    assert_int_equal(ag_webhook_sign("s3cret", "id", "1", "{}", sig, 20), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4231),
        cmocka_unit_test(test_standard_webhooks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
