
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_REDIS_ADAPTER_H_INCLUDED_
#define _NGX_BAYEUX_REDIS_ADAPTER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>


/*
 * One hiredis asynchronous context on nginx's event loop.  The owner
 * embeds the structure, fills in the handlers, and calls
 * ngx_bayeux_redis_connect(); "closed" is called exactly once for every
 * connect that returned NGX_OK, whatever ended the connection (an error,
 * a timeout, the server, or ngx_bayeux_redis_close()).  Every command
 * sent before is answered first, with a NULL reply if it was not.
 */

typedef struct ngx_bayeux_redis_conn_s  ngx_bayeux_redis_conn_t;
typedef struct ngx_bayeux_redis_req_s   ngx_bayeux_redis_req_t;

typedef void (*ngx_bayeux_redis_reply_pt)(ngx_bayeux_redis_conn_t *rc,
    redisReply *reply, ngx_bayeux_redis_req_t *req);
typedef void (*ngx_bayeux_redis_conn_pt)(ngx_bayeux_redis_conn_t *rc);


/* a command in flight; the owner keeps it alive until it is answered */

struct ngx_bayeux_redis_req_s {
    ngx_bayeux_redis_reply_pt      handler;
    unsigned                       subscription:1;
    unsigned                       confirmed:1;
};


struct ngx_bayeux_redis_conn_s {
    redisAsyncContext             *ac;
    ngx_connection_t              *connection;
    ngx_log_t                     *log;

    ngx_msec_t                     connect_timeout;
    ngx_msec_t                     command_timeout;

    ngx_bayeux_redis_conn_pt       connected;
    ngx_bayeux_redis_conn_pt       closed;
    void                          *data;

    /* why the last connection ended, for the owner's log */
    u_char                         error[128];

    ngx_event_t                    timer;
    ngx_uint_t                     pending;
    ngx_uint_t                     generation;

    unsigned                       is_connected:1;
    unsigned                       closing:1;
    unsigned                       want_write:1;
    unsigned                       level:1;
    unsigned                       handling:1;
    unsigned                       writing:1;
};


ngx_int_t ngx_bayeux_redis_connect(ngx_bayeux_redis_conn_t *rc,
    const char *host, int port);
ngx_int_t ngx_bayeux_redis_send(ngx_bayeux_redis_conn_t *rc,
    ngx_bayeux_redis_req_t *req, int argc, const char **argv,
    const size_t *argvlen);
void ngx_bayeux_redis_close(ngx_bayeux_redis_conn_t *rc, const char *why);


#endif /* _NGX_BAYEUX_REDIS_ADAPTER_H_INCLUDED_ */
