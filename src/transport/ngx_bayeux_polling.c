
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
#include "ngx_bayeux_http.h"
#include "ngx_bayeux_clients.h"
#include "ngx_bayeux_cookie.h"
#include "ngx_bayeux_polling.h"


/*
 * The long-polling transport: a POST of a message batch, answered with a
 * JSON array.  A /meta/connect with nothing to deliver keeps the request
 * open until a delivery, its timeout, or the client goes away.
 * Callback-polling (below) works the same way over GET.
 */

typedef struct {
    ngx_http_request_t            *request;
    ngx_bayeux_batch_t             batch;
    ngx_event_t                    hold;
    ngx_str_t                      callback;    /* callback-polling */
    ngx_event_handler_pt           read_handler;
} ngx_bayeux_longpoll_ctx_t;


static void ngx_bayeux_longpoll_body(ngx_http_request_t *r);
static ngx_int_t ngx_bayeux_longpoll_form_message(ngx_http_request_t *r,
    ngx_str_t *text);
static ngx_uint_t ngx_bayeux_longpoll_has_handshake(ngx_array_t *messages);
static void ngx_bayeux_longpoll_done(ngx_bayeux_batch_t *b);
static void ngx_bayeux_longpoll_wake(ngx_bayeux_batch_t *b);
static void ngx_bayeux_longpoll_idle_handler(ngx_event_t *rev);
static void ngx_bayeux_longpoll_unidle(ngx_bayeux_longpoll_ctx_t *ctx);
static void ngx_bayeux_longpoll_abort(ngx_bayeux_batch_t *b);
static void ngx_bayeux_longpoll_enter(ngx_bayeux_batch_t *b);
static void ngx_bayeux_longpoll_leave(ngx_bayeux_batch_t *b);
static ngx_http_request_t *ngx_bayeux_longpoll_parent(ngx_bayeux_batch_t *b);
static void ngx_bayeux_longpoll_timeout(ngx_event_t *ev);
static void ngx_bayeux_longpoll_cleanup(void *data);
static ngx_int_t ngx_bayeux_longpoll_send(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *type, ngx_str_t *body);


static ngx_str_t  ngx_bayeux_json_type =
    ngx_string("application/json;charset=UTF-8");
static ngx_str_t  ngx_bayeux_script_type =
    ngx_string("text/javascript;charset=UTF-8");
static ngx_str_t  ngx_bayeux_text_type =
    ngx_string("text/plain;charset=UTF-8");


/*
 * What the batch calls back is the same for both: they differ in how a
 * batch comes (a body, a query string) and how its reply goes (a
 * callback around it: ctx->callback).
 */

const ngx_bayeux_http_transport_t  ngx_bayeux_long_polling = {
    { ngx_string("long-polling"),
      NGX_BAYEUX_TRANSPORT_LONG_POLLING,
      ngx_bayeux_longpoll_done,
      ngx_bayeux_longpoll_wake,
      NULL,
      ngx_bayeux_longpoll_abort,
      ngx_bayeux_longpoll_enter,
      ngx_bayeux_longpoll_leave },
    NGX_HTTP_POST,
    ngx_null_string,
    ngx_bayeux_longpoll_handler,
    ngx_bayeux_longpoll_parent
};

const ngx_bayeux_http_transport_t  ngx_bayeux_callback_polling = {
    { ngx_string("callback-polling"),
      NGX_BAYEUX_TRANSPORT_CALLBACK_POLLING,
      ngx_bayeux_longpoll_done,
      ngx_bayeux_longpoll_wake,
      NULL,
      ngx_bayeux_longpoll_abort,
      ngx_bayeux_longpoll_enter,
      ngx_bayeux_longpoll_leave },
    NGX_HTTP_GET,
    ngx_null_string,
    ngx_bayeux_jsonp_handler,
    ngx_bayeux_longpoll_parent
};


ngx_int_t
ngx_bayeux_longpoll_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (!(r->method & NGX_HTTP_POST)) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_read_client_request_body(r, ngx_bayeux_longpoll_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_bayeux_longpoll_body(ngx_http_request_t *r)
{
    ngx_str_t  text;

    if (r->connection->error) {
        ngx_http_finalize_request(r, NGX_HTTP_CLIENT_CLOSED_REQUEST);
        return;
    }

    if (ngx_bayeux_http_body_text(r, &text) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_bayeux_longpoll_form_message(r, &text) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_bayeux_longpoll_start(r, &text, NULL);
}


/*
 * Applies the batch in "text" and answers, now or when its connect is
 * released; "callback" is set for callback-polling.  The request is
 * finalized in the end: the caller has counted it (r->main->count).
 */

void
ngx_bayeux_longpoll_start(ngx_http_request_t *r, ngx_str_t *text,
    ngx_str_t *callback)
{
    ngx_str_t                   empty;
    ngx_http_cleanup_t         *cln;
    ngx_bayeux_batch_t         *b;
    ngx_bayeux_parser_t         parser;
    ngx_bayeux_loc_conf_t      *blcf;
    ngx_bayeux_longpoll_ctx_t  *ctx;

    blcf = ngx_http_get_module_loc_conf(r, ngx_bayeux_module);

    if (text->len == 0) {
        ngx_str_set(&empty, "empty body");
        ngx_bayeux_longpoll_bad_request(r, &empty);
        return;
    }

    if (ngx_bayeux_parser_init(&parser, r->pool, blcf->max_batch) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_bayeux_parser_feed(&parser, text->data, text->len) != NGX_OK
        || ngx_bayeux_parser_finish(&parser) != NGX_OK)
    {
        ngx_bayeux_longpoll_bad_request(r, ngx_bayeux_parser_error(&parser));
        return;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_bayeux_longpoll_ctx_t));
    if (ctx == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cln = ngx_http_cleanup_add(r, 0);
    if (cln == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cln->handler = ngx_bayeux_longpoll_cleanup;
    cln->data = ctx;

    ctx->request = r;

    if (callback) {
        ctx->callback = *callback;
    }

    ctx->hold.handler = ngx_bayeux_longpoll_timeout;
    ctx->hold.data = ctx;
    ctx->hold.log = r->connection->log;

    b = &ctx->batch;

    b->pool = r->pool;
    b->log = r->connection->log;
    b->endpoint = blcf->endpoint;
    b->transport = callback ? &ngx_bayeux_callback_polling.bayeux
                            : &ngx_bayeux_long_polling.bayeux;
    b->messages = ngx_bayeux_parser_messages(&parser);
    b->data = ctx;

    if (ngx_bayeux_batch_init(b) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /*
     * tabs of one browser share its BAYEUX_BROWSER cookie, and its
     * sessions are bound to it
     */

    if (ngx_bayeux_browser_id(r, &b->browser) == NGX_OK) {
        b->owner = b->browser;

    } else if (ngx_bayeux_longpoll_has_handshake(b->messages)
               && ngx_bayeux_browser_set_cookie(r, &b->owner) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_set_ctx(r, ctx, ngx_bayeux_module);

    ngx_bayeux_batch_run(b);
}


static ngx_uint_t
ngx_bayeux_longpoll_has_handshake(ngx_array_t *messages)
{
    ngx_uint_t             i;
    ngx_bayeux_message_t  *m;

    m = messages->elts;

    for (i = 0; i < messages->nelts; i++) {
        if (m[i].channel.len == sizeof("/meta/handshake") - 1
            && ngx_strncmp(m[i].channel.data, "/meta/handshake",
                           sizeof("/meta/handshake") - 1) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/* the request body as one piece of memory */



/*
 * CometD also accepts a form-encoded body with the batch in its
 * "message" parameter; replaces "text" with that parameter, decoded.
 * A body of that type without the parameter is taken as JSON, as sent
 * by "curl -d".
 */

static ngx_int_t
ngx_bayeux_longpoll_form_message(ngx_http_request_t *r, ngx_str_t *text)
{
    u_char     *p, *last, *name, *value, *end;
    ngx_str_t  *type, message;

    if (r->headers_in.content_type == NULL) {
        return NGX_OK;
    }

    type = &r->headers_in.content_type->value;

    if (type->len < 33
        || ngx_strncasecmp(type->data,
                           (u_char *) "application/x-www-form-urlencoded",
                           33) != 0)
    {
        return NGX_OK;
    }

    p = text->data;
    last = text->data + text->len;

    while (p < last) {
        name = p;

        end = ngx_strlchr(p, last, '&');
        if (end == NULL) {
            end = last;
        }

        value = ngx_strlchr(p, end, '=');

        if (value && value - name == 7
            && ngx_strncmp(name, "message", 7) == 0)
        {
            message.data = value + 1;
            message.len = end - message.data;

            return ngx_bayeux_http_form_decode(r->pool, &message, text);
        }

        p = end + 1;
    }

    /* no "message" parameter: a JSON body sent with a form type */

    return NGX_OK;
}


static void
ngx_bayeux_longpoll_done(ngx_bayeux_batch_t *b)
{
    ngx_str_t                   body;
    ngx_connection_t           *c;
    ngx_http_request_t         *r;
    ngx_bayeux_longpoll_ctx_t  *ctx = b->data;

    r = ctx->request;

    if (b->parked) {

        if (ngx_exiting) {
            /* a worker that is shutting down holds nothing */
            ngx_bayeux_batch_release(b);
            return;
        }

        ngx_add_timer(&ctx->hold, b->hold);

        /* notice a client that goes away while its connect is held */

        r->read_event_handler = ngx_http_test_reading;
        r->write_event_handler = ngx_http_request_empty_handler;

        /*
         * An exiting worker (quit, reload) closes its idle connections at
         * once: marked idle, a held connect learns of it (c->close) and
         * is answered at once, instead of holding the worker for its
         * hold time or being dropped without a reply.
         */
        c = r->connection;
        c->idle = 1;
        ctx->read_handler = c->read->handler;
        c->read->handler = ngx_bayeux_longpoll_idle_handler;

        return;
    }

    if (ngx_bayeux_batch_response(b, &body) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->callback.len) {
        if (ngx_bayeux_jsonp_wrap(r, &ctx->callback, &body) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_http_finalize_request(r,
                          ngx_bayeux_longpoll_send(r, NGX_HTTP_OK,
                                                   &ngx_bayeux_script_type,
                                                   &body));
        return;
    }

    ngx_http_finalize_request(r,
                              ngx_bayeux_longpoll_send(r, NGX_HTTP_OK,
                                                       &ngx_bayeux_json_type,
                                                       &body));
}


static void
ngx_bayeux_longpoll_wake(ngx_bayeux_batch_t *b)
{
    ngx_connection_t           *c;
    ngx_http_request_t         *r;
    ngx_bayeux_longpoll_ctx_t  *ctx = b->data;

    r = ctx->request;
    c = r->connection;

    if (ctx->hold.timer_set) {
        ngx_del_timer(&ctx->hold);
    }

    ngx_bayeux_longpoll_unidle(ctx);

    r->read_event_handler = ngx_http_block_reading;

    ngx_bayeux_longpoll_done(b);

    ngx_http_run_posted_requests(c);
}


ngx_bayeux_batch_t *
ngx_bayeux_polling_batch(ngx_http_request_t *r)
{
    ngx_bayeux_loc_conf_t      *blcf;
    ngx_bayeux_longpoll_ctx_t  *ctx;

    /*
     * in a bayeux location, only a polling request has a context of
     * this module (a publisher location's requests have their own)
     */

    blcf = ngx_http_get_module_loc_conf(r, ngx_bayeux_module);

    if (blcf->endpoint == NULL) {
        return NULL;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_bayeux_module);

    return ctx ? &ctx->batch : NULL;
}


/* the read handler of a connection whose connect is held */

static void
ngx_bayeux_longpoll_idle_handler(ngx_event_t *rev)
{
    ngx_connection_t           *c;
    ngx_http_request_t         *r;
    ngx_bayeux_longpoll_ctx_t  *ctx;

    c = rev->data;
    r = c->data;
    ctx = ngx_http_get_module_ctx(r, ngx_bayeux_module);

    if (c->close && !c->error) {
        /* the worker is shutting down: answer now, the client reconnects */

        c->close = 0;
        ngx_bayeux_longpoll_unidle(ctx);

        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, c->log, 0,
                       "bayeux: held connect released for shutdown");

        ngx_bayeux_batch_release(&ctx->batch);
        return;
    }

    ctx->read_handler(rev);
}


static void
ngx_bayeux_longpoll_unidle(ngx_bayeux_longpoll_ctx_t *ctx)
{
    ngx_connection_t  *c;

    if (ctx->read_handler == NULL) {
        return;
    }

    c = ctx->request->connection;

    c->idle = 0;
    c->read->handler = ctx->read_handler;
    ctx->read_handler = NULL;
}


/*
 * nginx terminated the request while the engine (or a hook) worked for
 * it, and left it to us while it was blocked.  It is terminated again
 * (NGX_ERROR), now that nothing blocks it: the finalizer nginx leaves is
 * on the request it terminated, which may be a hook's subrequest.
 */

static void
ngx_bayeux_longpoll_abort(ngx_bayeux_batch_t *b)
{
    ngx_connection_t           *c;
    ngx_http_request_t         *r;
    ngx_bayeux_longpoll_ctx_t  *ctx = b->data;

    r = ctx->request;
    c = r->connection;

    ngx_http_finalize_request(r, NGX_ERROR);
    ngx_http_run_posted_requests(c);
}


/*
 * While the batch is inside the engine the request is kept as for
 * asynchronous file I/O: nginx frees a request only once its "blocked"
 * count is back to zero.
 */

static void
ngx_bayeux_longpoll_enter(ngx_bayeux_batch_t *b)
{
    ngx_bayeux_longpoll_ctx_t  *ctx = b->data;

    ctx->request->main->blocked++;
}


static void
ngx_bayeux_longpoll_leave(ngx_bayeux_batch_t *b)
{
    ngx_bayeux_longpoll_ctx_t  *ctx = b->data;

    ctx->request->main->blocked--;
}


/*
 * The request itself.  nginx wakes it when its subrequest is done: it
 * must not run its phases again (its handler when it was read at once),
 * for the batch goes on from the hook that made the subrequest.
 */

static ngx_http_request_t *
ngx_bayeux_longpoll_parent(ngx_bayeux_batch_t *b)
{
    ngx_http_request_t         *r;
    ngx_bayeux_longpoll_ctx_t  *ctx = b->data;

    r = ctx->request;

    if (r->write_event_handler == ngx_http_core_run_phases) {
        r->write_event_handler = ngx_http_request_empty_handler;
    }

    return r;
}


static void
ngx_bayeux_longpoll_timeout(ngx_event_t *ev)
{
    ngx_bayeux_longpoll_ctx_t  *ctx = ev->data;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "bayeux: held connect timed out");

    ngx_bayeux_batch_release(&ctx->batch);
}


static void
ngx_bayeux_longpoll_cleanup(void *data)
{
    ngx_bayeux_longpoll_ctx_t  *ctx = data;

    if (ctx->hold.timer_set) {
        ngx_del_timer(&ctx->hold);
    }

    ngx_bayeux_longpoll_unidle(ctx);

    ngx_bayeux_batch_cancel(&ctx->batch);
}


static ngx_int_t
ngx_bayeux_longpoll_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_str_t *body)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = status;
    r->headers_out.content_type = *type;
    r->headers_out.content_type_len = type->len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.content_length_n = body->len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = body->data;
    b->last = body->data + body->len;
    b->memory = body->len ? 1 : 0;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


void
ngx_bayeux_longpoll_bad_request(ngx_http_request_t *r, ngx_str_t *reason)
{
    ngx_str_t  body;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "bayeux: bad request: %V", reason);

    body.len = reason->len + 1;
    body.data = ngx_pnalloc(r->pool, body.len);

    if (body.data == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy(body.data, reason->data, reason->len);
    body.data[reason->len] = '\n';

    ngx_http_finalize_request(r,
                              ngx_bayeux_longpoll_send(r, NGX_HTTP_BAD_REQUEST,
                                                       &ngx_bayeux_text_type,
                                                       &body));
}


/*
 * The callback-polling transport (JSONP): GET <url>?message=<batch>&
 * jsonp=<callback>, answered "callback([...]);" after an empty comment,
 * as a script.  The callback name is checked, never reflected when it is
 * refused: it runs in the page that loads the script.  A name is one
 * identifier, as the clients make them ("_cometd_jsonp_0", "__jsonp1__"):
 * no member access ("document.write"), nothing else.  The comment keeps
 * the reply from starting with bytes the caller chose.
 */

static ngx_int_t ngx_bayeux_jsonp_callback_valid(ngx_str_t *name);
static void ngx_bayeux_jsonp_hide_query(ngx_http_request_t *r);


/*
 * The query carries the messages, clientId included (a credential): the
 * request line that logs show ($request in the access log, "request:"
 * in the error log's lines about the request) is left without it, "?..."
 * in its place.  $args and $request_uri keep it, for whoever asks.
 */

static void
ngx_bayeux_jsonp_hide_query(ngx_http_request_t *r)
{
    u_char  *p, *q, *last, *line;

    p = r->request_line.data;
    last = p + r->request_line.len;

    q = ngx_strlchr(p, last, '?');
    if (q == NULL) {
        return;
    }

    /* the protocol, after the target's last blank */

    for (last--; last > q && *last != ' '; last--) { /* void */ }

    line = ngx_pnalloc(r->pool, r->request_line.len + sizeof("...") - 1);
    if (line == NULL) {
        return;
    }

    p = ngx_cpymem(line, r->request_line.data, q + 1 - r->request_line.data);
    p = ngx_cpymem(p, "...", 3);

    if (*last == ' ') {
        p = ngx_cpymem(p, last,
                       r->request_line.data + r->request_line.len - last);
    }

    r->request_line.data = line;
    r->request_line.len = p - line;
}


ngx_int_t
ngx_bayeux_jsonp_handler(ngx_http_request_t *r)
{
    ngx_str_t  message, callback, text, reason;

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_arg(r, (u_char *) "jsonp", 5, &callback) != NGX_OK) {
        ngx_str_set(&callback, "jsonpcallback");
    }

    r->main->count++;

    if (ngx_bayeux_jsonp_callback_valid(&callback) != NGX_OK) {
        ngx_str_set(&reason, "invalid jsonp callback name");
        ngx_bayeux_longpoll_bad_request(r, &reason);
        return NGX_DONE;
    }

    if (ngx_http_arg(r, (u_char *) "message", 7, &message) != NGX_OK) {
        ngx_str_set(&reason, "no message parameter");
        ngx_bayeux_longpoll_bad_request(r, &reason);
        return NGX_DONE;
    }

    if (ngx_bayeux_http_form_decode(r->pool, &message, &text) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_DONE;
    }

    ngx_bayeux_jsonp_hide_query(r);

    ngx_bayeux_longpoll_start(r, &text, &callback);

    return NGX_DONE;
}


static ngx_int_t
ngx_bayeux_jsonp_callback_valid(ngx_str_t *name)
{
    u_char  *p, c;

    if (name->len == 0 || name->len > NGX_BAYEUX_JSONP_MAX_CALLBACK) {
        return NGX_DECLINED;
    }

    for (p = name->data; p < name->data + name->len; p++) {
        c = *p;

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || c == '_' || c == '$'
            || (c >= '0' && c <= '9' && p > name->data))
        {
            continue;
        }

        return NGX_DECLINED;
    }

    return NGX_OK;
}


ngx_int_t
ngx_bayeux_jsonp_wrap(ngx_http_request_t *r, ngx_str_t *callback,
    ngx_str_t *body)
{
    u_char     *p, *q;
    ngx_str_t   nosniff;

    p = ngx_pnalloc(r->pool, sizeof("/**/();") - 1 + callback->len
                             + body->len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    q = ngx_cpymem(p, "/**/", sizeof("/**/") - 1);
    q = ngx_cpymem(q, callback->data, callback->len);
    *q++ = '(';
    q = ngx_cpymem(q, body->data, body->len);
    *q++ = ')';
    *q++ = ';';

    body->data = p;
    body->len = q - p;

    ngx_str_set(&nosniff, "nosniff");

    return ngx_bayeux_http_add_header(r, "X-Content-Type-Options",
                                      &nosniff);
}
