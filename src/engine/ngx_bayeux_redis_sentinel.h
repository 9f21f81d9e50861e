
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_REDIS_SENTINEL_H_INCLUDED_
#define _NGX_BAYEUX_REDIS_SENTINEL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_bayeux_redis_adapter.h"
#include "ngx_bayeux_redis_ask.h"
#include "ngx_bayeux_redis_url.h"


/*
 * Redis Sentinel for the engine of one endpoint in one worker: where the
 * primary is, asked of the sentinels in turn ("ask.found" gets its
 * address, or NULL and why no sentinel could say), and a watch on a
 * sentinel that calls "switched" (with "ask.data") when the sentinels
 * name another primary.
 */

typedef void (*ngx_bayeux_redis_sentinel_switched_pt)(void *data);


typedef struct {
    ngx_bayeux_redis_ask_t         ask;         /* first */
    ngx_str_t                      master;
    ngx_str_t                      user;
    ngx_str_t                      password;

    ngx_bayeux_redis_sentinel_switched_pt  switched;

    ngx_bayeux_redis_conn_t        watch;
    ngx_bayeux_redis_req_t         query_auth_req;
    ngx_bayeux_redis_req_t         ask_req;
    ngx_bayeux_redis_req_t         watch_auth_req;
    ngx_bayeux_redis_req_t         watch_req;

    ngx_uint_t                     watched;     /* the one watched */
    ngx_event_t                    rewatch;
} ngx_bayeux_redis_sentinel_t;


/* configuration time: the sentinels, the master's name, the credentials */
ngx_bayeux_redis_sentinel_t *ngx_bayeux_redis_sentinel_create(
    ngx_pool_t *pool, ngx_bayeux_redis_url_t *ru);

/* the worker: timeouts as "proto" has them; starts the watch */
void ngx_bayeux_redis_sentinel_init(ngx_bayeux_redis_sentinel_t *s,
    ngx_log_t *log, ngx_bayeux_redis_conn_t *proto);
void ngx_bayeux_redis_sentinel_ask(ngx_bayeux_redis_sentinel_t *s);
void ngx_bayeux_redis_sentinel_close(ngx_bayeux_redis_sentinel_t *s);

/* ROLE on a connection to the primary: closed unless it is one */
ngx_int_t ngx_bayeux_redis_sentinel_role(ngx_bayeux_redis_conn_t *rc,
    ngx_bayeux_redis_req_t *req);
void ngx_bayeux_redis_sentinel_role_reply(ngx_bayeux_redis_conn_t *rc,
    redisReply *reply, ngx_bayeux_redis_req_t *req);


#endif /* _NGX_BAYEUX_REDIS_SENTINEL_H_INCLUDED_ */
