
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_message.h"
#include "ngx_bayeux_json.h"
#include "ngx_bayeux_channel.h"
#include "ngx_bayeux_engine.h"
#include "ngx_bayeux_batch.h"


#define NGX_BAYEUX_REPLY_HANDSHAKE_ADVICE   0x01
#define NGX_BAYEUX_REPLY_SUBSCRIPTION       0x02
#define NGX_BAYEUX_REPLY_CLIENT_ID          0x04
#define NGX_BAYEUX_REPLY_RETRY_ADVICE       0x08


typedef void (*ngx_bayeux_engine_op_pt)(ngx_bayeux_op_t *op);


static void ngx_bayeux_batch_browser(ngx_bayeux_batch_t *b,
    ngx_uint_t handshake);
static ngx_int_t ngx_bayeux_batch_bound(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m);
static void ngx_bayeux_batch_bind(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, ngx_int_t rc);
static ngx_int_t ngx_bayeux_batch_apply(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m);
static ngx_int_t ngx_bayeux_batch_call(ngx_bayeux_batch_t *b,
    ngx_bayeux_engine_op_pt call);
static ngx_int_t ngx_bayeux_batch_returned(ngx_bayeux_batch_t *b);
static ngx_int_t ngx_bayeux_batch_leave(ngx_bayeux_batch_t *b);
static void ngx_bayeux_batch_complete(ngx_bayeux_op_t *op);
static void ngx_bayeux_batch_step_done(ngx_bayeux_batch_t *b);
static ngx_int_t ngx_bayeux_batch_join(ngx_bayeux_batch_t *b,
    ngx_uint_t replies, ngx_str_t *out);
static void ngx_bayeux_batch_held(ngx_bayeux_op_t *op);
static void ngx_bayeux_batch_held_next(ngx_bayeux_batch_t *b);
static void ngx_bayeux_batch_unhold(ngx_bayeux_batch_t *b);
static void ngx_bayeux_batch_waiter_handler(ngx_bayeux_waiter_t *w,
    ngx_bayeux_wake_e reason);
static ngx_int_t ngx_bayeux_channels(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, char **error);
static ngx_int_t ngx_bayeux_delivery(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, ngx_str_t *out);
static ngx_int_t ngx_bayeux_reply(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, ngx_int_t rc, ngx_str_t *out);
static ngx_int_t ngx_bayeux_reply_error(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, char *error, ngx_uint_t flags, ngx_str_t *out);
static ngx_int_t ngx_bayeux_reply_connect(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, ngx_bayeux_wake_e reason, ngx_str_t *out);
static ngx_int_t ngx_bayeux_reply_open(ngx_bayeux_batch_t *b,
    ngx_bayeux_json_t *j, ngx_bayeux_message_t *m, ngx_uint_t successful);
static ngx_int_t ngx_bayeux_reply_advice(ngx_bayeux_json_t *j,
    ngx_str_t *advice);
static ngx_int_t ngx_bayeux_reply_transports(ngx_bayeux_batch_t *b,
    ngx_bayeux_json_t *j);
static ngx_int_t ngx_bayeux_transport_enabled(ngx_bayeux_batch_t *b,
    const ngx_str_t *name);
static ngx_int_t ngx_bayeux_advice_create(ngx_conf_t *cf,
    ngx_bayeux_endpoint_t *ep, char *reconnect, ngx_str_t *advice);
static ngx_uint_t ngx_bayeux_is(ngx_str_t *name, char *literal);


/* the reply to an engine operation that failed, by its result */

typedef struct {
    ngx_int_t                      rc;
    char                          *error;
    ngx_uint_t                     flags;
} ngx_bayeux_failure_t;


static ngx_bayeux_failure_t  ngx_bayeux_failures[] = {
    { NGX_DECLINED, "402::session_unknown",
      NGX_BAYEUX_REPLY_HANDSHAKE_ADVICE },
    { NGX_BAYEUX_LIMIT, "403::too_many_subscriptions", 0 },
    { NGX_BUSY, "503::engine_unavailable", NGX_BAYEUX_REPLY_RETRY_ADVICE },
    { NGX_ERROR, "500::server_error", NGX_BAYEUX_REPLY_RETRY_ADVICE }
};


/*
 * What does not change between replies is written once per location;
 * "transports" are the names and bits of bayeux_transports, in the order
 * a handshake offers them.
 */

ngx_int_t
ngx_bayeux_protocol_init_endpoint(ngx_conf_t *cf, ngx_bayeux_endpoint_t *ep,
    ngx_conf_bitmask_t *transports)
{
    u_char              *p;
    ngx_str_t           *name;
    ngx_conf_bitmask_t  *t;

    if (ngx_array_init(&ep->transports, cf->pool, 3, sizeof(ngx_str_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (t = transports; t->name.len; t++) {

        if (!(ep->conf->transports & t->mask)) {
            continue;
        }

        name = ngx_array_push(&ep->transports);
        if (name == NULL) {
            return NGX_ERROR;
        }

        *name = t->name;
    }

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


ngx_int_t
ngx_bayeux_batch_init(ngx_bayeux_batch_t *b)
{
    b->replies = ngx_pcalloc(b->pool,
                             b->messages->nelts * sizeof(ngx_str_t));
    if (b->replies == NULL) {
        return NGX_ERROR;
    }

    b->op.endpoint = b->endpoint;
    b->op.pool = b->pool;
    b->op.log = b->log;
    b->op.handler = ngx_bayeux_batch_complete;
    b->op.data = b;

    b->waiter.handler = ngx_bayeux_batch_waiter_handler;
    b->waiter.data = b;
    b->waiter.pool = b->pool;

    return NGX_OK;
}


/*
 * Applies the messages in order.  An engine may complete an operation
 * before returning, so this loops instead of recursing through the
 * completion handler; an operation that completes later re-enters here.
 */

void
ngx_bayeux_batch_run(ngx_bayeux_batch_t *b)
{
    ngx_bayeux_message_t  *m;

    b->running = 1;

    m = b->messages->elts;

    while (b->next < b->messages->nelts) {

        if (ngx_bayeux_batch_apply(b, &m[b->next]) != NGX_OK) {
            /* the engine completes later, or the batch was aborted */
            return;
        }
    }

    b->running = 0;

    if (b->connect && !b->parked) {
        if (ngx_bayeux_reply_connect(b, &m[b->connect - 1], b->wake_reason,
                                     &b->replies[b->connect - 1])
            != NGX_OK)
        {
            b->replies[b->connect - 1].len = 0;
        }
    }

    b->transport->done(b);
}


/* the operation of the message b->next completed */

static void
ngx_bayeux_batch_step_done(ngx_bayeux_batch_t *b)
{
    b->next++;

    if (ngx_bayeux_batch_returned(b) != NGX_OK) {
        return;
    }

    ngx_bayeux_batch_run(b);
}


/*
 * Calls the engine for the batch (see the lifetime rule in
 * ngx_bayeux_batch.h).  While the batch is inside the engine what
 * carries it cannot be freed: the transport's "enter" and "leave" keep
 * it (a request: nginx's "blocked" count, as for asynchronous file
 * I/O); a websocket looks at ngx_bayeux_batch_in_engine().  NGX_OK: the
 * operation completed during
 * the call, the caller goes on; NGX_AGAIN: it completes later, and its
 * handler goes on; NGX_ABORT: the batch was cancelled meanwhile, and is
 * the abort handler's.
 */

static ngx_int_t
ngx_bayeux_batch_call(ngx_bayeux_batch_t *b, ngx_bayeux_engine_op_pt call)
{
    if (b->transport->enter) {
        b->transport->enter(b);
    }

    b->calling = 1;
    b->pending = 1;

    call(&b->op);

    b->calling = 0;

    if (b->pending) {
        return NGX_AGAIN;
    }

    return ngx_bayeux_batch_leave(b);
}


/*
 * The handler of the batch's operation has done its part: NGX_OK when
 * it is the handler that goes on, that is when the call has returned
 * already.
 */

static ngx_int_t
ngx_bayeux_batch_returned(ngx_bayeux_batch_t *b)
{
    b->pending = 0;

    if (b->calling) {
        /* ngx_bayeux_batch_call() goes on once the engine returns */
        return NGX_DONE;
    }

    return ngx_bayeux_batch_leave(b);
}


/*
 * The batch is out of the engine.  NGX_ABORT: it was cancelled while
 * inside, and is handed to the transport's abort handler now.
 */

static ngx_int_t
ngx_bayeux_batch_leave(ngx_bayeux_batch_t *b)
{
    if (b->transport->leave) {
        b->transport->leave(b);
    }

    if (b->aborted) {
        if (b->parked) {
            b->parked = 0;
            b->endpoint->engine->cancel(b->endpoint, &b->waiter);
        }

        b->transport->abort(b);
        return NGX_ABORT;
    }

    return NGX_OK;
}


/*
 * The browser of the batch's operation: a handshake records it; the
 * others find a session only when it is the same (CometD's
 * trustClientSession off), except with bayeux_trust_client_session on or
 * from a websocket without a browser, which name a session of any browser
 * (empty).  A request with no browser id names no session but a trusted
 * one.
 */

static void
ngx_bayeux_batch_browser(ngx_bayeux_batch_t *b, ngx_uint_t handshake)
{
    static ngx_str_t  none = ngx_string("-");

    if (!handshake
        && (b->any_browser || b->endpoint->conf->trust_client_session))
    {
        ngx_str_null(&b->op.browser);
        return;
    }

    b->op.browser = b->owner.len ? b->owner : none;
}


/*
 * A websocket connection serves one session: the one it handshook, or
 * the first it names.  NGX_DECLINED: the message names another.
 */

static ngx_int_t
ngx_bayeux_batch_bound(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m)
{
    ngx_str_t  *session;

    session = b->session;

    if (session == NULL || b->endpoint->conf->trust_client_session) {
        return NGX_OK;
    }

    if (session->len == 0) {

        /* taken up until the engine says it does not know it */

        if (m->client_id.len == NGX_BAYEUX_CLIENT_ID_LEN) {
            ngx_memcpy(session->data, m->client_id.data,
                       NGX_BAYEUX_CLIENT_ID_LEN);
            session->len = NGX_BAYEUX_CLIENT_ID_LEN;
        }

        return NGX_OK;
    }

    if (m->client_id.len == session->len
        && ngx_memcmp(m->client_id.data, session->data, session->len) == 0)
    {
        return NGX_OK;
    }

    return NGX_DECLINED;
}


/*
 * After the engine: a websocket's handshake binds it to the new session
 * (a client handshakes again on the same connection after a 402); a
 * session the engine does not know is not served.
 */

static void
ngx_bayeux_batch_bind(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m,
    ngx_int_t rc)
{
    ngx_str_t  *session;

    session = b->session;

    if (session == NULL || m->client_id.len != NGX_BAYEUX_CLIENT_ID_LEN) {
        return;
    }

    if (rc == NGX_OK && ngx_bayeux_is(&m->channel, "/meta/handshake")) {
        ngx_memcpy(session->data, m->client_id.data,
                   NGX_BAYEUX_CLIENT_ID_LEN);
        session->len = NGX_BAYEUX_CLIENT_ID_LEN;
        return;
    }

    if (rc == NGX_DECLINED
        && session->len == m->client_id.len
        && ngx_memcmp(session->data, m->client_id.data, session->len) == 0)
    {
        session->len = 0;
    }
}


static ngx_int_t
ngx_bayeux_batch_apply(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m)
{
    char                 *error;
    ngx_int_t             rc, timeout;
    ngx_uint_t            flags;
    ngx_str_t            *reply;
    ngx_bayeux_op_t      *op;
    ngx_bayeux_engine_t  *engine;

    reply = &b->replies[b->next];
    engine = b->endpoint->engine;
    op = &b->op;

    op->client_id = m->client_id;
    op->rc = NGX_ERROR;
    ngx_bayeux_batch_browser(b, 0);

    if (m->channel.len == 0) {
        error = "400::channel_missing";
        goto failed;
    }

    if (ngx_bayeux_channel_parse(&m->channel, &flags) != NGX_OK) {
        error = "405::channel_invalid";
        goto failed;
    }

    if (!ngx_bayeux_is(&m->channel, "/meta/handshake")
        && ngx_bayeux_batch_bound(b, m) != NGX_OK)
    {
        /* answered as an unknown session: nothing is applied */

        if (ngx_bayeux_reply(b, m, NGX_DECLINED, reply) != NGX_OK) {
            reply->len = 0;
        }

        b->next++;

        return NGX_OK;
    }

    if (flags & NGX_BAYEUX_CHANNEL_META) {

        if (ngx_bayeux_is(&m->channel, "/meta/handshake")) {

            if (m->connection_types != NULL
                && ngx_bayeux_channels(b, m, &error) != NGX_OK)
            {
                goto failed;
            }

            ngx_bayeux_batch_browser(b, 1);

            return ngx_bayeux_batch_call(b, engine->handshake);
        }

        if (ngx_bayeux_is(&m->channel, "/meta/connect")) {

            if (b->connect) {
                error = "400::multiple_connects";
                goto failed;
            }

            if (ngx_bayeux_transport_enabled(b, &b->transport->name)
                != NGX_OK
                || (m->connection_type.len
                    && (m->connection_type.len != b->transport->name.len
                        || ngx_strncmp(m->connection_type.data,
                                       b->transport->name.data,
                                       b->transport->name.len)
                           != 0)))
            {
                error = "400::unsupported_connection_type";
                goto failed;
            }

            timeout = b->endpoint->conf->timeout;

            if (m->advice_timeout >= 0 && m->advice_timeout < timeout) {
                timeout = m->advice_timeout;
            }

            if (b->browser.len && timeout > 0) {

                rc = ngx_bayeux_browser_hold(&b->browser, &m->client_id,
                                 b->endpoint->conf->max_sessions_per_browser,
                                 b->log, &b->browser_hold);

                switch (rc) {
                case NGX_OK:
                    break;

                case NGX_DECLINED:
                    /* another tab holds the long-poll: this one polls */
                    timeout = 0;
                    b->multiple_clients = 1;
                    break;

                default:
                    error = "500::server_error";
                    goto failed;
                }
            }

            b->connect = b->next + 1;

            op->hold = timeout;
            b->hold = timeout;
            op->waiter = &b->waiter;

            return ngx_bayeux_batch_call(b, engine->connect);
        }

        if (ngx_bayeux_is(&m->channel, "/meta/subscribe")
            || ngx_bayeux_is(&m->channel, "/meta/unsubscribe"))
        {
            if (ngx_bayeux_channels(b, m, &error) != NGX_OK) {
                goto failed;
            }

            return ngx_bayeux_batch_call(b, m->channel.data[6] == 's'
                                            ? engine->subscribe
                                            : engine->unsubscribe);
        }

        if (ngx_bayeux_is(&m->channel, "/meta/disconnect")) {
            return ngx_bayeux_batch_call(b, engine->disconnect);
        }

        error = "403::publish_denied";
        goto failed;
    }

    if (flags & (NGX_BAYEUX_CHANNEL_WILD|NGX_BAYEUX_CHANNEL_DEEP_WILD)) {
        error = "405::channel_invalid";
        goto failed;
    }

    if (flags & NGX_BAYEUX_CHANNEL_SERVICE) {
        return ngx_bayeux_batch_call(b, engine->touch);
    }

    if (m->data.len == 0) {
        error = "400::data_missing";
        goto failed;
    }

    if (ngx_bayeux_delivery(b, m, &op->message) != NGX_OK) {
        error = "500::server_error";
        goto failed;
    }

    op->channel = m->channel;

    return ngx_bayeux_batch_call(b, engine->publish);

failed:

    if (ngx_bayeux_reply_error(b, m, error, 0, reply) != NGX_OK) {
        reply->len = 0;
    }

    b->next++;

    return NGX_OK;
}


static void
ngx_bayeux_batch_complete(ngx_bayeux_op_t *op)
{
    ngx_bayeux_batch_t    *b = op->data;
    ngx_bayeux_message_t  *m;

    m = b->messages->elts;
    m = &m[b->next];

    if (b->connect == b->next + 1) {

        /* the reply of a connect is written when the batch is answered */

        if (op->rc == NGX_AGAIN) {
            b->parked = 1;

        } else if (op->rc == NGX_OK) {
            b->deliveries = op->messages;
            b->wake_reason = NGX_BAYEUX_WAKE_MESSAGES;

        } else {
            b->connect = 0;
            ngx_bayeux_batch_unhold(b);
            goto reply;
        }

        ngx_bayeux_batch_step_done(b);
        return;
    }

reply:

    if (op->rc == NGX_OK
        && ngx_bayeux_is(&m->channel, "/meta/handshake"))
    {
        m->client_id = op->client_id;
    }

    ngx_bayeux_batch_bind(b, m, op->rc);

    if (op->rc == NGX_OK
        && ngx_bayeux_is(&m->channel, "/meta/disconnect"))
    {
        b->disconnects++;
        m->disconnected = 1;
    }

    if (ngx_bayeux_reply(b, m, op->rc, &b->replies[b->next]) != NGX_OK) {
        b->replies[b->next].len = 0;
    }

    ngx_bayeux_batch_step_done(b);
}


static void
ngx_bayeux_batch_waiter_handler(ngx_bayeux_waiter_t *w,
    ngx_bayeux_wake_e reason)
{
    ngx_bayeux_batch_t    *b = w->data;
    ngx_bayeux_message_t  *m;

    b->parked = 0;
    b->deliveries = w->messages;
    b->wake_reason = reason;

    if (b->running) {
        /* woken by a later message of the same batch */
        return;
    }

    if (reason == NGX_BAYEUX_WAKE_MESSAGES && b->transport->push
        && !b->expired)
    {
        b->transport->push(b);
        return;
    }

    m = b->messages->elts;

    if (ngx_bayeux_reply_connect(b, &m[b->connect - 1], reason,
                                 &b->replies[b->connect - 1])
        != NGX_OK)
    {
        b->replies[b->connect - 1].len = 0;
    }

    b->transport->wake(b);
}


static void
ngx_bayeux_batch_unhold(ngx_bayeux_batch_t *b)
{
    if (b->browser_hold) {
        ngx_bayeux_browser_unhold(b->browser_hold);
        b->browser_hold = NULL;
    }
}


/* the hold time of a parked connect is over */

void
ngx_bayeux_batch_release(ngx_bayeux_batch_t *b)
{
    b->expired = 1;

    if (b->parked) {
        b->endpoint->engine->release(b->endpoint, &b->waiter);
    }
}


/* the request goes away: nothing more is to be done for it */

void
ngx_bayeux_batch_cancel(ngx_bayeux_batch_t *b)
{
    b->aborted = 1;

    ngx_bayeux_batch_unhold(b);

    if (b->parked) {
        b->parked = 0;
        b->endpoint->engine->cancel(b->endpoint, &b->waiter);
    }
}


/*
 * Answers a parked (or paused) connect at once, as after a disconnect,
 * and forgets
 * it in the engine: the transport sends the reply.  A transport that
 * carries a session's connect and its disconnect on one connection uses
 * this to answer them in order, whatever the engine's notifications do.
 */

ngx_int_t
ngx_bayeux_batch_disconnected(ngx_bayeux_batch_t *b, ngx_str_t *client_id)
{
    ngx_bayeux_message_t  *m;

    if (!b->parked && !b->paused) {
        return NGX_DECLINED;
    }

    m = b->messages->elts;
    m = &m[b->connect - 1];

    if (m->client_id.len != client_id->len
        || ngx_strncmp(m->client_id.data, client_id->data, client_id->len)
           != 0)
    {
        return NGX_DECLINED;
    }

    if (b->parked) {
        b->parked = 0;
        b->endpoint->engine->cancel(b->endpoint, &b->waiter);
    }

    b->paused = 0;

    b->deliveries = NULL;

    if (ngx_bayeux_reply_connect(b, m, NGX_BAYEUX_WAKE_DISCONNECTED,
                                 &b->replies[b->connect - 1])
        != NGX_OK)
    {
        b->replies[b->connect - 1].len = 0;
    }

    return NGX_OK;
}


/*
 * Parks the batch's connect again after its deliveries were pushed; when
 * "hold" is 0 the connect is answered.
 */

void
ngx_bayeux_batch_hold(ngx_bayeux_batch_t *b, ngx_msec_t hold)
{
    ngx_bayeux_op_t       *op;
    ngx_bayeux_message_t  *m;

    m = b->messages->elts;
    m = &m[b->connect - 1];

    op = &b->op;

    op->client_id = m->client_id;
    ngx_bayeux_batch_browser(b, 0);
    op->hold = b->expired ? 0 : hold;
    op->waiter = &b->waiter;
    op->messages = NULL;
    op->rc = NGX_ERROR;
    op->handler = ngx_bayeux_batch_held;

    b->deliveries = NULL;
    b->paused = 0;

    if (ngx_bayeux_batch_call(b, b->endpoint->engine->connect) == NGX_OK) {
        ngx_bayeux_batch_held_next(b);
    }
}


static void
ngx_bayeux_batch_held(ngx_bayeux_op_t *op)
{
    ngx_bayeux_batch_t  *b = op->data;

    op->handler = ngx_bayeux_batch_complete;

    if (op->rc == NGX_AGAIN) {
        b->parked = 1;
    }

    if (ngx_bayeux_batch_returned(b) != NGX_OK) {
        return;
    }

    ngx_bayeux_batch_held_next(b);
}


/* the connect of ngx_bayeux_batch_hold() completed: held, or answered */

static void
ngx_bayeux_batch_held_next(ngx_bayeux_batch_t *b)
{
    ngx_bayeux_op_t       *op;
    ngx_bayeux_message_t  *m;

    op = &b->op;

    if (op->rc == NGX_AGAIN) {

        if (b->expired) {
            b->endpoint->engine->release(b->endpoint, &b->waiter);
        }

        return;
    }

    m = b->messages->elts;
    m = &m[b->connect - 1];

    if (op->rc == NGX_OK) {
        b->deliveries = op->messages;

        if (b->deliveries->nelts && b->transport->push && !b->expired) {
            b->transport->push(b);
            return;
        }

        if (ngx_bayeux_reply_connect(b, m, NGX_BAYEUX_WAKE_TIMEOUT,
                                     &b->replies[b->connect - 1])
            != NGX_OK)
        {
            b->replies[b->connect - 1].len = 0;
        }

    } else {
        ngx_bayeux_batch_unhold(b);

        if (ngx_bayeux_reply(b, m, op->rc, &b->replies[b->connect - 1])
            != NGX_OK)
        {
            b->replies[b->connect - 1].len = 0;
        }
    }

    b->transport->wake(b);
}


/*
 * The response: the deliveries of a connect first, then the replies in
 * the order of the messages.
 */

ngx_int_t
ngx_bayeux_batch_response(ngx_bayeux_batch_t *b, ngx_str_t *out)
{
    return ngx_bayeux_batch_join(b, 1, out);
}


/* the deliveries alone, pushed while the connect stays held */

ngx_int_t
ngx_bayeux_batch_deliveries(ngx_bayeux_batch_t *b, ngx_str_t *out)
{
    return ngx_bayeux_batch_join(b, 0, out);
}


static ngx_int_t
ngx_bayeux_batch_join(ngx_bayeux_batch_t *b, ngx_uint_t replies,
    ngx_str_t *out)
{
    size_t      len;
    u_char     *p;
    ngx_str_t  *d;
    ngx_uint_t  i, n, nreplies;

    len = 2;
    n = 0;
    nreplies = replies ? b->messages->nelts : 0;

    if (b->deliveries) {
        d = b->deliveries->elts;

        for (i = 0; i < b->deliveries->nelts; i++) {
            len += d[i].len + 1;
        }
    }

    for (i = 0; i < nreplies; i++) {
        len += b->replies[i].len + 1;
    }

    out->data = ngx_pnalloc(b->pool, len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = out->data;
    *p++ = '[';

    if (b->deliveries) {
        d = b->deliveries->elts;

        for (i = 0; i < b->deliveries->nelts; i++) {
            if (n++) {
                *p++ = ',';
            }

            p = ngx_cpymem(p, d[i].data, d[i].len);
        }
    }

    for (i = 0; i < nreplies; i++) {
        if (b->replies[i].len == 0) {
            continue;
        }

        if (n++) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, b->replies[i].data, b->replies[i].len);
    }

    *p++ = ']';

    out->len = p - out->data;

    return NGX_OK;
}


/*
 * Checks the channel names of a (un)subscribe, or the connection types
 * of a handshake, into op->channels.
 */

static ngx_int_t
ngx_bayeux_channels(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m,
    char **error)
{
    ngx_str_t   *name;
    ngx_uint_t   i, flags;

    if (ngx_bayeux_is(&m->channel, "/meta/handshake")) {

        name = m->connection_types->elts;

        for (i = 0; i < m->connection_types->nelts; i++) {
            if (ngx_bayeux_transport_enabled(b, &name[i]) == NGX_OK) {
                return NGX_OK;
            }
        }

        *error = "400::unsupported_connection_types";
        return NGX_ERROR;
    }

    if (m->subscriptions == NULL || m->subscriptions->nelts == 0) {
        *error = "403::subscription_missing";
        return NGX_ERROR;
    }

    /* checked first: the work of a message must stay small */

    if (m->subscriptions->nelts > b->endpoint->conf->max_channels) {
        *error = "400::too_many_channels";
        return NGX_ERROR;
    }

    name = m->subscriptions->elts;

    for (i = 0; i < m->subscriptions->nelts; i++) {

        if (ngx_bayeux_channel_parse(&name[i], &flags) != NGX_OK) {
            *error = "405::channel_invalid";
            return NGX_ERROR;
        }

        if (flags & NGX_BAYEUX_CHANNEL_META) {
            *error = "403::subscription_invalid";
            return NGX_ERROR;
        }
    }

    b->op.channels = m->subscriptions;

    return NGX_OK;
}


/* a published message as subscribers receive it */

static ngx_int_t
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

    if (m->id.len
        && (ngx_bayeux_json_key(&j, "id") != NGX_OK
            || ngx_bayeux_json_raw(&j, m->id.data, m->id.len) != NGX_OK))
    {
        return NGX_ERROR;
    }

    if (m->ext.len
        && (ngx_bayeux_json_key(&j, "ext") != NGX_OK
            || ngx_bayeux_json_raw(&j, m->ext.data, m->ext.len) != NGX_OK))
    {
        return NGX_ERROR;
    }

    if (ngx_bayeux_json_literal(&j, "}") != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_bayeux_json_result(&j, out);

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_reply(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m,
    ngx_int_t rc, ngx_str_t *out)
{
    ngx_uint_t             flags, handshake;
    ngx_bayeux_json_t      j;
    ngx_bayeux_failure_t  *f;

    handshake = ngx_bayeux_is(&m->channel, "/meta/handshake");

    flags = 0;

    if (ngx_bayeux_is(&m->channel, "/meta/subscribe")
        || ngx_bayeux_is(&m->channel, "/meta/unsubscribe"))
    {
        flags |= NGX_BAYEUX_REPLY_SUBSCRIPTION;
    }

    if (rc != NGX_OK) {

        /* the last entry stands for any other failure */

        for (f = ngx_bayeux_failures; f->rc != NGX_ERROR; f++) {
            if (f->rc == rc) {
                break;
            }
        }

        return ngx_bayeux_reply_error(b, m, f->error, flags | f->flags, out);
    }

    if (ngx_bayeux_reply_open(b, &j, m, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    if (handshake) {
        if (ngx_bayeux_json_key(&j, "version") != NGX_OK
            || ngx_bayeux_json_literal(&j, "\"" NGX_BAYEUX_VERSION "\"")
               != NGX_OK
            || ngx_bayeux_json_key(&j, "minimumVersion") != NGX_OK
            || ngx_bayeux_json_literal(&j, "\"" NGX_BAYEUX_VERSION "\"")
               != NGX_OK
            || ngx_bayeux_reply_transports(b, &j) != NGX_OK
            || ngx_bayeux_json_key(&j, "clientId") != NGX_OK
            || ngx_bayeux_json_string(&j, &m->client_id) != NGX_OK
            || ngx_bayeux_reply_advice(&j, &b->endpoint->advice_retry)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (m->channel.len > 6
               && ngx_strncmp(m->channel.data, "/meta/", 6) == 0)
    {

        /* the other meta replies name the session */

        if (ngx_bayeux_json_key(&j, "clientId") != NGX_OK
            || ngx_bayeux_json_string(&j, &m->client_id) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if ((flags & NGX_BAYEUX_REPLY_SUBSCRIPTION)
        && (ngx_bayeux_json_key(&j, "subscription") != NGX_OK
            || ngx_bayeux_json_raw(&j, m->subscription.data,
                                   m->subscription.len)
               != NGX_OK))
    {
        return NGX_ERROR;
    }

    if (ngx_bayeux_json_literal(&j, "}") != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_bayeux_json_result(&j, out);

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_reply_connect(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m,
    ngx_bayeux_wake_e reason, ngx_str_t *out)
{
    ngx_str_t          *advice;
    ngx_bayeux_json_t   j;

    /* the connect is answered: it holds nothing any more */
    ngx_bayeux_batch_unhold(b);

    if (b->multiple_clients) {
        advice = &b->endpoint->advice_multiple;

    } else if (reason == NGX_BAYEUX_WAKE_ERROR) {
        /* the engine lost its store (Redis down): come back later */
        return ngx_bayeux_reply_error(b, m, "503::engine_unavailable",
                                      NGX_BAYEUX_REPLY_RETRY_ADVICE, out);

    } else if (reason == NGX_BAYEUX_WAKE_DISCONNECTED) {
        advice = &b->endpoint->advice_none;

    } else {
        advice = &b->endpoint->advice_retry;
    }

    if (ngx_bayeux_reply_open(b, &j, m, 1) != NGX_OK
        || ngx_bayeux_json_key(&j, "clientId") != NGX_OK
        || ngx_bayeux_json_string(&j, &m->client_id) != NGX_OK
        || ngx_bayeux_reply_advice(&j, advice) != NGX_OK
        || ngx_bayeux_json_literal(&j, "}") != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_bayeux_json_result(&j, out);

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_reply_error(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m,
    char *error, ngx_uint_t flags, ngx_str_t *out)
{
    ngx_str_t          e;
    ngx_bayeux_json_t  j;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, b->log, 0,
                   "bayeux: \"%V\" failed: %s", &m->channel, error);

    e.data = (u_char *) error;
    e.len = ngx_strlen(error);

    if (ngx_bayeux_reply_open(b, &j, m, 0) != NGX_OK
        || ngx_bayeux_json_key(&j, "error") != NGX_OK
        || ngx_bayeux_json_string(&j, &e) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (m->client_id.len
        && (ngx_bayeux_json_key(&j, "clientId") != NGX_OK
            || ngx_bayeux_json_string(&j, &m->client_id) != NGX_OK))
    {
        return NGX_ERROR;
    }

    if (m->subscription.len
        && (ngx_bayeux_is(&m->channel, "/meta/subscribe")
            || ngx_bayeux_is(&m->channel, "/meta/unsubscribe"))
        && (ngx_bayeux_json_key(&j, "subscription") != NGX_OK
            || ngx_bayeux_json_raw(&j, m->subscription.data,
                                   m->subscription.len)
               != NGX_OK))
    {
        return NGX_ERROR;
    }

    if ((flags & NGX_BAYEUX_REPLY_HANDSHAKE_ADVICE)
        && (ngx_bayeux_json_key(&j, "advice") != NGX_OK
            || ngx_bayeux_json_literal(&j, "{\"reconnect\":\"handshake\","
                                           "\"interval\":0}")
               != NGX_OK))
    {
        return NGX_ERROR;
    }

    if ((flags & NGX_BAYEUX_REPLY_RETRY_ADVICE)
        && ngx_bayeux_reply_advice(&j, &b->endpoint->advice_retry) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_strncmp(error, "400::unsupported_connection_types", 33) == 0
        && (ngx_bayeux_reply_transports(b, &j) != NGX_OK
            || ngx_bayeux_json_key(&j, "advice") != NGX_OK
            || ngx_bayeux_json_literal(&j, "{\"reconnect\":\"none\"}")
               != NGX_OK))
    {
        return NGX_ERROR;
    }

    if (ngx_bayeux_json_literal(&j, "}") != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_bayeux_json_result(&j, out);

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

    if (m->id.len
        && (ngx_bayeux_json_key(j, "id") != NGX_OK
            || ngx_bayeux_json_raw(j, m->id.data, m->id.len) != NGX_OK))
    {
        return NGX_ERROR;
    }

    if (m->channel.len
        && (ngx_bayeux_json_key(j, "channel") != NGX_OK
            || ngx_bayeux_json_string(j, &m->channel) != NGX_OK))
    {
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


static ngx_int_t
ngx_bayeux_reply_transports(ngx_bayeux_batch_t *b, ngx_bayeux_json_t *j)
{
    ngx_str_t   *name;
    ngx_uint_t   i;

    if (ngx_bayeux_json_key(j, "supportedConnectionTypes") != NGX_OK
        || ngx_bayeux_json_literal(j, "[") != NGX_OK)
    {
        return NGX_ERROR;
    }

    name = b->endpoint->transports.elts;

    for (i = 0; i < b->endpoint->transports.nelts; i++) {

        if ((i && ngx_bayeux_json_literal(j, ",") != NGX_OK)
            || ngx_bayeux_json_string(j, &name[i]) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return ngx_bayeux_json_literal(j, "]");
}


static ngx_int_t
ngx_bayeux_transport_enabled(ngx_bayeux_batch_t *b, const ngx_str_t *name)
{
    ngx_str_t   *enabled;
    ngx_uint_t   i;

    enabled = b->endpoint->transports.elts;

    for (i = 0; i < b->endpoint->transports.nelts; i++) {
        if (enabled[i].len == name->len
            && ngx_strncmp(enabled[i].data, name->data, name->len) == 0)
        {
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


static ngx_uint_t
ngx_bayeux_is(ngx_str_t *name, char *literal)
{
    size_t  len;

    len = ngx_strlen(literal);

    return name->len == len && ngx_strncmp(name->data, literal, len) == 0;
}
