
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_channel.h"
#include "ngx_bayeux_message.h"
#include "ngx_bayeux_json.h"
#include "ngx_bayeux_batch.h"
#include "ngx_bayeux_reply.h"
#include "ngx_bayeux_http.h"
#include "ngx_bayeux_lazy.h"
#include "ngx_bayeux_publisher.h"


/*
 * The publisher location.  POST: a message {"channel","data"} or an
 * array of them, each published on its channel, or delivered to one
 * session ("clientId") or to every session of a user ("user"), whatever
 * they subscribed to; answered with one result per message, in order.
 * GET ?user=<name> or ?channel=<name>: how many sessions the user has,
 * how many subscribers the channel has.  Every message is checked
 * before any is applied; then they are applied one after the other,
 * as a client's batch is.
 */


typedef struct {
    ngx_http_request_t          *request;
    ngx_bayeux_endpoint_t       *endpoint;
    ngx_array_t                 *messages;      /* ngx_bayeux_message_t */
    ngx_uint_t                   next;

    /* what ngx_bayeux_delivery() writes a message with */
    ngx_bayeux_batch_t           batch;

    ngx_bayeux_op_t              op;
    ngx_bayeux_json_t            out;
    ngx_uint_t                   status;
    ngx_str_t                    what;          /* GET: user or channel */

    unsigned                     calling:1;
    unsigned                     completed:1;
    unsigned                     presence:1;
} ngx_bayeux_publisher_ctx_t;


static ngx_int_t ngx_bayeux_publisher_handler(ngx_http_request_t *r);
static void ngx_bayeux_publisher_body(ngx_http_request_t *r);
static ngx_int_t ngx_bayeux_publisher_check(ngx_bayeux_publisher_ctx_t *ctx,
    ngx_str_t *why);
static void ngx_bayeux_publisher_run(ngx_bayeux_publisher_ctx_t *ctx);
static void ngx_bayeux_publisher_done(ngx_bayeux_op_t *op);
static ngx_int_t ngx_bayeux_publisher_result(ngx_bayeux_publisher_ctx_t *ctx,
    ngx_bayeux_message_t *m, ngx_int_t rc);
static ngx_int_t ngx_bayeux_publisher_presence(ngx_http_request_t *r,
    ngx_bayeux_publisher_ctx_t *ctx);
static ngx_int_t ngx_bayeux_publisher_counted(
    ngx_bayeux_publisher_ctx_t *ctx);
static ngx_int_t ngx_bayeux_publisher_send(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *body);
static ngx_int_t ngx_bayeux_publisher_error(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *why);
static ngx_int_t ngx_bayeux_publisher_engine(ngx_bayeux_publisher_ctx_t *ctx,
    void (*operation)(ngx_bayeux_op_t *op));


static ngx_str_t  ngx_bayeux_publisher_json = ngx_string("application/json");


char *
ngx_bayeux_publisher_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_bayeux_loc_conf_t *blcf = conf;

    ngx_str_t                  *value;
    ngx_bayeux_main_conf_t     *bmcf;
    ngx_bayeux_loc_conf_t     **p;
    ngx_http_core_loc_conf_t   *clcf;

    if (blcf->publisher.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "takes the name of a bayeux location";
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler) {
        return "conflicts with another content handler in this location";
    }

    clcf->handler = ngx_bayeux_publisher_handler;

    blcf->publisher = value[1];

    bmcf = ngx_http_conf_get_module_main_conf(cf, ngx_bayeux_module);

    p = ngx_array_push(&bmcf->publishers);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    *p = blcf;

    return NGX_CONF_OK;
}


ngx_int_t
ngx_bayeux_publisher_resolve(ngx_conf_t *cf)
{
    ngx_uint_t                i, k;
    ngx_bayeux_endpoint_t   **ep;
    ngx_bayeux_loc_conf_t   **pub;
    ngx_bayeux_main_conf_t   *bmcf;

    bmcf = ngx_http_conf_get_module_main_conf(cf, ngx_bayeux_module);

    pub = bmcf->publishers.elts;
    ep = bmcf->endpoints.elts;

    for (i = 0; i < bmcf->publishers.nelts; i++) {

        for (k = 0; k < bmcf->endpoints.nelts; k++) {
            if (ep[k]->name.len == pub[i]->publisher.len
                && ngx_strncmp(ep[k]->name.data, pub[i]->publisher.data,
                               ep[k]->name.len)
                   == 0)
            {
                pub[i]->publisher_endpoint = ep[k];
                break;
            }
        }

        if (pub[i]->publisher_endpoint == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "bayeux_publisher \"%V\": no bayeux location "
                          "of that name", &pub[i]->publisher);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_publisher_handler(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_bayeux_loc_conf_t       *blcf;
    ngx_bayeux_publisher_ctx_t  *ctx;

    if (r != r->main) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_POST))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    blcf = ngx_http_get_module_loc_conf(r, ngx_bayeux_module);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_bayeux_publisher_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ctx->endpoint = blcf->publisher_endpoint;
    ctx->status = NGX_HTTP_OK;

    ctx->batch.pool = r->pool;
    ctx->batch.log = r->connection->log;
    ctx->batch.endpoint = ctx->endpoint;

    ngx_http_set_ctx(r, ctx, ngx_bayeux_module);

    if (!(r->method & NGX_HTTP_POST)) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_bayeux_publisher_presence(r, ctx);
    }

    rc = ngx_http_read_client_request_body(r, ngx_bayeux_publisher_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_bayeux_publisher_body(ngx_http_request_t *r)
{
    ngx_str_t                    text, why;
    ngx_bayeux_parser_t          parser;
    ngx_bayeux_publisher_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_bayeux_module);

    if (r->connection->error) {
        ngx_http_finalize_request(r, NGX_HTTP_CLIENT_CLOSED_REQUEST);
        return;
    }

    if (ngx_bayeux_http_body_text(r, &text) != NGX_OK
        || ngx_bayeux_parser_init(&parser, r->pool,
                                  ctx->endpoint->conf->max_batch)
           != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (text.len == 0) {
        ngx_str_set(&why, "empty body");
        ngx_http_finalize_request(r,
                                  ngx_bayeux_publisher_error(r,
                                                        NGX_HTTP_BAD_REQUEST,
                                                        &why));
        return;
    }

    if (ngx_bayeux_parser_feed(&parser, text.data, text.len) != NGX_OK
        || ngx_bayeux_parser_finish(&parser) != NGX_OK)
    {
        ngx_http_finalize_request(r,
                                  ngx_bayeux_publisher_error(r,
                                                        NGX_HTTP_BAD_REQUEST,
                                           ngx_bayeux_parser_error(&parser)));
        return;
    }

    ctx->messages = ngx_bayeux_parser_messages(&parser);

    if (ngx_bayeux_publisher_check(ctx, &why) != NGX_OK) {
        ngx_http_finalize_request(r,
                                  ngx_bayeux_publisher_error(r,
                                                        NGX_HTTP_BAD_REQUEST,
                                                        &why));
        return;
    }

    if (ngx_bayeux_json_init(&ctx->out, r->pool,
                             64 * ctx->messages->nelts + 16)
           != NGX_OK
        || ngx_bayeux_json_literal(&ctx->out, "[") != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* r->main->count is ours since the body was read */

    ngx_bayeux_publisher_run(ctx);
}


/* every message is checked before any is applied */

static ngx_int_t
ngx_bayeux_publisher_check(ngx_bayeux_publisher_ctx_t *ctx, ngx_str_t *why)
{
    char                  *error;
    ngx_uint_t             i, flags;
    ngx_bayeux_message_t  *m;

    m = ctx->messages->elts;

    for (i = 0; i < ctx->messages->nelts; i++) {

        error = NULL;

        if (m[i].channel.len == 0) {
            error = "channel missing";

        } else if (ngx_bayeux_channel_parse(&m[i].channel, &flags)
                   != NGX_OK)
        {
            error = "invalid channel";

        } else if (flags & NGX_BAYEUX_CHANNEL_META) {
            error = "/meta channels are not published to";

        } else if (flags & (NGX_BAYEUX_CHANNEL_WILD
                            |NGX_BAYEUX_CHANNEL_DEEP_WILD))
        {
            error = "a message goes to a channel, not to a pattern";

        } else if (m[i].data.len == 0) {
            error = "data missing";

        } else if (m[i].client_id.len && m[i].user.len) {
            error = "\"clientId\" and \"user\" together";

        } else if ((flags & NGX_BAYEUX_CHANNEL_SERVICE)
                   && m[i].client_id.len == 0 && m[i].user.len == 0)
        {
            error = "/service channels are not published to: "
                    "name a \"clientId\" or a \"user\"";
        }

        if (error) {
            why->data = ngx_pnalloc(ctx->request->pool, 64 + ngx_strlen(error));
            if (why->data == NULL) {
                return NGX_ERROR;
            }

            why->len = ngx_sprintf(why->data, "message %ui: %s", i + 1,
                                   error)
                       - why->data;

            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* the messages one after the other; the engine may answer at once */

static void
ngx_bayeux_publisher_run(ngx_bayeux_publisher_ctx_t *ctx)
{
    ngx_str_t              body;
    ngx_int_t              rc;
    ngx_bayeux_op_t       *op;
    ngx_bayeux_message_t  *m;
    ngx_http_request_t    *r;

    r = ctx->request;
    m = ctx->messages->elts;
    op = &ctx->op;

    while (ctx->next < ctx->messages->nelts) {

        ngx_memzero(op, sizeof(ngx_bayeux_op_t));

        if (ngx_bayeux_delivery(&ctx->batch, &m[ctx->next], &op->message)
            != NGX_OK)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        op->channel = m[ctx->next].channel;
        op->lazy = ngx_bayeux_lazy(ctx->endpoint->conf, &op->channel);
        op->client_id = m[ctx->next].client_id;
        op->user = m[ctx->next].user;

        rc = ngx_bayeux_publisher_engine(ctx,
                                     (op->user.len || op->client_id.len)
                                     ? ctx->endpoint->engine->deliver
                                     : ctx->endpoint->engine->publish);
        if (rc == NGX_AGAIN) {
            return;
        }

        if (ngx_bayeux_publisher_result(ctx, &m[ctx->next], op->rc)
            != NGX_OK)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ctx->next++;
    }

    if (ngx_bayeux_json_literal(&ctx->out, "]") != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_bayeux_json_result(&ctx->out, &body);

    ngx_http_finalize_request(r,
                          ngx_bayeux_publisher_send(r, ctx->status, &body));
}


/*
 * An engine operation; NGX_AGAIN: it completes later, and the request
 * is kept (r->main->blocked) until then, whatever happens to its client.
 */

static ngx_int_t
ngx_bayeux_publisher_engine(ngx_bayeux_publisher_ctx_t *ctx,
    void (*operation)(ngx_bayeux_op_t *op))
{
    ngx_bayeux_op_t     *op;
    ngx_http_request_t  *r;

    r = ctx->request;
    op = &ctx->op;

    op->endpoint = ctx->endpoint;
    op->pool = r->pool;
    op->log = r->connection->log;
    op->handler = ngx_bayeux_publisher_done;
    op->data = ctx;

    ctx->completed = 0;
    ctx->calling = 1;
    r->main->blocked++;

    operation(op);

    ctx->calling = 0;

    if (!ctx->completed) {
        return NGX_AGAIN;
    }

    r->main->blocked--;

    return NGX_OK;
}


static void
ngx_bayeux_publisher_done(ngx_bayeux_op_t *op)
{
    ngx_connection_t            *c;
    ngx_http_request_t          *r;
    ngx_bayeux_message_t        *m;
    ngx_bayeux_publisher_ctx_t  *ctx;

    ctx = op->data;
    ctx->completed = 1;

    if (ctx->calling) {
        return;
    }

    r = ctx->request;
    c = r->connection;

    r->main->blocked--;

    if (ctx->presence) {
        ngx_http_finalize_request(r, ngx_bayeux_publisher_counted(ctx));
        ngx_http_run_posted_requests(c);
        return;
    }

    m = ctx->messages->elts;

    if (ngx_bayeux_publisher_result(ctx, &m[ctx->next], op->rc) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        ngx_http_run_posted_requests(c);
        return;
    }

    ctx->next++;

    ngx_bayeux_publisher_run(ctx);
    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_bayeux_publisher_result(ngx_bayeux_publisher_ctx_t *ctx,
    ngx_bayeux_message_t *m, ngx_int_t rc)
{
    u_char              count[NGX_INT_T_LEN];
    ngx_str_t           error;
    ngx_bayeux_json_t  *j;

    j = &ctx->out;

    if (ctx->next && ngx_bayeux_json_literal(j, ",") != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_bayeux_json_literal(j, "{") != NGX_OK
        || ngx_bayeux_json_raw_field(j, "id", &m->id) != NGX_OK
        || ngx_bayeux_json_key(j, "channel") != NGX_OK
        || ngx_bayeux_json_string(j, &m->channel) != NGX_OK
        || ngx_bayeux_json_key(j, "successful") != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (rc == NGX_OK) {
        if (ngx_bayeux_json_literal(j, "true") != NGX_OK
            || ngx_bayeux_json_key(j, "sessions") != NGX_OK
            || ngx_bayeux_json_raw(j, count,
                                   ngx_sprintf(count, "%ui", ctx->op.count)
                                   - count)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else {
        if (rc == NGX_DECLINED) {
            ngx_str_set(&error, "402::session_unknown");

        } else if (rc == NGX_BUSY) {
            ngx_str_set(&error, "503::engine_unavailable");
            ctx->status = NGX_HTTP_SERVICE_UNAVAILABLE;

        } else {
            ngx_str_set(&error, "500::server_error");
            ctx->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ngx_bayeux_json_literal(j, "false") != NGX_OK
            || ngx_bayeux_json_string_field(j, "error", &error) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return ngx_bayeux_json_literal(j, "}");
}


/* GET ?user=<name> or ?channel=<name> */

static ngx_int_t
ngx_bayeux_publisher_presence(ngx_http_request_t *r,
    ngx_bayeux_publisher_ctx_t *ctx)
{
    u_char           *dst, *src;
    ngx_str_t         arg, why;
    ngx_uint_t        flags, by_user;
    ngx_bayeux_op_t  *op;

    op = &ctx->op;
    ctx->presence = 1;

    if (ngx_http_arg(r, (u_char *) "user", 4, &arg) == NGX_OK) {
        by_user = 1;

    } else if (ngx_http_arg(r, (u_char *) "channel", 7, &arg) == NGX_OK) {
        by_user = 0;

    } else {
        ngx_str_set(&why, "a \"user\" or a \"channel\" argument is needed");
        return ngx_bayeux_publisher_error(r, NGX_HTTP_BAD_REQUEST, &why);
    }

    dst = ngx_pnalloc(r->pool, arg.len);
    if (dst == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->what.data = dst;
    src = arg.data;
    ngx_unescape_uri(&dst, &src, arg.len, 0);
    ctx->what.len = dst - ctx->what.data;

    if (ctx->what.len == 0) {
        ngx_str_set(&why, "an empty name");
        return ngx_bayeux_publisher_error(r, NGX_HTTP_BAD_REQUEST, &why);
    }

    if (by_user) {
        op->user = ctx->what;

    } else {
        op->channel = ctx->what;

        if (ngx_bayeux_channel_parse(&op->channel, &flags) != NGX_OK) {
            ngx_str_set(&why, "invalid channel");
            return ngx_bayeux_publisher_error(r, NGX_HTTP_BAD_REQUEST, &why);
        }
    }

    r->main->count++;

    if (ngx_bayeux_publisher_engine(ctx, ctx->endpoint->engine->count)
        == NGX_AGAIN)
    {
        return NGX_DONE;
    }

    ngx_http_finalize_request(r, ngx_bayeux_publisher_counted(ctx));

    return NGX_DONE;
}


static ngx_int_t
ngx_bayeux_publisher_counted(ngx_bayeux_publisher_ctx_t *ctx)
{
    u_char              count[NGX_INT_T_LEN];
    ngx_str_t           body, why;
    ngx_bayeux_json_t   j;
    ngx_http_request_t *r;

    r = ctx->request;

    if (ctx->op.rc != NGX_OK) {
        ngx_str_set(&why, "503::engine_unavailable");
        return ngx_bayeux_publisher_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                          &why);
    }

    if (ngx_bayeux_json_init(&j, r->pool, 64 + ctx->what.len) != NGX_OK
        || ngx_bayeux_json_literal(&j, "{") != NGX_OK
        || ngx_bayeux_json_key(&j, ctx->op.user.len ? "user" : "channel")
           != NGX_OK
        || ngx_bayeux_json_string(&j, &ctx->what) != NGX_OK
        || ngx_bayeux_json_key(&j, ctx->op.user.len ? "sessions"
                                                    : "subscribers")
           != NGX_OK
        || ngx_bayeux_json_raw(&j, count,
                               ngx_sprintf(count, "%ui", ctx->op.count)
                               - count)
           != NGX_OK
        || ngx_bayeux_json_literal(&j, "}") != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_bayeux_json_result(&j, &body);

    return ngx_bayeux_publisher_send(r, NGX_HTTP_OK, &body);
}


static ngx_int_t
ngx_bayeux_publisher_error(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *why)
{
    ngx_str_t          body;
    ngx_bayeux_json_t  j;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "bayeux publisher: %V", why);

    if (ngx_bayeux_json_init(&j, r->pool, 32 + 2 * why->len) != NGX_OK
        || ngx_bayeux_json_literal(&j, "{") != NGX_OK
        || ngx_bayeux_json_string_field(&j, "error", why) != NGX_OK
        || ngx_bayeux_json_literal(&j, "}") != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_bayeux_json_result(&j, &body);

    return ngx_bayeux_publisher_send(r, status, &body);
}


static ngx_int_t
ngx_bayeux_publisher_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *body)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = status;
    r->headers_out.content_type = ngx_bayeux_publisher_json;
    r->headers_out.content_type_len = ngx_bayeux_publisher_json.len;
    r->headers_out.content_length_n = body->len + 1;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_create_temp_buf(r->pool, body->len + 1);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->last = ngx_cpymem(b->last, body->data, body->len);
    *b->last++ = '\n';
    b->last_buf = (r == r->main);
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
