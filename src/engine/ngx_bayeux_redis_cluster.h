
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_REDIS_CLUSTER_H_INCLUDED_
#define _NGX_BAYEUX_REDIS_CLUSTER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_bayeux_redis_adapter.h"
#include "ngx_bayeux_redis_ask.h"
#include "ngx_bayeux_redis_url.h"


#define NGX_BAYEUX_REDIS_CLUSTER_SLOTS  16384


/*
 * Redis Cluster for the engine of one endpoint in one worker: which
 * primary serves the endpoint's hash slot, asked of the seed nodes in
 * turn with CLUSTER SLOTS ("ask.found" gets its address, or NULL and why
 * no node could say).
 */

typedef struct {
    ngx_bayeux_redis_ask_t         ask;         /* first */
    ngx_str_t                      user;
    ngx_str_t                      password;
    ngx_uint_t                     slot;

    ngx_bayeux_redis_req_t         auth_req;
    ngx_bayeux_redis_req_t         slots_req;
} ngx_bayeux_redis_cluster_t;


/* configuration time: the seeds, the credentials, the slot of "key" */
ngx_bayeux_redis_cluster_t *ngx_bayeux_redis_cluster_create(
    ngx_pool_t *pool, ngx_bayeux_redis_url_t *ru, ngx_str_t *key);

/* the worker: timeouts as "proto" has them */
void ngx_bayeux_redis_cluster_init(ngx_bayeux_redis_cluster_t *c,
    ngx_log_t *log, ngx_bayeux_redis_conn_t *proto);

/* the hash slot of a key, as Redis Cluster computes it */
ngx_uint_t ngx_bayeux_redis_cluster_slot(u_char *key, size_t len);


#endif /* _NGX_BAYEUX_REDIS_CLUSTER_H_INCLUDED_ */
