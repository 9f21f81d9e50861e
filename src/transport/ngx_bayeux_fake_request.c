
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_bayeux_fake_request.h"


/*
 * A parent for subrequests where there is no request: a websocket frees
 * its HTTP request once the upgrade is done, so that an idle websocket
 * costs its connection and little else.  What a subrequest needs of that
 * request is kept at the upgrade (ngx_bayeux_keep_request(): the
 * location's configuration, the request headers, the URI, the client's
 * address), and a fake request is built from it when a subrequest is to
 * be made, then freed once that subrequest is done.
 *
 * The fake request has a fake connection of its own (no socket, its own
 * pool, a copy of the real connection's log): nginx's subrequest code
 * keeps its state in r->connection (c->data is the active request, which
 * ngx_http_run_posted_requests() follows), and it must see the fake
 * request there, never the websocket.  Its events are never in epoll
 * ("active", so that the upstream does not add them), but timers may be
 * set on them, as on a client's.
 *
 * Lifetime.  The fake request is its own main request and is held by us,
 * r->count and r->main->blocked, so that nginx never finalizes or frees
 * it, whatever happens to its subrequest (ngx_http_terminate_request()
 * frees a main request that is not blocked).  It is freed from a posted
 * event, never from inside nginx's subrequest code, which goes on using
 * the parent after the subrequest's handler returned, once:
 *
 *   - the parent is woken with no subrequest left (its write handler);
 *   - the subrequest is terminated (a cleanup of the parent's);
 *   - no subrequest was made on it (the posted event that starts it);
 *   - the "owner" pool (the batch's) goes: a subrequest still under way
 *     no longer calls its post_subrequest handler, and is ended as nginx
 *     ends a request, by the parent's cleanups (its upstream closed).
 */


typedef struct {
    ngx_connection_t               connection;   /* r->connection leads here */
    ngx_event_t                    read;
    ngx_event_t                    write;
    ngx_log_t                      log;
    ngx_http_log_ctx_t             log_ctx;

    ngx_pool_t                    *pool;
    ngx_http_request_t            *request;
    ngx_http_cleanup_t            *terminated;  /* in request->cleanup */
    ngx_pool_cleanup_t            *owner;       /* in the owner's pool */

    ngx_event_t                    start;
    ngx_event_t                    free;

    unsigned                       freeing:1;
} ngx_bayeux_fake_t;


static u_char *ngx_bayeux_keep_str(u_char *p, ngx_str_t *dst,
    ngx_str_t *src);
static ngx_int_t ngx_bayeux_fake_connection(ngx_bayeux_fake_t *f,
    ngx_bayeux_kept_request_t *kept, ngx_connection_t *c);
static ngx_http_request_t *ngx_bayeux_fake_alloc(ngx_bayeux_fake_t *f,
    ngx_bayeux_kept_request_t *kept);
static ngx_int_t ngx_bayeux_fake_headers(ngx_http_request_t *r,
    ngx_bayeux_kept_request_t *kept);
static void ngx_bayeux_fake_event_handler(ngx_event_t *ev);
static void ngx_bayeux_fake_start(ngx_event_t *ev);
static void ngx_bayeux_fake_wake(ngx_http_request_t *r);
static void ngx_bayeux_fake_terminated(void *data);
static void ngx_bayeux_fake_owner_gone(void *data);
static void ngx_bayeux_fake_release(ngx_bayeux_fake_t *f);
static void ngx_bayeux_fake_free(ngx_event_t *ev);


static ngx_str_t  ngx_bayeux_fake_method = ngx_string("POST");
static ngx_str_t  ngx_bayeux_fake_protocol = ngx_string("HTTP/1.1");


/*
 * At the upgrade: one allocation in "pool" (the connection's), the size
 * of what the client sent.
 */

ngx_bayeux_kept_request_t *
ngx_bayeux_keep_request(ngx_http_request_t *r, ngx_pool_t *pool)
{
    size_t                      len;
    u_char                     *p;
    ngx_str_t                  *s;
    ngx_uint_t                  i, n;
    ngx_list_part_t            *part;
    ngx_table_elt_t            *h;
    ngx_connection_t           *c;
    ngx_bayeux_kept_request_t  *k;

    c = r->connection;

    n = 0;
    len = r->uri.len + r->args.len + r->unparsed_uri.len + c->addr_text.len;

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;

        for (i = 0; i < part->nelts; i++) {
            len += h[i].key.len + h[i].value.len;
            n++;
        }
    }

    k = ngx_palloc(pool, sizeof(ngx_bayeux_kept_request_t)
                         + 2 * n * sizeof(ngx_str_t) + c->socklen + len);
    if (k == NULL) {
        return NULL;
    }

    k->main_conf = r->main_conf;
    k->srv_conf = r->srv_conf;
    k->loc_conf = r->loc_conf;
    k->log_handler = r->log_handler;
    k->http_connection = r->http_connection;

    k->nheaders = n;
    k->headers = (ngx_str_t *) &k[1];

    /* the pointers above keep the sockaddr aligned */
    k->sockaddr = (struct sockaddr *) &k->headers[2 * n];
    k->socklen = c->socklen;
    ngx_memcpy(k->sockaddr, c->sockaddr, c->socklen);

    p = (u_char *) k->sockaddr + c->socklen;

    p = ngx_bayeux_keep_str(p, &k->uri, &r->uri);
    p = ngx_bayeux_keep_str(p, &k->args, &r->args);
    p = ngx_bayeux_keep_str(p, &k->unparsed_uri, &r->unparsed_uri);
    p = ngx_bayeux_keep_str(p, &k->addr_text, &c->addr_text);

    s = k->headers;

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;

        for (i = 0; i < part->nelts; i++) {
            p = ngx_bayeux_keep_str(p, s++, &h[i].key);
            p = ngx_bayeux_keep_str(p, s++, &h[i].value);
        }
    }

    return k;
}


/* an empty string may have no data (r->args): nothing to copy then */

static u_char *
ngx_bayeux_keep_str(u_char *p, ngx_str_t *dst, ngx_str_t *src)
{
    dst->data = p;
    dst->len = src->len;

    return src->len ? ngx_cpymem(p, src->data, src->len) : p;
}


/*
 * For requests of the server's own, made for no client (a notice that a
 * session expired): as if a client of the loopback had asked for the
 * location's URI, with no header, on a connection that never was.
 * "ctx" is the location's configuration; everything in "pool", which
 * lives as long as the configuration.
 */

ngx_bayeux_kept_request_t *
ngx_bayeux_keep_location(ngx_pool_t *pool, ngx_http_conf_ctx_t *ctx,
    ngx_str_t *uri, ngx_connection_t **origin)
{
    ngx_connection_t           *c;
    struct sockaddr_in         *sin;
    ngx_http_connection_t      *hc;
    ngx_bayeux_kept_request_t  *k;

    static ngx_str_t  loopback = ngx_string("127.0.0.1");

    k = ngx_pcalloc(pool, sizeof(ngx_bayeux_kept_request_t));
    hc = ngx_pcalloc(pool, sizeof(ngx_http_connection_t));
    sin = ngx_pcalloc(pool, sizeof(struct sockaddr_in));
    c = ngx_pcalloc(pool, sizeof(ngx_connection_t));

    if (k == NULL || hc == NULL || sin == NULL || c == NULL) {
        return NULL;
    }

    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    hc->conf_ctx = ctx;

    k->main_conf = ctx->main_conf;
    k->srv_conf = ctx->srv_conf;
    k->loc_conf = ctx->loc_conf;
    k->http_connection = hc;
    k->uri = *uri;
    k->unparsed_uri = *uri;
    k->addr_text = loopback;
    k->sockaddr = (struct sockaddr *) sin;
    k->socklen = sizeof(struct sockaddr_in);

    /* what a fake connection copies of a real one */

    c->log_error = NGX_ERROR_INFO;
    c->local_sockaddr = (struct sockaddr *) sin;
    c->local_socklen = sizeof(struct sockaddr_in);

    /* its log is set by the caller, that of the cycle it runs in */

    *origin = c;

    return k;
}


/*
 * A parent for one subrequest, as its request would have been: "c" is
 * the real connection (alive while this is called), "owner" the pool of
 * what the subrequest is made for.  The caller makes its subrequest at
 * once: it is started from a posted event.
 */

ngx_http_request_t *
ngx_bayeux_fake_request(ngx_bayeux_kept_request_t *kept, ngx_connection_t *c,
    ngx_pool_t *owner)
{
    ngx_pool_t                *pool;
    ngx_bayeux_fake_t         *f;
    ngx_http_request_t        *r;
    ngx_pool_cleanup_t        *cln;
    ngx_http_core_srv_conf_t  *cscf;

    cscf = kept->srv_conf[ngx_http_core_module.ctx_index];

    pool = ngx_create_pool(cscf->request_pool_size, c->log);
    if (pool == NULL) {
        return NULL;
    }

    f = ngx_pcalloc(pool, sizeof(ngx_bayeux_fake_t));
    if (f == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    f->pool = pool;

    if (ngx_bayeux_fake_connection(f, kept, c) != NGX_OK) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    /* the real connection (and its log) may be gone before this pool */
    pool->log = &f->log;

    r = ngx_bayeux_fake_alloc(f, kept);
    if (r == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    f->request = r;

    f->start.handler = ngx_bayeux_fake_start;
    f->start.data = f;
    f->start.log = &f->log;

    f->free.handler = ngx_bayeux_fake_free;
    f->free.data = f;
    f->free.log = &f->log;

    f->terminated = ngx_http_cleanup_add(r, 0);
    if (f->terminated == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    f->terminated->handler = ngx_bayeux_fake_terminated;
    f->terminated->data = f;

    /* no owner: the request is the server's own, it lives as it may */

    if (owner) {
        cln = ngx_pool_cleanup_add(owner, 0);
        if (cln == NULL) {
            ngx_destroy_pool(pool);
            return NULL;
        }

        cln->handler = ngx_bayeux_fake_owner_gone;
        cln->data = f;
        f->owner = cln;
    }

    if (ngx_bayeux_fake_headers(r, kept) != NGX_OK) {
        if (f->owner) {
            f->owner->handler = NULL;
        }

        ngx_destroy_pool(pool);
        return NULL;
    }

    ngx_post_event(&f->start, &ngx_posted_events);

    return r;
}


static ngx_int_t
ngx_bayeux_fake_connection(ngx_bayeux_fake_t *f,
    ngx_bayeux_kept_request_t *kept, ngx_connection_t *c)
{
    ngx_connection_t  *fc;

    fc = &f->connection;

    fc->fd = (ngx_socket_t) -1;
    fc->pool = f->pool;
    fc->number = c->number;
    fc->listening = c->listening;
    fc->log_error = c->log_error;
    fc->start_time = ngx_current_msec;

    /* no socket: whatever tries to use it fails, as on a closed one */
    fc->recv = ngx_recv;
    fc->send = ngx_send;
    fc->recv_chain = ngx_recv_chain;
    fc->send_chain = ngx_send_chain;

    fc->addr_text = kept->addr_text;
    fc->sockaddr = kept->sockaddr;
    fc->socklen = kept->socklen;

    /* $server_addr and $server_port: the real connection's, copied */

    if (c->local_sockaddr == NULL
        && ngx_connection_local_sockaddr(c, NULL, 0) != NGX_OK)
    {
        return NGX_ERROR;
    }

    fc->local_sockaddr = ngx_palloc(f->pool, c->local_socklen);
    if (fc->local_sockaddr == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(fc->local_sockaddr, c->local_sockaddr, c->local_socklen);
    fc->local_socklen = c->local_socklen;

    /* the log of the real connection, with a context of its own */

    f->log = *c->log;
    f->log.data = &f->log_ctx;
    f->log.action = NULL;
    f->log_ctx.connection = fc;
    fc->log = &f->log;

    fc->read = &f->read;
    fc->write = &f->write;

    f->read.data = fc;
    f->read.log = &f->log;
    f->read.handler = ngx_bayeux_fake_event_handler;
    f->read.active = 1;

    f->write.data = fc;
    f->write.log = &f->log;
    f->write.handler = ngx_bayeux_fake_event_handler;
    f->write.write = 1;
    f->write.active = 1;

    return NGX_OK;
}


/* as nginx allocates a request, for the location the upgrade was for */

static ngx_http_request_t *
ngx_bayeux_fake_alloc(ngx_bayeux_fake_t *f, ngx_bayeux_kept_request_t *kept)
{
    ngx_time_t                 *tp;
    ngx_http_request_t         *r;
    ngx_http_core_main_conf_t  *cmcf;

    r = ngx_pcalloc(f->pool, sizeof(ngx_http_request_t));
    if (r == NULL) {
        return NULL;
    }

    r->pool = f->pool;
    r->signature = NGX_HTTP_MODULE;
    r->connection = &f->connection;

    r->main_conf = kept->main_conf;
    r->srv_conf = kept->srv_conf;
    r->loc_conf = kept->loc_conf;

    if (ngx_list_init(&r->headers_out.headers, r->pool, 1,
                      sizeof(ngx_table_elt_t))
        != NGX_OK
        || ngx_list_init(&r->headers_out.trailers, r->pool, 1,
                         sizeof(ngx_table_elt_t))
           != NGX_OK
        || ngx_list_init(&r->headers_in.headers, r->pool,
                         ngx_max(kept->nheaders, 1), sizeof(ngx_table_elt_t))
           != NGX_OK)
    {
        return NULL;
    }

    r->ctx = ngx_pcalloc(r->pool, sizeof(void *) * ngx_http_max_module);
    if (r->ctx == NULL) {
        return NULL;
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_core_module);

    /* shared with its subrequests */
    r->variables = ngx_pcalloc(r->pool, cmcf->variables.nelts
                                        * sizeof(ngx_http_variable_value_t));
    if (r->variables == NULL) {
        return NULL;
    }

    r->main = r;

    /* ours: nginx never finalizes this request, nor frees it */
    r->count = 1;
    r->blocked = 1;

    tp = ngx_timeofday();
    r->start_sec = tp->sec;
    r->start_msec = tp->msec;

    r->method = NGX_HTTP_POST;
    r->method_name = ngx_bayeux_fake_method;
    r->http_version = NGX_HTTP_VERSION_11;
    r->http_protocol = ngx_bayeux_fake_protocol;
    r->http_state = NGX_HTTP_PROCESS_REQUEST_STATE;

    r->uri = kept->uri;
    r->args = kept->args;
    r->unparsed_uri = kept->unparsed_uri;
    r->valid_location = 1;

    r->headers_in.content_length_n = -1;
    r->headers_in.keep_alive_n = -1;
    r->headers_out.content_length_n = -1;
    r->headers_out.last_modified_time = -1;

    r->uri_changes = NGX_HTTP_MAX_URI_CHANGES + 1;
    r->subrequests = NGX_HTTP_MAX_SUBREQUESTS + 1;

    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_bayeux_fake_wake;
    r->log_handler = kept->log_handler;

    f->connection.data = r;
    f->log_ctx.request = r;
    f->log_ctx.current_request = r;

    return r;
}


/*
 * The upgrade's headers, through nginx's own handlers of request headers,
 * so that headers_in is what it was ($http_cookie, $remote_user, $host).
 * They took these headers once: they take them again.
 */

static ngx_int_t
ngx_bayeux_fake_headers(ngx_http_request_t *r,
    ngx_bayeux_kept_request_t *kept)
{
    ngx_str_t                  *s;
    ngx_uint_t                  i;
    ngx_table_elt_t            *h;
    ngx_http_header_t          *hh;
    ngx_http_core_loc_conf_t   *clcf;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_core_module);

    /* Host finds the server through it */
    r->http_connection = kept->http_connection;

    s = kept->headers;

    for (i = 0; i < kept->nheaders; i++) {

        h = ngx_list_push(&r->headers_in.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->key.len = s[2 * i].len;
        h->key.data = ngx_pstrdup(r->pool, &s[2 * i]);

        h->value.len = s[2 * i + 1].len;
        h->value.data = ngx_pnalloc(r->pool, h->value.len + 1);

        h->lowcase_key = ngx_pnalloc(r->pool, h->key.len + 1);

        if (h->key.data == NULL || h->value.data == NULL
            || h->lowcase_key == NULL)
        {
            return NGX_ERROR;
        }

        /* nul-terminated, as nginx's parser leaves them */
        *ngx_cpymem(h->value.data, s[2 * i + 1].data, h->value.len) = '\0';

        h->hash = ngx_hash_strlow(h->lowcase_key, h->key.data, h->key.len);
        h->lowcase_key[h->key.len] = '\0';

        hh = ngx_hash_find(&cmcf->headers_in_hash, h->hash, h->lowcase_key,
                           h->key.len);

        if (hh && hh->handler(r, h, hh->offset) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    /*
     * Host chose the server again: the request is the location's, and
     * no longer looks at the real connection
     */

    r->http_connection = NULL;

    r->main_conf = kept->main_conf;
    r->srv_conf = kept->srv_conf;
    r->loc_conf = kept->loc_conf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
    ngx_set_connection_log(r->connection, clcf->error_log);

    return NGX_OK;
}


/* timers nginx sets on a client connection (send_timeout, delays) */

static void
ngx_bayeux_fake_event_handler(ngx_event_t *ev)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    c = ev->data;
    r = c->data;

    ngx_http_set_log_request(c->log, r);

    if (ev->write) {
        r->write_event_handler(r);

    } else {
        r->read_event_handler(r);
    }

    ngx_http_run_posted_requests(c);
}


/*
 * Runs the subrequest the caller made, as nginx runs a request's after
 * its handler returned; or, if none was made, lets the request go.
 */

static void
ngx_bayeux_fake_start(ngx_event_t *ev)
{
    ngx_bayeux_fake_t   *f;
    ngx_http_request_t  *r;

    f = ev->data;
    r = f->request;

    ngx_http_run_posted_requests(&f->connection);

    if (r->count == 1 && r->postponed == NULL) {
        ngx_bayeux_fake_release(f);
    }
}


/* the parent is woken: its subrequest is done */

static void
ngx_bayeux_fake_wake(ngx_http_request_t *r)
{
    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "bayeux: fake request woken, count:%d", r->count);

    if (r->count == 1 && r->postponed == NULL) {
        ngx_bayeux_fake_release((ngx_bayeux_fake_t *) r->connection);
    }
}


/* ngx_http_terminate_request() ran the parent's cleanups */

static void
ngx_bayeux_fake_terminated(void *data)
{
    ngx_bayeux_fake_t  *f = data;

    ngx_bayeux_fake_release(f);
}


/*
 * What the subrequest was for is gone: its post_subrequest handler would
 * find it freed.
 */

static void
ngx_bayeux_fake_owner_gone(void *data)
{
    ngx_bayeux_fake_t  *f = data;

    ngx_http_postponed_request_t  *pr;

    f->owner = NULL;

    for (pr = f->request->postponed; pr; pr = pr->next) {
        if (pr->request) {
            pr->request->post_subrequest = NULL;
        }
    }

    ngx_bayeux_fake_release(f);
}


static void
ngx_bayeux_fake_release(ngx_bayeux_fake_t *f)
{
    if (f->freeing || f->free.posted) {
        return;
    }

    ngx_post_event(&f->free, &ngx_posted_events);
}


static void
ngx_bayeux_fake_free(ngx_event_t *ev)
{
    ngx_bayeux_fake_t   *f;
    ngx_http_cleanup_t  *cln;
    ngx_http_request_t  *r;

    f = ev->data;
    r = f->request;

    f->freeing = 1;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, &f->log, 0,
                   "bayeux: free fake request, count:%d", r->count);

    if (f->owner) {
        f->owner->handler = NULL;
    }

    if (f->start.posted) {
        ngx_delete_posted_event(&f->start);
    }

    /*
     * A subrequest still under way is ended as nginx ends a request: the
     * cleanups close its upstream (finalized with NGX_DONE, which calls
     * no post_subrequest handler).
     */

    f->terminated->handler = NULL;

    cln = r->cleanup;
    r->cleanup = NULL;

    while (cln) {
        if (cln->handler) {
            cln->handler(cln->data);
        }

        cln = cln->next;
    }

    if (f->read.timer_set) {
        ngx_del_timer(&f->read);
    }

    if (f->write.timer_set) {
        ngx_del_timer(&f->write);
    }

    if (f->read.posted) {
        ngx_delete_posted_event(&f->read);
    }

    if (f->write.posted) {
        ngx_delete_posted_event(&f->write);
    }

    if (f->free.posted) {
        ngx_delete_posted_event(&f->free);
    }

    ngx_destroy_pool(f->pool);
}
