
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_REDIS_HELD_H_INCLUDED_
#define _NGX_BAYEUX_REDIS_HELD_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * The sessions a worker holds for the Redis engine, by the channels and
 * patterns they subscribed to: a message of the stream is given to those
 * found under its channel and the patterns that match it.  Each entry
 * carries its owner's pointer ("data"); an owner is found once per
 * message however many of its subscriptions match.
 */

typedef struct ngx_bayeux_redis_held_s  ngx_bayeux_redis_held_t;

typedef struct {
    ngx_rbtree_t                   tree;
    ngx_rbtree_node_t              sentinel;
    ngx_log_t                     *log;
    ngx_uint_t                     stamp;
} ngx_bayeux_redis_held_index_t;


void ngx_bayeux_redis_held_init(ngx_bayeux_redis_held_index_t *ix,
    ngx_log_t *log);

/* "subs": the subscriptions, '\n' between them */
ngx_bayeux_redis_held_t *ngx_bayeux_redis_held_add(
    ngx_bayeux_redis_held_index_t *ix, void *data, u_char *subs,
    u_char *last);
void ngx_bayeux_redis_held_remove(ngx_bayeux_redis_held_index_t *ix,
    ngx_bayeux_redis_held_t *held);

/*
 * The owners of the sessions subscribed to "channel" or to a pattern that
 * matches it, each once, into "found" (of void *), which must be empty.
 */
ngx_int_t ngx_bayeux_redis_held_find(ngx_bayeux_redis_held_index_t *ix,
    ngx_str_t *channel, ngx_array_t *found);


#endif /* _NGX_BAYEUX_REDIS_HELD_H_INCLUDED_ */
