/* err.c - messages for the AG_E* error table in ag_err.h. */
#include "ag_err.h"

#include <stdarg.h>
#include <stdio.h>

const char *ag_strerror(int err)
{
    switch (err) {
    case AG_OK: return "success";
    case AG_ENOMEM: return "out of memory";
    case AG_EINVAL: return "invalid input";
    case AG_ETOOBIG: return "input too large";
    case AG_EIO: return "I/O error";
    case AG_ENOTFOUND: return "not found";
    case AG_ECORRUPT: return "corrupt data";
    case AG_EFULL: return "storage full";
    case AG_EUNSUPPORTED: return "unsupported";
    case AG_ESHUTDOWN: return "shutting down";
    case AG_ELIMIT: return "limit exceeded";
    case AG_ECONFLICT: return "conflicts with stored data";
    case AG_ETIMEOUT: return "timed out";
    case AG_EEXEC: return "query execution failed";
    default: return "unknown error";
    }
}

int ag_errmsg_set(ag_errmsg_t *e, int code, long offset, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        e->offset = offset;
    }
    return code;
}
