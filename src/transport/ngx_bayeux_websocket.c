
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_sha1.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_message.h"
#include "ngx_bayeux_batch.h"
#include "ngx_bayeux_http.h"
#include "ngx_bayeux_cookie.h"
#include "ngx_bayeux_ws_frame.h"
#include "ngx_bayeux_fake_request.h"
#include "ngx_bayeux_websocket.h"
#include "ngx_bayeux_stats.h"


/*
 * The websocket transport (RFC 6455).  Each text message is a batch of
 * Bayeux messages, answered by a text message; a held /meta/connect
 * stays held while the deliveries for its session are pushed as they
 * come, and is answered when its hold time is over.  Extensions
 * (permessage-deflate) are not negotiated: the handshake answer offers
 * none, which RFC 6455 and every client allow.  The frames themselves
 * are read and built by the codec (ngx_bayeux_ws_frame.c); this file
 * keeps the connection, its buffers, the batches and their timers.
 */

#define NGX_BAYEUX_WS_GUID  "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


typedef struct {
    ngx_connection_t              *connection;
    ngx_http_request_t            *request;     /* until the upgrade is done */
    ngx_bayeux_loc_conf_t         *conf;

    /* what a subrequest's parent needs of the upgrade request */
    ngx_bayeux_kept_request_t     *upgrade;

    ngx_msec_t                     send_timeout;
    size_t                         send_lowat;

    u_char                        *in;          /* received bytes */
    size_t                         in_len;
    size_t                         in_size;

    u_char                        *msg;         /* a fragmented message */
    size_t                         msg_len;
    size_t                         msg_size;

    u_char                        *out;         /* bytes to send */
    size_t                         out_pos;
    size_t                         out_len;
    size_t                         out_size;

    /* replies queued behind unsent output since it last drained */
    size_t                         waiting;

    ngx_queue_t                    batches;

    /*
     * the browser its handshakes record: the BAYEUX_BROWSER of the
     * upgrade request, or without one an id of its own, so that a
     * session handshaken over it never works over HTTP
     */
    u_char                         browser[NGX_BAYEUX_BROWSER_ID_LEN];

    /* the session it serves: its handshake's, or the one it took up */
    ngx_str_t                      session;
    u_char                         session_id[NGX_BAYEUX_CLIENT_ID_LEN];

    /* what its batches learn of that session, where there is to learn */
    ngx_bayeux_session_known_t    *known;

    /* posted: the end of the upgrade, then the closing */
    ngx_event_t                    event;

    /* posted: the output drained, paused connects are held again */
    ngx_event_t                    resume;

    /* for its closing log line */
    ngx_msec_t                     start;
    time_t                         start_sec;
    ngx_msec_t                     start_msec;
    ngx_uint_t                     messages_in;
    ngx_uint_t                     deliveries_out;
    ngx_uint_t                     close_code;  /* 0: no close frame sent */

    unsigned                       in_shared:1;
    unsigned                       open:1;      /* counted as open */
    unsigned                       cookie:1;    /* the upgrade had one */
    unsigned                       in_message:1;
    unsigned                       closing:1;
    unsigned                       done:1;
} ngx_bayeux_ws_t;


typedef struct {
    ngx_pool_t                    *pool;
    ngx_bayeux_ws_t               *ws;
    ngx_queue_t                    queue;
    ngx_bayeux_batch_t             batch;
    ngx_event_t                    hold;
    ngx_msec_t                     deadline;
} ngx_bayeux_ws_batch_t;


static ngx_int_t ngx_bayeux_ws_accept(ngx_http_request_t *r,
    ngx_table_elt_t *key, ngx_str_t *protocol);
static void ngx_bayeux_ws_detach(ngx_event_t *ev);
static void ngx_bayeux_ws_free_buffers(ngx_connection_t *c, ngx_chain_t *cl);
static void ngx_bayeux_ws_read_handler(ngx_event_t *rev);
static void ngx_bayeux_ws_write_handler(ngx_event_t *wev);
static void ngx_bayeux_ws_read(ngx_bayeux_ws_t *ws);
static ngx_int_t ngx_bayeux_ws_frames(ngx_bayeux_ws_t *ws);
static ngx_int_t ngx_bayeux_ws_control(ngx_bayeux_ws_t *ws,
    ngx_bayeux_ws_frame_t *frame, u_char *payload);
static ngx_int_t ngx_bayeux_ws_message(ngx_bayeux_ws_t *ws, u_char *data,
    size_t len);
static ngx_int_t ngx_bayeux_ws_reserve(u_char **buf, size_t *size,
    size_t used, size_t need, ngx_log_t *log);
static ngx_int_t ngx_bayeux_ws_reserve_in(ngx_bayeux_ws_t *ws, size_t need);
static ngx_int_t ngx_bayeux_ws_send(ngx_bayeux_ws_t *ws, ngx_uint_t opcode,
    u_char *data, size_t len, ngx_uint_t reply);
static void ngx_bayeux_ws_flush(ngx_bayeux_ws_t *ws);
static void ngx_bayeux_ws_resume(ngx_event_t *ev);
static void ngx_bayeux_ws_fail(ngx_bayeux_ws_t *ws, ngx_uint_t code,
    char *reason);
static void ngx_bayeux_ws_finalize(ngx_bayeux_ws_t *ws);
static void ngx_bayeux_ws_close_handler(ngx_event_t *ev);
static void ngx_bayeux_ws_cleanup(void *data);
static void ngx_bayeux_ws_log_close(ngx_bayeux_ws_t *ws);
static void ngx_bayeux_ws_batch_done(ngx_bayeux_batch_t *b);
static void ngx_bayeux_ws_batch_wake(ngx_bayeux_batch_t *b);
static void ngx_bayeux_ws_batch_push(ngx_bayeux_batch_t *b);
static void ngx_bayeux_ws_batch_hold(ngx_bayeux_ws_batch_t *wb);
static ngx_int_t ngx_bayeux_ws_disconnected(ngx_bayeux_ws_t *ws,
    ngx_bayeux_batch_t *b);
static void ngx_bayeux_ws_batch_abort(ngx_bayeux_batch_t *b);
static void ngx_bayeux_ws_batch_timeout(ngx_event_t *ev);
static void ngx_bayeux_ws_batch_free(ngx_bayeux_ws_batch_t *wb);


const ngx_bayeux_http_transport_t  ngx_bayeux_websocket = {
    { ngx_string("websocket"),
      NGX_BAYEUX_TRANSPORT_WEBSOCKET,
      ngx_bayeux_ws_batch_done,
      ngx_bayeux_ws_batch_wake,
      ngx_bayeux_ws_batch_push,
      ngx_bayeux_ws_batch_abort,
      NULL,                         /* ngx_bayeux_batch_in_engine() */
      NULL },
    NGX_HTTP_GET,
    ngx_string("websocket"),
    ngx_bayeux_websocket_handler,
    ngx_bayeux_ws_parent
};

/* the values of the upgrade's response headers */
static ngx_str_t  ngx_bayeux_ws_upgrade = ngx_string("websocket");
static ngx_str_t  ngx_bayeux_ws_version = ngx_string("13");


/*
 * Frames are read into a buffer of the worker, and replies are sent from
 * where they were built: a websocket keeps bytes of its own only for a
 * frame not fully received or a reply the socket did not take, so that
 * an idle one holds no buffer and a message costs no allocation.
 */

static u_char  ngx_bayeux_ws_read_buffer[16384];


ngx_int_t
ngx_bayeux_websocket_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_str_t                  protocol, browser;
    ngx_table_elt_t           *key, *version, *h;
    ngx_connection_t          *c;
    ngx_bayeux_ws_t           *ws;
    ngx_pool_cleanup_t        *cln;
    ngx_bayeux_loc_conf_t     *blcf;
    ngx_http_core_loc_conf_t  *clcf;

    blcf = ngx_http_get_module_loc_conf(r, ngx_bayeux_module);
    c = r->connection;

    if (r != r->main || r->http_version != NGX_HTTP_VERSION_11
        || r->method != NGX_HTTP_GET)
    {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "bayeux: websocket upgrade needs an HTTP/1.1 GET");
        return NGX_HTTP_BAD_REQUEST;
    }

    version = ngx_bayeux_http_header(r, "Sec-WebSocket-Version");

    if (version == NULL
        || version->value.len != 2
        || ngx_strncmp(version->value.data, "13", 2) != 0)
    {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "bayeux: unsupported websocket version");

        if (ngx_bayeux_http_add_header(r, "Sec-WebSocket-Version",
                                       &ngx_bayeux_ws_version)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return 426;
    }

    key = ngx_bayeux_http_header(r, "Sec-WebSocket-Key");

    if (key == NULL || key->value.len != 24) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "bayeux: missing or invalid Sec-WebSocket-Key");
        return NGX_HTTP_BAD_REQUEST;
    }

    if (ngx_bayeux_http_origin_allowed(r) != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "bayeux: websocket origin not allowed");
        return NGX_HTTP_FORBIDDEN;
    }

    ngx_str_null(&protocol);

    if (blcf->websocket_protocol.len) {
        h = ngx_bayeux_http_header(r, "Sec-WebSocket-Protocol");

        if (h == NULL
            || ngx_bayeux_http_token(&h->value, &blcf->websocket_protocol)
               != NGX_OK)
        {
            ngx_log_error(NGX_LOG_INFO, c->log, 0,
                          "bayeux: websocket subprotocol \"%V\" not offered",
                          &blcf->websocket_protocol);
            return NGX_HTTP_BAD_REQUEST;
        }

        protocol = blcf->websocket_protocol;
    }

    if (r->headers_in.content_length_n > 0 || r->headers_in.chunked) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "bayeux: websocket upgrade request with a body");
        return NGX_HTTP_BAD_REQUEST;
    }

    /*
     * The websocket outlives its HTTP request, which is freed once the
     * upgrade is done: what an idle websocket keeps is this, its session
     * in the engine and the connection.
     */

    ws = ngx_calloc(sizeof(ngx_bayeux_ws_t), c->log);
    if (ws == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(c->pool, 0);
    if (cln == NULL) {
        ngx_free(ws);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_bayeux_ws_cleanup;
    cln->data = ws;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    ws->connection = c;
    ws->request = r;
    ws->conf = blcf;
    ws->send_timeout = clcf->send_timeout;
    ws->send_lowat = clcf->send_lowat;
    ngx_queue_init(&ws->batches);

    ws->event.handler = ngx_bayeux_ws_detach;
    ws->event.data = ws;
    ws->event.log = c->log;

    ws->resume.handler = ngx_bayeux_ws_resume;
    ws->resume.data = ws;
    ws->resume.log = c->log;

    if (clcf->tcp_nodelay && ngx_tcp_nodelay(c) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (blcf->endpoint->subrequests || blcf->websocket_log) {
        ws->upgrade = ngx_bayeux_keep_request(r, c->pool);
        if (ws->upgrade == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (blcf->endpoint->authorization || blcf->endpoint->subrequests) {
        ws->known = ngx_bayeux_session_known_create(c->pool);
        if (ws->known == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    ws->session.data = ws->session_id;

    if (ngx_bayeux_browser_id(r, &browser) == NGX_OK) {
        ngx_memcpy(ws->browser, browser.data, NGX_BAYEUX_BROWSER_ID_LEN);
        ws->cookie = 1;

    } else if (ngx_bayeux_browser_new_id(ws->browser) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_bayeux_ws_accept(r, key, &protocol);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        return rc;
    }

    /*
     * The request cannot be freed while nginx still finalizes it: the
     * websocket takes the connection over in a posted event.
     */

    r->main->count++;
    r->keepalive = 0;
    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_http_request_empty_handler;

    ngx_post_event(&ws->event, &ngx_posted_next_events);

    return NGX_DONE;
}


static ngx_int_t
ngx_bayeux_ws_accept(ngx_http_request_t *r, ngx_table_elt_t *key,
    ngx_str_t *protocol)
{
    u_char       digest[20];
    ngx_str_t    src, accept;
    ngx_sha1_t   sha1;

    ngx_sha1_init(&sha1);
    ngx_sha1_update(&sha1, key->value.data, key->value.len);
    ngx_sha1_update(&sha1, NGX_BAYEUX_WS_GUID, sizeof(NGX_BAYEUX_WS_GUID) - 1);
    ngx_sha1_final(digest, &sha1);

    accept.data = ngx_pnalloc(r->pool, ngx_base64_encoded_length(20));
    if (accept.data == NULL) {
        return NGX_ERROR;
    }

    src.data = digest;
    src.len = sizeof(digest);
    ngx_encode_base64(&accept, &src);

    if (ngx_bayeux_http_add_header(r, "Upgrade", &ngx_bayeux_ws_upgrade)
        != NGX_OK
        || ngx_bayeux_http_add_header(r, "Sec-WebSocket-Accept", &accept)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (protocol->len
        && ngx_bayeux_http_add_header(r, "Sec-WebSocket-Protocol", protocol)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    r->headers_out.status = NGX_HTTP_SWITCHING_PROTOCOLS;
    r->headers_out.content_length_n = -1;
    r->header_only = 1;

    if (ngx_http_send_header(r) == NGX_ERROR) {
        return NGX_ERROR;
    }

    return ngx_http_send_special(r, NGX_HTTP_FLUSH);
}


/*
 * The upgrade is done: the connection is the websocket's.  Bytes the
 * client sent after its handshake and what is left of the 101 response
 * move to the websocket's buffers, then the request and its header
 * buffers are freed (nginx logs it then, answered 101), as for a
 * keep-alive connection.
 */

static void
ngx_bayeux_ws_detach(ngx_event_t *ev)
{
    size_t                  len;
    ngx_buf_t              *b;
    ngx_chain_t            *cl;
    ngx_connection_t       *c;
    ngx_bayeux_ws_t        *ws;
    ngx_http_request_t     *r;
    ngx_http_connection_t  *hc;

    ws = ev->data;
    c = ws->connection;
    r = ws->request;
    hc = r->http_connection;

    b = r->header_in;
    len = b->last - b->pos;

    if (len) {
        if (ngx_bayeux_ws_reserve(&ws->in, &ws->in_size, 0, len, c->log)
            != NGX_OK)
        {
            goto failed;
        }

        ngx_memcpy(ws->in, b->pos, len);
        ws->in_len = len;
    }

    for (cl = r->out; cl; cl = cl->next) {
        len = ngx_buf_in_memory(cl->buf) ? cl->buf->last - cl->buf->pos : 0;

        if (len == 0) {
            continue;
        }

        if (ngx_bayeux_ws_reserve(&ws->out, &ws->out_size, ws->out_len, len,
                                  c->log)
            != NGX_OK)
        {
            goto failed;
        }

        ngx_memcpy(ws->out + ws->out_len, cl->buf->pos, len);
        ws->out_len += len;
    }

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    /* the closing line counts from the upgrade's start */
    ws->start_sec = r->start_sec;
    ws->start_msec = r->start_msec;

    ws->request = NULL;

    ngx_http_free_request(r, 0);

    c->destroyed = 0;
    c->data = ws;

    /* r->out is ws->out now; TLS may still hold bytes of its own */
    c->buffered &= ~NGX_HTTP_LOWLEVEL_BUFFERED;

    /* as ngx_http_set_keepalive() does */

    if (c->buffer && ngx_pfree(c->pool, c->buffer->start) == NGX_OK) {
        c->buffer = NULL;
    }

    ngx_bayeux_ws_free_buffers(c, hc->free);
    ngx_bayeux_ws_free_buffers(c, hc->busy);

    hc->free = NULL;
    hc->busy = NULL;
    hc->nbusy = 0;

    c->log->action = "serving bayeux over websocket";

    ws->start = ngx_current_msec;
    ws->open = 1;
    ngx_bayeux_stat(ws->conf->endpoint, NGX_BAYEUX_STAT_WEBSOCKETS_OPEN, 1);

    ws->event.handler = ngx_bayeux_ws_close_handler;

    c->read->handler = ngx_bayeux_ws_read_handler;
    c->write->handler = ngx_bayeux_ws_write_handler;

    /*
     * An exiting worker (quit, reload) closes its idle connections: marked
     * idle, a websocket learns of it (c->close) and is closed with 1001
     * "going away", instead of keeping the old worker alive.
     */

    c->idle = 1;

    ngx_add_timer(c->read, ws->conf->websocket_idle_timeout);

    if (ws->out_len || c->buffered) {
        ngx_bayeux_ws_flush(ws);

        if (ws->done) {
            return;
        }
    }

    ngx_bayeux_ws_read(ws);

    return;

failed:

    /* the request is still nginx's: closing it closes the connection */

    ws->done = 1;
    ngx_http_finalize_request(r, NGX_HTTP_CLOSE);
    ngx_http_run_posted_requests(c);
}


/* the large header buffers of the request */

static void
ngx_bayeux_ws_free_buffers(ngx_connection_t *c, ngx_chain_t *cl)
{
    ngx_chain_t  *ln;

    while (cl) {
        ln = cl;
        cl = cl->next;
        ngx_pfree(c->pool, ln->buf->start);
        ngx_free_chain(c->pool, ln);
    }
}


static void
ngx_bayeux_ws_read_handler(ngx_event_t *rev)
{
    ngx_connection_t  *c;
    ngx_bayeux_ws_t   *ws;

    c = rev->data;
    ws = c->data;

    if (ws->done) {
        return;
    }

    if (c->close) {
        c->close = 0;
        c->idle = 0;

        ngx_bayeux_ws_fail(ws, NGX_BAYEUX_WS_GOING_AWAY,
                           "server shutting down");
        return;
    }

    if (rev->timedout) {
        rev->timedout = 0;
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "bayeux: websocket idle for %M ms, closing",
                      ws->conf->websocket_idle_timeout);
        ngx_bayeux_ws_fail(ws, NGX_BAYEUX_WS_GOING_AWAY, "idle timeout");
        return;
    }

    ngx_bayeux_ws_read(ws);
}


static void
ngx_bayeux_ws_read(ngx_bayeux_ws_t *ws)
{
    ssize_t            n;
    ngx_connection_t  *c;

    c = ws->connection;

    if (ws->closing || ws->done) {
        return;
    }

    for ( ;; ) {

        if (ngx_bayeux_ws_frames(ws) != NGX_OK) {
            return;
        }

        if (ws->in_len == 0) {
            if (ws->in && !ws->in_shared) {
                ngx_free(ws->in);
            }

            ws->in = ngx_bayeux_ws_read_buffer;
            ws->in_size = sizeof(ngx_bayeux_ws_read_buffer);
            ws->in_shared = 1;

        } else if (ws->in_len == ws->in_size
                   && ngx_bayeux_ws_reserve_in(ws, 4096) != NGX_OK)
        {
            ngx_bayeux_ws_finalize(ws);
            return;
        }

        n = c->recv(c, ws->in + ws->in_len, ws->in_size - ws->in_len);

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == 0 || n == NGX_ERROR) {
            ngx_log_error(NGX_LOG_INFO, c->log, 0,
                          "bayeux: websocket client closed the connection");
            ngx_bayeux_ws_finalize(ws);
            return;
        }

        ws->in_len += n;

        ngx_add_timer(c->read, ws->conf->websocket_idle_timeout);
    }

    /* the start of a frame leaves the worker's buffer for one of its own */

    if (ws->in_shared) {
        if (ws->in_len) {
            if (ngx_bayeux_ws_reserve_in(ws, 0) != NGX_OK) {
                ngx_bayeux_ws_finalize(ws);
                return;
            }

        } else {
            ws->in = NULL;
            ws->in_size = 0;
            ws->in_shared = 0;
        }
    }

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_bayeux_ws_finalize(ws);
    }
}


/*
 * Parses and handles the complete frames in ws->in.  Returns NGX_OK to go
 * on reading, NGX_DONE when the connection is being closed.
 */

static ngx_int_t
ngx_bayeux_ws_frames(ngx_bayeux_ws_t *ws)
{
    u_char                 *p, *payload;
    size_t                  pos, avail, total;
    ngx_int_t               rc;
    ngx_bayeux_ws_frame_t   frame;

    pos = 0;

    for ( ;; ) {

        if (ws->closing || ws->done) {
            return NGX_DONE;
        }

        p = ws->in + pos;
        avail = ws->in_len - pos;

        rc = ngx_bayeux_ws_frame_parse(&frame, p, avail, ws->in_message);

        if (rc == NGX_AGAIN) {
            break;
        }

        if (rc == NGX_ERROR) {
            ngx_bayeux_ws_fail(ws, frame.code, frame.reason);
            return NGX_DONE;
        }

        if (frame.opcode == NGX_BAYEUX_WS_BINARY) {
            ngx_bayeux_ws_fail(ws, NGX_BAYEUX_WS_UNSUPPORTED,
                               "binary messages are not supported");
            return NGX_DONE;
        }

        if (!ngx_bayeux_ws_is_control(frame.opcode)
            && frame.len + ws->msg_len > ws->conf->websocket_max_message)
        {
            ngx_log_error(NGX_LOG_INFO, ws->connection->log, 0,
                          "bayeux: websocket message larger than %uz",
                          ws->conf->websocket_max_message);
            ngx_bayeux_ws_fail(ws, NGX_BAYEUX_WS_TOO_BIG, "message too big");
            return NGX_DONE;
        }

        if (avail < frame.header + frame.len) {

            /* make room for the whole frame */

            if (ngx_bayeux_ws_reserve_in(ws, frame.header + frame.len - avail)
                != NGX_OK)
            {
                ngx_bayeux_ws_finalize(ws);
                return NGX_DONE;
            }

            break;
        }

        payload = p + frame.header;

        ngx_bayeux_ws_frame_unmask(&frame, payload);

        if (ngx_bayeux_ws_is_control(frame.opcode)) {
            if (ngx_bayeux_ws_control(ws, &frame, payload) != NGX_OK) {
                return NGX_DONE;
            }

        } else if (frame.fin && !ws->in_message) {
            if (ngx_bayeux_ws_message(ws, payload, frame.len) != NGX_OK) {
                return NGX_DONE;
            }

        } else {
            if (ngx_bayeux_ws_reserve(&ws->msg, &ws->msg_size, ws->msg_len,
                                      frame.len, ws->connection->log)
                != NGX_OK)
            {
                ngx_bayeux_ws_finalize(ws);
                return NGX_DONE;
            }

            /* an empty fragment may come before anything is reserved */

            if (frame.len) {
                ngx_memcpy(ws->msg + ws->msg_len, payload, frame.len);
                ws->msg_len += frame.len;
            }

            ws->in_message = 1;

            if (frame.fin) {
                ws->in_message = 0;
                total = ws->msg_len;
                ws->msg_len = 0;

                if (ngx_bayeux_ws_message(ws, ws->msg, total) != NGX_OK) {
                    return NGX_DONE;
                }
            }
        }

        pos += frame.header + frame.len;
    }

    /* keep the start of an incomplete frame */

    if (pos) {
        ws->in_len -= pos;
        ngx_memmove(ws->in, ws->in + pos, ws->in_len);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_ws_control(ngx_bayeux_ws_t *ws, ngx_bayeux_ws_frame_t *frame,
    u_char *payload)
{
    ngx_uint_t  status;

    switch (frame->opcode) {

    case NGX_BAYEUX_WS_PING:

        if (ngx_bayeux_ws_send(ws, NGX_BAYEUX_WS_PONG, payload, frame->len, 1)
            == NGX_ERROR)
        {
            ngx_bayeux_ws_finalize(ws);
            return NGX_DONE;
        }

        return ws->done ? NGX_DONE : NGX_OK;

    case NGX_BAYEUX_WS_PONG:
        return NGX_OK;

    default: /* NGX_BAYEUX_WS_CLOSE */

        if (ngx_bayeux_ws_frame_close_status(frame, payload, &status)
            != NGX_OK)
        {
            ngx_bayeux_ws_fail(ws, frame->code, frame->reason);
            return NGX_DONE;
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ws->connection->log, 0,
                       "bayeux: websocket close %ui from the client", status);

        ngx_bayeux_ws_fail(ws, status, NULL);
        return NGX_DONE;
    }
}


/* a complete text message: one batch of Bayeux messages */

static ngx_int_t
ngx_bayeux_ws_message(ngx_bayeux_ws_t *ws, u_char *data, size_t len)
{
    u_char                  reason[121];
    ngx_str_t              *error;
    ngx_pool_t             *pool;
    ngx_connection_t       *c;
    ngx_bayeux_batch_t     *b;
    ngx_bayeux_parser_t     parser;
    ngx_bayeux_ws_batch_t  *wb;

    c = ws->connection;

    /*
     * A held connect keeps its pool, with the batch and the parsed
     * message: 1008 bytes hold a one-message batch, and are a size the
     * allocator keeps free blocks of, so that thousands of these do not
     * fragment the heap.  The size is a multiple of NGX_POOL_ALIGNMENT,
     * as nginx's pool allocator requires (an aligned allocation could
     * end past the block).
     */
    pool = ngx_create_pool(ngx_max(1008, ngx_align(512 + 2 * len,
                                                   NGX_POOL_ALIGNMENT)),
                           c->log);
    if (pool == NULL) {
        ngx_bayeux_ws_finalize(ws);
        return NGX_DONE;
    }

    if (ngx_bayeux_parser_init(&parser, pool, ws->conf->max_batch) != NGX_OK) {
        ngx_destroy_pool(pool);
        ngx_bayeux_ws_finalize(ws);
        return NGX_DONE;
    }

    if (ngx_bayeux_parser_feed(&parser, data, len) != NGX_OK
        || ngx_bayeux_parser_finish(&parser) != NGX_OK)
    {
        error = ngx_bayeux_parser_error(&parser);

        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "bayeux: bad websocket message: %V", error);

        /* the close frame's reason: what fits of the error */
        *ngx_cpymem(reason, error->data,
                    ngx_min(error->len, sizeof(reason) - 1)) = '\0';

        ngx_destroy_pool(pool);

        ngx_bayeux_ws_fail(ws, NGX_BAYEUX_WS_INVALID_DATA, (char *) reason);
        return NGX_DONE;
    }

    wb = ngx_pcalloc(pool, sizeof(ngx_bayeux_ws_batch_t));
    if (wb == NULL) {
        ngx_destroy_pool(pool);
        ngx_bayeux_ws_finalize(ws);
        return NGX_DONE;
    }

    wb->pool = pool;
    wb->ws = ws;

    wb->hold.handler = ngx_bayeux_ws_batch_timeout;
    wb->hold.data = wb;
    wb->hold.log = c->log;

    b = &wb->batch;

    b->pool = pool;
    b->log = c->log;
    b->endpoint = ws->conf->endpoint;
    b->transport = &ngx_bayeux_websocket.bayeux;
    b->messages = ngx_bayeux_parser_messages(&parser);
    b->data = wb;
    b->owner.data = ws->browser;
    b->owner.len = NGX_BAYEUX_BROWSER_ID_LEN;
    b->session = &ws->session;
    b->known = ws->known;

    /*
     * without a cookie it takes a session up by its clientId, as CometD
     * does; bayeux_allow_origin keeps other sites' pages from doing so
     */
    b->any_browser = !ws->cookie;

    if (ngx_bayeux_batch_init(b) != NGX_OK) {
        ngx_destroy_pool(pool);
        ngx_bayeux_ws_finalize(ws);
        return NGX_DONE;
    }

    ngx_queue_insert_tail(&ws->batches, &wb->queue);

    ws->messages_in += b->messages->nelts;

    ngx_bayeux_batch_run(b);

    return (ws->closing || ws->done) ? NGX_DONE : NGX_OK;
}


static void
ngx_bayeux_ws_batch_done(ngx_bayeux_batch_t *b)
{
    ngx_int_t               rc;
    ngx_str_t               body;
    ngx_bayeux_ws_t        *ws;
    ngx_bayeux_ws_batch_t  *wb = b->data;

    ws = wb->ws;

    if (b->parked) {
        wb->deadline = ngx_current_msec + b->hold;
        ngx_add_timer(&wb->hold, b->hold);
        return;
    }

    if (b->disconnects && ngx_bayeux_ws_disconnected(ws, b) != NGX_OK) {
        return;
    }

    if (ngx_bayeux_batch_response(b, &body) != NGX_OK) {
        ngx_bayeux_ws_finalize(ws);
        return;
    }

    ws->deliveries_out += b->deliveries ? b->deliveries->nelts : 0;

    rc = ngx_bayeux_ws_send(ws, NGX_BAYEUX_WS_TEXT, body.data, body.len, 1);

    if (rc == NGX_DONE) {
        return;
    }

    ngx_bayeux_ws_batch_free(wb);

    if (rc == NGX_ERROR) {
        ngx_bayeux_ws_finalize(ws);
    }
}


static void
ngx_bayeux_ws_batch_wake(ngx_bayeux_batch_t *b)
{
    ngx_bayeux_ws_batch_t  *wb = b->data;

    if (wb->hold.timer_set) {
        ngx_del_timer(&wb->hold);
    }

    ngx_bayeux_ws_batch_done(b);
}


/*
 * A session disconnected on this websocket may have its connect held here
 * too: that one is answered first, as the client expects, even when the
 * engine tells of the disconnect later (Redis).  NGX_DONE: the websocket
 * is closed.
 */

static ngx_int_t
ngx_bayeux_ws_disconnected(ngx_bayeux_ws_t *ws, ngx_bayeux_batch_t *b)
{
    ngx_uint_t              i;
    ngx_queue_t            *q, *next;
    ngx_bayeux_message_t   *m;
    ngx_bayeux_ws_batch_t  *held;

    m = b->messages->elts;

    for (i = 0; i < b->messages->nelts; i++) {

        if (!m[i].disconnected) {
            continue;
        }

        for (q = ngx_queue_head(&ws->batches);
             q != ngx_queue_sentinel(&ws->batches);
             q = next)
        {
            next = ngx_queue_next(q);
            held = ngx_queue_data(q, ngx_bayeux_ws_batch_t, queue);

            if (&held->batch == b
                || ngx_bayeux_batch_disconnected(&held->batch,
                                                 &m[i].client_id)
                   != NGX_OK)
            {
                continue;
            }

            if (held->hold.timer_set) {
                ngx_del_timer(&held->hold);
            }

            /* sends the connect reply and frees that batch */
            ngx_bayeux_ws_batch_done(&held->batch);

            if (ws->done) {
                return NGX_DONE;
            }

            break;
        }
    }

    return NGX_OK;
}


/*
 * Deliveries for a held connect go out at once; the connect stays held.
 * If the client does not take them all, the connect is paused: it is
 * parked again only once the output drained, and until then messages
 * wait in the session's queue in the engine, which bayeux_max_queue
 * bounds, instead of in the worker's memory.
 */

static void
ngx_bayeux_ws_batch_push(ngx_bayeux_batch_t *b)
{
    ngx_int_t               rc;
    ngx_str_t               body;
    ngx_bayeux_ws_t        *ws;
    ngx_bayeux_ws_batch_t  *wb = b->data;

    ws = wb->ws;

    if (ngx_bayeux_batch_deliveries(b, &body) != NGX_OK) {
        /* the messages are taken: only closing tells the client */
        ngx_bayeux_ws_finalize(ws);
        return;
    }

    ws->deliveries_out += b->deliveries ? b->deliveries->nelts : 0;

    rc = ngx_bayeux_ws_send(ws, NGX_BAYEUX_WS_TEXT, body.data, body.len, 0);

    if (rc != NGX_OK) {
        if (rc == NGX_ERROR) {
            ngx_bayeux_ws_finalize(ws);
        }

        return;
    }

    if (ws->closing || ws->out_pos < ws->out_len || ws->connection->buffered)
    {
        b->paused = 1;
        return;
    }

    ngx_bayeux_ws_batch_hold(wb);
}


/* parks a pushed connect again, for what is left of its hold time */

static void
ngx_bayeux_ws_batch_hold(ngx_bayeux_ws_batch_t *wb)
{
    ngx_msec_int_t  left;

    left = (ngx_msec_int_t) (wb->deadline - ngx_current_msec);

    ngx_bayeux_batch_hold(&wb->batch, left > 0 ? (ngx_msec_t) left : 0);
}


/*
 * The output drained: paused connects are parked again, and get what
 * waits in the engine at once.  A posted event, so that no sender up the
 * stack sees batches answered and freed under it.
 */

static void
ngx_bayeux_ws_resume(ngx_event_t *ev)
{
    ngx_queue_t            *q;
    ngx_bayeux_ws_t        *ws;
    ngx_bayeux_ws_batch_t  *wb;

    ws = ev->data;

    for ( ;; ) {

        /* a push may have filled the output again, or closed */

        if (ws->closing || ws->done
            || ws->out_pos < ws->out_len || ws->connection->buffered)
        {
            return;
        }

        for (q = ngx_queue_head(&ws->batches);
             q != ngx_queue_sentinel(&ws->batches);
             q = ngx_queue_next(q))
        {
            wb = ngx_queue_data(q, ngx_bayeux_ws_batch_t, queue);

            if (wb->batch.paused) {
                break;
            }
        }

        if (q == ngx_queue_sentinel(&ws->batches)) {
            return;
        }

        /* clears "paused"; the batch may be answered and freed */
        ngx_bayeux_ws_batch_hold(wb);
    }
}


/*
 * The parent of a subrequest made for a batch of this websocket: a fake
 * request, built from the upgrade, that lives as long as its subrequest
 * (ngx_bayeux_fake_request.c).  NULL: the websocket is closing, its
 * endpoint makes no subrequests (nothing of the upgrade was kept), or no
 * memory.
 */

ngx_http_request_t *
ngx_bayeux_ws_parent(ngx_bayeux_batch_t *b)
{
    ngx_bayeux_ws_t        *ws;
    ngx_bayeux_ws_batch_t  *wb = b->data;

    ws = wb->ws;

    if (ws->closing || ws->done || ws->upgrade == NULL) {
        return NULL;
    }

    return ngx_bayeux_fake_request(ws->upgrade, ws->connection, wb->pool);
}


/* the engine completed for a closed websocket: the last one closes it */

static void
ngx_bayeux_ws_batch_abort(ngx_bayeux_batch_t *b)
{
    ngx_bayeux_ws_t        *ws;
    ngx_bayeux_ws_batch_t  *wb = b->data;

    ws = wb->ws;

    ngx_bayeux_ws_batch_free(wb);

    if (!ws->event.posted) {
        /* the handler waits for the last batch in the engine */
        ngx_post_event(&ws->event, &ngx_posted_next_events);
    }
}


static void
ngx_bayeux_ws_batch_timeout(ngx_event_t *ev)
{
    ngx_bayeux_ws_batch_t  *wb = ev->data;

    ngx_bayeux_batch_release(&wb->batch);
}


static void
ngx_bayeux_ws_batch_free(ngx_bayeux_ws_batch_t *wb)
{
    if (wb->hold.timer_set) {
        ngx_del_timer(&wb->hold);
    }

    ngx_queue_remove(&wb->queue);
    ngx_destroy_pool(wb->pool);
}


static ngx_int_t
ngx_bayeux_ws_reserve(u_char **buf, size_t *size, size_t used, size_t need,
    ngx_log_t *log)
{
    size_t   n;
    u_char  *p;

    if (*size - used >= need) {
        return NGX_OK;
    }

    n = ngx_max(*size * 2, used + need);
    n = ngx_max(n, 4096);

    p = ngx_alloc(n, log);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (*buf) {
        ngx_memcpy(p, *buf, used);
        ngx_free(*buf);
    }

    *buf = p;
    *size = n;

    return NGX_OK;
}


/* room for "need" more received bytes, in a buffer of the websocket's */

static ngx_int_t
ngx_bayeux_ws_reserve_in(ngx_bayeux_ws_t *ws, size_t need)
{
    u_char  *shared;

    if (!ws->in_shared) {
        return ngx_bayeux_ws_reserve(&ws->in, &ws->in_size, ws->in_len, need,
                                     ws->connection->log);
    }

    /* the worker's buffer stays: its bytes go to a new one */

    shared = ws->in;

    ws->in = NULL;
    ws->in_size = 0;
    ws->in_shared = 0;

    if (ngx_bayeux_ws_reserve(&ws->in, &ws->in_size, 0, ws->in_len + need,
                              ws->connection->log)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_memcpy(ws->in, shared, ws->in_len);

    return NGX_OK;
}


/*
 * Frames go out through the connection's send_chain(), as nginx's own
 * responses do: over TLS a write that could not finish must be retried
 * from the same memory, which nginx's TLS layer sees to with a buffer of
 * its own.  A frame goes out from the caller's memory when nothing waits
 * to be sent; what the socket does not take waits in ws->out.
 *
 * "reply": the frame answers the client (a reply, a pong), and counts
 * toward bayeux_websocket_max_output when it has to wait.  Deliveries do
 * not: while output waits none is taken from the engine, whose queue
 * bounds them.
 */

static ngx_int_t
ngx_bayeux_ws_send(ngx_bayeux_ws_t *ws, ngx_uint_t opcode, u_char *data,
    size_t len, ngx_uint_t reply)
{
    u_char        header[NGX_BAYEUX_WS_MAX_HEADER], *p;
    size_t        hlen, left;
    ngx_buf_t     hb, db;
    ngx_chain_t   out[2], *rest;

    if (ws->closing || ws->done) {
        return ws->done ? NGX_DONE : NGX_OK;
    }

    hlen = ngx_bayeux_ws_frame_header(header, opcode, len);

    if (reply && (ws->out_pos < ws->out_len || ws->connection->buffered)) {

        ws->waiting += hlen + len;

        if (ws->waiting > ws->conf->websocket_max_output) {
            ngx_log_error(NGX_LOG_INFO, ws->connection->log, 0,
                          "bayeux: websocket client does not read, more "
                          "than %uz bytes of replies wait "
                          "(bayeux_websocket_max_output), closing",
                          ws->conf->websocket_max_output);

            ngx_bayeux_ws_fail(ws, NGX_BAYEUX_WS_POLICY,
                               "output limit exceeded");

            return ws->done ? NGX_DONE : NGX_OK;
        }
    }

    if (opcode == NGX_BAYEUX_WS_CLOSE) {
        ws->closing = 1;
    }

    ngx_memzero(&hb, sizeof(ngx_buf_t));
    ngx_memzero(&db, sizeof(ngx_buf_t));

    hb.pos = header;
    hb.last = header + hlen;
    hb.memory = 1;

    db.pos = data;
    db.last = data + len;
    db.memory = 1;

    if (ws->out_pos == ws->out_len && !ws->connection->buffered) {

        out[0].buf = &hb;
        out[0].next = len ? &out[1] : NULL;
        out[1].buf = &db;
        out[1].next = NULL;

        (len ? &db : &hb)->flush = 1;

        rest = ws->connection->send_chain(ws->connection, out, 0);

        if (rest == NGX_CHAIN_ERROR) {
            ngx_bayeux_ws_finalize(ws);
            return NGX_DONE;
        }

        ws->out_pos = 0;
        ws->out_len = 0;
    }

    /* what was not sent waits, after what already waits */

    left = (hb.last - hb.pos) + (db.last - db.pos);

    if (left) {
        if (ws->out_pos && ws->out_pos == ws->out_len) {
            ws->out_pos = 0;
            ws->out_len = 0;
        }

        if (ngx_bayeux_ws_reserve(&ws->out, &ws->out_size, ws->out_len,
                                  left, ws->connection->log)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        p = ngx_cpymem(ws->out + ws->out_len, hb.pos, hb.last - hb.pos);

        if (db.last != db.pos) {
            p = ngx_cpymem(p, db.pos, db.last - db.pos);
        }

        ws->out_len = p - ws->out;
    }

    ngx_bayeux_ws_flush(ws);

    /* closed meanwhile: the batches are freed */
    return ws->done ? NGX_DONE : NGX_OK;
}


static void
ngx_bayeux_ws_write_handler(ngx_event_t *wev)
{
    ngx_connection_t  *c;
    ngx_bayeux_ws_t   *ws;

    c = wev->data;
    ws = c->data;

    if (ws->done) {
        return;
    }

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "bayeux: websocket client read nothing for %M ms "
                      "(send_timeout), closing", ws->send_timeout);
        c->timedout = 1;
        ngx_bayeux_ws_finalize(ws);
        return;
    }

    ngx_bayeux_ws_flush(ws);
}


/*
 * Sends what waits: ws->out, and over TLS what nginx's TLS layer holds.
 * ws->out may grow while it waits (frames queue behind), which is why it
 * is never handed to a TLS write itself: send_chain() copies it.
 */

static void
ngx_bayeux_ws_flush(ngx_bayeux_ws_t *ws)
{
    off_t                   sent;
    ngx_buf_t               b;
    ngx_chain_t             out, *in, *rest;
    ngx_queue_t            *q;
    ngx_connection_t       *c;
    ngx_bayeux_ws_batch_t  *wb;

    c = ws->connection;

    if (ws->done) {
        return;
    }

    if (ws->out_pos < ws->out_len || c->buffered) {

        in = NULL;

        if (ws->out_pos < ws->out_len) {
            ngx_memzero(&b, sizeof(ngx_buf_t));
            b.pos = ws->out + ws->out_pos;
            b.last = ws->out + ws->out_len;
            b.memory = 1;
            b.flush = 1;

            out.buf = &b;
            out.next = NULL;
            in = &out;
        }

        sent = c->sent;

        rest = c->send_chain(c, in, 0);

        if (rest == NGX_CHAIN_ERROR) {
            ngx_bayeux_ws_finalize(ws);
            return;
        }

        if (in) {
            ws->out_pos = b.pos - ws->out;
        }

        if (ws->out_pos < ws->out_len || c->buffered) {

            /*
             * send_timeout runs from the last time the client took
             * something, as for nginx's responses: frames queued behind
             * (a client's pings) do not put it off
             */

            if (c->sent != sent || !c->write->timer_set) {
                ngx_add_timer(c->write, ws->send_timeout);
            }

            if (ngx_handle_write_event(c->write, ws->send_lowat) != NGX_OK) {
                ngx_bayeux_ws_finalize(ws);
            }

            return;
        }
    }

    ws->out_pos = 0;
    ws->out_len = 0;
    ws->waiting = 0;

    if (ws->out) {
        ngx_free(ws->out);
        ws->out = NULL;
        ws->out_size = 0;
    }

#if (NGX_SSL)

    /* an idle websocket keeps no TLS write buffer (ssl_buffer_size) */

    if (c->ssl) {
        ngx_ssl_free_buffer(c);
    }

#endif

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    if (ws->closing) {
        ngx_bayeux_ws_finalize(ws);
        return;
    }

    if (ws->resume.posted) {
        return;
    }

    for (q = ngx_queue_head(&ws->batches);
         q != ngx_queue_sentinel(&ws->batches);
         q = ngx_queue_next(q))
    {
        wb = ngx_queue_data(q, ngx_bayeux_ws_batch_t, queue);

        if (wb->batch.paused) {
            /* paused connects are held again */
            ngx_post_event(&ws->resume, &ngx_posted_events);
            return;
        }
    }
}


/* sends a close frame, then closes once it is out */

static void
ngx_bayeux_ws_fail(ngx_bayeux_ws_t *ws, ngx_uint_t code, char *reason)
{
    u_char  frame[NGX_BAYEUX_WS_MAX_CONTROL];
    size_t  len;

    if (code != NGX_BAYEUX_WS_NORMAL) {
        ngx_log_error(NGX_LOG_INFO, ws->connection->log, 0,
                      "bayeux: closing websocket: %ui %s",
                      code, reason ? reason : "");
    }

    if (ws->close_code == 0) {
        ws->close_code = code;
    }

    len = ngx_bayeux_ws_frame_close_payload(frame, code, reason);

    if (ngx_bayeux_ws_send(ws, NGX_BAYEUX_WS_CLOSE, frame, len, 0)
        == NGX_ERROR)
    {
        ngx_bayeux_ws_finalize(ws);
    }
}


/*
 * Ends the websocket: the batches are cancelled, and the connection is
 * closed from a posted event, once no engine operation is under way for
 * it (the last one's abort handler posts it again): until then callers
 * up the stack may still look at "ws".
 */

static void
ngx_bayeux_ws_finalize(ngx_bayeux_ws_t *ws)
{
    ngx_queue_t            *q, *next;
    ngx_bayeux_ws_batch_t  *wb;

    if (ws->done) {
        return;
    }

    ws->done = 1;

    for (q = ngx_queue_head(&ws->batches);
         q != ngx_queue_sentinel(&ws->batches);
         q = next)
    {
        next = ngx_queue_next(q);
        wb = ngx_queue_data(q, ngx_bayeux_ws_batch_t, queue);

        ngx_bayeux_batch_cancel(&wb->batch);

        if (ngx_bayeux_batch_in_engine(&wb->batch)) {
            /*
             * freed by its abort handler once out of the engine: the
             * engine call that led here may be one of its own
             */
            continue;
        }

        ngx_bayeux_ws_batch_free(wb);
    }

    if (!ws->event.posted) {
        /* the handler waits for the last batch in the engine */
        ngx_post_event(&ws->event, &ngx_posted_next_events);
    }
}


static void
ngx_bayeux_ws_close_handler(ngx_event_t *ev)
{
    ngx_connection_t  *c;
    ngx_bayeux_ws_t   *ws;

    ws = ev->data;
    c = ws->connection;

    if (!ngx_queue_empty(&ws->batches)) {
        return;
    }

    /*
     * The access log has the upgrade (its request is freed then, to keep
     * an idle websocket small): this tells of the end, what it exchanged
     * and how it ended (1006: no close frame was sent, the connection
     * was lost); no clientId, as the line is above debug level.
     */
    ngx_log_error(NGX_LOG_INFO, c->log, 0,
                  "bayeux: websocket closed: %M ms, %ui messages in, "
                  "%ui deliveries out, %O bytes sent, close %ui",
                  ngx_current_msec - ws->start, ws->messages_in,
                  ws->deliveries_out, c->sent,
                  ws->close_code ? ws->close_code : 1006);

    if (ws->conf->websocket_log && ws->upgrade) {
        ngx_bayeux_ws_log_close(ws);
    }

    /* frees "ws" (ngx_bayeux_ws_cleanup) */
    ngx_http_close_connection(c);
}


/*
 * The closing line goes through the location's access log as if a
 * request had lasted the websocket's whole life: a request of its own,
 * made from what the websocket kept of its upgrade, status 101, its
 * start the upgrade's, its bytes sent the websocket's.  The log phase
 * runs on it at once; the request frees itself afterwards (a posted
 * event of ngx_bayeux_fake_request()).
 */

ngx_bayeux_ws_log_t  *ngx_bayeux_ws_log;

static void
ngx_bayeux_ws_log_close(ngx_bayeux_ws_t *ws)
{
    ngx_uint_t                  i, n;
    ngx_str_t                  *grants;
    ngx_http_request_t         *r;
    ngx_bayeux_ws_log_t         log;
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    r = ngx_bayeux_fake_request(ws->upgrade, ws->connection, NULL);
    if (r == NULL) {
        return;
    }

    r->method = NGX_HTTP_GET;
    ngx_str_set(&r->method_name, "GET");
    r->headers_out.status = NGX_HTTP_SWITCHING_PROTOCOLS;

    /* $request: the upgrade's line, as far as it was kept */

    r->request_line.data = ngx_pnalloc(r->pool, sizeof("GET  HTTP/1.1") - 1
                                       + ws->upgrade->unparsed_uri.len);
    if (r->request_line.data) {
        r->request_line.len = ngx_sprintf(r->request_line.data,
                                          "GET %V HTTP/1.1",
                                          &ws->upgrade->unparsed_uri)
                              - r->request_line.data;
    }
    r->start_sec = ws->start_sec;
    r->start_msec = ws->start_msec;
    r->connection->sent = ws->connection->sent;

    ngx_memzero(&log, sizeof(ngx_bayeux_ws_log_t));

    log.request = r;
    log.client_id = ws->session;
    log.messages = ws->messages_in;

    grants = ngx_bayeux_session_grants(ws->known, &ws->session);
    if (grants) {
        log.grants = *grants;
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_core_module);

    h = cmcf->phases[NGX_HTTP_LOG_PHASE].handlers.elts;
    n = cmcf->phases[NGX_HTTP_LOG_PHASE].handlers.nelts;

    ngx_bayeux_ws_log = &log;

    for (i = 0; i < n; i++) {
        h[i](r);
    }

    ngx_bayeux_ws_log = NULL;
}


/* the connection's pool goes away */

static void
ngx_bayeux_ws_cleanup(void *data)
{
    ngx_bayeux_ws_t  *ws = data;

    if (ws->open) {
        ngx_bayeux_stat(ws->conf->endpoint, NGX_BAYEUX_STAT_WEBSOCKETS_OPEN,
                        -1);
    }

    if (ws->event.posted) {
        ngx_delete_posted_event(&ws->event);
    }

    if (ws->resume.posted) {
        ngx_delete_posted_event(&ws->resume);
    }

    if (ws->in && !ws->in_shared) {
        ngx_free(ws->in);
    }

    if (ws->msg) {
        ngx_free(ws->msg);
        ws->msg = NULL;
    }

    if (ws->out) {
        ngx_free(ws->out);
    }

    ngx_free(ws);
}
