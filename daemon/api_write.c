/* api_write.c - POST /api/v1/write: the Prometheus Remote-Write 1.0 receiver.
 *
 * Status codes are the contract senders retry on: 204 once the samples are durable; 400 for
 * anything undecodable or invalid (never retried, so the message says exactly what was wrong);
 * 413 when the body or its decoded form is too large; 415 for Remote-Write 2.0 or a foreign
 * encoding (senders then fall back to 1.0); 5xx only for our own transient failures, which
 * senders retry. A refused request leaves the store as it was.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ag_log.h"
#include "ag_remote_write.h"
#include "api_int.h"

static ag_reject_t reject_reason(ag_rw_reason_t r)
{
    switch (r) {
    case AG_RW_TOO_LARGE: return AG_REJ_TOO_LARGE;
    case AG_RW_INVALID_LABELS: return AG_REJ_INVALID_LABELS;
    case AG_RW_LIMIT: return AG_REJ_LIMIT;
    case AG_RW_HISTOGRAM: return AG_REJ_HISTOGRAM;
    default: return AG_REJ_BAD_REQUEST;
    }
}

static void text_error(ag_http_resp_t *r, int status, const char *msg)
{
    r->status = status;
    r->content_type = "text/plain; charset=utf-8";
    ag_buf_puts(&r->body, msg);
    ag_buf_putc(&r->body, '\n');
}

ag_handler_t api_write(ag_app_t *app, const ag_http_req_t *req, ag_http_resp_t *r)
{
    const char *ct = req->content_type, *ce = req->content_encoding;
    if (strstr(ct, "io.prometheus.write.v2")) {
        text_error(r, 415,
                   "Remote-Write 2.0 (io.prometheus.write.v2.Request) is not supported yet; "
                   "send prometheus.WriteRequest (Remote-Write 1.0)");
        return AG_H_WRITE;
    }
    if (ct[0] && strncasecmp(ct, "application/x-protobuf", 22) != 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "unsupported Content-Type \"%.200s\": expected application/x-protobuf",
                 ct);
        text_error(r, 415, msg);
        return AG_H_WRITE;
    }
    if (ce[0] && strcasecmp(ce, "snappy") != 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "unsupported Content-Encoding \"%.200s\": expected snappy", ce);
        text_error(r, 415, msg);
        return AG_H_WRITE;
    }
    ag_config_t c;
    ag_app_settings(app, &c);
    ag_rw_limits_t lim = {c.max_decoded_bytes, c.max_labels_per_series, c.max_label_name_bytes,
                          c.max_label_value_bytes};
    ag_rw_request_t rw;
    ag_rw_reason_t why;
    ag_errmsg_t e = {{0}, -1};
    int rc = ag_rw_decode(req->body, req->body_len, &lim, &rw, &why, &e);
    if (rc) {
        ag_metrics_rejected(app->metrics, reject_reason(why), rw.samples);
        if (rc == AG_ENOMEM) {
            text_error(r, 500, "out of memory decoding the request");
            return AG_H_WRITE;
        }
        AG_DEBUG("\"remote write rejected\" err=\"%s\"", e.msg);
        text_error(r, rc == AG_ETOOBIG ? 413 : 400, e.msg);
        return AG_H_WRITE;
    }
    ag_metrics_exemplars_ignored(app->metrics, rw.exemplars);
    ag_write_res_t res;
    rc = ag_store_write(app->store, &rw.req, &res);
    switch (rc) {
    case AG_OK: {
        char n[32];
        snprintf(n, sizeof n, "%llu", (unsigned long long)(res.appended + res.duplicates));
        r->status = 204;
        ag_http_resp_header(r, "X-Prometheus-Remote-Write-Samples-Written", n);
        ag_http_resp_header(r, "X-Prometheus-Remote-Write-Histograms-Written", "0");
        ag_http_resp_header(r, "X-Prometheus-Remote-Write-Exemplars-Written", "0");
        break;
    }
    case AG_ECONFLICT:
    case AG_EINVAL:
    case AG_ELIMIT:
        ag_metrics_rejected(app->metrics,
                            rc == AG_ECONFLICT ? AG_REJ_OUT_OF_ORDER
                            : rc == AG_ELIMIT  ? AG_REJ_SERIES_LIMIT
                                               : AG_REJ_BAD_REQUEST,
                            rw.samples);
        AG_DEBUG("\"remote write rejected\" err=\"%s\"", res.err.msg);
        text_error(r, 400, res.err.msg);
        break;
    case AG_EFULL:
    case AG_ESHUTDOWN:
        ag_metrics_rejected(app->metrics, AG_REJ_STORAGE, rw.samples);
        r->status = 503;
        ag_http_resp_header(r, "Retry-After", "5");
        text_error(r, 503, res.err.msg[0] ? res.err.msg : ag_strerror(rc));
        break;
    default:
        ag_metrics_rejected(app->metrics, AG_REJ_STORAGE, rw.samples);
        text_error(r, 500, res.err.msg[0] ? res.err.msg : ag_strerror(rc));
        break;
    }
    ag_rw_request_free(&rw);
    return AG_H_WRITE;
}
