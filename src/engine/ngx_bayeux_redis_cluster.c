
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_bayeux_redis_cluster.h"


/*
 * All the keys of an endpoint share one hash slot (its prefix is a hash
 * tag), so that every script call touches one slot and runs on the one
 * primary that serves it.  A failover is learnt from the lost connection,
 * a migrated slot from a MOVED reply or the end of the sharded
 * subscription (the engine's): the engine then asks again, which finds
 * the new primary once the cluster agrees on it.
 */


static void ngx_bayeux_redis_cluster_connected(ngx_bayeux_redis_conn_t *rc);
static void ngx_bayeux_redis_cluster_auth_reply(ngx_bayeux_redis_conn_t *rc,
    redisReply *reply, ngx_bayeux_redis_req_t *req);
static void ngx_bayeux_redis_cluster_slots_reply(ngx_bayeux_redis_conn_t *rc,
    redisReply *reply, ngx_bayeux_redis_req_t *req);


ngx_bayeux_redis_cluster_t *
ngx_bayeux_redis_cluster_create(ngx_pool_t *pool, ngx_bayeux_redis_url_t *ru,
    ngx_str_t *key)
{
    ngx_str_t                    label;
    ngx_bayeux_redis_cluster_t  *c;

    c = ngx_pcalloc(pool, sizeof(ngx_bayeux_redis_cluster_t));
    if (c == NULL) {
        return NULL;
    }

    c->user = ru->user;
    c->password = ru->password;
    c->slot = ngx_bayeux_redis_cluster_slot(key->data, key->len);

    label.data = ngx_pnalloc(pool, sizeof("cluster slot 16383"));
    if (label.data == NULL) {
        return NULL;
    }

    label.len = ngx_sprintf(label.data, "cluster slot %ui", c->slot)
                - label.data;

    if (ngx_bayeux_redis_ask_create(&c->ask, pool, ru->seeds,
                                    "cluster node", &label)
        != NGX_OK)
    {
        return NULL;
    }

    return c;
}


void
ngx_bayeux_redis_cluster_init(ngx_bayeux_redis_cluster_t *c, ngx_log_t *log,
    ngx_bayeux_redis_conn_t *proto)
{
    ngx_bayeux_redis_ask_init(&c->ask, log, proto,
                              ngx_bayeux_redis_cluster_connected, c);

    c->auth_req.handler = ngx_bayeux_redis_cluster_auth_reply;
    c->slots_req.handler = ngx_bayeux_redis_cluster_slots_reply;
}


/*
 * CRC16-CCITT (XMODEM) of the key's hash tag, the part between its first
 * "{" and the next "}" if not empty, or of the whole key
 */

ngx_uint_t
ngx_bayeux_redis_cluster_slot(u_char *key, size_t len)
{
    u_char      *p, *last, *open, *close;
    uint16_t     crc;
    ngx_uint_t   bit;

    p = key;
    last = key + len;

    open = ngx_strlchr(key, last, '{');

    if (open) {
        close = ngx_strlchr(open + 1, last, '}');

        if (close && close > open + 1) {
            p = open + 1;
            last = close;
        }
    }

    crc = 0;

    while (p < last) {
        crc ^= (uint16_t) (*p++ << 8);

        for (bit = 0; bit < 8; bit++) {
            crc = (crc & 0x8000) ? (uint16_t) ((crc << 1) ^ 0x1021)
                                 : (uint16_t) (crc << 1);
        }
    }

    return crc & (NGX_BAYEUX_REDIS_CLUSTER_SLOTS - 1);
}


/* pipelined: AUTH [user] password, CLUSTER SLOTS */

static void
ngx_bayeux_redis_cluster_connected(ngx_bayeux_redis_conn_t *rc)
{
    const char                  *argv[2];
    size_t                       argvlen[2];
    ngx_bayeux_redis_cluster_t  *c = rc->data;

    argv[0] = "CLUSTER";
    argvlen[0] = 7;
    argv[1] = "SLOTS";
    argvlen[1] = 5;

    if (ngx_bayeux_redis_auth(rc, &c->auth_req, &c->user, &c->password)
        != NGX_OK
        || ngx_bayeux_redis_send(rc, &c->slots_req, 2, argv, argvlen)
           != NGX_OK)
    {
        ngx_bayeux_redis_close(rc, "cannot send a command");
    }
}


static void
ngx_bayeux_redis_cluster_auth_reply(ngx_bayeux_redis_conn_t *rc,
    redisReply *reply, ngx_bayeux_redis_req_t *req)
{
    if (reply && reply->type == REDIS_REPLY_ERROR) {
        ngx_bayeux_redis_close(rc, reply->str);
    }
}


/*
 * CLUSTER SLOTS: one entry per range of slots, "start end primary
 * replica...", each node "address port id ..."
 */

static void
ngx_bayeux_redis_cluster_slots_reply(ngx_bayeux_redis_conn_t *rc,
    redisReply *reply, ngx_bayeux_redis_req_t *req)
{
    char                        *err;
    ngx_uint_t                   i;
    redisReply                  *range, *start, *end, *node;
    ngx_bayeux_redis_cluster_t  *c = rc->data;

    if (reply == NULL) {
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_bayeux_redis_close(rc, reply->str);
        return;
    }

    for (i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++) {
        range = reply->element[i];

        if (range->type != REDIS_REPLY_ARRAY || range->elements < 3) {
            continue;
        }

        start = range->element[0];
        end = range->element[1];

        if (start->type != REDIS_REPLY_INTEGER
            || end->type != REDIS_REPLY_INTEGER
            || (long long) c->slot < start->integer
            || (long long) c->slot > end->integer)
        {
            continue;
        }

        node = range->element[2];

        if (node->type != REDIS_REPLY_ARRAY || node->elements < 2
            || node->element[0]->type != REDIS_REPLY_STRING
            || node->element[1]->type != REDIS_REPLY_INTEGER)
        {
            ngx_bayeux_redis_close(rc, "CLUSTER SLOTS gave an invalid node");
            return;
        }

        /* cluster-preferred-endpoint-type ip: an address */

        err = ngx_bayeux_redis_ask_answer(&c->ask,
                                          (u_char *) node->element[0]->str,
                                          node->element[0]->len,
                                          node->element[1]->integer);

        ngx_bayeux_redis_close(rc, err ? err : "asked");
        return;
    }

    ngx_bayeux_redis_close(rc, "no primary serves the slot");
}
