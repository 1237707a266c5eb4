/* fuzz_config.c - libFuzzer target for the YAML config loader (daemon/config.c and
 * daemon/config_lists.c: sections, settings, and the models:, scalers: and alerts: lists).
 *
 * The input is written to a file and loaded over the defaults: no crash, no leak, no
 * out-of-bounds read; the result is 0, or AG_EINVAL / AG_EIO / AG_ENOMEM with a message, and an
 * AG_EINVAL for anything but a read problem starts with "<path>:<line>:<col>: "; a failed load
 * leaves the configuration exactly as it was (compared through its YAML dump); a successful one
 * dumps to YAML that loads again. Any violation calls abort().
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ag_buf.h"
#include "ag_config.h"
#include "ag_err.h"
#include "ag_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                              \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz_config: check failed at line %d: %s\n", __LINE__, #cond);      \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

static char g_path[64];

static void write_file(const void *d, size_t n)
{
    FILE *f = fopen(g_path, "wb");
    CHECK(f);
    CHECK(fwrite(d, 1, n, f) == n);
    CHECK(fclose(f) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_path[0]) {
        snprintf(g_path, sizeof g_path, "/tmp/fuzz_config.%d.yml", (int)getpid());
        ag_log_set_level(AG_LOG_ERROR);
    }
    if (size > 1 << 16) return 0;
    write_file(data, size);
    ag_config_t c;
    CHECK(ag_config_defaults(&c) == AG_OK);
    ag_buf_t before = AG_BUF_INIT, after = AG_BUF_INIT;
    ag_config_dump_yaml(&c, &before);
    ag_errmsg_t e = {{0}, -1};
    int rc = ag_config_load_file(g_path, &c, &e);
    CHECK(rc == AG_OK || rc == AG_EINVAL || rc == AG_EIO || rc == AG_ENOMEM);
    if (rc) {
        CHECK(e.msg[0]);
        if (rc == AG_EINVAL && strncmp(e.msg, g_path, strlen(g_path)) == 0)
            CHECK(e.msg[strlen(g_path)] == ':');
        ag_config_dump_yaml(&c, &after);
        CHECK(before.len == after.len && memcmp(before.data, after.data, before.len) == 0);
    } else {
        /* what loaded dumps to YAML that loads again */
        ag_config_dump_yaml(&c, &after);
        CHECK(ag_buf_ok(&after));
        write_file(after.data, after.len);
        ag_config_t d;
        CHECK(ag_config_defaults(&d) == AG_OK);
        ag_errmsg_t e2 = {{0}, -1};
        int rc2 = ag_config_load_file(g_path, &d, &e2);
        if (rc2) fprintf(stderr, "reload of the dump failed: %s\n%.*s\n", e2.msg, (int)after.len,
                         after.data);
        CHECK(rc2 == AG_OK);
        CHECK(d.nmodels == c.nmodels && d.nscalers == c.nscalers && d.nalerts == c.nalerts);
        ag_config_free(&d);
    }
    ag_buf_free(&before);
    ag_buf_free(&after);
    ag_config_free(&c);
    unlink(g_path);
    return 0;
}
