
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>

#include "ngx_bayeux_redis_adapter.h"


/*
 * nginx connects, reads, writes and speaks TLS, as it does for an
 * upstream; hiredis is only the codec: redisFormatCommandArgv() makes a
 * command's bytes, a redisReader makes replies of what was read.  Replies
 * come in the order of the commands, so the commands in flight are a
 * queue; a subscription stays at its head and takes every message that
 * follows.
 */


/* a Redis that vanished without a word is noticed after about this */
#define NGX_BAYEUX_REDIS_KEEPIDLE      15

#define NGX_BAYEUX_REDIS_OUT_MIN       4096


static void ngx_bayeux_redis_read_handler(ngx_event_t *rev);
static void ngx_bayeux_redis_write_handler(ngx_event_t *wev);
static void ngx_bayeux_redis_connecting(ngx_bayeux_redis_conn_t *rc);
static void ngx_bayeux_redis_established(ngx_bayeux_redis_conn_t *rc);
#if (NGX_SSL)
static void ngx_bayeux_redis_ssl_start(ngx_bayeux_redis_conn_t *rc);
static void ngx_bayeux_redis_ssl_handshaked(ngx_connection_t *c);
#endif
static void ngx_bayeux_redis_replies(ngx_bayeux_redis_conn_t *rc);
static ngx_int_t ngx_bayeux_redis_flush(ngx_bayeux_redis_conn_t *rc);
static void ngx_bayeux_redis_timeout(ngx_event_t *ev);
static void ngx_bayeux_redis_fail(ngx_bayeux_redis_conn_t *rc,
    const char *why);
static void ngx_bayeux_redis_finish(ngx_bayeux_redis_conn_t *rc);
static void ngx_bayeux_redis_free(ngx_bayeux_redis_conn_t *rc);
static void ngx_bayeux_redis_log_writer(ngx_log_t *log, ngx_uint_t level,
    u_char *buf, size_t len);
static void ngx_bayeux_redis_set_error(ngx_bayeux_redis_conn_t *rc,
    const char *error);


/* replies are read through this; a worker runs one handler at a time */

static u_char  ngx_bayeux_redis_buffer[16384];


ngx_int_t
ngx_bayeux_redis_connect(ngx_bayeux_redis_conn_t *rc, ngx_addr_t *addr)
{
    ngx_int_t          n;
    ngx_connection_t  *c;

    rc->error[0] = '\0';
    rc->pending = 0;
    rc->out_pos = 0;
    rc->out_len = 0;
    rc->is_connected = 0;
    rc->closing = 0;
    rc->handling = 0;

    ngx_queue_init(&rc->requests);

    /*
     * What nginx says of the connection (connect() refused, a TLS alert,
     * a reset) is the reason the owner logs, once per outage; the rest
     * goes on to the owner's log.
     */

    rc->conn_log = *rc->log;
    rc->conn_log.log_level = ngx_max(rc->log->log_level, NGX_LOG_ERR);
    rc->conn_log.connection = 0;
    rc->conn_log.handler = NULL;
    rc->conn_log.data = NULL;
    rc->conn_log.action = NULL;
    rc->conn_log.writer = ngx_bayeux_redis_log_writer;
    rc->conn_log.wdata = rc;
    rc->conn_log.next = NULL;

    rc->pool = ngx_create_pool(512, rc->log);
    if (rc->pool == NULL) {
        ngx_bayeux_redis_set_error(rc, "cannot allocate memory");
        return NGX_ERROR;
    }

    rc->reader = redisReaderCreate();
    if (rc->reader == NULL) {
        ngx_bayeux_redis_set_error(rc, "cannot allocate a reply reader");
        ngx_bayeux_redis_free(rc);
        return NGX_ERROR;
    }

    ngx_memzero(&rc->peer, sizeof(ngx_peer_connection_t));

    rc->peer.sockaddr = addr->sockaddr;
    rc->peer.socklen = addr->socklen;
    rc->peer.name = &addr->name;
    rc->peer.get = ngx_event_get_peer;
    rc->peer.log = &rc->conn_log;
    rc->peer.log_error = NGX_ERROR_ERR;
    rc->peer.so_keepalive = (addr->sockaddr->sa_family != AF_UNIX);

    n = ngx_event_connect_peer(&rc->peer);

    if (n == NGX_ERROR || n == NGX_BUSY || n == NGX_DECLINED) {
        ngx_bayeux_redis_set_error(rc, "cannot connect");
        ngx_bayeux_redis_free(rc);
        return NGX_ERROR;
    }

    c = rc->peer.connection;

    c->data = rc;
    c->pool = rc->pool;
    c->read->handler = ngx_bayeux_redis_read_handler;
    c->write->handler = ngx_bayeux_redis_write_handler;

    rc->conn_log.connection = c->number;
    rc->connection = c;

    rc->timer.handler = ngx_bayeux_redis_timeout;
    rc->timer.data = rc;
    rc->timer.log = rc->log;

    ngx_add_timer(&rc->timer, rc->connect_timeout);

    if (n == NGX_OK) {
        /* a unix socket connects at once: the event loop goes on */
        ngx_post_event(c->write, &ngx_posted_events);
    }

    return NGX_OK;
}


ngx_int_t
ngx_bayeux_redis_send(ngx_bayeux_redis_conn_t *rc,
    ngx_bayeux_redis_req_t *req, int argc, const char **argv,
    const size_t *argvlen)
{
    int           len;
    char         *cmd;
    size_t        size;
    u_char       *out;
    ngx_event_t  *wev;

    if (rc->connection == NULL || rc->closing || !rc->is_connected) {
        return NGX_ERROR;
    }

    len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);

    if (len < 0) {
        return NGX_ERROR;
    }

    if (rc->out_len + len > rc->out_size) {

        /*
         * Bytes already written go; the rest moves, which TLS allows
         * (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER, set with the context).
         */

        size = ngx_max(2 * rc->out_size, NGX_BAYEUX_REDIS_OUT_MIN);
        size = ngx_max(size, rc->out_len - rc->out_pos + len);

        out = ngx_alloc(size, rc->log);
        if (out == NULL) {
            redisFreeCommand(cmd);
            return NGX_ERROR;
        }

        if (rc->out) {
            ngx_memcpy(out, rc->out + rc->out_pos,
                       rc->out_len - rc->out_pos);
            ngx_free(rc->out);
        }

        rc->out = out;
        rc->out_len -= rc->out_pos;
        rc->out_pos = 0;
        rc->out_size = size;
    }

    ngx_memcpy(rc->out + rc->out_len, cmd, len);
    rc->out_len += len;

    redisFreeCommand(cmd);

    req->confirmed = 0;
    ngx_queue_insert_tail(&rc->requests, &req->queue);

    /* the timer watches the oldest command without a reply */

    if (rc->pending++ == 0) {
        ngx_add_timer(&rc->timer, rc->command_timeout);
    }

    /*
     * Commands added until the event loop's next turn go in one write;
     * the "next" queue runs it without waiting for another event, also
     * for commands added outside of event processing (when a shutdown
     * terminates requests, say).  A socket that took less than was
     * written reports by itself when it takes more.
     */

    wev = rc->connection->write;

    if (wev->ready && !wev->posted) {
        ngx_post_event(wev, &ngx_posted_next_events);
    }

    return NGX_OK;
}


/*
 * Ends the connection: the commands in flight are answered with NULL,
 * then "closed" is called.  While replies are being handled, the handler
 * that reads them finishes it.
 */

void
ngx_bayeux_redis_close(ngx_bayeux_redis_conn_t *rc, const char *why)
{
    if (rc->connection == NULL || rc->closing) {
        return;
    }

    rc->closing = 1;

    if (why) {
        ngx_bayeux_redis_set_error(rc, why);
    }

    if (rc->handling) {
        return;
    }

    ngx_bayeux_redis_finish(rc);
}


/*
 * Events may be edge-triggered: the handler reads until the socket has
 * nothing left, each read up to the size of the buffer.
 */

static void
ngx_bayeux_redis_read_handler(ngx_event_t *rev)
{
    ssize_t                   n;
    ngx_connection_t         *c;
    ngx_bayeux_redis_conn_t  *rc;

    c = rev->data;
    rc = c->data;

    if (c->close) {
        /* worker_shutdown_timeout closes every connection */
        ngx_bayeux_redis_close(rc, "worker process is shutting down");
        return;
    }

    if (!rc->is_connected) {
        ngx_bayeux_redis_connecting(rc);
        return;
    }

    rc->handling = 1;

    do {
        n = c->recv(c, ngx_bayeux_redis_buffer,
                    sizeof(ngx_bayeux_redis_buffer));

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == 0) {
            ngx_bayeux_redis_fail(rc, "Server closed the connection");
            break;
        }

        if (n == NGX_ERROR) {
            ngx_bayeux_redis_fail(rc, "recv() failed");
            break;
        }

        if (redisReaderFeed(rc->reader, (char *) ngx_bayeux_redis_buffer, n)
            != REDIS_OK)
        {
            ngx_bayeux_redis_fail(rc, "cannot allocate memory");
            break;
        }

        ngx_bayeux_redis_replies(rc);

    } while (rev->ready && !rc->closing);

    rc->handling = 0;

    if (rc->closing) {
        ngx_bayeux_redis_finish(rc);
        return;
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_bayeux_redis_close(rc, "cannot wait for a read event");
    }
}


static void
ngx_bayeux_redis_write_handler(ngx_event_t *wev)
{
    ngx_connection_t         *c;
    ngx_bayeux_redis_conn_t  *rc;

    c = wev->data;
    rc = c->data;

    if (!rc->is_connected) {
        ngx_bayeux_redis_connecting(rc);
        return;
    }

    if (ngx_bayeux_redis_flush(rc) != NGX_OK) {
        ngx_bayeux_redis_fail(rc, "send() failed");
    }
}


/* the first event of a connection in progress: did connect() succeed? */

static void
ngx_bayeux_redis_connecting(ngx_bayeux_redis_conn_t *rc)
{
    int                err;
    socklen_t          len;
    ngx_connection_t  *c;

    c = rc->connection;

    err = 0;
    len = sizeof(int);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len) == -1) {
        err = ngx_socket_errno;
    }

    if (err) {
        (void) ngx_connection_error(c, err, "connect() failed");
        ngx_bayeux_redis_fail(rc, "connect() failed");
        return;
    }

#if (NGX_SSL)

    if (rc->ssl) {
        ngx_bayeux_redis_ssl_start(rc);
        return;
    }

#endif

    ngx_bayeux_redis_established(rc);
}


static void
ngx_bayeux_redis_established(ngx_bayeux_redis_conn_t *rc)
{
    ngx_connection_t  *c;
#if (NGX_HAVE_KEEPALIVE_TUNABLE)
    int                value;
#endif

    c = rc->connection;

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, rc->log, 0,
                   "bayeux redis: connected, fd:%d", c->fd);

#if (NGX_HAVE_KEEPALIVE_TUNABLE)

    if (rc->peer.sockaddr->sa_family != AF_UNIX) {
        value = NGX_BAYEUX_REDIS_KEEPIDLE;
        (void) setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPIDLE,
                          (const void *) &value, sizeof(int));
        value = NGX_BAYEUX_REDIS_KEEPIDLE / 3;
        (void) setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPINTVL,
                          (const void *) &value, sizeof(int));
        value = 3;
        (void) setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPCNT,
                          (const void *) &value, sizeof(int));
    }

#endif

    rc->is_connected = 1;

    if (rc->timer.timer_set) {
        ngx_del_timer(&rc->timer);
    }

    rc->handling = 1;

    rc->connected(rc);

    rc->handling = 0;

    if (rc->closing) {
        ngx_bayeux_redis_finish(rc);
    }
}


#if (NGX_SSL)

static void
ngx_bayeux_redis_ssl_start(ngx_bayeux_redis_conn_t *rc)
{
    ngx_int_t          n;
    ngx_connection_t  *c;

    c = rc->connection;

    if (ngx_ssl_create_connection(rc->ssl, c, NGX_SSL_CLIENT) != NGX_OK) {
        ngx_bayeux_redis_fail(rc, "cannot create a TLS connection");
        return;
    }

    if (rc->ssl_server_name && rc->ssl_name.len
        && SSL_set_tlsext_host_name(c->ssl->connection,
                                    (char *) rc->ssl_name.data)
           == 0)
    {
        ngx_bayeux_redis_fail(rc, "SSL_set_tlsext_host_name() failed");
        return;
    }

    n = ngx_ssl_handshake(c);

    if (n == NGX_AGAIN) {
        /* the connect timer watches the handshake too */
        c->ssl->handler = ngx_bayeux_redis_ssl_handshaked;
        return;
    }

    ngx_bayeux_redis_ssl_handshaked(c);
}


static void
ngx_bayeux_redis_ssl_handshaked(ngx_connection_t *c)
{
    long                      v;
    u_char                    error[sizeof(((ngx_bayeux_redis_conn_t *) 0)
                                           ->error)];
    ngx_bayeux_redis_conn_t  *rc;

    rc = c->data;

    if (!c->ssl->handshaked) {
        ngx_bayeux_redis_fail(rc, "TLS handshake failed");
        return;
    }

    if (rc->ssl_verify) {
        v = SSL_get_verify_result(c->ssl->connection);

        if (v != X509_V_OK) {
            ngx_snprintf(error, sizeof(error) - 1,
                         "SSL certificate verify error: (%l:%s)%Z",
                         v, X509_verify_cert_error_string(v));
            error[sizeof(error) - 1] = '\0';
            ngx_bayeux_redis_fail(rc, (char *) error);
            return;
        }

        if (ngx_ssl_check_host(c, &rc->ssl_name) != NGX_OK) {
            ngx_snprintf(error, sizeof(error) - 1,
                         "SSL certificate does not match \"%V\"%Z",
                         &rc->ssl_name);
            error[sizeof(error) - 1] = '\0';
            ngx_bayeux_redis_fail(rc, (char *) error);
            return;
        }
    }

    c->read->handler = ngx_bayeux_redis_read_handler;
    c->write->handler = ngx_bayeux_redis_write_handler;

    ngx_bayeux_redis_established(rc);
}

#endif


static void
ngx_bayeux_redis_replies(ngx_bayeux_redis_conn_t *rc)
{
    void                    *reply;
    ngx_queue_t             *q;
    ngx_bayeux_redis_req_t  *req;

    for ( ;; ) {
        if (redisReaderGetReply(rc->reader, &reply) != REDIS_OK) {
            ngx_bayeux_redis_fail(rc, rc->reader->errstr[0]
                                      ? rc->reader->errstr
                                      : "protocol error");
            return;
        }

        if (reply == NULL) {
            return;
        }

        if (ngx_queue_empty(&rc->requests)) {
            freeReplyObject(reply);
            ngx_bayeux_redis_fail(rc, "a reply to no command");
            return;
        }

        q = ngx_queue_head(&rc->requests);
        req = ngx_queue_data(q, ngx_bayeux_redis_req_t, queue);

        if (!req->subscription) {
            ngx_queue_remove(q);
        }

        /* a subscription is answered by every message; it counts once */

        if (!req->confirmed) {
            req->confirmed = 1;

            if (rc->pending) {
                rc->pending--;
            }

            if (rc->pending == 0) {
                if (rc->timer.timer_set) {
                    ngx_del_timer(&rc->timer);
                }

            } else if (!rc->closing) {
                /* a reply is progress: the next one gets a full timeout */
                ngx_add_timer(&rc->timer, rc->command_timeout);
            }
        }

        req->handler(rc, reply, req);

        freeReplyObject(reply);

        if (rc->closing) {
            return;
        }
    }
}


static ngx_int_t
ngx_bayeux_redis_flush(ngx_bayeux_redis_conn_t *rc)
{
    ssize_t            n;
    ngx_connection_t  *c;

    c = rc->connection;

    while (rc->out_pos < rc->out_len) {
        n = c->send(c, rc->out + rc->out_pos, rc->out_len - rc->out_pos);

        if (n == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (n == NGX_AGAIN) {
            break;
        }

        rc->out_pos += n;

        if (!c->write->ready) {
            break;
        }
    }

    if (rc->out_pos == rc->out_len) {
        rc->out_pos = 0;
        rc->out_len = 0;
    }

    return ngx_handle_write_event(c->write, 0);
}


static void
ngx_bayeux_redis_timeout(ngx_event_t *ev)
{
    ngx_bayeux_redis_conn_t  *rc = ev->data;

    ngx_bayeux_redis_close(rc, rc->is_connected ? "command timed out"
                                                : "connect timed out");
}


/* the first reason given stays: what nginx logged, else "why" */

static void
ngx_bayeux_redis_fail(ngx_bayeux_redis_conn_t *rc, const char *why)
{
    if (rc->error[0] == '\0') {
        ngx_bayeux_redis_set_error(rc, why);
    }

    ngx_bayeux_redis_close(rc, NULL);
}


static void
ngx_bayeux_redis_finish(ngx_bayeux_redis_conn_t *rc)
{
    ngx_queue_t             *q;
    ngx_connection_t        *c;
    ngx_bayeux_redis_req_t  *req;

    c = rc->connection;

    if (rc->error[0] == '\0') {
        ngx_bayeux_redis_set_error(rc, "connection closed");
    }

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, rc->log, 0,
                   "bayeux redis: connection closed: %s", rc->error);

    if (rc->timer.timer_set) {
        ngx_del_timer(&rc->timer);
    }

    rc->connection = NULL;
    rc->is_connected = 0;
    rc->closing = 0;
    rc->handling = 0;
    rc->pending = 0;

    if (c) {
#if (NGX_SSL)
        if (c->ssl) {
            /* no close_notify: the socket may be broken, nothing waits */
            c->ssl->no_wait_shutdown = 1;
            c->ssl->no_send_shutdown = 1;
            (void) ngx_ssl_shutdown(c);
        }
#endif

        ngx_close_connection(c);
    }

    ngx_bayeux_redis_free(rc);

    while (!ngx_queue_empty(&rc->requests)) {
        q = ngx_queue_head(&rc->requests);
        ngx_queue_remove(q);
        req = ngx_queue_data(q, ngx_bayeux_redis_req_t, queue);
        req->handler(rc, NULL, req);
    }

    rc->closed(rc);
}


static void
ngx_bayeux_redis_free(ngx_bayeux_redis_conn_t *rc)
{
    if (rc->reader) {
        redisReaderFree(rc->reader);
        rc->reader = NULL;
    }

    if (rc->out) {
        ngx_free(rc->out);
        rc->out = NULL;
    }

    rc->out_pos = 0;
    rc->out_len = 0;
    rc->out_size = 0;

    if (rc->pool) {
        ngx_destroy_pool(rc->pool);
        rc->pool = NULL;
    }
}


/*
 * The connection's log: an error becomes the reason the connection
 * ended (the first one: what follows is its consequence); anything else
 * is written to the owner's log as it would have been.
 */

static void
ngx_bayeux_redis_log_writer(ngx_log_t *log, ngx_uint_t level, u_char *buf,
    size_t len)
{
    u_char                   *p, *last;
    ngx_log_t                *to;
    ngx_bayeux_redis_conn_t  *rc;

    rc = log->wdata;

    if (level > NGX_LOG_ERR) {
        to = rc->log;

        if (to->log_level < level) {
            return;
        }

        if (to->writer) {
            to->writer(to, level, buf, len);

        } else if (to->file && to->file->fd != NGX_INVALID_FILE) {
            (void) ngx_write_fd(to->file->fd, buf, len);
        }

        return;
    }

    if (rc->error[0] != '\0') {
        return;
    }

    /* the message follows "time [level] pid#tid: *connection " */

    last = buf + len;

    while (last > buf && (last[-1] == LF || last[-1] == CR)) {
        last--;
    }

    p = ngx_strlchr(buf, last, '#');
    p = p ? ngx_strlchr(p, last, ':') : NULL;

    if (p == NULL || p + 2 > last) {
        return;
    }

    p += 2;

    if (*p == '*') {
        p = ngx_strlchr(p, last, ' ');

        if (p == NULL) {
            return;
        }

        p++;
    }

    len = ngx_min((size_t) (last - p), sizeof(rc->error) - 1);
    ngx_memcpy(rc->error, p, len);
    rc->error[len] = '\0';
}


static void
ngx_bayeux_redis_set_error(ngx_bayeux_redis_conn_t *rc, const char *error)
{
    ngx_cpystrn(rc->error, (u_char *) error, sizeof(rc->error));
}


ngx_int_t
ngx_bayeux_redis_auth(ngx_bayeux_redis_conn_t *rc,
    ngx_bayeux_redis_req_t *req, ngx_str_t *user, ngx_str_t *password)
{
    int          argc;
    const char  *argv[3];
    size_t       argvlen[3];

    if (password->len == 0) {
        return NGX_OK;
    }

    argc = 0;
    argv[argc] = "AUTH";
    argvlen[argc++] = 4;

    if (user->len) {
        argv[argc] = (const char *) user->data;
        argvlen[argc++] = user->len;
    }

    argv[argc] = (const char *) password->data;
    argvlen[argc++] = password->len;

    return ngx_bayeux_redis_send(rc, req, argc, argv, argvlen);
}
