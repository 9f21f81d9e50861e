
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
#include "ngx_bayeux_meta.h"
#include "ngx_bayeux_reply.h"
#include "ngx_bayeux_hooks.h"
#include "ngx_bayeux_stats.h"
#include "ngx_bayeux_lazy.h"


static void ngx_bayeux_batch_browser(ngx_bayeux_batch_t *b,
    ngx_uint_t handshake);
static ngx_int_t ngx_bayeux_batch_bound(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m);
static void ngx_bayeux_batch_bind(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, ngx_int_t rc);
static ngx_int_t ngx_bayeux_batch_apply(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m);
static ngx_int_t ngx_bayeux_batch_check(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m);
static ngx_int_t ngx_bayeux_batch_incoming(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m);
static ngx_int_t ngx_bayeux_batch_hook(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, ngx_bayeux_incoming_hook_t *hook);
static ngx_int_t ngx_bayeux_batch_refused(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m);
static void ngx_bayeux_batch_enter(ngx_bayeux_batch_t *b);
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
static void ngx_bayeux_batch_count(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m);
static void ngx_bayeux_batch_answer(ngx_bayeux_batch_t *b,
    ngx_bayeux_wake_e reason);
static void ngx_bayeux_batch_waiter_handler(ngx_bayeux_waiter_t *w,
    ngx_bayeux_wake_e reason);


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
    b->waiter.ack = NGX_BAYEUX_NO_ACK;

    return NGX_OK;
}


/*
 * Applies the messages in order.  An engine may complete an operation
 * before returning, so this loops instead of recursing through the
 * completion handler; an operation that completes later, or a hook that
 * answers later, re-enters here.
 */

void
ngx_bayeux_batch_run(ngx_bayeux_batch_t *b)
{
    ngx_bayeux_message_t  *m;

    b->running = 1;

    m = b->messages->elts;

    while (b->next < b->messages->nelts) {

        if (ngx_bayeux_batch_apply(b, &m[b->next]) != NGX_OK) {
            /* the engine or a hook answers later, or it was aborted */
            return;
        }
    }

    b->running = 0;

    if (b->connect && !b->parked) {
        ngx_bayeux_batch_answer(b, b->wake_reason);
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
 * operation completed during the call, the caller goes on; NGX_AGAIN: it
 * completes later, and its handler goes on; NGX_ABORT: the batch was
 * cancelled meanwhile, and is the abort handler's.
 */

static ngx_int_t
ngx_bayeux_batch_call(ngx_bayeux_batch_t *b, ngx_bayeux_engine_op_pt call)
{
    ngx_bayeux_batch_enter(b);

    call(&b->op);

    b->calling = 0;

    if (b->pending) {
        return NGX_AGAIN;
    }

    return ngx_bayeux_batch_leave(b);
}


/* the batch goes inside: an engine operation or an incoming hook */

static void
ngx_bayeux_batch_enter(ngx_bayeux_batch_t *b)
{
    if (b->transport->enter) {
        b->transport->enter(b);
    }

    b->calling = 1;
    b->pending = 1;
}


/*
 * The handler of the batch's operation (or a hook's resume) has done
 * its part: NGX_OK when it is the handler that goes on, that is when
 * the call has returned already.
 */

static ngx_int_t
ngx_bayeux_batch_returned(ngx_bayeux_batch_t *b)
{
    b->pending = 0;

    if (b->calling) {
        /* the caller goes on once the engine (or hook) returns */
        return NGX_DONE;
    }

    return ngx_bayeux_batch_leave(b);
}


/*
 * The batch is out of the engine (or hook).  NGX_ABORT: it was cancelled
 * while inside, and is handed to the transport's abort handler now.
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
            ngx_bayeux_stat(b->endpoint, NGX_BAYEUX_STAT_CONNECTS_HELD, -1);
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
 * session the engine does not know is not served.  If learning the
 * grants fails (no memory), the engine is asked again later.
 */

static void
ngx_bayeux_batch_bind(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m,
    ngx_int_t rc)
{
    ngx_str_t  *session;

    /* what the session was granted: its next messages need not ask */

    if (rc == NGX_OK && m->kind == NGX_BAYEUX_KIND_HANDSHAKE && b->known) {
        (void) ngx_bayeux_session_learn(b->known, &m->client_id,
                                        &b->op.grants, b->log);
    }

    session = b->session;

    if (session == NULL || m->client_id.len != NGX_BAYEUX_CLIENT_ID_LEN) {
        return;
    }

    if (rc == NGX_OK && m->kind == NGX_BAYEUX_KIND_HANDSHAKE) {
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


/*
 * A message goes through the checks of every message (its channel, its
 * session) and those of its kind (ngx_bayeux_meta_t), then through the
 * incoming hooks, then to the engine.  NGX_OK: the caller goes on with
 * the next message; otherwise the engine or a hook answers later, or
 * the batch was aborted.  After a hook that answered later this is
 * called again for the same message, and goes on from that hook.
 */

static ngx_int_t
ngx_bayeux_batch_apply(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m)
{
    ngx_int_t         rc;
    ngx_bayeux_op_t  *op;

    if (!b->checked) {

        if (ngx_bayeux_batch_check(b, m) != NGX_OK) {
            return ngx_bayeux_batch_refused(b, m);
        }

        b->checked = 1;
        b->hook = 0;

        /* the browser its operation names, for the hooks' too */
        ngx_bayeux_batch_browser(b, m->kind == NGX_BAYEUX_KIND_HANDSHAKE);
    }

    rc = ngx_bayeux_batch_incoming(b, m);

    if (rc == NGX_AGAIN || rc == NGX_ABORT) {
        return rc;
    }

    b->checked = 0;

    if (rc != NGX_OK) {

        if (m->kind == NGX_BAYEUX_KIND_CONNECT) {
            /* what a hook let the connect hold (it is the batch's first) */
            ngx_bayeux_batch_unhold(b);
            b->multiple_clients = 0;
        }

        return ngx_bayeux_batch_refused(b, m);
    }

    op = &b->op;

    if (m->kind == NGX_BAYEUX_KIND_CONNECT) {
        /* its reply is written when the batch is answered */
        b->connect = b->next + 1;
        op->hold = b->hold;
        op->waiter = &b->waiter;
        b->waiter.stream = ngx_bayeux_batch_pushed(b) ? 1 : 0;
    }

    op->lazy = (m->kind == NGX_BAYEUX_KIND_PUBLISH
                && ngx_bayeux_lazy(b->endpoint->conf, &m->channel));

    return ngx_bayeux_batch_call(b,
                             ngx_bayeux_meta_operation(ngx_bayeux_meta(m->kind),
                                                       b->endpoint->engine));
}


/* NGX_DECLINED: the message is refused, b->refusal says why */

static ngx_int_t
ngx_bayeux_batch_check(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m)
{
    ngx_uint_t          flags;
    ngx_bayeux_op_t    *op;
    ngx_bayeux_meta_t  *meta;

    op = &b->op;

    op->client_id = m->client_id;
    op->rc = NGX_ERROR;
    ngx_str_null(&op->grants);
    ngx_str_null(&op->user);

    /*
     * bayeux_max_inactivity counts what CometD's ActivityExtension does:
     * every message of the client but its /meta/connects, the heartbeat
     */
    op->active = (m->kind != NGX_BAYEUX_KIND_CONNECT);

    ngx_memzero(&b->refusal, sizeof(ngx_bayeux_refusal_t));

    if (m->channel.len == 0) {
        return ngx_bayeux_batch_error(b, "400::channel_missing",
                                      NGX_BAYEUX_ERROR_PLAIN);
    }

    if (ngx_bayeux_channel_parse(&m->channel, &flags) != NGX_OK) {
        return ngx_bayeux_batch_error(b, "405::channel_invalid",
                                      NGX_BAYEUX_ERROR_PLAIN);
    }

    m->kind = ngx_bayeux_meta_kind(&m->channel, flags);

    if ((m->kind != NGX_BAYEUX_KIND_HANDSHAKE
         && ngx_bayeux_batch_bound(b, m) != NGX_OK)
        || (m->kind == NGX_BAYEUX_KIND_PUBLISH && m->client_id.len == 0))
    {
        /* (an engine takes a publish with no session for the server's) */
        /* answered as an unknown session: nothing is applied */
        return ngx_bayeux_batch_error(b, "402::session_unknown",
                                      NGX_BAYEUX_ERROR_HANDSHAKE);
    }

    if (!(flags & NGX_BAYEUX_CHANNEL_META)
        && (flags & (NGX_BAYEUX_CHANNEL_WILD|NGX_BAYEUX_CHANNEL_DEEP_WILD)))
    {
        /* a message goes to a channel, a pattern only subscribes */
        return ngx_bayeux_batch_error(b, "405::channel_invalid",
                                      NGX_BAYEUX_ERROR_PLAIN);
    }

    meta = ngx_bayeux_meta(m->kind);

    if (meta->check) {
        return meta->check(b, m);
    }

    return NGX_OK;
}


/*
 * Runs the incoming hooks from b->hook on.  NGX_OK: all let the message
 * through; NGX_DECLINED: one refused it; NGX_AGAIN: one answers later,
 * and ngx_bayeux_batch_resume() goes on; NGX_ABORT: the batch was
 * cancelled meanwhile, and is the transport's.
 */

static ngx_int_t
ngx_bayeux_batch_incoming(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m)
{
    ngx_int_t                    rc;
    ngx_bayeux_hooks_t          *hooks;
    ngx_bayeux_incoming_hook_t  *hook;

    hooks = b->endpoint->hooks;

    if (hooks == NULL) {
        return NGX_OK;
    }

    hook = hooks->incoming.elts;

    for ( /* void */ ; b->hook < hooks->incoming.nelts; b->hook++) {

        if (b->resumed) {
            b->resumed = 0;
            rc = b->hook_rc;

        } else {
            if (!(hook[b->hook].kinds & ngx_bayeux_kind_mask(m->kind))) {
                continue;
            }

            rc = ngx_bayeux_batch_hook(b, m, &hook[b->hook]);

            if (rc == NGX_AGAIN || rc == NGX_ABORT) {
                return rc;
            }
        }

        if (rc == NGX_OK) {
            continue;
        }

        if (rc != NGX_DECLINED || b->refusal.error.len == 0) {
            ngx_bayeux_batch_error(b, "500::server_error",
                                   NGX_BAYEUX_ERROR_PLAIN);
        }

        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * Calls an incoming hook as an engine operation is called (the lifetime
 * rule): the batch is inside until the hook has returned and, if it
 * answers later, until it has resumed the batch.  The hook's answer, or
 * NGX_AGAIN, or NGX_ABORT.
 */

static ngx_int_t
ngx_bayeux_batch_hook(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m,
    ngx_bayeux_incoming_hook_t *hook)
{
    ngx_int_t  rc;

    b->hook_rc = NGX_ERROR;
    b->hook_ctx = NULL;

    ngx_bayeux_batch_enter(b);

    rc = hook->handler(b, m, hook->data);

    b->calling = 0;

    if (rc == NGX_AGAIN) {

        if (b->pending) {
            b->waiting = 1;

            if (b->aborted && hook->cancel) {
                /* cancelled during the call */
                b->waiting = 0;
                hook->cancel(b, m, hook->data);
            }

            return NGX_AGAIN;
        }

        /* resumed during the call */
        rc = b->hook_rc;

    } else {
        b->pending = 0;
    }

    if (ngx_bayeux_batch_leave(b) != NGX_OK) {
        return NGX_ABORT;
    }

    return rc;
}


/*
 * An incoming hook that returned NGX_AGAIN answers: the batch goes on
 * with the message, or refuses it, and then with the next ones.
 */

void
ngx_bayeux_batch_resume(ngx_bayeux_batch_t *b, ngx_int_t rc)
{
    b->hook_rc = rc;
    b->waiting = 0;

    if (ngx_bayeux_batch_returned(b) != NGX_OK) {
        /* the hook's call goes on, or the batch was aborted */
        return;
    }

    b->resumed = 1;

    ngx_bayeux_batch_run(b);
}


/*
 * Refuses the message: b->refusal says why.  NGX_DECLINED, for the checks
 * of a message to return.
 */

ngx_int_t
ngx_bayeux_batch_error(ngx_bayeux_batch_t *b, char *error, ngx_uint_t with)
{
    ngx_bayeux_refusal_set(b->endpoint, &b->refusal, error, with);

    return NGX_DECLINED;
}


/* the message was refused: answered, and the batch goes on */

static ngx_int_t
ngx_bayeux_batch_refused(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m)
{
    ngx_str_t  *reply;

    reply = &b->replies[b->next];

    if (ngx_bayeux_reply_refused(b, m, &b->refusal, reply) != NGX_OK) {
        reply->len = 0;
    }

    b->next++;

    return NGX_OK;
}


/* what the engine applied, for the status location */

static void
ngx_bayeux_batch_count(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m)
{
    ngx_bayeux_endpoint_t  *ep;

    ep = b->endpoint;

    switch (m->kind) {

    case NGX_BAYEUX_KIND_HANDSHAKE:
        ngx_bayeux_stat(ep, NGX_BAYEUX_STAT_SESSIONS_CREATED, 1);
        break;

    case NGX_BAYEUX_KIND_DISCONNECT:
        ngx_bayeux_stat(ep, NGX_BAYEUX_STAT_ENDED_DISCONNECT, 1);
        break;

    case NGX_BAYEUX_KIND_SUBSCRIBE:
        ngx_bayeux_stat(ep, NGX_BAYEUX_STAT_SUBSCRIBES,
                        m->subscriptions ? m->subscriptions->nelts : 1);
        break;

    case NGX_BAYEUX_KIND_UNSUBSCRIBE:
        ngx_bayeux_stat(ep, NGX_BAYEUX_STAT_UNSUBSCRIBES,
                        m->subscriptions ? m->subscriptions->nelts : 1);
        break;

    case NGX_BAYEUX_KIND_PUBLISH:
        ngx_bayeux_stat(ep, NGX_BAYEUX_STAT_PUBLISHED, 1);
        break;

    default:
        break;
    }
}


static void
ngx_bayeux_batch_complete(ngx_bayeux_op_t *op)
{
    ngx_bayeux_batch_t    *b = op->data;
    ngx_bayeux_message_t  *m;

    m = b->messages->elts;
    m = &m[b->next];

    /* every change of a session, whatever the engine */
    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, b->log, 0,
                   "bayeux: session %V: %V applied, rc:%i",
                   &op->client_id, &m->channel, op->rc);

    if (b->connect == b->next + 1) {

        /* the reply of a connect is written when the batch is answered */

        if (op->rc == NGX_AGAIN) {
            b->parked = 1;
            ngx_bayeux_stat(b->endpoint, NGX_BAYEUX_STAT_CONNECTS_HELD, 1);

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

    if (op->rc == NGX_OK && m->kind == NGX_BAYEUX_KIND_HANDSHAKE) {
        m->client_id = op->client_id;
    }

    ngx_bayeux_batch_bind(b, m, op->rc);

    if (op->rc == NGX_OK && m->kind == NGX_BAYEUX_KIND_DISCONNECT) {
        b->disconnects++;
        m->disconnected = 1;
    }

    if (op->rc == NGX_OK) {
        ngx_bayeux_batch_count(b, m);
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
    ngx_bayeux_batch_t  *b = w->data;

    b->parked = 0;
    ngx_bayeux_stat(b->endpoint, NGX_BAYEUX_STAT_CONNECTS_HELD, -1);
    b->deliveries = w->messages;
    b->wake_reason = reason;

    if (b->running) {
        /* woken by a later message of the same batch */
        return;
    }

    if (reason == NGX_BAYEUX_WAKE_MESSAGES && ngx_bayeux_batch_pushed(b)) {
        b->transport->push(b);
        return;
    }

    ngx_bayeux_batch_answer(b, reason);

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
    ngx_bayeux_message_t        *m;
    ngx_bayeux_incoming_hook_t  *hook;

    b->aborted = 1;

    if (b->waiting) {
        /* told once: it resumes the batch later, which then ends */

        b->waiting = 0;

        hook = b->endpoint->hooks->incoming.elts;
        hook = &hook[b->hook];

        if (hook->cancel) {
            m = b->messages->elts;
            hook->cancel(b, &m[b->next], hook->data);
        }
    }

    ngx_bayeux_batch_unhold(b);

    if (b->parked) {
        b->parked = 0;
        ngx_bayeux_stat(b->endpoint, NGX_BAYEUX_STAT_CONNECTS_HELD, -1);
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
        ngx_bayeux_stat(b->endpoint, NGX_BAYEUX_STAT_CONNECTS_HELD, -1);
        b->endpoint->engine->cancel(b->endpoint, &b->waiter);
    }

    b->paused = 0;

    b->deliveries = NULL;

    ngx_bayeux_batch_answer(b, NGX_BAYEUX_WAKE_DISCONNECTED);

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
    b->waiter.stream = ngx_bayeux_batch_pushed(b) ? 1 : 0;
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
        ngx_bayeux_stat(b->endpoint, NGX_BAYEUX_STAT_CONNECTS_HELD, 1);
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

        if (b->deliveries->nelts && ngx_bayeux_batch_pushed(b)) {
            b->transport->push(b);
            return;
        }

        ngx_bayeux_batch_answer(b, NGX_BAYEUX_WAKE_TIMEOUT);

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

        ngx_bayeux_stat(b->endpoint, NGX_BAYEUX_STAT_DELIVERED,
                        b->deliveries->nelts);
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
 * Answers the batch's connect, held or not: its reply is written for the
 * transport to send, and it holds nothing any more.
 */

static void
ngx_bayeux_batch_answer(ngx_bayeux_batch_t *b, ngx_bayeux_wake_e reason)
{
    ngx_str_t             *reply;
    ngx_bayeux_message_t  *m;

    m = b->messages->elts;
    m = &m[b->connect - 1];
    reply = &b->replies[b->connect - 1];

    ngx_bayeux_batch_unhold(b);

    if (ngx_bayeux_reply_connect(b, m, reason, reply) != NGX_OK) {
        reply->len = 0;
    }
}
