/* log.c - logfmt-style lines on stderr with a UTC timestamp (see ag_log.h). */
#include "ag_log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ag_err.h"

static _Atomic int g_level = AG_LOG_INFO;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

void ag_log_set_level(ag_log_level_t lvl) { atomic_store(&g_level, (int)lvl); }
ag_log_level_t ag_log_get_level(void) { return (ag_log_level_t)atomic_load(&g_level); }

const char *ag_log_level_name(ag_log_level_t lvl)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    return (unsigned)lvl < 4 ? names[lvl] : "info";
}

int ag_log_parse_level(const char *s, ag_log_level_t *out)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (ag_log_level_t)i;
            return AG_OK;
        }
    }
    return AG_EINVAL;
}

void ag_log(ag_log_level_t lvl, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if ((int)lvl < atomic_load(&g_level)) return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char line[2048];
    int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, names[lvl]);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&g_lock);
    fprintf(stderr, "%s\n", line);
    pthread_mutex_unlock(&g_lock);
}
