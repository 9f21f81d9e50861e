
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux_channel.h"
#include "ngx_bayeux_redis_held.h"


/* a subscription name and the held sessions subscribed to it */

typedef struct {
    ngx_str_node_t                 sn;          /* first: the tree's */
    ngx_queue_t                    links;
} ngx_bayeux_redis_held_name_t;


typedef struct {
    ngx_queue_t                    queue;
    ngx_bayeux_redis_held_name_t  *name;
    ngx_bayeux_redis_held_t       *held;
} ngx_bayeux_redis_held_link_t;


struct ngx_bayeux_redis_held_s {
    void                          *data;
    ngx_uint_t                     stamp;       /* the last message found */
    ngx_uint_t                     n;
    ngx_bayeux_redis_held_link_t   link[1];
};


static ngx_bayeux_redis_held_name_t *ngx_bayeux_redis_held_name(
    ngx_bayeux_redis_held_index_t *ix, u_char *data, size_t len);
static ngx_int_t ngx_bayeux_redis_held_collect(
    ngx_bayeux_redis_held_index_t *ix, ngx_str_t *name, ngx_array_t *found);


void
ngx_bayeux_redis_held_init(ngx_bayeux_redis_held_index_t *ix, ngx_log_t *log)
{
    ngx_rbtree_init(&ix->tree, &ix->sentinel, ngx_str_rbtree_insert_value);
    ix->log = log;
    ix->stamp = 0;
}


ngx_bayeux_redis_held_t *
ngx_bayeux_redis_held_add(ngx_bayeux_redis_held_index_t *ix, void *data,
    u_char *subs, u_char *last)
{
    u_char                   *p, *end;
    ngx_uint_t                n;
    ngx_bayeux_redis_held_t  *held;

    n = 0;

    for (p = subs; p < last; p = end + 1) {
        end = ngx_strlchr(p, last, '\n');
        if (end == NULL) {
            end = last;
        }

        if (end > p) {
            n++;
        }
    }

    held = ngx_alloc(sizeof(ngx_bayeux_redis_held_t)
                     + (n ? n - 1 : 0) * sizeof(ngx_bayeux_redis_held_link_t),
                     ix->log);
    if (held == NULL) {
        return NULL;
    }

    held->data = data;
    held->stamp = 0;
    held->n = 0;

    for (p = subs; p < last; p = end + 1) {
        end = ngx_strlchr(p, last, '\n');
        if (end == NULL) {
            end = last;
        }

        if (end == p) {
            continue;
        }

        held->link[held->n].name = ngx_bayeux_redis_held_name(ix, p, end - p);

        if (held->link[held->n].name == NULL) {
            ngx_bayeux_redis_held_remove(ix, held);
            return NULL;
        }

        held->link[held->n].held = held;
        ngx_queue_insert_tail(&held->link[held->n].name->links,
                              &held->link[held->n].queue);
        held->n++;
    }

    return held;
}


void
ngx_bayeux_redis_held_remove(ngx_bayeux_redis_held_index_t *ix,
    ngx_bayeux_redis_held_t *held)
{
    ngx_uint_t                     i;
    ngx_bayeux_redis_held_name_t  *name;

    for (i = 0; i < held->n; i++) {
        name = held->link[i].name;

        ngx_queue_remove(&held->link[i].queue);

        if (ngx_queue_empty(&name->links)) {
            ngx_rbtree_delete(&ix->tree, &name->sn.node);
            ngx_free(name);
        }
    }

    ngx_free(held);
}


ngx_int_t
ngx_bayeux_redis_held_find(ngx_bayeux_redis_held_index_t *ix,
    ngx_str_t *channel, ngx_array_t *found)
{
    u_char                  buf[NGX_BAYEUX_CHANNEL_MAX_LEN + 2];
    ngx_str_t               pattern;
    ngx_bayeux_wildcards_t  w;

    if (ix->tree.root == ix->tree.sentinel
        || channel->len > NGX_BAYEUX_CHANNEL_MAX_LEN)
    {
        return NGX_OK;
    }

    ix->stamp++;

    if (ngx_bayeux_redis_held_collect(ix, channel, found) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_bayeux_wildcards_init(&w, channel, buf);

    while (ngx_bayeux_wildcards_next(&w, &pattern) == NGX_OK) {
        if (ngx_bayeux_redis_held_collect(ix, &pattern, found) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_redis_held_collect(ngx_bayeux_redis_held_index_t *ix,
    ngx_str_t *name, ngx_array_t *found)
{
    void                          **data;
    ngx_queue_t                    *q;
    ngx_str_node_t                 *sn;
    ngx_bayeux_redis_held_link_t   *link;

    sn = ngx_str_rbtree_lookup(&ix->tree, name,
                               ngx_crc32_short(name->data, name->len));
    if (sn == NULL) {
        return NGX_OK;
    }

    for (q = ngx_queue_head(&((ngx_bayeux_redis_held_name_t *) sn)->links);
         q != ngx_queue_sentinel(&((ngx_bayeux_redis_held_name_t *) sn)->links);
         q = ngx_queue_next(q))
    {
        link = ngx_queue_data(q, ngx_bayeux_redis_held_link_t, queue);

        if (link->held->stamp == ix->stamp) {
            continue;
        }

        link->held->stamp = ix->stamp;

        data = ngx_array_push(found);
        if (data == NULL) {
            return NGX_ERROR;
        }

        *data = link->held->data;
    }

    return NGX_OK;
}


static ngx_bayeux_redis_held_name_t *
ngx_bayeux_redis_held_name(ngx_bayeux_redis_held_index_t *ix, u_char *data,
    size_t len)
{
    uint32_t                       hash;
    ngx_str_t                      str;
    ngx_str_node_t                *sn;
    ngx_bayeux_redis_held_name_t  *name;

    str.data = data;
    str.len = len;
    hash = ngx_crc32_short(data, len);

    sn = ngx_str_rbtree_lookup(&ix->tree, &str, hash);
    if (sn) {
        return (ngx_bayeux_redis_held_name_t *) sn;
    }

    name = ngx_alloc(sizeof(ngx_bayeux_redis_held_name_t) + len, ix->log);
    if (name == NULL) {
        return NULL;
    }

    name->sn.str.data = (u_char *) (name + 1);
    name->sn.str.len = len;
    ngx_memcpy(name->sn.str.data, data, len);
    name->sn.node.key = hash;
    ngx_queue_init(&name->links);

    ngx_rbtree_insert(&ix->tree, &name->sn.node);

    return name;
}
