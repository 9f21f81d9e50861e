
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_STATS_H_INCLUDED_
#define _NGX_BAYEUX_STATS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux.h"


/*
 * The counters of an endpoint, summed over the worker processes: a slot
 * each in shared memory (ep->stats, the module's "bayeux_stats" zone),
 * added to where the event happens with ngx_bayeux_stat().  Gauges go up
 * and down (ngx_bayeux_stat(ep, i, -1)) and are read as signed.  The
 * status location (src/app/ngx_bayeux_status.c) names them.
 */

typedef enum {
    NGX_BAYEUX_STAT_SESSIONS_CREATED = 0,
    NGX_BAYEUX_STAT_ENDED_DISCONNECT,
    NGX_BAYEUX_STAT_ENDED_EXPIRED,
    NGX_BAYEUX_STAT_ENDED_INACTIVE,
    NGX_BAYEUX_STAT_CONNECTS_HELD,             /* gauge */
    NGX_BAYEUX_STAT_WEBSOCKETS_OPEN,           /* gauge */
    NGX_BAYEUX_STAT_SUBSCRIBES,                /* channels subscribed */
    NGX_BAYEUX_STAT_UNSUBSCRIBES,
    NGX_BAYEUX_STAT_PUBLISHED,
    NGX_BAYEUX_STAT_DELIVERED,
    NGX_BAYEUX_STAT_DROPPED_QUEUE,
    NGX_BAYEUX_STAT_QUEUE_OVERFLOWS,

    /* Bayeux errors by code: NGX_BAYEUX_STAT_ERRORS + ngx_bayeux_errors[] */
    NGX_BAYEUX_STAT_ERRORS,
    NGX_BAYEUX_STAT_ERRORS_LAST = NGX_BAYEUX_STAT_ERRORS + 8,

    /* HTTP 4xx by reason: NGX_BAYEUX_STAT_HTTP + ngx_bayeux_http_4xx[] */
    NGX_BAYEUX_STAT_HTTP,
    NGX_BAYEUX_STAT_HTTP_LAST = NGX_BAYEUX_STAT_HTTP + 9,

    NGX_BAYEUX_STAT_REDIS_LINKS_UP,            /* gauge: workers linked */
    NGX_BAYEUX_STAT_REDIS_RECONNECTS,
    NGX_BAYEUX_STAT_REDIS_IN_FLIGHT,           /* gauge */
    NGX_BAYEUX_STAT_REDIS_SESSIONS_HELD,       /* gauge */
    NGX_BAYEUX_STAT_REDIS_QUEUED,              /* copies in sessions' queues */
    NGX_BAYEUX_STAT_REDIS_LATENCY_SUM,         /* milliseconds */
    NGX_BAYEUX_STAT_REDIS_LATENCY_COUNT,

    /* not cumulative: one per upper bound of ngx_bayeux_latency_ms[] */
    NGX_BAYEUX_STAT_REDIS_LATENCY,
    NGX_BAYEUX_STAT_REDIS_LATENCY_LAST = NGX_BAYEUX_STAT_REDIS_LATENCY + 11,

    NGX_BAYEUX_STAT_N
} ngx_bayeux_stat_e;


#define ngx_bayeux_stat(ep, i, n)                                            \
    do {                                                                     \
        if ((ep)->stats) {                                                   \
            (void) ngx_atomic_fetch_add(&(ep)->stats[i],                     \
                                        (ngx_atomic_int_t) (n));             \
        }                                                                    \
    } while (0)


typedef struct {
    ngx_uint_t                     code;
    char                          *reason;
} ngx_bayeux_stat_code_t;


/* the last entry of each takes any other code */
extern ngx_bayeux_stat_code_t  ngx_bayeux_errors[];
extern ngx_bayeux_stat_code_t  ngx_bayeux_http_4xx[];

/* upper bounds of the latency buckets; the last is +Inf (0 here) */
extern ngx_msec_t  ngx_bayeux_latency_ms[];


void ngx_bayeux_stat_error(ngx_bayeux_endpoint_t *ep, u_char *error,
    size_t len);
void ngx_bayeux_stat_http(ngx_bayeux_endpoint_t *ep, ngx_uint_t status);
void ngx_bayeux_stat_latency(ngx_bayeux_endpoint_t *ep, ngx_msec_t ms);


#endif /* _NGX_BAYEUX_STATS_H_INCLUDED_ */
