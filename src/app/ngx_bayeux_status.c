
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_engine.h"
#include "ngx_bayeux_stats.h"
#include "ngx_bayeux_status.h"


/*
 * One slot of NGX_BAYEUX_STAT_N counters per endpoint, in the order of
 * the endpoints, in one shared memory zone the module adds once the
 * configuration is read.  A reload with as many endpoints keeps the
 * counters, slot by slot (nginx reuses a zone of the same name and
 * size), so the gauges of the old workers still add up.
 */

#define NGX_BAYEUX_STATUS_JSON        0
#define NGX_BAYEUX_STATUS_PROMETHEUS  1

/* one endpoint's text at most, names and labels aside */
#define NGX_BAYEUX_STATUS_EP_SIZE     8192


typedef struct {
    char                          *name;
    char                          *type;
    char                          *help;
    char                          *label;     /* NULL: none */
    ngx_uint_t                     first;
    ngx_uint_t                     n;
    ngx_uint_t                     redis;     /* Redis endpoints only */
    ngx_bayeux_stat_code_t        *codes;     /* label values by code */
    char                         **values;    /* else label values */
} ngx_bayeux_metric_t;


/* what the zone keeps at its start (shpool->data) */

typedef struct {
    ngx_uint_t                     n;         /* endpoints */
    ngx_atomic_t                  *stats;
} ngx_bayeux_status_shctx_t;


static ngx_int_t ngx_bayeux_status_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_bayeux_status_log_handler(ngx_http_request_t *r);
static ngx_int_t ngx_bayeux_status_handler(ngx_http_request_t *r);
static ngx_uint_t ngx_bayeux_status_format(ngx_http_request_t *r);
static u_char *ngx_bayeux_status_json(u_char *p, ngx_bayeux_endpoint_t *ep,
    ngx_uint_t first);
static u_char *ngx_bayeux_status_prometheus(u_char *p,
    ngx_bayeux_metric_t *metric, ngx_array_t *endpoints);
static u_char *ngx_bayeux_status_histogram(u_char *p,
    ngx_array_t *endpoints);
static u_char *ngx_bayeux_status_label(u_char *p, ngx_bayeux_metric_t *m,
    ngx_uint_t i);


static char  *ngx_bayeux_status_ended[] = { "disconnect", "expired",
                                             "inactive" };
static char  *ngx_bayeux_status_dropped[] = { "queue_overflow" };


static ngx_bayeux_metric_t  ngx_bayeux_metrics[] = {

    { "bayeux_sessions_created_total", "counter",
      "Sessions created (successful handshakes).", NULL,
      NGX_BAYEUX_STAT_SESSIONS_CREATED, 1, 0, NULL, NULL },

    { "bayeux_sessions_ended_total", "counter",
      "Sessions ended, by reason.", "reason",
      NGX_BAYEUX_STAT_ENDED_DISCONNECT, 3, 0, NULL,
      ngx_bayeux_status_ended },

    { "bayeux_connects_held", "gauge",
      "/meta/connect requests held now.", NULL,
      NGX_BAYEUX_STAT_CONNECTS_HELD, 1, 0, NULL, NULL },

    { "bayeux_websockets_open", "gauge",
      "Websocket connections open now.", NULL,
      NGX_BAYEUX_STAT_WEBSOCKETS_OPEN, 1, 0, NULL, NULL },

    { "bayeux_subscribes_total", "counter",
      "Channels subscribed to.", NULL,
      NGX_BAYEUX_STAT_SUBSCRIBES, 1, 0, NULL, NULL },

    { "bayeux_unsubscribes_total", "counter",
      "Channels unsubscribed from.", NULL,
      NGX_BAYEUX_STAT_UNSUBSCRIBES, 1, 0, NULL, NULL },

    { "bayeux_messages_published_total", "counter",
      "Messages published to channels.", NULL,
      NGX_BAYEUX_STAT_PUBLISHED, 1, 0, NULL, NULL },

    { "bayeux_messages_delivered_total", "counter",
      "Messages delivered to sessions.", NULL,
      NGX_BAYEUX_STAT_DELIVERED, 1, 0, NULL, NULL },

    { "bayeux_messages_dropped_total", "counter",
      "Messages dropped, by cause.", "cause",
      NGX_BAYEUX_STAT_DROPPED_QUEUE, 1, 0, NULL,
      ngx_bayeux_status_dropped },

    { "bayeux_queue_overflows_total", "counter",
      "Times a session's queue became full (bayeux_max_queue).", NULL,
      NGX_BAYEUX_STAT_QUEUE_OVERFLOWS, 1, 0, NULL, NULL },

    { "bayeux_errors_total", "counter",
      "Messages answered with a Bayeux error, by its code.", "code",
      NGX_BAYEUX_STAT_ERRORS,
      NGX_BAYEUX_STAT_ERRORS_LAST - NGX_BAYEUX_STAT_ERRORS + 1, 0,
      ngx_bayeux_errors, NULL },

    { "bayeux_http_errors_total", "counter",
      "HTTP requests answered with a 4xx status, by reason.", "reason",
      NGX_BAYEUX_STAT_HTTP,
      NGX_BAYEUX_STAT_HTTP_LAST - NGX_BAYEUX_STAT_HTTP + 1, 0,
      ngx_bayeux_http_4xx, NULL },

    { "bayeux_redis_links_up", "gauge",
      "Worker processes linked to Redis now.", NULL,
      NGX_BAYEUX_STAT_REDIS_LINKS_UP, 1, 1, NULL, NULL },

    { "bayeux_redis_reconnects_total", "counter",
      "Links to Redis made again after an outage.", NULL,
      NGX_BAYEUX_STAT_REDIS_RECONNECTS, 1, 1, NULL, NULL },

    { "bayeux_redis_commands_in_flight", "gauge",
      "Commands sent to Redis and not answered yet.", NULL,
      NGX_BAYEUX_STAT_REDIS_IN_FLIGHT, 1, 1, NULL, NULL },

    { "bayeux_redis_sessions_held", "gauge",
      "Sessions whose messages workers give from the channels' logs now.",
      NULL, NGX_BAYEUX_STAT_REDIS_SESSIONS_HELD, 1, 1, NULL, NULL },

    { "bayeux_redis_messages_queued_total", "counter",
      "Copies of published messages queued for sessions not held.", NULL,
      NGX_BAYEUX_STAT_REDIS_QUEUED, 1, 1, NULL, NULL },

    { NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL }
};


static ngx_str_t  ngx_bayeux_status_zone_name = ngx_string("bayeux_stats");


#define ngx_bayeux_status_get(ep, i)  ((ngx_atomic_int_t) (ep)->stats[i])

#define ngx_bayeux_status_redis(ep)                                          \
    ((ep)->engine->name.len == 5                                             \
     && ngx_strncmp((ep)->engine->name.data, "redis", 5) == 0)


char *
ngx_bayeux_status_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler) {
        return "conflicts with another content handler in this location";
    }

    clcf->handler = ngx_bayeux_status_handler;

    return NGX_CONF_OK;
}


/* postconfiguration: every endpoint is known */

ngx_int_t
ngx_bayeux_status_init(ngx_conf_t *cf)
{
    size_t                      size;
    ngx_http_handler_pt        *h;
    ngx_bayeux_main_conf_t     *bmcf;
    ngx_http_core_main_conf_t  *cmcf;

    bmcf = ngx_http_conf_get_module_main_conf(cf, ngx_bayeux_module);

    if (bmcf->endpoints.nelts == 0) {
        return NGX_OK;
    }

    size = bmcf->endpoints.nelts * NGX_BAYEUX_STAT_N * sizeof(ngx_atomic_t);
    size = 8 * ngx_pagesize + ngx_align(size, ngx_pagesize);

    bmcf->stats_zone = ngx_shared_memory_add(cf, &ngx_bayeux_status_zone_name,
                                             size, &ngx_bayeux_module);
    if (bmcf->stats_zone == NULL) {
        return NGX_ERROR;
    }

    bmcf->stats_zone->init = ngx_bayeux_status_init_zone;
    bmcf->stats_zone->data = bmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_bayeux_status_log_handler;

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_status_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    size_t                       size;
    ngx_uint_t                   i, n;
    ngx_atomic_t                *stats;
    ngx_slab_pool_t             *shpool;
    ngx_bayeux_endpoint_t      **ep;
    ngx_bayeux_main_conf_t      *bmcf;
    ngx_bayeux_status_shctx_t   *sh;

    bmcf = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    n = bmcf->endpoints.nelts;
    size = n * NGX_BAYEUX_STAT_N * sizeof(ngx_atomic_t);

    if (data) {
        /* a reload: the zone of the old cycle */
        sh = shpool->data;

    } else {
        sh = ngx_slab_calloc(shpool, sizeof(ngx_bayeux_status_shctx_t));
        if (sh == NULL) {
            return NGX_ERROR;
        }

        shpool->data = sh;
    }

    /*
     * the counters are kept when there are as many endpoints; else the
     * new workers count anew, and the old ones finish with theirs
     */

    if (sh->stats == NULL || sh->n != n) {
        stats = ngx_slab_calloc(shpool, size);
        if (stats == NULL) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "bayeux_stats zone: no memory for the counters "
                          "of %ui endpoints", n);
            return NGX_ERROR;
        }

        sh->stats = stats;
        sh->n = n;
    }

    ep = bmcf->endpoints.elts;

    for (i = 0; i < n; i++) {
        ep[i]->stats = &sh->stats[i * NGX_BAYEUX_STAT_N];
    }

    return NGX_OK;
}


/* the status of the requests a "bayeux" location answered with a 4xx */

static ngx_int_t
ngx_bayeux_status_log_handler(ngx_http_request_t *r)
{
    ngx_uint_t              status;
    ngx_bayeux_loc_conf_t  *blcf;

    if (r != r->main) {
        return NGX_OK;
    }

    blcf = ngx_http_get_module_loc_conf(r, ngx_bayeux_module);

    if (blcf == NULL || blcf->endpoint == NULL) {
        return NGX_OK;
    }

    status = r->err_status ? r->err_status : r->headers_out.status;

    if (status >= 400 && status < 500) {
        ngx_bayeux_stat_http(blcf->endpoint, status);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_status_handler(ngx_http_request_t *r)
{
    size_t                    size;
    u_char                   *p;
    ngx_int_t                 rc;
    ngx_buf_t                *b;
    ngx_uint_t                i, format;
    ngx_chain_t               out;
    ngx_bayeux_metric_t      *m;
    ngx_bayeux_endpoint_t   **ep;
    ngx_bayeux_main_conf_t   *bmcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    bmcf = ngx_http_get_module_main_conf(r, ngx_bayeux_module);
    ep = bmcf->endpoints.elts;

    format = ngx_bayeux_status_format(r);

    size = 4096;

    for (i = 0; i < bmcf->endpoints.nelts; i++) {
        size += NGX_BAYEUX_STATUS_EP_SIZE + 64 * ep[i]->name.len;
    }

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = b->last;

    if (format == NGX_BAYEUX_STATUS_JSON) {
        ngx_str_set(&r->headers_out.content_type, "application/json");

        p = ngx_sprintf(p, "{\"version\":\"%s\",\"endpoints\":[",
                        NGX_BAYEUX_VERSION);

        for (i = 0; i < bmcf->endpoints.nelts; i++) {
            p = ngx_bayeux_status_json(p, ep[i], i == 0);
        }

        p = ngx_cpymem(p, "]}\n", 3);

    } else {
        ngx_str_set(&r->headers_out.content_type,
                    "text/plain; version=0.0.4; charset=utf-8");

        p = ngx_sprintf(p, "# HELP bayeux_info The module's version.\n"
                           "# TYPE bayeux_info gauge\n"
                           "bayeux_info{version=\"%s\"} 1\n",
                        NGX_BAYEUX_VERSION);

        for (m = ngx_bayeux_metrics; m->name; m++) {
            p = ngx_bayeux_status_prometheus(p, m, &bmcf->endpoints);
        }

        p = ngx_bayeux_status_histogram(p, &bmcf->endpoints);
    }

    b->last = p;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * ?format=prometheus or ?format=json; else Prometheus when the Accept
 * header names text/plain before application/json (as Prometheus does),
 * JSON otherwise.
 */

static ngx_uint_t
ngx_bayeux_status_format(ngx_http_request_t *r)
{
    u_char     *text, *json, *last;
    ngx_str_t   value;

    if (ngx_http_arg(r, (u_char *) "format", 6, &value) == NGX_OK) {
        if (value.len == 10
            && ngx_strncmp(value.data, "prometheus", 10) == 0)
        {
            return NGX_BAYEUX_STATUS_PROMETHEUS;
        }

        return NGX_BAYEUX_STATUS_JSON;
    }

    if (r->headers_in.accept == NULL) {
        return NGX_BAYEUX_STATUS_JSON;
    }

    value = r->headers_in.accept->value;
    last = value.data + value.len;

    text = ngx_strlcasestrn(value.data, last, (u_char *) "text/plain",
                            10 - 1);
    if (text == NULL) {
        return NGX_BAYEUX_STATUS_JSON;
    }

    json = ngx_strlcasestrn(value.data, last, (u_char *) "application/json",
                            16 - 1);

    return (json == NULL || text < json) ? NGX_BAYEUX_STATUS_PROMETHEUS
                                         : NGX_BAYEUX_STATUS_JSON;
}


static u_char *
ngx_bayeux_status_json(u_char *p, ngx_bayeux_endpoint_t *ep,
    ngx_uint_t first)
{
    ngx_uint_t     i, n;
    ngx_atomic_t  *s;

    s = ep->stats;

    if (s == NULL) {
        return p;
    }

    p = ngx_sprintf(p, "%s{\"endpoint\":\"", first ? "" : ",");
    p = (u_char *) ngx_escape_json(p, ep->name.data, ep->name.len);

    p = ngx_sprintf(p, "\",\"engine\":\"%V\","
                    "\"sessions\":{\"created\":%A,"
                    "\"ended\":{\"disconnect\":%A,\"expired\":%A,"
                    "\"inactive\":%A}},"
                    "\"connects_held\":%A,\"websockets_open\":%A,"
                    "\"subscribes\":%A,\"unsubscribes\":%A,"
                    "\"messages\":{\"published\":%A,\"delivered\":%A,"
                    "\"dropped\":{\"queue_overflow\":%A}},"
                    "\"queue_overflows\":%A,\"errors\":{",
                    &ep->engine->name,
                    s[NGX_BAYEUX_STAT_SESSIONS_CREATED],
                    s[NGX_BAYEUX_STAT_ENDED_DISCONNECT],
                    s[NGX_BAYEUX_STAT_ENDED_EXPIRED],
                    s[NGX_BAYEUX_STAT_ENDED_INACTIVE],
                    ngx_bayeux_status_get(ep, NGX_BAYEUX_STAT_CONNECTS_HELD),
                    ngx_bayeux_status_get(ep,
                                          NGX_BAYEUX_STAT_WEBSOCKETS_OPEN),
                    s[NGX_BAYEUX_STAT_SUBSCRIBES],
                    s[NGX_BAYEUX_STAT_UNSUBSCRIBES],
                    s[NGX_BAYEUX_STAT_PUBLISHED],
                    s[NGX_BAYEUX_STAT_DELIVERED],
                    s[NGX_BAYEUX_STAT_DROPPED_QUEUE],
                    s[NGX_BAYEUX_STAT_QUEUE_OVERFLOWS]);

    for (i = 0; ; i++) {
        if (ngx_bayeux_errors[i].code) {
            p = ngx_sprintf(p, "%s\"%ui\":%A", i ? "," : "",
                            ngx_bayeux_errors[i].code,
                            s[NGX_BAYEUX_STAT_ERRORS + i]);
            continue;
        }

        p = ngx_sprintf(p, ",\"other\":%A},\"http_errors\":{",
                        s[NGX_BAYEUX_STAT_ERRORS + i]);
        break;
    }

    for (i = 0; ; i++) {
        if (ngx_bayeux_http_4xx[i].code) {
            p = ngx_sprintf(p, "%s\"%ui\":%A", i ? "," : "",
                            ngx_bayeux_http_4xx[i].code,
                            s[NGX_BAYEUX_STAT_HTTP + i]);
            continue;
        }

        p = ngx_sprintf(p, ",\"other\":%A}", s[NGX_BAYEUX_STAT_HTTP + i]);
        break;
    }

    if (!ngx_bayeux_status_redis(ep)) {
        return ngx_cpymem(p, "}", 1);
    }

    p = ngx_sprintf(p, ",\"redis\":{\"links_up\":%A,\"reconnects\":%A,"
                    "\"commands_in_flight\":%A,\"sessions_held\":%A,"
                    "\"messages_queued\":%A,"
                    "\"command_latency_ms\":{\"count\":%A,\"sum\":%A,"
                    "\"buckets\":{",
                    ngx_bayeux_status_get(ep,
                                          NGX_BAYEUX_STAT_REDIS_LINKS_UP),
                    s[NGX_BAYEUX_STAT_REDIS_RECONNECTS],
                    ngx_bayeux_status_get(ep,
                                          NGX_BAYEUX_STAT_REDIS_IN_FLIGHT),
                    ngx_bayeux_status_get(ep,
                                          NGX_BAYEUX_STAT_REDIS_SESSIONS_HELD),
                    s[NGX_BAYEUX_STAT_REDIS_QUEUED],
                    s[NGX_BAYEUX_STAT_REDIS_LATENCY_COUNT],
                    s[NGX_BAYEUX_STAT_REDIS_LATENCY_SUM]);

    /* cumulative, as Prometheus' */

    n = 0;

    for (i = 0; ngx_bayeux_latency_ms[i]; i++) {
        n += s[NGX_BAYEUX_STAT_REDIS_LATENCY + i];
        p = ngx_sprintf(p, "%s\"%M\":%ui", i ? "," : "",
                        ngx_bayeux_latency_ms[i], n);
    }

    n += s[NGX_BAYEUX_STAT_REDIS_LATENCY + i];

    return ngx_sprintf(p, ",\"+Inf\":%ui}}}}", n);
}


static u_char *
ngx_bayeux_status_prometheus(u_char *p, ngx_bayeux_metric_t *m,
    ngx_array_t *endpoints)
{
    ngx_uint_t               i, k, any;
    ngx_bayeux_endpoint_t  **ep;

    ep = endpoints->elts;
    any = 0;

    for (k = 0; k < endpoints->nelts; k++) {
        if (ep[k]->stats == NULL
            || (m->redis && !ngx_bayeux_status_redis(ep[k])))
        {
            continue;
        }

        if (!any) {
            p = ngx_sprintf(p, "# HELP %s %s\n# TYPE %s %s\n",
                            m->name, m->help, m->name, m->type);
            any = 1;
        }

        for (i = 0; i < m->n; i++) {
            p = ngx_sprintf(p, "%s{endpoint=\"", m->name);
            p = (u_char *) ngx_escape_json(p, ep[k]->name.data,
                                           ep[k]->name.len);
            p = ngx_cpymem(p, "\"", 1);
            p = ngx_bayeux_status_label(p, m, i);
            p = ngx_sprintf(p, "} %A\n",
                            ngx_bayeux_status_get(ep[k], m->first + i));
        }
    }

    return p;
}


static u_char *
ngx_bayeux_status_label(u_char *p, ngx_bayeux_metric_t *m, ngx_uint_t i)
{
    if (m->label == NULL) {
        return p;
    }

    if (m->values) {
        return ngx_sprintf(p, ",%s=\"%s\"", m->label, m->values[i]);
    }

    if (m->codes == ngx_bayeux_errors) {
        if (m->codes[i].code == 0) {
            return ngx_sprintf(p, ",code=\"other\"");
        }

        return ngx_sprintf(p, ",code=\"%ui\"", m->codes[i].code);
    }

    if (m->codes[i].code == 0) {
        return ngx_sprintf(p, ",status=\"other\",reason=\"other\"");
    }

    return ngx_sprintf(p, ",status=\"%ui\",reason=\"%s\"",
                       m->codes[i].code, m->codes[i].reason);
}


static u_char *
ngx_bayeux_status_histogram(u_char *p, ngx_array_t *endpoints)
{
    ngx_uint_t               i, k, n, any;
    ngx_atomic_t            *s;
    ngx_bayeux_endpoint_t  **ep;

    ep = endpoints->elts;
    any = 0;

    for (k = 0; k < endpoints->nelts; k++) {
        s = ep[k]->stats;

        if (s == NULL || !ngx_bayeux_status_redis(ep[k])) {
            continue;
        }

        if (!any) {
            p = ngx_sprintf(p, "# HELP bayeux_redis_command_duration_seconds "
                            "Time from sending a command to Redis to its "
                            "reply.\n"
                            "# TYPE bayeux_redis_command_duration_seconds "
                            "histogram\n");
            any = 1;
        }

        n = 0;

        for (i = 0; ; i++) {
            n += s[NGX_BAYEUX_STAT_REDIS_LATENCY + i];

            p = ngx_cpymem(p, "bayeux_redis_command_duration_seconds_bucket"
                           "{endpoint=\"",
                           sizeof("bayeux_redis_command_duration_seconds_"
                                  "bucket{endpoint=\"") - 1);
            p = (u_char *) ngx_escape_json(p, ep[k]->name.data,
                                           ep[k]->name.len);

            if (ngx_bayeux_latency_ms[i] == 0) {
                p = ngx_sprintf(p, "\",le=\"+Inf\"} %ui\n", n);
                break;
            }

            p = ngx_sprintf(p, "\",le=\"%M.%03M\"} %ui\n",
                            ngx_bayeux_latency_ms[i] / 1000,
                            ngx_bayeux_latency_ms[i] % 1000, n);
        }

        p = ngx_cpymem(p, "bayeux_redis_command_duration_seconds_sum"
                       "{endpoint=\"",
                       sizeof("bayeux_redis_command_duration_seconds_sum"
                              "{endpoint=\"") - 1);
        p = (u_char *) ngx_escape_json(p, ep[k]->name.data, ep[k]->name.len);
        p = ngx_sprintf(p, "\"} %A.%03A\n",
                        s[NGX_BAYEUX_STAT_REDIS_LATENCY_SUM] / 1000,
                        s[NGX_BAYEUX_STAT_REDIS_LATENCY_SUM] % 1000);

        p = ngx_cpymem(p, "bayeux_redis_command_duration_seconds_count"
                       "{endpoint=\"",
                       sizeof("bayeux_redis_command_duration_seconds_count"
                              "{endpoint=\"") - 1);
        p = (u_char *) ngx_escape_json(p, ep[k]->name.data, ep[k]->name.len);
        p = ngx_sprintf(p, "\"} %A\n", s[NGX_BAYEUX_STAT_REDIS_LATENCY_COUNT]);
    }

    return p;
}
