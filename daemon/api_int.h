/* api_int.h - helpers shared by the HTTP API handlers (api.c, api_query.c, api_write.c). */
#ifndef AG_API_INT_H
#define AG_API_INT_H

#include "ag_app.h"
#include "ag_http.h"

/* Writes Prometheus' error envelope and sets the status for `type` (bad_data 400, execution
 * 422, timeout 503, internal 500, not_found 404, unavailable 503). */
void api_error(ag_http_resp_t *r, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Starts a success envelope: `{"status":"success","data":`; finish with api_success_end. */
void api_success_begin(ag_http_resp_t *r);
/* Closes the envelope, adding "warnings" when `warning` is non-NULL. */
void api_success_end(ag_http_resp_t *r, const char *warning);
void api_text(ag_http_resp_t *r, int status, const char *text);
bool api_method_is(const ag_http_req_t *req, const char *m);

/* Handlers. Each returns the metrics handler id it served. */
ag_handler_t api_write(ag_app_t *app, const ag_http_req_t *req, ag_http_resp_t *r);
ag_handler_t api_query(ag_app_t *app, const ag_http_req_t *req, ag_http_resp_t *r);
ag_handler_t api_query_range(ag_app_t *app, const ag_http_req_t *req, ag_http_resp_t *r);
ag_handler_t api_format_query(ag_app_t *app, const ag_http_req_t *req, ag_http_resp_t *r);
ag_handler_t api_series(ag_app_t *app, const ag_http_req_t *req, ag_http_resp_t *r);
ag_handler_t api_labels(ag_app_t *app, const ag_http_req_t *req, ag_http_resp_t *r);
ag_handler_t api_label_values(ag_app_t *app, const ag_http_req_t *req, ag_http_resp_t *r,
                              const char *name);
ag_handler_t api_metadata(ag_app_t *app, const ag_http_req_t *req, ag_http_resp_t *r);

#endif
