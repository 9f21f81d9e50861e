
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_message.h"
#include "ngx_bayeux_json.h"
#include "ngx_bayeux_engine.h"
#include "ngx_bayeux_batch.h"
#include "ngx_bayeux_hooks.h"
#include "ngx_bayeux_reply.h"
#include "ngx_bayeux_ext_timesync.h"


/*
 * A client whose estimate is this close already gets no timesync in its
 * replies (CometD's accuracyTarget, 25 ms by default), unless its lag is
 * 0 (it has no estimate yet).
 */
#define NGX_BAYEUX_TIMESYNC_ACCURACY  25


static ngx_int_t ngx_bayeux_timesync_in(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, void *data);
static ngx_int_t ngx_bayeux_timesync_out(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, ngx_bayeux_json_t *reply, void *data);
static int64_t ngx_bayeux_timesync_now(void);
static ngx_uint_t ngx_bayeux_timesync_bad(ngx_bayeux_ext_value_t *v);


/* beyond this, a number is no time in ms (nor exact in JavaScript) */
#define NGX_BAYEUX_TIMESYNC_MAX  ((int64_t) 1 << 53)


/* the /meta kinds: the client's extension sends timesync on each */

#define NGX_BAYEUX_TIMESYNC_KINDS                                            \
    (ngx_bayeux_kind_mask(NGX_BAYEUX_KIND_HANDSHAKE)                         \
     | ngx_bayeux_kind_mask(NGX_BAYEUX_KIND_CONNECT)                         \
     | ngx_bayeux_kind_mask(NGX_BAYEUX_KIND_SUBSCRIBE)                       \
     | ngx_bayeux_kind_mask(NGX_BAYEUX_KIND_UNSUBSCRIBE)                     \
     | ngx_bayeux_kind_mask(NGX_BAYEUX_KIND_DISCONNECT)                      \
     | ngx_bayeux_kind_mask(NGX_BAYEUX_KIND_META))


ngx_int_t
ngx_bayeux_timesync_init_endpoint(ngx_conf_t *cf, ngx_bayeux_endpoint_t *ep)
{
    if (ngx_bayeux_hook_add_incoming(cf, ep, NGX_BAYEUX_TIMESYNC_KINDS,
                                     ngx_bayeux_timesync_in, NULL)
        == NULL
        || ngx_bayeux_hook_add_outgoing(cf, ep, NGX_BAYEUX_TIMESYNC_KINDS,
                                        ngx_bayeux_timesync_out, NULL)
           == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* ts: when the message came (registered first: before any wait) */

static ngx_int_t
ngx_bayeux_timesync_in(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m,
    void *data)
{
    ngx_bayeux_ext_t  *e;

    e = &m->ext_values;

    if (e->timesync_tc.given && !e->timesync_ts.given) {
        e->timesync_ts.value = ngx_bayeux_timesync_now();
        e->timesync_ts.given = 1;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_timesync_out(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m,
    ngx_bayeux_json_t *reply, void *data)
{
    u_char             *p;
    int64_t             now, tc, ts, l, o, a;
    ngx_str_t           value;
    ngx_bayeux_ext_t   *e;

    e = &m->ext_values;

    if (!e->timesync_tc.given
        || ngx_bayeux_timesync_bad(&e->timesync_tc)
        || ngx_bayeux_timesync_bad(&e->timesync_l)
        || ngx_bayeux_timesync_bad(&e->timesync_o))
    {
        return NGX_OK;
    }

    now = ngx_bayeux_timesync_now();

    tc = e->timesync_tc.value;

    /* a message refused before the hooks: it came now */
    ts = e->timesync_ts.given ? e->timesync_ts.value : now;

    p = ngx_pnalloc(b->pool, sizeof("{\"tc\":,\"ts\":,\"p\":,\"a\":}") - 1
                             + 4 * NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    value.data = p;

    if (!e->timesync_l.given) {
        /* the old form, without the client's estimates */
        value.len = ngx_sprintf(p, "{\"tc\":%L,\"ts\":%L,\"p\":%L}",
                                tc, ts, now - ts)
                    - p;

        return ngx_bayeux_reply_ext_add(b, "timesync", &value);
    }

    l = e->timesync_l.value;
    o = e->timesync_o.given ? e->timesync_o.value : 0;

    /* how far the client's estimate of the server's time is off */
    a = tc + o + l - ts;

    if (l != 0
        && a < NGX_BAYEUX_TIMESYNC_ACCURACY
        && a > -NGX_BAYEUX_TIMESYNC_ACCURACY)
    {
        /* accurate enough: nothing to tell */
        return NGX_OK;
    }

    value.len = ngx_sprintf(p, "{\"tc\":%L,\"ts\":%L,\"p\":%L,\"a\":%L}",
                            tc, ts, now - ts, a)
                - p;

    return ngx_bayeux_reply_ext_add(b, "timesync", &value);
}


/* the time of day in ms (nginx's cached time, as of this event) */

static int64_t
ngx_bayeux_timesync_now(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (int64_t) tp->sec * 1000 + tp->msec;
}


/* a value given that is no time: the timesync is ignored, no overflow */

static ngx_uint_t
ngx_bayeux_timesync_bad(ngx_bayeux_ext_value_t *v)
{
    return v->given
           && (v->value > NGX_BAYEUX_TIMESYNC_MAX
               || v->value < -NGX_BAYEUX_TIMESYNC_MAX);
}
