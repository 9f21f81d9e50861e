
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_message.h"
#include "ngx_bayeux_json.h"
#include "ngx_bayeux_batch.h"
#include "ngx_bayeux_hooks.h"
#include "ngx_bayeux_reply.h"
#include "ngx_bayeux_app_request.h"
#include "ngx_bayeux_app_answer.h"
#include "ngx_bayeux_grants.h"
#include "ngx_bayeux_jwt.h"
#include "ngx_bayeux_app.h"


/*
 * The application decides, through subrequests to the locations of
 * bayeux_handshake_request, bayeux_subscribe_request and
 * bayeux_publish_request, each "POST uri" with the message as JSON:
 *
 *   handshake   2xx accepts, and may bind the session to a user and
 *               grant it channel patterns (ngx_bayeux_app_answer.h);
 *               401 or 403 denies
 *   subscribe,  a channel granted at handshake is allowed at once;
 *   publish     otherwise 2xx allows (a publish's answer may replace its
 *               data), 403 denies; with no location for the operation
 *               it is denied
 *
 * Anything else (the application down, too slow, an error, an answer
 * that is not HTTP or not what is expected) refuses the message as
 * unavailable, with retry advice: it fails closed.
 *
 * With bayeux_jwt_key, a handshake that carries a token in ext.token is
 * decided by the token alone (its claims are the grants), with no
 * request; without a token it is asked, or denied if there is nobody to
 * ask.  An endpoint with none of these directives is open, as if nobody
 * decided.
 */


typedef struct ngx_bayeux_app_ctx_s  ngx_bayeux_app_ctx_t;

/* what an answer makes of the message: NGX_OK, or why it is refused */
typedef ngx_int_t (*ngx_bayeux_app_decision_pt)(ngx_bayeux_app_ctx_t *ctx);

/*
 * An operation the application decides: its 2xx answer is "accept"'s,
 * its 401 or 403 "deny"'s; any other is the application failing.
 */

typedef struct {
    ngx_str_t                   name;       /* for logs */
    ngx_str_t                   denied;     /* ":subscribe_denied" */
    u_char                      grant;      /* NGX_BAYEUX_GRANT_* */
    size_t                      uri;        /* in ngx_bayeux_loc_conf_t */
    ngx_bayeux_app_decision_pt  accept;
    ngx_bayeux_app_decision_pt  deny;
} ngx_bayeux_app_operation_t;


/* a message waiting for the engine's word on its session, or the app's */

struct ngx_bayeux_app_ctx_s {
    ngx_bayeux_app_request_t     ar;
    ngx_bayeux_op_t              op;
    ngx_bayeux_batch_t          *batch;
    ngx_bayeux_message_t        *message;
    ngx_bayeux_app_operation_t  *operation;
    ngx_int_t                    rc;
    unsigned                     calling:1;
    unsigned                     completed:1;
    unsigned                     waiting:1;
    unsigned                     cancelled:1;
};


static ngx_int_t ngx_bayeux_app_handshake(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, void *data);
static void ngx_bayeux_app_answered(ngx_bayeux_app_request_t *ar);
static ngx_int_t ngx_bayeux_app_handshake_accept(ngx_bayeux_app_ctx_t *ctx);
static ngx_int_t ngx_bayeux_app_handshake_deny(ngx_bayeux_app_ctx_t *ctx);
static ngx_int_t ngx_bayeux_app_handshake_token(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, ngx_str_t *token);
static ngx_int_t ngx_bayeux_app_authorize(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, void *data);
static void ngx_bayeux_app_touched(ngx_bayeux_op_t *op);
static ngx_int_t ngx_bayeux_app_decide(ngx_bayeux_app_ctx_t *ctx,
    ngx_str_t *grants);
static ngx_int_t ngx_bayeux_app_authorize_accept(ngx_bayeux_app_ctx_t *ctx);
static ngx_int_t ngx_bayeux_app_authorize_deny(ngx_bayeux_app_ctx_t *ctx);
static void ngx_bayeux_app_service_answer(ngx_bayeux_app_request_t *ar);
static ngx_int_t ngx_bayeux_app_service_failed(ngx_bayeux_app_ctx_t *ctx,
    ngx_bayeux_app_answer_t *a);
static ngx_int_t ngx_bayeux_app_denied(ngx_bayeux_app_ctx_t *ctx,
    ngx_str_t *reason);
static void ngx_bayeux_app_cancel(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, void *data);
static ngx_int_t ngx_bayeux_app_ask(ngx_bayeux_app_ctx_t *ctx);
static ngx_int_t ngx_bayeux_app_unavailable(ngx_bayeux_app_ctx_t *ctx,
    const char *why);
static ngx_int_t ngx_bayeux_app_message_json(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, ngx_str_t *out);


#define ngx_bayeux_app_uri(name)  offsetof(ngx_bayeux_loc_conf_t, name)

static ngx_bayeux_app_operation_t  ngx_bayeux_app_handshake_op =
    { ngx_string("handshake"), ngx_null_string, 0,
      ngx_bayeux_app_uri(handshake_request),
      ngx_bayeux_app_handshake_accept, ngx_bayeux_app_handshake_deny };

static ngx_bayeux_app_operation_t  ngx_bayeux_app_subscribe_op =
    { ngx_string("subscribe"), ngx_string(":subscribe_denied"),
      NGX_BAYEUX_GRANT_SUBSCRIBE, ngx_bayeux_app_uri(subscribe_request),
      ngx_bayeux_app_authorize_accept, ngx_bayeux_app_authorize_deny };

static ngx_bayeux_app_operation_t  ngx_bayeux_app_publish_op =
    { ngx_string("publish"), ngx_string(":publish_denied"),
      NGX_BAYEUX_GRANT_PUBLISH, ngx_bayeux_app_uri(publish_request),
      ngx_bayeux_app_authorize_accept, ngx_bayeux_app_authorize_deny };


/* every answer is the reply: ngx_bayeux_app_service_answer() */

static ngx_bayeux_app_operation_t  ngx_bayeux_app_service_op =
    { ngx_string("service"), ngx_null_string, 0,
      ngx_bayeux_app_uri(service_request), NULL, NULL };


/* the reason of a failed /service call, by the application's status */

typedef struct {
    ngx_uint_t                  status;
    ngx_str_t                   reason;
} ngx_bayeux_app_reason_t;

static ngx_bayeux_app_reason_t  ngx_bayeux_app_reasons[] = {
    { NGX_HTTP_BAD_REQUEST, ngx_string("bad_request") },
    { NGX_HTTP_UNAUTHORIZED, ngx_string("unauthorized") },
    { NGX_HTTP_FORBIDDEN, ngx_string("forbidden") },
    { NGX_HTTP_NOT_FOUND, ngx_string("not_found") },
    { NGX_HTTP_CONFLICT, ngx_string("conflict") },
    { NGX_HTTP_TOO_MANY_REQUESTS, ngx_string("too_many_requests") },
    { NGX_HTTP_INTERNAL_SERVER_ERROR, ngx_string("server_error") },
    { NGX_HTTP_BAD_GATEWAY, ngx_string("application_unavailable") },
    { NGX_HTTP_SERVICE_UNAVAILABLE, ngx_string("application_unavailable") },
    { NGX_HTTP_GATEWAY_TIME_OUT, ngx_string("application_timeout") },
    { 0, ngx_string("application_error") }
};


static ngx_str_t  ngx_bayeux_app_empty_object = ngx_string("{}");

static ngx_str_t  ngx_bayeux_app_default_reason =
    ngx_string("denied_by_security_policy");


/* one line per failure burst: at most one a second per worker */
static time_t  ngx_bayeux_app_failure_logged;


ngx_int_t
ngx_bayeux_app_init_endpoint(ngx_conf_t *cf, ngx_bayeux_endpoint_t *ep)
{
    ngx_bayeux_loc_conf_t       *conf;
    ngx_bayeux_incoming_hook_t  *hook;

    conf = ep->conf;

    if (conf->service_request.len) {
        ep->subrequests = 1;

        hook = ngx_bayeux_hook_add_incoming(cf, ep,
                              ngx_bayeux_kind_mask(NGX_BAYEUX_KIND_SERVICE),
                              ngx_bayeux_app_authorize,
                              &ngx_bayeux_app_service_op);
        if (hook == NULL) {
            return NGX_ERROR;
        }

        hook->cancel = ngx_bayeux_app_cancel;
    }

    if (conf->handshake_request.len == 0
        && conf->subscribe_request.len == 0
        && conf->publish_request.len == 0
        && conf->jwt_key == NULL)
    {
        return NGX_OK;
    }

    ep->authorization = 1;

    ep->subrequests |= (conf->handshake_request.len
                        || conf->subscribe_request.len
                        || conf->publish_request.len);

    if (conf->handshake_request.len || conf->jwt_key) {
        hook = ngx_bayeux_hook_add_incoming(cf, ep,
                              ngx_bayeux_kind_mask(NGX_BAYEUX_KIND_HANDSHAKE),
                              ngx_bayeux_app_handshake,
                              &ngx_bayeux_app_handshake_op);
        if (hook == NULL) {
            return NGX_ERROR;
        }

        hook->cancel = ngx_bayeux_app_cancel;
    }

    hook = ngx_bayeux_hook_add_incoming(cf, ep,
                              ngx_bayeux_kind_mask(NGX_BAYEUX_KIND_SUBSCRIBE)
                              |ngx_bayeux_kind_mask(NGX_BAYEUX_KIND_PUBLISH),
                              ngx_bayeux_app_authorize, NULL);
    if (hook == NULL) {
        return NGX_ERROR;
    }

    hook->cancel = ngx_bayeux_app_cancel;

    return NGX_OK;
}


/* a URI of this server, or "off" (to undo an inherited one) */

char *
ngx_bayeux_app_request_uri(ngx_conf_t *cf, void *post, void *data)
{
    ngx_str_t  *uri = data;

    ngx_str_t  *value;

    value = cf->args->elts;

    if (uri->len == 3 && ngx_strncmp(uri->data, "off", 3) == 0) {
        uri->len = 0;
        uri->data = (u_char *) "";
        return NGX_CONF_OK;
    }

    if (uri->len == 0 || uri->data[0] != '/') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must be a URI starting with \"/\" "
                           "(a location of this server), or \"off\"",
                           &value[0]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_bayeux_app_ctx_t *
ngx_bayeux_app_ctx(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m,
    ngx_bayeux_app_operation_t *operation)
{
    ngx_bayeux_app_ctx_t  *ctx;

    ctx = ngx_pcalloc(b->pool, sizeof(ngx_bayeux_app_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    ctx->batch = b;
    ctx->message = m;
    ctx->operation = operation;
    ctx->ar.batch = b;
    ctx->ar.data = ctx;
    ctx->ar.uri = (ngx_str_t *) ((u_char *) b->endpoint->conf
                                 + operation->uri);
    ctx->ar.message = m;

    return ctx;
}


/* handshake */

static ngx_int_t
ngx_bayeux_app_handshake(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m,
    void *data)
{
    ngx_bayeux_app_ctx_t  *ctx;

    if (b->known == NULL) {
        /* a polling request's: the user of its log line */
        b->known = ngx_bayeux_session_known_pooled(b->pool);
        if (b->known == NULL) {
            return NGX_ERROR;
        }
    }

    if (b->endpoint->conf->jwt_key) {

        /* ext.token, a string, as the message parser found it */

        if (m->ext_values.token.data) {
            return ngx_bayeux_app_handshake_token(b, m,
                                                  &m->ext_values.token);
        }

        if (b->endpoint->conf->handshake_request.len == 0) {
            ngx_log_error(NGX_LOG_INFO, b->log, 0,
                          "bayeux: handshake denied: no token");

            return ngx_bayeux_batch_error(b, "403::handshake_denied",
                                          NGX_BAYEUX_ERROR_TRANSPORTS);
        }
    }

    ctx = ngx_bayeux_app_ctx(b, m, data);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ctx->ar.handler = ngx_bayeux_app_answered;

    return ngx_bayeux_app_ask(ctx);
}


/* a token decides alone: its claims are what the session is granted */

static ngx_int_t
ngx_bayeux_app_handshake_token(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, ngx_str_t *token)
{
    ngx_int_t             rc;
    const char           *why;
    ngx_bayeux_grants_t   g;

    rc = ngx_bayeux_jwt_verify(b->endpoint->conf->jwt_key, token, b->pool,
                               &g, &why);

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_INFO, b->log, 0,
                      "bayeux: handshake denied: token refused (%s)", why);

        return ngx_bayeux_batch_error(b, "403::handshake_denied",
                                      NGX_BAYEUX_ERROR_TRANSPORTS);
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_bayeux_grants_check(&g, &why) != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, b->log, 0,
                      "bayeux: handshake denied: token refused (%s)", why);

        return ngx_bayeux_batch_error(b, "403::handshake_denied",
                                      NGX_BAYEUX_ERROR_TRANSPORTS);
    }

    b->op.user = g.user;

    return ngx_bayeux_grants_write(&g, b->pool, &b->op.grants);
}


/*
 * The application answered a handshake, subscribe or publish (or did not:
 * it is down, slow, or answered something else than HTTP): the batch
 * goes on with what the operation makes of it.
 */

static void
ngx_bayeux_app_answered(ngx_bayeux_app_request_t *ar)
{
    ngx_int_t              rc;
    ngx_bayeux_batch_t    *b;
    ngx_bayeux_app_ctx_t  *ctx;

    ctx = ar->data;
    b = ar->batch;

    if (ar->cancelled || b->aborted) {
        /* nothing will be made of the answer */
        rc = NGX_ERROR;

    } else if (ar->not_http) {
        rc = ngx_bayeux_app_unavailable(ctx, "the answer is not HTTP");

    } else if (ar->status >= NGX_HTTP_OK
               && ar->status < NGX_HTTP_SPECIAL_RESPONSE)
    {
        rc = ctx->operation->accept(ctx);

    } else if (ar->status == NGX_HTTP_UNAUTHORIZED
               || ar->status == NGX_HTTP_FORBIDDEN)
    {
        rc = ctx->operation->deny(ctx);

    } else {
        rc = ngx_bayeux_app_unavailable(ctx, NULL);
    }

    ngx_bayeux_batch_resume(b, rc);
}


static ngx_int_t
ngx_bayeux_app_handshake_deny(ngx_bayeux_app_ctx_t *ctx)
{
    return ngx_bayeux_batch_error(ctx->batch, "403::handshake_denied",
                                  NGX_BAYEUX_ERROR_TRANSPORTS);
}


/* what the answer grants goes to the engine with the handshake */

static ngx_int_t
ngx_bayeux_app_handshake_accept(ngx_bayeux_app_ctx_t *ctx)
{
    ngx_int_t                 rc;
    const char               *why;
    ngx_bayeux_batch_t       *b;
    ngx_bayeux_app_answer_t   a;

    b = ctx->batch;

    rc = ngx_bayeux_app_answer_parse(&ctx->ar.body, b->pool, &a, &why);

    if (rc == NGX_OK) {
        rc = ngx_bayeux_grants_check(&a.grants, &why);
    }

    if (rc == NGX_DECLINED) {
        return ngx_bayeux_app_unavailable(ctx, why);
    }

    if (rc != NGX_OK
        || ngx_bayeux_grants_write(&a.grants, b->pool, &b->op.grants)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    b->op.user = a.grants.user;

    ctx->message->reply_ext = a.ext;

    return NGX_OK;
}


/*
 * Subscribe and publish: what the session was granted is known to the
 * batch (a websocket's session, since its handshake), or asked of the
 * engine, which checks the session as it does for any operation.
 */

static ngx_int_t
ngx_bayeux_app_authorize(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m,
    void *data)
{
    ngx_str_t             *grants;
    ngx_bayeux_op_t       *op;
    ngx_bayeux_app_ctx_t  *ctx;

    if (data == NULL) {
        data = (m->kind == NGX_BAYEUX_KIND_SUBSCRIBE)
               ? &ngx_bayeux_app_subscribe_op : &ngx_bayeux_app_publish_op;
    }

    ctx = ngx_bayeux_app_ctx(b, m, data);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ctx->ar.handler = (m->kind == NGX_BAYEUX_KIND_SERVICE)
                      ? ngx_bayeux_app_service_answer
                      : ngx_bayeux_app_answered;

    grants = ngx_bayeux_session_grants(b->known, &m->client_id);

    if (grants) {
        return ngx_bayeux_app_decide(ctx, grants);
    }

    if (b->known == NULL) {
        /* a polling request's: for the rest of its batch */
        b->known = ngx_bayeux_session_known_pooled(b->pool);
        if (b->known == NULL) {
            return NGX_ERROR;
        }
    }

    op = &ctx->op;
    op->endpoint = b->endpoint;
    op->pool = b->pool;
    op->log = b->log;
    op->client_id = m->client_id;
    op->browser = b->op.browser;
    op->handler = ngx_bayeux_app_touched;
    op->data = ctx;

    b->hook_ctx = ctx;

    ctx->calling = 1;
    b->endpoint->engine->touch(op);
    ctx->calling = 0;

    if (!ctx->completed) {
        ctx->waiting = 1;
        return NGX_AGAIN;
    }

    return ctx->rc;
}


static void
ngx_bayeux_app_touched(ngx_bayeux_op_t *op)
{
    ngx_bayeux_batch_t    *b;
    ngx_bayeux_app_ctx_t  *ctx;

    ctx = op->data;
    b = ctx->batch;

    ctx->completed = 1;

    if (ctx->cancelled || b->aborted) {
        ctx->rc = NGX_ERROR;

    } else if (op->rc == NGX_OK) {
        (void) ngx_bayeux_session_learn(b->known, &op->client_id,
                                        &op->grants, b->log);
        ctx->rc = ngx_bayeux_app_decide(ctx, &op->grants);

    } else if (op->rc == NGX_DECLINED) {
        /* the engine answers the operation as for an unknown session */
        ctx->rc = NGX_OK;

    } else {
        ctx->rc = ngx_bayeux_batch_error(b, "503::engine_unavailable",
                                         NGX_BAYEUX_ERROR_RETRY);
    }

    if (ctx->calling) {
        return;
    }

    if (ctx->rc != NGX_AGAIN) {
        ngx_bayeux_batch_resume(b, ctx->rc);
    }
}


/* granted, or asked, or denied */

static ngx_int_t
ngx_bayeux_app_decide(ngx_bayeux_app_ctx_t *ctx, ngx_str_t *grants)
{
    ngx_str_t             *channel, one;
    ngx_uint_t             i, n;
    ngx_bayeux_message_t  *m;

    m = ctx->message;

    if (m->kind == NGX_BAYEUX_KIND_SERVICE) {
        /* the application answers /service calls, and authorizes them */
        ctx->ar.grants = grants;
        return ngx_bayeux_app_ask(ctx);
    }

    if (m->kind == NGX_BAYEUX_KIND_SUBSCRIBE) {
        channel = m->subscriptions->elts;
        n = m->subscriptions->nelts;

    } else {
        one = m->channel;
        channel = &one;
        n = 1;
    }

    for (i = 0; i < n; i++) {
        if (!ngx_bayeux_grants_allow(grants, ctx->operation->grant,
                                     &channel[i]))
        {
            break;
        }
    }

    if (i == n) {
        return NGX_OK;
    }

    ctx->ar.grants = grants;

    if (ctx->ar.uri->len == 0) {
        /* closed by default: nobody may decide otherwise */
        return ngx_bayeux_app_denied(ctx, NULL);
    }

    return ngx_bayeux_app_ask(ctx);
}


/* a publish may be given the data to publish instead of the client's */

static ngx_int_t
ngx_bayeux_app_authorize_accept(ngx_bayeux_app_ctx_t *ctx)
{
    ngx_int_t                 rc;
    const char               *why;
    ngx_bayeux_batch_t       *b;
    ngx_bayeux_message_t     *m;
    ngx_bayeux_app_answer_t   a;

    b = ctx->batch;
    m = ctx->message;

    rc = ngx_bayeux_app_answer_parse(&ctx->ar.body, b->pool, &a, &why);

    if (rc == NGX_DECLINED) {
        return ngx_bayeux_app_unavailable(ctx, why);
    }

    if (rc == NGX_OK && m->kind == NGX_BAYEUX_KIND_PUBLISH && a.data.len) {
        /* the application's data is published instead */
        m->data = a.data;
        rc = ngx_bayeux_delivery(b, m, &b->op.message);
    }

    return rc;
}


/* the reason the application gives, if any */

static ngx_int_t
ngx_bayeux_app_authorize_deny(ngx_bayeux_app_ctx_t *ctx)
{
    ngx_int_t                 rc;
    const char               *why;
    ngx_bayeux_app_answer_t   a;

    /* a body that is not what we read still denies */
    rc = ngx_bayeux_app_answer_parse(&ctx->ar.body, ctx->batch->pool, &a,
                                     &why);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    return ngx_bayeux_app_denied(ctx, (rc == NGX_OK) ? &a.reason : NULL);
}


/*
 * A /service call: the application's answer is the reply to the sender,
 * with its body as "data"; a failure is "<status>::<reason>"
 */

static void
ngx_bayeux_app_service_answer(ngx_bayeux_app_request_t *ar)
{
    ngx_int_t                 rc;
    const char               *why;
    ngx_bayeux_batch_t       *b;
    ngx_bayeux_app_ctx_t     *ctx;
    ngx_bayeux_app_answer_t   a;

    ctx = ar->data;
    b = ar->batch;

    if (ar->cancelled || b->aborted) {
        ngx_bayeux_batch_resume(b, NGX_ERROR);
        return;
    }

    if (ar->not_http) {
        ar->status = NGX_HTTP_BAD_GATEWAY;
        (void) ngx_bayeux_app_unavailable(ctx, "the answer is not HTTP");
        ngx_str_null(&a.data);
        rc = ngx_bayeux_app_service_failed(ctx, &a);

    } else {
        rc = ngx_bayeux_app_answer_value(&ar->body, b->pool, &a, &why);

        if (rc == NGX_DECLINED) {
            /* the data is not JSON: nothing of it is passed on */
            (void) ngx_bayeux_app_unavailable(ctx, why);
            ngx_str_null(&a.data);

            if (ar->status >= NGX_HTTP_OK
                && ar->status < NGX_HTTP_SPECIAL_RESPONSE)
            {
                ar->status = NGX_HTTP_BAD_GATEWAY;
            }

        } else if (rc != NGX_OK) {
            ngx_bayeux_batch_resume(b, NGX_ERROR);
            return;
        }

        if (ar->status >= NGX_HTTP_OK
            && ar->status < NGX_HTTP_SPECIAL_RESPONSE)
        {
            ctx->message->reply_data = a.data.len
                                       ? a.data : ngx_bayeux_app_empty_object;
            rc = NGX_OK;

        } else {
            if (ar->status >= NGX_HTTP_INTERNAL_SERVER_ERROR) {
                (void) ngx_bayeux_app_unavailable(ctx, NULL);
            }

            rc = ngx_bayeux_app_service_failed(ctx, &a);
        }
    }

    ngx_bayeux_batch_resume(b, rc);
}


static ngx_int_t
ngx_bayeux_app_service_failed(ngx_bayeux_app_ctx_t *ctx,
    ngx_bayeux_app_answer_t *a)
{
    u_char                   *error, *p;
    ngx_uint_t                status;
    ngx_bayeux_batch_t       *b;
    ngx_bayeux_app_reason_t  *r;

    b = ctx->batch;
    status = ctx->ar.status ? ctx->ar.status : NGX_HTTP_BAD_GATEWAY;

    for (r = ngx_bayeux_app_reasons; r->status; r++) {
        if (r->status == status) {
            break;
        }
    }

    error = ngx_pnalloc(b->pool, NGX_INT_T_LEN + sizeof("::") + r->reason.len);
    if (error == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(error, "%ui::%V", status, &r->reason);
    *p = '\0';

    ctx->message->reply_data = a->data.len ? a->data
                                           : ngx_bayeux_app_empty_object;

    return ngx_bayeux_batch_error(b, (char *) error, NGX_BAYEUX_ERROR_PLAIN);
}


/*
 * "403:<reason>:subscribe_denied", as CometD says it; a reason of the
 * application's only if it is a word that cannot break the format
 */

static ngx_int_t
ngx_bayeux_app_denied(ngx_bayeux_app_ctx_t *ctx, ngx_str_t *reason)
{
    u_char              *error, *p;
    ngx_uint_t           i;
    ngx_bayeux_batch_t  *b;

    b = ctx->batch;

    if (reason && reason->len && reason->len <= 64) {
        for (i = 0; i < reason->len; i++) {
            p = &reason->data[i];

            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
                  || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'
                  || *p == '.' || *p == ' '))
            {
                break;
            }
        }

        if (i < reason->len) {
            reason = NULL;
        }

    } else {
        reason = NULL;
    }

    if (reason == NULL) {
        reason = &ngx_bayeux_app_default_reason;
    }

    error = ngx_pnalloc(b->pool, sizeof("403:") - 1 + reason->len
                                 + ctx->operation->denied.len + 1);
    if (error == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(error, "403:", sizeof("403:") - 1);
    p = ngx_cpymem(p, reason->data, reason->len);
    p = ngx_cpymem(p, ctx->operation->denied.data,
                   ctx->operation->denied.len);
    *p = '\0';

    return ngx_bayeux_batch_error(b, (char *) error, NGX_BAYEUX_ERROR_PLAIN);
}


static void
ngx_bayeux_app_cancel(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m,
    void *data)
{
    ngx_bayeux_app_ctx_t  *ctx;

    ctx = b->hook_ctx;

    if (ctx == NULL) {
        return;
    }

    ctx->cancelled = 1;

    if (ctx->waiting && !ctx->completed) {
        /* the engine's operation completes, and resumes the batch */
        return;
    }

    ngx_bayeux_app_request_cancel(&ctx->ar);
}


/* asks the application: NGX_AGAIN, or the refusal if it cannot be asked */

static ngx_int_t
ngx_bayeux_app_ask(ngx_bayeux_app_ctx_t *ctx)
{
    ngx_str_t            body;
    ngx_bayeux_batch_t  *b;

    b = ctx->batch;

    if (ngx_bayeux_app_message_json(b, ctx->message, &body) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx->waiting = 0;
    b->hook_ctx = ctx;

    if (ngx_bayeux_app_request(&ctx->ar, &body) != NGX_AGAIN) {
        return ngx_bayeux_app_unavailable(ctx, NULL);
    }

    return NGX_AGAIN;
}


/* fails closed: the message is refused, and a line is logged */

static ngx_int_t
ngx_bayeux_app_unavailable(ngx_bayeux_app_ctx_t *ctx, const char *why)
{
    ngx_bayeux_batch_t        *b;
    ngx_bayeux_app_request_t  *ar;

    b = ctx->batch;
    ar = &ctx->ar;

    if (ngx_bayeux_app_failure_logged != ngx_time()) {
        ngx_bayeux_app_failure_logged = ngx_time();

        if (why) {
            ngx_log_error(NGX_LOG_ERR, b->log, 0,
                          "bayeux: %V request \"%V\" failed: %s",
                          &ctx->operation->name, ar->uri, why);

        } else if (ar->status) {
            ngx_log_error(NGX_LOG_ERR, b->log, 0,
                          "bayeux: %V request \"%V\" failed: status %ui",
                          &ctx->operation->name, ar->uri, ar->status);

        } else {
            ngx_log_error(NGX_LOG_ERR, b->log, 0,
                          "bayeux: %V request \"%V\" failed: "
                          "no subrequest could be made",
                          &ctx->operation->name, ar->uri);
        }
    }

    ngx_bayeux_batch_error(b, "503::application_unavailable",
                           NGX_BAYEUX_ERROR_RETRY);

    if (ctx->message->kind == NGX_BAYEUX_KIND_HANDSHAKE) {
        /* as any refused handshake: what the server supports */
        b->refusal.transports = 1;
    }

    return NGX_DECLINED;
}


/*
 * What the application receives: the message as the module read it,
 * written again from its fields, whatever the transport carried it in
 * (a JSON body, a form, a JSONP query, a websocket frame).  data and ext
 * are passed as the client sent them; fields the module does not read
 * are not passed.
 */

static ngx_int_t
ngx_bayeux_app_message_json(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m,
    ngx_str_t *out)
{
    u_char             *p;
    ngx_bayeux_json_t   j;
    u_char              advice[2 * NGX_INT_T_LEN + sizeof("{,}")
                               + sizeof("\"timeout\":\"interval\":")];

    if (ngx_bayeux_json_init(&j, b->pool,
                             256 + m->ext.len + m->data.len
                             + m->subscription.len)
           != NGX_OK
        || ngx_bayeux_json_literal(&j, "{") != NGX_OK
        || ngx_bayeux_json_key(&j, "channel") != NGX_OK
        || ngx_bayeux_json_string(&j, &m->channel) != NGX_OK
        || ngx_bayeux_json_string_field(&j, "clientId", &m->client_id)
           != NGX_OK
        || ngx_bayeux_json_string_field(&j, "version", &m->version)
           != NGX_OK
        || ngx_bayeux_json_string_field(&j, "minimumVersion",
                                        &m->minimum_version)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (m->connection_types
        && ngx_bayeux_json_strings_field(&j, "supportedConnectionTypes",
                                         m->connection_types)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_bayeux_json_raw_field(&j, "subscription", &m->subscription)
           != NGX_OK
        || ngx_bayeux_json_raw_field(&j, "data", &m->data) != NGX_OK
        || ngx_bayeux_json_raw_field(&j, "id", &m->id) != NGX_OK
        || ngx_bayeux_json_raw_field(&j, "ext", &m->ext) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (m->advice_timeout >= 0 || m->advice_interval >= 0) {
        p = ngx_cpymem(advice, "{", 1);

        if (m->advice_timeout >= 0) {
            p = ngx_sprintf(p, "\"timeout\":%i", m->advice_timeout);
        }

        if (m->advice_interval >= 0) {
            p = ngx_sprintf(p, "%s\"interval\":%i",
                            (m->advice_timeout >= 0) ? "," : "",
                            m->advice_interval);
        }

        *p++ = '}';

        if (ngx_bayeux_json_key(&j, "advice") != NGX_OK
            || ngx_bayeux_json_raw(&j, advice, p - advice) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_bayeux_json_literal(&j, "}") != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_bayeux_json_result(&j, out);

    return NGX_OK;
}
