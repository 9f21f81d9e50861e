
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_REDIS_SHARDS_H_INCLUDED_
#define _NGX_BAYEUX_REDIS_SHARDS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux_engine.h"


/*
 * bayeux_redis_shards: the Redis engine of an endpoint as shards, each a
 * whole engine of its own (keys, scripts, link) under a prefix of its
 * own.  A session lives in one shard, named by its id; the sessions of a
 * user all live in the user's shard, so that a user's sessions are
 * counted, and told first and last, in one script.  What reaches
 * sessions of every shard (a publish, the subscribers of a channel) is
 * an operation per shard, "fanned out" and added up here.
 */

typedef void (*ngx_bayeux_redis_shard_pt)(ngx_bayeux_op_t *op,
    ngx_uint_t shard, void *data);


/*
 * The prefix of shard "shard" of "n": "<prefix><k>:", where k is the
 * first number that puts the shard's hash tag in the shard's part of
 * Redis Cluster's slots, so that a cluster whose primaries serve equal
 * ranges (as "redis-cli --cluster create" makes them) gets a shard per
 * primary.  One shard keeps the prefix as it is.  NGX_DECLINED: no number
 * found, which the spread of CRC16 makes as good as impossible.
 */
ngx_int_t ngx_bayeux_redis_shard_prefix(ngx_pool_t *pool, ngx_str_t *prefix,
    ngx_uint_t shard, ngx_uint_t n, ngx_str_t *out);

/* the shard of a session's id, or of a user's sessions */
ngx_uint_t ngx_bayeux_redis_shard_of(ngx_str_t *key, ngx_uint_t n);

/*
 * A new session's id (NGX_BAYEUX_CLIENT_ID_LEN hex digits) in "shard",
 * or in any shard "up" accepts (NGX_BAYEUX_REDIS_ANY_SHARD); returns its
 * shard, or NGX_ERROR
 */
#define NGX_BAYEUX_REDIS_ANY_SHARD  ((ngx_uint_t) -1)

ngx_int_t ngx_bayeux_redis_shard_client_id(u_char *id, ngx_uint_t shard,
    ngx_uint_t n, ngx_uint_t (*up)(void *data, ngx_uint_t shard),
    void *data);

/*
 * "op" on every shard: "start" is called with a copy of op for each, and
 * op->handler once all are done, with the sum of their counts and the
 * gravest of their results (an error, then unavailable, then unknown).
 * Shard "first" (less than n), if any, goes alone first and the others
 * only if it succeeds: a publisher's session is checked in its shard
 * before any other shard delivers.
 */
void ngx_bayeux_redis_fanout(ngx_bayeux_op_t *op, ngx_uint_t n,
    ngx_uint_t first, ngx_bayeux_redis_shard_pt start, void *data);


#endif /* _NGX_BAYEUX_REDIS_SHARDS_H_INCLUDED_ */
