
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_REDIS_ADAPTER_H_INCLUDED_
#define _NGX_BAYEUX_REDIS_ADAPTER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>

#include <hiredis/hiredis.h>


/*
 * One connection to Redis on nginx's event loop: nginx connects, reads
 * and writes (TCP or a unix socket, with TLS if asked), hiredis only
 * writes commands and reads replies in Redis's protocol.  The owner
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


/*
 * a command in flight; the owner keeps it alive until it is answered,
 * and a subscription until the connection is closed
 */

struct ngx_bayeux_redis_req_s {
    ngx_bayeux_redis_reply_pt      handler;
    ngx_queue_t                    queue;
    unsigned                       subscription:1;
    unsigned                       confirmed:1;
};


struct ngx_bayeux_redis_conn_s {
    ngx_peer_connection_t          peer;
    ngx_connection_t              *connection;
    ngx_pool_t                    *pool;
    redisReader                   *reader;
    ngx_log_t                     *log;

    /* the connection's own log: its errors become "error" */
    ngx_log_t                      conn_log;

    ngx_msec_t                     connect_timeout;
    ngx_msec_t                     command_timeout;

#if (NGX_SSL)
    ngx_ssl_t                     *ssl;         /* NULL: no TLS */
    ngx_str_t                      ssl_name;    /* SNI and verification */
    unsigned                       ssl_verify:1;
    unsigned                       ssl_server_name:1;
#endif

    ngx_bayeux_redis_conn_pt       connected;
    ngx_bayeux_redis_conn_pt       closed;
    void                          *data;

    /* why the last connection ended, for the owner's log */
    u_char                         error[128];

    ngx_event_t                    timer;
    ngx_queue_t                    requests;    /* in flight, in order */
    ngx_uint_t                     pending;

    /* commands not written yet */
    u_char                        *out;
    size_t                         out_pos;
    size_t                         out_len;
    size_t                         out_size;

    unsigned                       is_connected:1;
    unsigned                       closing:1;
    unsigned                       handling:1;
};


ngx_int_t ngx_bayeux_redis_connect(ngx_bayeux_redis_conn_t *rc,
    ngx_addr_t *addr);
ngx_int_t ngx_bayeux_redis_send(ngx_bayeux_redis_conn_t *rc,
    ngx_bayeux_redis_req_t *req, int argc, const char **argv,
    const size_t *argvlen);
void ngx_bayeux_redis_close(ngx_bayeux_redis_conn_t *rc, const char *why);

/* AUTH [user] password, if there is a password */
ngx_int_t ngx_bayeux_redis_auth(ngx_bayeux_redis_conn_t *rc,
    ngx_bayeux_redis_req_t *req, ngx_str_t *user, ngx_str_t *password);


#endif /* _NGX_BAYEUX_REDIS_ADAPTER_H_INCLUDED_ */
