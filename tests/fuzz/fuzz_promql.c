/* fuzz_promql.c - libFuzzer target for the PromQL parser: whatever parses must format to text
 * that parses again and formats identically (a fixed point), and errors must come with a
 * NUL-terminated message. Crashes, leaks and sanitizer reports are findings too. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ag_promql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ag_pq_node_t *n = NULL;
    ag_errmsg_t e;
    memset(&e, 0x55, sizeof e);
    int rc = ag_promql_parse((const char *)data, size, &n, &e);
    if (rc != AG_OK) {
        if (n != NULL || memchr(e.msg, 0, sizeof e.msg) == NULL) abort();
        if (rc != AG_EINVAL && rc != AG_EUNSUPPORTED && rc != AG_ENOMEM) abort();
        if (e.offset < -1 || e.offset > (long)size) abort();
        return 0;
    }
    ag_buf_t b1 = AG_BUF_INIT;
    ag_promql_format(n, &b1);
    if (!ag_buf_ok(&b1)) abort();
    ag_pq_node_t *n2 = NULL;
    rc = ag_promql_parse(b1.data, b1.len, &n2, &e);
    if (rc != AG_OK) {
        fprintf(stderr, "formatted query does not parse: %s\n  -> %s\n", b1.data, e.msg);
        abort();
    }
    ag_buf_t b2 = AG_BUF_INIT;
    ag_promql_format(n2, &b2);
    if (!ag_buf_ok(&b2) || b1.len != b2.len || memcmp(b1.data, b2.data, b1.len) != 0) {
        fprintf(stderr, "format is not a fixed point:\n  %s\n  %s\n", b1.data, b2.data);
        abort();
    }
    if (n->type != n2->type) abort();
    ag_buf_free(&b1);
    ag_buf_free(&b2);
    ag_promql_free(n);
    ag_promql_free(n2);
    return 0;
}
