
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_stats.h"


/* as many as NGX_BAYEUX_STAT_ERRORS_LAST - NGX_BAYEUX_STAT_ERRORS + 1 */

ngx_bayeux_stat_code_t  ngx_bayeux_errors[] = {
    { 400, "bad_request" },
    { 401, "unauthorized" },
    { 402, "session_unknown" },
    { 403, "forbidden" },
    { 405, "channel_invalid" },
    { 409, "conflict" },
    { 500, "server_error" },
    { 503, "unavailable" },
    { 0, "other" }
};


/* as many as NGX_BAYEUX_STAT_HTTP_LAST - NGX_BAYEUX_STAT_HTTP + 1 */

ngx_bayeux_stat_code_t  ngx_bayeux_http_4xx[] = {
    { 400, "bad_request" },
    { 403, "forbidden" },
    { 404, "not_found" },
    { 405, "method_not_allowed" },
    { 408, "request_timeout" },
    { 413, "body_too_large" },
    { 415, "unsupported_media_type" },
    { 426, "upgrade_required" },
    { 499, "client_closed" },
    { 0, "other" }
};


/* as many as NGX_BAYEUX_STAT_REDIS_LATENCY_LAST - ..._LATENCY + 1 */

ngx_msec_t  ngx_bayeux_latency_ms[] = {
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 0
};


/* "402::session_unknown": its code */

void
ngx_bayeux_stat_error(ngx_bayeux_endpoint_t *ep, u_char *error, size_t len)
{
    ngx_int_t   code;
    ngx_uint_t  i;

    code = (len >= 3) ? ngx_atoi(error, 3) : NGX_ERROR;

    for (i = 0; ngx_bayeux_errors[i].code; i++) {
        if ((ngx_int_t) ngx_bayeux_errors[i].code == code) {
            break;
        }
    }

    ngx_bayeux_stat(ep, NGX_BAYEUX_STAT_ERRORS + i, 1);
}


void
ngx_bayeux_stat_http(ngx_bayeux_endpoint_t *ep, ngx_uint_t status)
{
    ngx_uint_t  i;

    for (i = 0; ngx_bayeux_http_4xx[i].code; i++) {
        if (ngx_bayeux_http_4xx[i].code == status) {
            break;
        }
    }

    ngx_bayeux_stat(ep, NGX_BAYEUX_STAT_HTTP + i, 1);
}


void
ngx_bayeux_stat_latency(ngx_bayeux_endpoint_t *ep, ngx_msec_t ms)
{
    ngx_uint_t  i;

    for (i = 0; ngx_bayeux_latency_ms[i]; i++) {
        if (ms <= ngx_bayeux_latency_ms[i]) {
            break;
        }
    }

    ngx_bayeux_stat(ep, NGX_BAYEUX_STAT_REDIS_LATENCY + i, 1);
    ngx_bayeux_stat(ep, NGX_BAYEUX_STAT_REDIS_LATENCY_SUM, ms);
    ngx_bayeux_stat(ep, NGX_BAYEUX_STAT_REDIS_LATENCY_COUNT, 1);
}
