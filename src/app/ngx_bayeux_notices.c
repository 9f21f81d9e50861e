
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_channel.h"
#include "ngx_bayeux_engine.h"
#include "ngx_bayeux_json.h"
#include "ngx_bayeux_fake_request.h"
#include "ngx_bayeux_app_request.h"
#include "ngx_bayeux_lazy.h"
#include "ngx_bayeux_notices.h"


/*
 * The engine tells, from inside itself, that a session ended or that a
 * user's first session began (ep->session_ended, ep->user_present): a
 * notice copies what it needs into a pool of its own and acts from a
 * posted event.  To the application it is a subrequest of a request of
 * the server's own (ngx_bayeux_keep_location()), which nothing waits
 * for; to the presence channel, a publish of the server's own.
 */


typedef struct {
    ngx_bayeux_kept_request_t   *kept;
    ngx_connection_t            *origin;
} ngx_bayeux_notices_t;


typedef struct {
    ngx_pool_t                  *pool;
    ngx_bayeux_endpoint_t       *endpoint;
    ngx_event_t                  event;
    ngx_bayeux_op_t              op;

    ngx_str_t                    client_id;
    ngx_str_t                    user;
    ngx_uint_t                   reason;        /* 0: a user came */

    unsigned                     last:1;
    unsigned                     calling:1;
    unsigned                     completed:1;
} ngx_bayeux_notice_t;


static void ngx_bayeux_notice_ended(ngx_bayeux_endpoint_t *ep,
    ngx_bayeux_session_end_t *e);
static void ngx_bayeux_notice_present(ngx_bayeux_endpoint_t *ep,
    ngx_str_t *user);
static ngx_bayeux_notice_t *ngx_bayeux_notice_create(
    ngx_bayeux_endpoint_t *ep, ngx_str_t *client_id, ngx_str_t *user);
static void ngx_bayeux_notice_handler(ngx_event_t *ev);
static void ngx_bayeux_notice_request(ngx_bayeux_notice_t *n);
static void ngx_bayeux_notice_publish(ngx_bayeux_notice_t *n,
    ngx_uint_t present);
static void ngx_bayeux_notice_published(ngx_bayeux_op_t *op);


static ngx_str_t  ngx_bayeux_notice_reasons[] = {
    ngx_null_string,
    ngx_string("disconnect"),
    ngx_string("expired"),
    ngx_string("overflow"),
    ngx_string("inactive")
};


ngx_int_t
ngx_bayeux_notices_init_endpoint(ngx_conf_t *cf, ngx_bayeux_endpoint_t *ep)
{
    ngx_bayeux_notices_t   *notices;
    ngx_bayeux_loc_conf_t  *conf;

    conf = ep->conf;

    if (conf->disconnect_request.len == 0 && conf->presence_channel.len == 0)
    {
        return NGX_OK;
    }

    ep->session_ended = ngx_bayeux_notice_ended;

    if (conf->presence_channel.len) {
        ep->user_present = ngx_bayeux_notice_present;
    }

    if (conf->disconnect_request.len == 0) {
        return NGX_OK;
    }

    notices = ngx_pcalloc(cf->pool, sizeof(ngx_bayeux_notices_t));
    if (notices == NULL) {
        return NGX_ERROR;
    }

    notices->kept = ngx_bayeux_keep_location(cf->pool, ep->conf_ctx,
                                             &ep->name, &notices->origin);
    if (notices->kept == NULL) {
        return NGX_ERROR;
    }

    ep->notices = notices;

    return NGX_OK;
}


/* a channel, not a pattern, not /meta: where presence is published */

char *
ngx_bayeux_presence_channel(ngx_conf_t *cf, void *post, void *data)
{
    ngx_str_t  *name = data;

    ngx_uint_t  flags;

    if (ngx_bayeux_channel_parse(name, &flags) != NGX_OK
        || (flags & (NGX_BAYEUX_CHANNEL_META|NGX_BAYEUX_CHANNEL_SERVICE
                     |NGX_BAYEUX_CHANNEL_WILD|NGX_BAYEUX_CHANNEL_DEEP_WILD)))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bayeux_presence_channel\" must be a channel "
                           "name, not /meta, /service or a pattern: \"%V\"",
                           name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void
ngx_bayeux_notice_ended(ngx_bayeux_endpoint_t *ep,
    ngx_bayeux_session_end_t *e)
{
    ngx_bayeux_notice_t  *n;

    if (ep->conf->disconnect_request.len == 0
        && !(e->last && e->user.len))
    {
        /* nothing to tell */
        return;
    }

    n = ngx_bayeux_notice_create(ep, &e->client_id, &e->user);
    if (n == NULL) {
        return;
    }

    n->reason = e->reason;
    n->last = e->last;
}


static void
ngx_bayeux_notice_present(ngx_bayeux_endpoint_t *ep, ngx_str_t *user)
{
    ngx_str_t  none;

    ngx_str_null(&none);

    (void) ngx_bayeux_notice_create(ep, &none, user);
}


static ngx_bayeux_notice_t *
ngx_bayeux_notice_create(ngx_bayeux_endpoint_t *ep, ngx_str_t *client_id,
    ngx_str_t *user)
{
    ngx_pool_t           *pool;
    ngx_bayeux_notice_t  *n;

    pool = ngx_create_pool(1024, ngx_cycle->log);
    if (pool == NULL) {
        return NULL;
    }

    n = ngx_pcalloc(pool, sizeof(ngx_bayeux_notice_t));
    if (n == NULL) {
        goto failed;
    }

    n->pool = pool;
    n->endpoint = ep;

    /* (an empty one is not copied: no data to copy from) */

    if (client_id->len) {
        n->client_id.len = client_id->len;
        n->client_id.data = ngx_pstrdup(pool, client_id);
    }

    if (user->len) {
        n->user.len = user->len;
        n->user.data = ngx_pstrdup(pool, user);
    }

    if ((client_id->len && n->client_id.data == NULL)
        || (user->len && n->user.data == NULL))
    {
        goto failed;
    }

    n->event.handler = ngx_bayeux_notice_handler;
    n->event.data = n;
    n->event.log = ngx_cycle->log;

    ngx_post_event(&n->event, &ngx_posted_events);

    return n;

failed:

    ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                  "bayeux: a notice of a session was lost: no memory");
    ngx_destroy_pool(pool);

    return NULL;
}


static void
ngx_bayeux_notice_handler(ngx_event_t *ev)
{
    ngx_bayeux_notice_t  *n = ev->data;

    ngx_bayeux_loc_conf_t  *conf;

    conf = n->endpoint->conf;

    if (n->reason == 0) {
        ngx_bayeux_notice_publish(n, 1);
        return;
    }

    if (conf->disconnect_request.len) {
        ngx_bayeux_notice_request(n);
    }

    if (conf->presence_channel.len && n->last && n->user.len) {
        ngx_bayeux_notice_publish(n, 0);
        return;
    }

    ngx_destroy_pool(n->pool);
}


/* {"clientId":"...","user":"...","reason":"disconnect"|"expired"} */

static void
ngx_bayeux_notice_request(ngx_bayeux_notice_t *n)
{
    ngx_str_t              body;
    ngx_bayeux_json_t      j;
    ngx_http_request_t    *r;
    ngx_bayeux_notices_t  *notices;

    notices = n->endpoint->notices;

    if (ngx_bayeux_json_init(&j, n->pool, 128 + 2 * n->user.len) != NGX_OK
        || ngx_bayeux_json_literal(&j, "{") != NGX_OK
        || ngx_bayeux_json_string_field(&j, "clientId", &n->client_id)
           != NGX_OK
        || ngx_bayeux_json_key(&j, "user") != NGX_OK
        || (n->user.len ? ngx_bayeux_json_string(&j, &n->user)
                        : ngx_bayeux_json_literal(&j, "null"))
           != NGX_OK
        || ngx_bayeux_json_key(&j, "reason") != NGX_OK
        || ngx_bayeux_json_string(&j, &ngx_bayeux_notice_reasons[n->reason])
           != NGX_OK
        || ngx_bayeux_json_literal(&j, "}") != NGX_OK)
    {
        goto failed;
    }

    ngx_bayeux_json_result(&j, &body);

    /* the log of the cycle this runs in */
    notices->origin->log = ngx_cycle->log;

    r = ngx_bayeux_fake_request(notices->kept, notices->origin, NULL);
    if (r == NULL) {
        goto failed;
    }

    if (ngx_bayeux_app_notice(r, &n->endpoint->conf->disconnect_request,
                              &body)
        == NGX_OK)
    {
        return;
    }

    /* the fake request, started with no subrequest, frees itself */

failed:

    ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                  "bayeux: disconnect request \"%V\" failed: "
                  "no subrequest could be made",
                  &n->endpoint->conf->disconnect_request);
}


/* {"user":"...","present":true|false} on the presence channel */

static void
ngx_bayeux_notice_publish(ngx_bayeux_notice_t *n, ngx_uint_t present)
{
    ngx_bayeux_op_t    *op;
    ngx_bayeux_json_t   j;

    op = &n->op;

    if (ngx_bayeux_json_init(&j, n->pool, 128 + 2 * n->user.len) != NGX_OK
        || ngx_bayeux_json_literal(&j, "{") != NGX_OK
        || ngx_bayeux_json_key(&j, "channel") != NGX_OK
        || ngx_bayeux_json_string(&j, &n->endpoint->conf->presence_channel)
           != NGX_OK
        || ngx_bayeux_json_literal(&j, ",\"data\":{") != NGX_OK
        || ngx_bayeux_json_key(&j, "user") != NGX_OK
        || ngx_bayeux_json_string(&j, &n->user) != NGX_OK
        || ngx_bayeux_json_key(&j, "present") != NGX_OK
        || (present ? ngx_bayeux_json_literal(&j, "true")
                    : ngx_bayeux_json_literal(&j, "false"))
           != NGX_OK
        || ngx_bayeux_json_literal(&j, "}}") != NGX_OK)
    {
        ngx_destroy_pool(n->pool);
        return;
    }

    ngx_bayeux_json_result(&j, &op->message);

    op->endpoint = n->endpoint;
    op->pool = n->pool;
    op->log = ngx_cycle->log;
    op->channel = n->endpoint->conf->presence_channel;
    op->lazy = ngx_bayeux_lazy(n->endpoint->conf, &op->channel);
    op->handler = ngx_bayeux_notice_published;
    op->data = n;

    /* the pool goes once both the call and its handler are over */

    n->calling = 1;
    n->endpoint->engine->publish(op);
    n->calling = 0;

    if (n->completed) {
        ngx_destroy_pool(n->pool);
    }
}


static void
ngx_bayeux_notice_published(ngx_bayeux_op_t *op)
{
    ngx_bayeux_notice_t  *n = op->data;

    if (op->rc != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "bayeux: presence of a user not published on \"%V\"",
                      &op->channel);
    }

    n->completed = 1;

    if (!n->calling) {
        ngx_destroy_pool(n->pool);
    }
}
