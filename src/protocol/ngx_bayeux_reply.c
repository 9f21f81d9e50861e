
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
#include "ngx_bayeux_meta.h"
#include "ngx_bayeux_hooks.h"
#include "ngx_bayeux_reply.h"
#include "ngx_bayeux_stats.h"


static ngx_int_t ngx_bayeux_reply_open(ngx_bayeux_batch_t *b,
    ngx_bayeux_json_t *j, ngx_bayeux_message_t *m, ngx_uint_t successful);
static ngx_int_t ngx_bayeux_reply_advice(ngx_bayeux_json_t *j,
    ngx_str_t *advice);
static ngx_int_t ngx_bayeux_reply_close(ngx_bayeux_batch_t *b,
    ngx_bayeux_json_t *j, ngx_bayeux_message_t *m, ngx_str_t *out);
static ngx_int_t ngx_bayeux_advice_create(ngx_conf_t *cf,
    ngx_bayeux_endpoint_t *ep, char *reconnect, ngx_str_t *advice);


/* the reply to an engine operation that failed, by its result */

typedef struct {
    ngx_int_t                      rc;
    char                          *error;
    ngx_uint_t                     with;        /* NGX_BAYEUX_ERROR_* */
} ngx_bayeux_failure_t;


static ngx_bayeux_failure_t  ngx_bayeux_failures[] = {
    { NGX_DECLINED, "402::session_unknown", NGX_BAYEUX_ERROR_HANDSHAKE },
    { NGX_BAYEUX_LIMIT, "403::too_many_subscriptions", NGX_BAYEUX_ERROR_PLAIN },
    { NGX_BAYEUX_OVERFLOW, "408::queue_overflow", NGX_BAYEUX_ERROR_HANDSHAKE },
    { NGX_BUSY, "503::engine_unavailable", NGX_BAYEUX_ERROR_RETRY },
    { NGX_ERROR, "500::server_error", NGX_BAYEUX_ERROR_RETRY }
};


static ngx_str_t  ngx_bayeux_advice_handshake =
    ngx_string("{\"reconnect\":\"handshake\",\"interval\":0}");

static ngx_str_t  ngx_bayeux_advice_give_up =
    ngx_string("{\"reconnect\":\"none\"}");


ngx_int_t
ngx_bayeux_reply_init_endpoint(ngx_conf_t *cf, ngx_bayeux_endpoint_t *ep)
{
    u_char  *p;

    if (ngx_bayeux_advice_create(cf, ep, "retry", &ep->advice_retry)
        != NGX_OK
        || ngx_bayeux_advice_create(cf, ep, "none", &ep->advice_none)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* for the extra tabs of a browser: poll, every multi_session_interval */

    p = ngx_pnalloc(cf->pool, sizeof("{\"reconnect\":\"retry\",\"interval\":,"
                                     "\"timeout\":,\"multiple-clients\":true}")
                              - 1 + 2 * NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ep->advice_multiple.data = p;
    ep->advice_multiple.len = ngx_sprintf(p, "{\"reconnect\":\"retry\","
                                          "\"interval\":%M,\"timeout\":%M,"
                                          "\"multiple-clients\":true}",
                                          ep->conf->multi_session_interval,
                                          ep->conf->timeout)
                              - p;

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_advice_create(ngx_conf_t *cf, ngx_bayeux_endpoint_t *ep,
    char *reconnect, ngx_str_t *advice)
{
    u_char                 *p;
    ngx_bayeux_loc_conf_t  *conf;

    conf = ep->conf;

    p = ngx_pnalloc(cf->pool, sizeof("{\"reconnect\":\"\",\"interval\":,"
                                     "\"timeout\":,\"maxInterval\":}") - 1
                              + ngx_strlen(reconnect) + 3 * NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    advice->data = p;
    advice->len = ngx_sprintf(p, "{\"reconnect\":\"%s\",\"interval\":%M,"
                              "\"timeout\":%M,\"maxInterval\":%M}",
                              reconnect, conf->interval, conf->timeout,
                              conf->max_interval)
                  - p;

    return NGX_OK;
}


/* "error" and what comes with it (NGX_BAYEUX_ERROR_*) */

void
ngx_bayeux_refusal_set(ngx_bayeux_endpoint_t *ep,
    ngx_bayeux_refusal_t *refusal, char *error, ngx_uint_t with)
{
    refusal->error.data = (u_char *) error;
    refusal->error.len = ngx_strlen(error);
    refusal->transports = 0;

    switch (with) {

    case NGX_BAYEUX_ERROR_HANDSHAKE:
        refusal->advice = ngx_bayeux_advice_handshake;
        break;

    case NGX_BAYEUX_ERROR_RETRY:
        refusal->advice = ep->advice_retry;
        break;

    case NGX_BAYEUX_ERROR_TRANSPORTS:
        refusal->advice = ngx_bayeux_advice_give_up;
        refusal->transports = 1;
        break;

    default: /* NGX_BAYEUX_ERROR_PLAIN */
        ngx_str_null(&refusal->advice);
    }
}


/* the reply to a message the engine applied, or failed to */

ngx_int_t
ngx_bayeux_reply(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m,
    ngx_int_t rc, ngx_str_t *out)
{
    ngx_bayeux_json_t      j;
    ngx_bayeux_meta_t     *meta;
    ngx_bayeux_refusal_t   refusal;
    ngx_bayeux_failure_t  *f;

    if (rc != NGX_OK) {

        /* the last entry stands for any other failure */

        for (f = ngx_bayeux_failures; f->rc != NGX_ERROR; f++) {
            if (f->rc == rc) {
                break;
            }
        }

        ngx_bayeux_refusal_set(b->endpoint, &refusal, f->error, f->with);

        return ngx_bayeux_reply_refused(b, m, &refusal, out);
    }

    meta = ngx_bayeux_meta(m->kind);

    if (ngx_bayeux_reply_open(b, &j, m, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    if (meta->reply & NGX_BAYEUX_REPLY_HANDSHAKE) {
        if (ngx_bayeux_json_key(&j, "version") != NGX_OK
            || ngx_bayeux_json_literal(&j,
                                       "\"" NGX_BAYEUX_PROTOCOL_VERSION "\"")
               != NGX_OK
            || ngx_bayeux_json_key(&j, "minimumVersion") != NGX_OK
            || ngx_bayeux_json_literal(&j,
                                       "\"" NGX_BAYEUX_PROTOCOL_VERSION "\"")
               != NGX_OK
            || ngx_bayeux_connection_types(b, &j) != NGX_OK
            || ngx_bayeux_json_key(&j, "clientId") != NGX_OK
            || ngx_bayeux_json_string(&j, &m->client_id) != NGX_OK
            || ngx_bayeux_reply_advice(&j, &b->endpoint->advice_retry)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if ((meta->reply & NGX_BAYEUX_REPLY_CLIENT_ID)
               && (ngx_bayeux_json_key(&j, "clientId") != NGX_OK
                   || ngx_bayeux_json_string(&j, &m->client_id) != NGX_OK))
    {
        return NGX_ERROR;
    }

    if ((meta->reply & NGX_BAYEUX_REPLY_SUBSCRIPTION)
        && (ngx_bayeux_json_key(&j, "subscription") != NGX_OK
            || ngx_bayeux_json_raw(&j, m->subscription.data,
                                   m->subscription.len)
               != NGX_OK))
    {
        return NGX_ERROR;
    }

    return ngx_bayeux_reply_close(b, &j, m, out);
}


ngx_int_t
ngx_bayeux_reply_connect(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m,
    ngx_bayeux_wake_e reason, ngx_str_t *out)
{
    ngx_str_t             *advice;
    ngx_bayeux_json_t      j;
    ngx_bayeux_refusal_t   refusal;

    if (b->multiple_clients) {
        advice = &b->endpoint->advice_multiple;

    } else if (reason == NGX_BAYEUX_WAKE_ERROR) {
        /* the engine lost its store (Redis down): come back later */
        ngx_bayeux_refusal_set(b->endpoint, &refusal,
                               "503::engine_unavailable",
                               NGX_BAYEUX_ERROR_RETRY);

        return ngx_bayeux_reply_refused(b, m, &refusal, out);

    } else if (reason == NGX_BAYEUX_WAKE_OVERFLOW) {
        /* messages were lost: the session ended, the client starts over */
        ngx_bayeux_refusal_set(b->endpoint, &refusal, "408::queue_overflow",
                               NGX_BAYEUX_ERROR_HANDSHAKE);

        return ngx_bayeux_reply_refused(b, m, &refusal, out);

    } else if (reason == NGX_BAYEUX_WAKE_INACTIVE) {
        /*
         * the server ended the session (bayeux_max_inactivity): as for
         * any session that is gone, so that CometD's client handshakes
         */
        ngx_bayeux_refusal_set(b->endpoint, &refusal, "402::session_unknown",
                               NGX_BAYEUX_ERROR_HANDSHAKE);

        return ngx_bayeux_reply_refused(b, m, &refusal, out);

    } else if (reason == NGX_BAYEUX_WAKE_DISCONNECTED) {
        advice = &b->endpoint->advice_none;

    } else {
        advice = &b->endpoint->advice_retry;
    }

    if (ngx_bayeux_reply_open(b, &j, m, 1) != NGX_OK
        || ngx_bayeux_json_key(&j, "clientId") != NGX_OK
        || ngx_bayeux_json_string(&j, &m->client_id) != NGX_OK
        || ngx_bayeux_reply_advice(&j, advice) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_bayeux_reply_close(b, &j, m, out);
}


/* the reply to a message refused, by a check, a hook or the engine */

ngx_int_t
ngx_bayeux_reply_refused(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m,
    ngx_bayeux_refusal_t *refusal, ngx_str_t *out)
{
    ngx_bayeux_json_t   j;
    ngx_bayeux_meta_t  *meta;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, b->log, 0,
                   "bayeux: \"%V\" failed: %V", &m->channel, &refusal->error);

    ngx_bayeux_stat_error(b->endpoint, refusal->error.data, refusal->error.len);

    m->refused = 1;

    if (b->error.len == 0 && refusal->error.len >= 3) {
        b->error.data = refusal->error.data;
        b->error.len = 3;
    }

    meta = ngx_bayeux_meta(m->kind);

    if (ngx_bayeux_reply_open(b, &j, m, 0) != NGX_OK
        || ngx_bayeux_json_key(&j, "error") != NGX_OK
        || ngx_bayeux_json_string(&j, &refusal->error) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_bayeux_json_string_field(&j, "clientId", &m->client_id) != NGX_OK) {
        return NGX_ERROR;
    }

    if (m->subscription.len
        && (meta->reply & NGX_BAYEUX_REPLY_SUBSCRIPTION)
        && (ngx_bayeux_json_key(&j, "subscription") != NGX_OK
            || ngx_bayeux_json_raw(&j, m->subscription.data,
                                   m->subscription.len)
               != NGX_OK))
    {
        return NGX_ERROR;
    }

    if (refusal->transports
        && ngx_bayeux_connection_types(b, &j) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (refusal->advice.len
        && ngx_bayeux_reply_advice(&j, &refusal->advice) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_bayeux_reply_close(b, &j, m, out);
}


/* the outgoing hooks add their fields, and the reply is done */

static ngx_int_t
ngx_bayeux_reply_close(ngx_bayeux_batch_t *b, ngx_bayeux_json_t *j,
    ngx_bayeux_message_t *m, ngx_str_t *out)
{
    if (ngx_bayeux_json_raw_field(j, "data", &m->reply_data) != NGX_OK) {
        return NGX_ERROR;
    }

    /* one "ext": the application's, and what the hooks add to it */

    b->reply_ext = m->reply_ext;

    if (b->endpoint->hooks
        && ngx_bayeux_hooks_outgoing(&b->endpoint->hooks->outgoing, b, m, j)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_bayeux_json_raw_field(j, "ext", &b->reply_ext) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_bayeux_json_literal(j, "}") != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_bayeux_json_result(j, out);

    return NGX_OK;
}


/*
 * An outgoing hook adds a member to the "ext" of the reply being written
 * (b->reply_ext, a JSON object or empty): "value" is JSON text.
 */

ngx_int_t
ngx_bayeux_reply_ext_add(ngx_bayeux_batch_t *b, char *name, ngx_str_t *value)
{
    u_char     *p;
    size_t      len, n;
    ngx_str_t  *ext;

    ext = &b->reply_ext;
    len = ngx_strlen(name);

    p = ngx_pnalloc(b->pool, ext->len + len + value->len + sizeof(",\"\":}"));
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (ext->len < 2 || ext->data[ext->len - 1] != '}') {
        /* none yet */
        n = ngx_sprintf(p, "{\"%s\":%V}", name, value) - p;

    } else {
        /* the object without its "}", then the member */
        ngx_memcpy(p, ext->data, ext->len - 1);
        n = ext->len - 1;

        if (ext->len > 2) {
            p[n++] = ',';
        }

        n = ngx_sprintf(p + n, "\"%s\":%V}", name, value) - p;
    }

    ext->data = p;
    ext->len = n;

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_reply_open(ngx_bayeux_batch_t *b, ngx_bayeux_json_t *j,
    ngx_bayeux_message_t *m, ngx_uint_t successful)
{
    if (ngx_bayeux_json_init(j, b->pool, 256) != NGX_OK
        || ngx_bayeux_json_literal(j, "{") != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_bayeux_json_raw_field(j, "id", &m->id) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_bayeux_json_string_field(j, "channel", &m->channel) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_bayeux_json_key(j, "successful") != NGX_OK) {
        return NGX_ERROR;
    }

    return successful ? ngx_bayeux_json_literal(j, "true")
                      : ngx_bayeux_json_literal(j, "false");
}


static ngx_int_t
ngx_bayeux_reply_advice(ngx_bayeux_json_t *j, ngx_str_t *advice)
{
    if (ngx_bayeux_json_key(j, "advice") != NGX_OK
        || ngx_bayeux_json_raw(j, advice->data, advice->len) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* a published message as subscribers receive it */

ngx_int_t
ngx_bayeux_delivery(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m,
    ngx_str_t *out)
{
    ngx_bayeux_json_t  j;

    if (ngx_bayeux_json_init(&j, b->pool,
                             m->channel.len + m->data.len + m->id.len
                             + m->ext.len + 64)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_bayeux_json_literal(&j, "{") != NGX_OK
        || ngx_bayeux_json_key(&j, "channel") != NGX_OK
        || ngx_bayeux_json_string(&j, &m->channel) != NGX_OK
        || ngx_bayeux_json_key(&j, "data") != NGX_OK
        || ngx_bayeux_json_raw(&j, m->data.data, m->data.len) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_bayeux_json_raw_field(&j, "id", &m->id) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_bayeux_json_raw_field(&j, "ext", &m->ext) != NGX_OK) {
        return NGX_ERROR;
    }

    if (b->endpoint->hooks
        && ngx_bayeux_hooks_outgoing(&b->endpoint->hooks->delivery, b, m, &j)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_bayeux_json_literal(&j, "}") != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_bayeux_json_result(&j, out);

    return NGX_OK;
}
