
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_batch.h"
#include "ngx_bayeux_transport.h"
#include "ngx_bayeux_app_request.h"
#include "ngx_bayeux_variables.h"


/*
 * The subrequest is WAITED, as auth_request makes its own, and IN_MEMORY:
 * its answer's body is kept for us (up to subrequest_output_buffer_size)
 * and nothing of it is ever written to the client (a polling request's
 * output) or to a connection that has no socket (a websocket's fake
 * request).  The body is ours: the client's (or nothing, for a
 * websocket) is not passed on.
 *
 * Its end is noticed by the post_subrequest handler, which only records
 * the status and posts "resume": the batch goes on from there, once
 * nginx is done with the subrequest and its parent.  Nothing it uses
 * lives in the batch's pool but "ar": the body and the headers are in
 * the parent's pool, which the subrequest shares.  A websocket's fake
 * parent forgets the post_subrequest handler when the batch's pool goes
 * (ngx_bayeux_fake_request.c); a polling request's pool is the batch's.
 */


static ngx_http_request_t *ngx_bayeux_app_subrequest(
    ngx_http_request_t *parent, ngx_str_t *uri, ngx_str_t *body,
    ngx_http_post_subrequest_pt handler, void *data);
static ngx_int_t ngx_bayeux_app_request_headers(ngx_http_request_t *sr,
    ngx_http_request_t *parent, off_t length);
static ngx_int_t ngx_bayeux_app_request_body(ngx_http_request_t *sr,
    ngx_str_t *body);
static ngx_int_t ngx_bayeux_app_request_done(ngx_http_request_t *sr,
    void *data, ngx_int_t rc);
static void ngx_bayeux_app_request_resume(ngx_event_t *ev);
static void ngx_bayeux_app_request_run(ngx_event_t *ev);
static ngx_int_t ngx_bayeux_app_notice_done(ngx_http_request_t *sr,
    void *data, ngx_int_t rc);


/* one line per failure burst: at most one a second per worker */
static time_t  ngx_bayeux_app_notice_logged;


static ngx_str_t  ngx_bayeux_app_post = ngx_string("POST");
static ngx_str_t  ngx_bayeux_app_json = ngx_string("application/json");

static ngx_str_t  ngx_bayeux_app_content_type = ngx_string("Content-Type");
static ngx_str_t  ngx_bayeux_app_content_length =
    ngx_string("Content-Length");


/* the client's headers that describe its body, not ours: not passed */

static ngx_str_t  ngx_bayeux_app_body_headers[] = {
    ngx_string("Content-Length"),
    ngx_string("Content-Type"),
    ngx_string("Transfer-Encoding"),
    ngx_string("Content-Encoding"),
    ngx_null_string
};


ngx_int_t
ngx_bayeux_app_request(ngx_bayeux_app_request_t *ar, ngx_str_t *body)
{
    ngx_bayeux_batch_t          *b;
    ngx_http_request_t          *parent, *sr;

    b = ar->batch;

    ar->resume.handler = ngx_bayeux_app_request_resume;
    ar->resume.data = ar;
    ar->resume.log = b->log;

    parent = ngx_bayeux_transport_parent(b);
    if (parent == NULL) {
        return NGX_ERROR;
    }

    sr = ngx_bayeux_app_subrequest(parent, ar->uri, body,
                                   ngx_bayeux_app_request_done, ar);
    if (sr == NULL) {
        return NGX_ERROR;
    }

    if (ngx_bayeux_variables_set(sr, b, ar->message, ar->grants) != NGX_OK) {
        /* it is posted: it runs, and ends, as an empty POST */
        sr->post_subrequest->handler = NULL;
        sr->post_subrequest = NULL;
        return NGX_ERROR;
    }

    /*
     * nginx starts a subrequest once the handler that made it returns to
     * it, which is not so when a batch goes on from an event of ours (an
     * engine's answer, the answer to an earlier subrequest)
     */

    ar->connection = parent->connection;
    ar->run.handler = ngx_bayeux_app_request_run;
    ar->run.data = ar;
    ar->run.log = b->log;

    ngx_post_event(&ar->run, &ngx_posted_events);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, b->log, 0,
                   "bayeux: application request \"%V\"", ar->uri);

    return NGX_AGAIN;
}


/*
 * The parent's headers (a polling request's, or those a websocket kept
 * from its upgrade), but those of its body, and ours: a list of the
 * subrequest's own, for the parent's is shared.
 */

static ngx_int_t
ngx_bayeux_app_request_headers(ngx_http_request_t *sr,
    ngx_http_request_t *parent, off_t length)
{
    u_char           *p;
    ngx_str_t        *skip;
    ngx_uint_t        i, n;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *nh;

    n = 2;

    for (part = &parent->headers_in.headers.part; part; part = part->next) {
        n += part->nelts;
    }

    if (ngx_list_init(&sr->headers_in.headers, sr->pool, n,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (part = &parent->headers_in.headers.part; part; part = part->next) {
        h = part->elts;

        for (i = 0; i < part->nelts; i++) {

            for (skip = ngx_bayeux_app_body_headers; skip->len; skip++) {
                if (h[i].key.len == skip->len
                    && ngx_strncasecmp(h[i].key.data, skip->data, skip->len)
                       == 0)
                {
                    break;
                }
            }

            if (skip->len) {
                continue;
            }

            nh = ngx_list_push(&sr->headers_in.headers);
            if (nh == NULL) {
                return NGX_ERROR;
            }

            *nh = h[i];
        }
    }

    nh = ngx_list_push(&sr->headers_in.headers);
    if (nh == NULL) {
        return NGX_ERROR;
    }

    /* hashed, for the proxy to tell them from the headers it sets */

    ngx_memzero(nh, sizeof(ngx_table_elt_t));
    nh->key = ngx_bayeux_app_content_type;
    nh->lowcase_key = (u_char *) "content-type";
    nh->hash = ngx_hash_key(nh->lowcase_key, nh->key.len);
    nh->value = ngx_bayeux_app_json;

    sr->headers_in.content_type = nh;

    nh = ngx_list_push(&sr->headers_in.headers);
    if (nh == NULL) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(sr->pool, NGX_OFF_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(nh, sizeof(ngx_table_elt_t));
    nh->key = ngx_bayeux_app_content_length;
    nh->lowcase_key = (u_char *) "content-length";
    nh->hash = ngx_hash_key(nh->lowcase_key, nh->key.len);
    nh->value.data = p;
    nh->value.len = ngx_sprintf(p, "%O", length) - p;

    sr->headers_in.content_length = nh;
    sr->headers_in.content_length_n = length;
    sr->headers_in.chunked = 0;
    sr->headers_in.transfer_encoding = NULL;

    return NGX_OK;
}


/* a body in memory, as if read from the client: nothing is read */

static ngx_int_t
ngx_bayeux_app_request_body(ngx_http_request_t *sr, ngx_str_t *body)
{
    ngx_buf_t                *buf;
    ngx_chain_t              *cl;
    ngx_http_request_body_t  *rb;

    rb = ngx_pcalloc(sr->pool, sizeof(ngx_http_request_body_t));
    if (rb == NULL) {
        return NGX_ERROR;
    }

    buf = ngx_calloc_buf(sr->pool);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    cl = ngx_alloc_chain_link(sr->pool);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    buf->pos = body->data;
    buf->last = body->data + body->len;
    buf->memory = body->len ? 1 : 0;
    buf->last_buf = 1;
    buf->last_in_chain = 1;

    cl->buf = buf;
    cl->next = NULL;

    rb->bufs = cl;

    sr->request_body = rb;

    return NGX_OK;
}


/*
 * nginx ends the subrequest: its status, or rc for an answer nginx made
 * itself (an upstream that failed, a location that returned a code).
 * Called once per finalization: only the first counts.
 */

static ngx_int_t
ngx_bayeux_app_request_done(ngx_http_request_t *sr, void *data,
    ngx_int_t rc)
{
    size_t                     len;
    ngx_buf_t                 *buf;
    ngx_bayeux_app_request_t  *ar = data;

    if (ar->answered) {
        return rc;
    }

    ar->answered = 1;

    /* the batch's pool lives until the batch is resumed */

    buf = sr->out ? sr->out->buf : NULL;

    if (buf && !ar->cancelled && buf->last > buf->pos) {
        len = buf->last - buf->pos;

        ar->body.data = ngx_pnalloc(ar->batch->pool, len);
        if (ar->body.data == NULL) {
            ar->no_memory = 1;

        } else {
            ngx_memcpy(ar->body.data, buf->pos, len);
            ar->body.len = len;
        }
    }

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE || rc == NGX_ERROR) {
        ar->status = (rc == NGX_ERROR) ? NGX_HTTP_INTERNAL_SERVER_ERROR
                                       : (ngx_uint_t) rc;

    } else {
        ar->status = sr->headers_out.status;
    }

    if (ar->no_memory) {
        ar->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the proxy takes bytes that are not HTTP for an HTTP/0.9 answer */
    ar->not_http = (sr->http_version < NGX_HTTP_VERSION_10);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, sr->connection->log, 0,
                   "bayeux: application request done, rc:%i status:%ui "
                   "http:%ui", rc, ar->status, sr->http_version);

    if (!ar->resume.posted && !ar->cancelled) {
        ngx_post_event(&ar->resume, &ngx_posted_events);
    }

    return rc;
}


/*
 * The batch was cancelled (the client went away): its subrequest may
 * never end with a status (nginx ends it with NGX_DONE, which calls no
 * post_subrequest handler), so the batch is resumed now, from an event.
 */

void
ngx_bayeux_app_request_cancel(ngx_bayeux_app_request_t *ar)
{
    ar->cancelled = 1;

    if (!ar->resume.posted) {
        ngx_post_event(&ar->resume, &ngx_posted_events);
    }
}


static void
ngx_bayeux_app_request_run(ngx_event_t *ev)
{
    ngx_bayeux_app_request_t  *ar = ev->data;

    ngx_http_run_posted_requests(ar->connection);
}


static void
ngx_bayeux_app_request_resume(ngx_event_t *ev)
{
    ngx_bayeux_app_request_t  *ar = ev->data;

    if (ar->run.posted) {
        ngx_delete_posted_event(&ar->run);
    }

    /* a late end of the subrequest no longer counts */
    ar->answered = 1;

    ar->handler(ar);
}


/*
 * A notice to the application, that nothing waits for: a subrequest of
 * "parent" (a request of the server's own) with "body"; a failure is
 * logged.
 */

ngx_int_t
ngx_bayeux_app_notice(ngx_http_request_t *parent, ngx_str_t *uri,
    ngx_str_t *body)
{
    if (ngx_bayeux_app_subrequest(parent, uri, body,
                                  ngx_bayeux_app_notice_done, uri)
        == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * "POST uri" of "parent" with "body" (copied: everything the subrequest
 * reads lives as long as it does), the parent's headers but those of its
 * body; "handler" is told its end.  NULL: none could be made.
 */

static ngx_http_request_t *
ngx_bayeux_app_subrequest(ngx_http_request_t *parent, ngx_str_t *uri,
    ngx_str_t *body, ngx_http_post_subrequest_pt handler, void *data)
{
    ngx_str_t                    copy;
    ngx_http_request_t          *sr;
    ngx_http_post_subrequest_t  *ps;

    copy.len = body->len;
    copy.data = ngx_pnalloc(parent->pool, body->len);
    if (copy.data == NULL) {
        return NULL;
    }

    ngx_memcpy(copy.data, body->data, body->len);

    ps = ngx_palloc(parent->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NULL;
    }

    ps->handler = handler;
    ps->data = data;

    if (ngx_http_subrequest(parent, uri, NULL, &sr, ps,
                            NGX_HTTP_SUBREQUEST_WAITED
                            |NGX_HTTP_SUBREQUEST_IN_MEMORY)
        != NGX_OK)
    {
        return NULL;
    }

    sr->method = NGX_HTTP_POST;
    sr->method_name = ngx_bayeux_app_post;

    if (ngx_bayeux_app_request_headers(sr, parent, copy.len) != NGX_OK
        || ngx_bayeux_app_request_body(sr, &copy) != NGX_OK)
    {
        /* it is posted: it runs, and ends, as an empty POST */
        ps->handler = NULL;
        sr->post_subrequest = NULL;
        return NULL;
    }

    return sr;
}


static ngx_int_t
ngx_bayeux_app_notice_done(ngx_http_request_t *sr, void *data, ngx_int_t rc)
{
    ngx_str_t   *uri = data;
    ngx_uint_t   status;

    status = (rc >= NGX_HTTP_SPECIAL_RESPONSE || rc == NGX_ERROR)
             ? ((rc == NGX_ERROR) ? NGX_HTTP_INTERNAL_SERVER_ERROR
                                  : (ngx_uint_t) rc)
             : sr->headers_out.status;

    if ((status < NGX_HTTP_OK || status >= NGX_HTTP_SPECIAL_RESPONSE)
        && ngx_bayeux_app_notice_logged != ngx_time())
    {
        ngx_bayeux_app_notice_logged = ngx_time();

        ngx_log_error(NGX_LOG_ERR, sr->connection->log, 0,
                      "bayeux: disconnect request \"%V\" failed: "
                      "status %ui", uri, status);
    }

    return rc;
}
