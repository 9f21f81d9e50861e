
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_bayeux_redis_adapter.h"


/*
 * hiredis does the protocol; nginx does the waiting.  The descriptor of
 * the hiredis context gets an ngx_connection_t, so that its events come
 * from nginx's event loop like those of any other connection.  hiredis
 * owns the descriptor and closes it: the ngx_connection_t is only
 * released, never closed.
 */


static void ngx_bayeux_redis_on_connect(const redisAsyncContext *ac,
    int status);
static void ngx_bayeux_redis_reply(redisAsyncContext *ac, void *reply,
    void *privdata);
static void ngx_bayeux_redis_read_handler(ngx_event_t *rev);
static void ngx_bayeux_redis_write_handler(ngx_event_t *wev);
static void ngx_bayeux_redis_timeout(ngx_event_t *ev);
static void ngx_bayeux_redis_add_read(void *data);
static void ngx_bayeux_redis_del_read(void *data);
static void ngx_bayeux_redis_add_write(void *data);
static void ngx_bayeux_redis_del_write(void *data);
static void ngx_bayeux_redis_cleanup(void *data);
static void ngx_bayeux_redis_free_connection(ngx_connection_t *c);
static void ngx_bayeux_redis_set_error(ngx_bayeux_redis_conn_t *rc,
    const char *error);


ngx_int_t
ngx_bayeux_redis_connect(ngx_bayeux_redis_conn_t *rc, const char *host,
    int port)
{
    ngx_int_t           flags;
    ngx_connection_t   *c;
    redisAsyncContext  *ac;

    rc->error[0] = '\0';

    /* "host" is an address: the name was resolved with the configuration */

    ac = redisAsyncConnect(host, port);

    if (ac == NULL) {
        ngx_bayeux_redis_set_error(rc, "cannot allocate a hiredis context");
        return NGX_ERROR;
    }

    if (ac->err) {
        ngx_bayeux_redis_set_error(rc, ac->c.errstr);
        redisAsyncFree(ac);
        return NGX_ERROR;
    }

    c = ngx_get_connection(ac->c.fd, rc->log);

    if (c == NULL) {
        ngx_bayeux_redis_set_error(rc, "no free worker connection");
        redisAsyncFree(ac);
        return NGX_ERROR;
    }

    c->data = rc;
    c->read->handler = ngx_bayeux_redis_read_handler;
    c->write->handler = ngx_bayeux_redis_write_handler;
    c->read->log = rc->log;
    c->write->log = rc->log;

    rc->level = (ngx_event_flags & NGX_USE_CLEAR_EVENT) ? 0 : 1;

    if (!rc->level && ngx_add_conn) {
        if (ngx_add_conn(c) != NGX_OK) {
            goto failed;
        }

    } else {
        flags = rc->level ? NGX_LEVEL_EVENT : NGX_CLEAR_EVENT;

        if (ngx_add_event(c->read, NGX_READ_EVENT, flags) != NGX_OK) {
            goto failed;
        }

        if (!rc->level
            && ngx_add_event(c->write, NGX_WRITE_EVENT, flags) != NGX_OK)
        {
            goto failed;
        }
    }

    rc->ac = ac;
    rc->connection = c;
    rc->generation++;
    rc->pending = 0;
    rc->is_connected = 0;
    rc->closing = 0;
    rc->want_write = 0;
    rc->handling = 0;
    rc->writing = 0;

    ac->data = rc;
    ac->ev.data = rc;
    ac->ev.addRead = ngx_bayeux_redis_add_read;
    ac->ev.delRead = ngx_bayeux_redis_del_read;
    ac->ev.addWrite = ngx_bayeux_redis_add_write;
    ac->ev.delWrite = ngx_bayeux_redis_del_write;
    ac->ev.cleanup = ngx_bayeux_redis_cleanup;

    /* the first write event tells that the connection is established */

    redisAsyncSetConnectCallback(ac, ngx_bayeux_redis_on_connect);

    rc->timer.handler = ngx_bayeux_redis_timeout;
    rc->timer.data = rc;
    rc->timer.log = rc->log;

    ngx_add_timer(&rc->timer, rc->connect_timeout);

    return NGX_OK;

failed:

    ngx_bayeux_redis_set_error(rc, "cannot add the connection to the "
                                   "event loop");
    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;
    redisAsyncFree(ac);

    return NGX_ERROR;
}


ngx_int_t
ngx_bayeux_redis_send(ngx_bayeux_redis_conn_t *rc,
    ngx_bayeux_redis_req_t *req, int argc, const char **argv,
    const size_t *argvlen)
{
    if (rc->ac == NULL || rc->closing || !rc->is_connected) {
        return NGX_ERROR;
    }

    req->confirmed = 0;

    if (redisAsyncCommandArgv(rc->ac, ngx_bayeux_redis_reply, req, argc,
                              argv, argvlen)
        != REDIS_OK)
    {
        return NGX_ERROR;
    }

    /* the timer watches the oldest command without a reply */

    if (rc->pending++ == 0) {
        ngx_add_timer(&rc->timer, rc->command_timeout);
    }

    return NGX_OK;
}


/*
 * Ends the connection: the commands in flight are answered with NULL,
 * then "closed" is called.  Inside hiredis's own processing the context
 * cannot be freed; the event handler that called hiredis finishes it.
 */

void
ngx_bayeux_redis_close(ngx_bayeux_redis_conn_t *rc, const char *why)
{
    if (rc->ac == NULL || rc->closing) {
        return;
    }

    rc->closing = 1;

    if (why) {
        ngx_bayeux_redis_set_error(rc, why);
    }

    if (rc->handling) {
        return;
    }

    redisAsyncFree(rc->ac);
}


static void
ngx_bayeux_redis_on_connect(const redisAsyncContext *ac, int status)
{
    ngx_bayeux_redis_conn_t  *rc = ac->data;

    if (status != REDIS_OK) {
        /* hiredis frees the context next: "closed" follows */
        ngx_bayeux_redis_set_error(rc, ac->c.errstr);
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, rc->log, 0,
                   "bayeux redis: connected, fd:%d", ac->c.fd);

    rc->is_connected = 1;

    if (rc->timer.timer_set) {
        ngx_del_timer(&rc->timer);
    }

    /* a Redis that vanished without a word is noticed */

    (void) redisEnableKeepAlive((redisContext *) &ac->c);

    rc->connected(rc);
}


static void
ngx_bayeux_redis_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    ngx_bayeux_redis_req_t   *req = privdata;
    ngx_bayeux_redis_conn_t  *rc = ac->data;

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

        } else if (rc->is_connected && !rc->closing) {
            /* a reply is progress: the next one gets a full timeout */
            ngx_add_timer(&rc->timer, rc->command_timeout);
        }
    }

    req->handler(rc, reply, req);
}


/*
 * Events are edge-triggered: a read event is reported once however many
 * bytes arrived, and hiredis reads 16 KiB at a time, so the handler calls
 * hiredis until the socket has nothing left.
 */

static void
ngx_bayeux_redis_read_handler(ngx_event_t *rev)
{
    u_char                    byte;
    ssize_t                   n;
    ngx_err_t                 err;
    ngx_uint_t                generation;
    ngx_connection_t         *c;
    redisAsyncContext        *ac;
    ngx_bayeux_redis_conn_t  *rc;

    c = rev->data;
    rc = c->data;
    ac = rc->ac;

    if (ac == NULL) {
        return;
    }

    if (c->close) {
        /* worker_shutdown_timeout closes every connection */
        ngx_bayeux_redis_close(rc, "worker process is shutting down");
        return;
    }

    generation = rc->generation;
    rc->handling = 1;

    for ( ;; ) {
        redisAsyncHandleRead(ac);

        if (rc->ac != ac || rc->generation != generation) {
            /* hiredis freed the context, and with it the connection */
            return;
        }

        if (rc->closing || !(ac->c.flags & REDIS_CONNECTED)) {
            break;
        }

        n = recv(ac->c.fd, &byte, 1, MSG_PEEK);

        if (n == -1) {
            err = ngx_socket_errno;

            if (err == NGX_EAGAIN) {
                rev->ready = 0;
                break;
            }

            if (err == NGX_EINTR) {
                continue;
            }
        }

        /* more data, the end of the stream or an error: hiredis reads it */
    }

    rc->handling = 0;

    if (rc->closing) {
        redisAsyncFree(ac);
    }
}


/*
 * A write that does not complete has filled the socket buffer, so the
 * next write event comes by itself; commands added meanwhile post the
 * write event, which sends everything added until then in one go.
 */

static void
ngx_bayeux_redis_write_handler(ngx_event_t *wev)
{
    ngx_uint_t                generation;
    ngx_connection_t         *c;
    redisAsyncContext        *ac;
    ngx_bayeux_redis_conn_t  *rc;

    c = wev->data;
    rc = c->data;
    ac = rc->ac;

    if (ac == NULL) {
        return;
    }

    generation = rc->generation;
    rc->handling = 1;
    rc->writing = 1;

    redisAsyncHandleWrite(ac);

    if (rc->ac != ac || rc->generation != generation) {
        return;
    }

    rc->handling = 0;
    rc->writing = 0;

    if (rc->closing) {
        redisAsyncFree(ac);
    }
}


static void
ngx_bayeux_redis_timeout(ngx_event_t *ev)
{
    ngx_bayeux_redis_conn_t  *rc = ev->data;

    ngx_bayeux_redis_close(rc, rc->is_connected ? "command timed out"
                                                : "connect timed out");
}


static void
ngx_bayeux_redis_add_read(void *data)
{
    /* the read event stays registered for the life of the connection */
}


static void
ngx_bayeux_redis_del_read(void *data)
{
}


static void
ngx_bayeux_redis_add_write(void *data)
{
    ngx_bayeux_redis_conn_t *rc = data;

    ngx_event_t  *wev;

    rc->want_write = 1;

    if (rc->connection == NULL) {
        return;
    }

    wev = rc->connection->write;

    if (rc->level) {
        if (!wev->active) {
            (void) ngx_add_event(wev, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
        }

        return;
    }

    /*
     * Until connect() completes only the kernel's write event may call
     * hiredis: it takes any call as the sign of an established connection.
     * Within the write handler, a write that did not complete waits for
     * the socket.
     */

    if (rc->ac == NULL || !(rc->ac->c.flags & REDIS_CONNECTED)
        || rc->writing || wev->posted)
    {
        return;
    }

    /*
     * Commands may be added outside of event processing too (when a
     * shutdown terminates requests, say): the "next" queue makes the
     * event loop run it without waiting for another event first.
     */

    ngx_post_event(wev, &ngx_posted_next_events);
}


static void
ngx_bayeux_redis_del_write(void *data)
{
    ngx_bayeux_redis_conn_t *rc = data;

    ngx_event_t  *wev;

    rc->want_write = 0;

    if (rc->connection == NULL || !rc->level) {
        return;
    }

    wev = rc->connection->write;

    if (wev->active) {
        (void) ngx_del_event(wev, NGX_WRITE_EVENT, 0);
    }
}


/* hiredis is about to free the context and close its descriptor */

static void
ngx_bayeux_redis_cleanup(void *data)
{
    ngx_bayeux_redis_conn_t *rc = data;

    if (!rc->closing) {
        ngx_bayeux_redis_set_error(rc, rc->ac->c.errstr[0]
                                       ? rc->ac->c.errstr
                                       : "connection closed");
    }

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, rc->log, 0,
                   "bayeux redis: connection closed: %s", rc->error);

    if (rc->timer.timer_set) {
        ngx_del_timer(&rc->timer);
    }

    if (rc->connection) {
        ngx_bayeux_redis_free_connection(rc->connection);
    }

    rc->ac = NULL;
    rc->connection = NULL;
    rc->pending = 0;
    rc->is_connected = 0;
    rc->closing = 0;
    rc->want_write = 0;
    rc->handling = 0;
    rc->writing = 0;

    rc->closed(rc);
}


static void
ngx_bayeux_redis_free_connection(ngx_connection_t *c)
{
    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    /* the descriptor is still open: the kernel must forget it explicitly */

    if (ngx_del_conn) {
        (void) ngx_del_conn(c, 0);

    } else {
        if (c->read->active) {
            (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
        }

        if (c->write->active) {
            (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
        }
    }

    c->read->closed = 1;
    c->write->closed = 1;

    ngx_free_connection(c);

    /* hiredis closes the descriptor; nginx must not, and events for it
     * still in this epoll batch are stale */

    c->fd = (ngx_socket_t) -1;
}


static void
ngx_bayeux_redis_set_error(ngx_bayeux_redis_conn_t *rc, const char *error)
{
    ngx_cpystrn(rc->error, (u_char *) error, sizeof(rc->error));
}
