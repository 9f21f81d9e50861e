
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux_redis_shards.h"
#include "ngx_bayeux_redis_cluster.h"


/* ids drawn for a shard before giving up: each has 1 / n chance */
#define NGX_BAYEUX_REDIS_SHARD_TRIES  64

/* numbers tried for a shard's tag: each has 1 / n chance */
#define NGX_BAYEUX_REDIS_SHARD_TAGS   100000


typedef struct {
    ngx_bayeux_op_t               *op;
    ngx_bayeux_op_t               *subs;
    ngx_uint_t                     n;
    ngx_uint_t                     first;
    ngx_uint_t                     pending;
    ngx_uint_t                     rest;        /* the others started */
    ngx_int_t                      rc;
    ngx_uint_t                     count;
    ngx_bayeux_redis_shard_pt      start;
    void                          *data;
} ngx_bayeux_redis_fanout_t;


static void ngx_bayeux_redis_fanout_start(ngx_bayeux_redis_fanout_t *f,
    ngx_uint_t shard);
static void ngx_bayeux_redis_fanout_rest(ngx_bayeux_redis_fanout_t *f);
static void ngx_bayeux_redis_fanout_done(ngx_bayeux_op_t *sub);
static void ngx_bayeux_redis_fanout_end(ngx_bayeux_redis_fanout_t *f);
static ngx_uint_t ngx_bayeux_redis_gravity(ngx_int_t rc);


ngx_int_t
ngx_bayeux_redis_shard_prefix(ngx_pool_t *pool, ngx_str_t *prefix,
    ngx_uint_t shard, ngx_uint_t n, ngx_str_t *out)
{
    u_char      *p, *last;
    ngx_uint_t   k, slot, from, to;

    if (n == 1) {
        *out = *prefix;
        return NGX_OK;
    }

    p = ngx_pnalloc(pool, prefix->len + NGX_INT_T_LEN + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    from = shard * NGX_BAYEUX_REDIS_CLUSTER_SLOTS / n;
    to = (shard + 1) * NGX_BAYEUX_REDIS_CLUSTER_SLOTS / n;

    for (k = 0; k < NGX_BAYEUX_REDIS_SHARD_TAGS; k++) {
        last = ngx_sprintf(p, "%V%ui:", prefix, k);
        slot = ngx_bayeux_redis_cluster_slot(p, last - p);

        if (slot >= from && slot < to) {
            out->data = p;
            out->len = last - p;
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


ngx_uint_t
ngx_bayeux_redis_shard_of(ngx_str_t *key, ngx_uint_t n)
{
    if (n == 1) {
        return 0;
    }

    return ngx_crc32_short(key->data, key->len) % n;
}


ngx_int_t
ngx_bayeux_redis_shard_client_id(u_char *id, ngx_uint_t shard, ngx_uint_t n,
    ngx_uint_t (*up)(void *data, ngx_uint_t shard), void *data)
{
    ngx_str_t   s;
    ngx_uint_t  i, of;

    s.data = id;
    s.len = NGX_BAYEUX_CLIENT_ID_LEN;
    of = 0;

    if (shard == NGX_BAYEUX_REDIS_ANY_SHARD) {
        for (i = 0; i < n; i++) {
            if (up(data, i)) {
                break;
            }
        }

        if (i == n) {
            /* none is up: one id, whose shard answers that it is not */

            if (ngx_bayeux_client_id(id) != NGX_OK) {
                return NGX_ERROR;
            }

            return ngx_bayeux_redis_shard_of(&s, n);
        }
    }

    for (i = 0; i < NGX_BAYEUX_REDIS_SHARD_TRIES * n; i++) {

        if (ngx_bayeux_client_id(id) != NGX_OK) {
            return NGX_ERROR;
        }

        of = ngx_bayeux_redis_shard_of(&s, n);

        if (shard == NGX_BAYEUX_REDIS_ANY_SHARD) {
            if (up(data, of)) {
                return of;
            }

        } else if (of == shard) {
            return of;
        }
    }

    /* as unlikely as drawing the same id twice */

    return (shard == NGX_BAYEUX_REDIS_ANY_SHARD) ? (ngx_int_t) of : NGX_ERROR;
}


void
ngx_bayeux_redis_fanout(ngx_bayeux_op_t *op, ngx_uint_t n, ngx_uint_t first,
    ngx_bayeux_redis_shard_pt start, void *data)
{
    ngx_bayeux_redis_fanout_t  *f;

    f = ngx_palloc(op->pool, sizeof(ngx_bayeux_redis_fanout_t));
    if (f == NULL) {
        goto failed;
    }

    f->subs = ngx_palloc(op->pool, n * sizeof(ngx_bayeux_op_t));
    if (f->subs == NULL) {
        goto failed;
    }

    f->op = op;
    f->n = n;
    f->first = first;
    f->rest = 0;
    f->rc = NGX_OK;
    f->count = 0;
    f->start = start;
    f->data = data;

    if (first < n) {
        f->pending = 1;
        ngx_bayeux_redis_fanout_start(f, first);
        return;
    }

    ngx_bayeux_redis_fanout_rest(f);

    return;

failed:

    op->rc = NGX_ERROR;
    op->handler(op);
}


static void
ngx_bayeux_redis_fanout_start(ngx_bayeux_redis_fanout_t *f,
    ngx_uint_t shard)
{
    ngx_bayeux_op_t  *sub;

    sub = &f->subs[shard];

    *sub = *f->op;
    sub->count = 0;
    sub->rc = NGX_OK;
    sub->handler = ngx_bayeux_redis_fanout_done;
    sub->data = f;

    f->start(sub, shard, f->data);
}


static void
ngx_bayeux_redis_fanout_rest(ngx_bayeux_redis_fanout_t *f)
{
    ngx_uint_t  i;

    /* one for the loop: shards done at once do not end it early */

    f->rest = 1;
    f->pending = 1;

    for (i = 0; i < f->n; i++) {
        if (i != f->first) {
            f->pending++;
            ngx_bayeux_redis_fanout_start(f, i);
        }
    }

    if (--f->pending == 0) {
        ngx_bayeux_redis_fanout_end(f);
    }
}


static void
ngx_bayeux_redis_fanout_done(ngx_bayeux_op_t *sub)
{
    ngx_bayeux_redis_fanout_t  *f = sub->data;

    f->count += sub->count;

    if (ngx_bayeux_redis_gravity(sub->rc) > ngx_bayeux_redis_gravity(f->rc)) {
        f->rc = sub->rc;
    }

    if (--f->pending) {
        return;
    }

    if (!f->rest && f->rc == NGX_OK) {
        ngx_bayeux_redis_fanout_rest(f);
        return;
    }

    ngx_bayeux_redis_fanout_end(f);
}


static void
ngx_bayeux_redis_fanout_end(ngx_bayeux_redis_fanout_t *f)
{
    ngx_bayeux_op_t  *op;

    op = f->op;
    op->rc = f->rc;
    op->count = f->count;

    op->handler(op);
}


static ngx_uint_t
ngx_bayeux_redis_gravity(ngx_int_t rc)
{
    switch (rc) {

    case NGX_OK:
        return 0;

    case NGX_DECLINED:
        return 1;

    case NGX_BUSY:
        return 2;

    default:
        return 3;
    }
}
