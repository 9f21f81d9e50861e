
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_channel.h"
#include "ngx_bayeux_engine.h"
#include "ngx_bayeux_engine_memory.h"
#include "ngx_bayeux_stats.h"


/*
 * The memory engine keeps every session and channel of an endpoint in the
 * worker's heap.  It is exact only with one worker process, which the
 * module enforces at startup.
 */

/*
 * Sessions, subscriptions and queue items come from chunks of 64, reused:
 * the engine's many small long-lived objects then do not take pieces out
 * of the free blocks that requests leave in the heap, which fragmented it
 * (idle websockets cost measurably more: bench/).  Chunks are mapped
 * pages of their own, not heap memory: a chunk whose objects are all free
 * is unmapped, but for one per slab, kept so that sessions coming and
 * going do not map a chunk each time.  The memory of sessions that
 * expired is thus given back to the system, wherever the chunk lies (the
 * heap gives back only its top).  Objects are taken from chunks in use
 * first, so that the others can empty.
 */

#define NGX_BAYEUX_MEMORY_SLAB_OBJECTS  64

typedef struct {
    ngx_queue_t                    queue;       /* in "partial" or "full" */
    void                          *free;        /* linked by first word */
    ngx_uint_t                     used;
} ngx_bayeux_memory_chunk_t;

typedef struct {
    ngx_queue_t                    partial;     /* with free objects */
    ngx_queue_t                    full;
    ngx_bayeux_memory_chunk_t     *empty;       /* the one kept empty */
    size_t                         size;        /* chunk pointer + object */
    size_t                         chunk_size;  /* whole pages */
    ngx_uint_t                     objects;     /* per chunk */
} ngx_bayeux_memory_slab_t;


typedef struct {
    ngx_rbtree_t                   sessions;
    ngx_rbtree_node_t              sessions_sentinel;
    ngx_rbtree_t                   channels;
    ngx_rbtree_node_t              channels_sentinel;
    ngx_rbtree_t                   users;
    ngx_rbtree_node_t              users_sentinel;

    /*
     * one sentinel for the trees of subscriptions of every session: a
     * tree writes to its sentinel only while an insertion or a deletion
     * runs, so they can share it
     */
    ngx_rbtree_node_t              subs_sentinel;

    ngx_queue_t                    all;
    ngx_uint_t                     generation;
    ngx_bayeux_memory_slab_t       session_slab;
    ngx_bayeux_memory_slab_t       sub_slab;
    ngx_bayeux_memory_slab_t       item_slab;
    ngx_bayeux_endpoint_t         *endpoint;
    ngx_log_t                     *log;
} ngx_bayeux_memory_t;


typedef struct {
    ngx_str_node_t                 node;
    ngx_queue_t                    subscribers;
    ngx_uint_t                     nsubscribers;
} ngx_bayeux_memory_channel_t;


/* a user's sessions: the name follows the struct */

typedef struct {
    ngx_str_node_t                 node;
    ngx_queue_t                    sessions;
    ngx_uint_t                     nsessions;
} ngx_bayeux_memory_user_t;


typedef struct {
    ngx_str_node_t                 node;
    u_char                         id[NGX_BAYEUX_CLIENT_ID_LEN];
    u_char                         browser[NGX_BAYEUX_BROWSER_ID_LEN];
    size_t                         browser_len;
    ngx_str_t                      grants;      /* ngx_alloc() */
    ngx_bayeux_memory_user_t      *user;        /* or NULL */
    ngx_queue_t                    in_user;
    ngx_queue_t                    link;
    ngx_queue_t                    queue;
    ngx_uint_t                     queued;      /* unacknowledged too */
    size_t                         queued_size;     /* bytes of text */
    ngx_uint_t                     batch;       /* ack: the last given */
    ngx_rbtree_t                   subscriptions;
    ngx_uint_t                     nsubscriptions;
    ngx_bayeux_waiter_t           *waiter;
    ngx_event_t                    expire;
    ngx_event_t                    wake;

    /*
     * armed while the queue holds only lazy messages: when it fires they
     * are due (bayeux_max_lazy_timeout)
     */
    ngx_event_t                    lazy;

    /*
     * bayeux_max_inactivity: when the session was last active, checked
     * by "inactive" as the period ends, and then later again if it was
     */
    ngx_msec_t                     active;
    ngx_event_t                    inactive;
    ngx_uint_t                     generation;
    ngx_bayeux_memory_t           *memory;
    unsigned                       connected:1;
    unsigned                       overflowed:1;
} ngx_bayeux_memory_session_t;


/*
 * A subscription is in its session's tree, keyed by the address of its
 * channel, and in its channel's list: finding, adding or removing one
 * does not depend on how many others the session or the channel has.
 */

typedef struct {
    ngx_rbtree_node_t              node;        /* first */
    ngx_queue_t                    in_channel;
    ngx_bayeux_memory_session_t   *session;
    ngx_bayeux_memory_channel_t   *channel;
} ngx_bayeux_memory_sub_t;


/* a published message, shared by the queues it is in */

typedef struct {
    ngx_uint_t                     refs;
    size_t                         len;
    u_char                         data[1];
} ngx_bayeux_memory_msg_t;


typedef struct {
    ngx_queue_t                    queue;
    ngx_bayeux_memory_msg_t       *msg;
    ngx_uint_t                     batch;       /* ack: given in; 0: not */
} ngx_bayeux_memory_item_t;


static ngx_int_t ngx_bayeux_memory_init_endpoint(ngx_conf_t *cf,
    ngx_bayeux_endpoint_t *ep);
static ngx_int_t ngx_bayeux_memory_init_process(ngx_cycle_t *cycle,
    ngx_bayeux_endpoint_t *ep);
static void ngx_bayeux_memory_exit_process(ngx_cycle_t *cycle,
    ngx_bayeux_endpoint_t *ep);
static void ngx_bayeux_memory_handshake(ngx_bayeux_op_t *op);
static void ngx_bayeux_memory_connect(ngx_bayeux_op_t *op);
static void ngx_bayeux_memory_subscribe(ngx_bayeux_op_t *op);
static void ngx_bayeux_memory_unsubscribe(ngx_bayeux_op_t *op);
static void ngx_bayeux_memory_publish(ngx_bayeux_op_t *op);
static void ngx_bayeux_memory_deliver_op(ngx_bayeux_op_t *op);
static void ngx_bayeux_memory_count(ngx_bayeux_op_t *op);
static ngx_int_t ngx_bayeux_memory_user_add(ngx_bayeux_memory_t *mem,
    ngx_bayeux_memory_session_t *s, ngx_str_t *name);
static ngx_bayeux_memory_user_t *ngx_bayeux_memory_user(
    ngx_bayeux_memory_t *mem, ngx_str_t *name);
static void ngx_bayeux_memory_disconnect(ngx_bayeux_op_t *op);
static void ngx_bayeux_memory_touch(ngx_bayeux_op_t *op);
static void ngx_bayeux_memory_release(ngx_bayeux_endpoint_t *ep,
    ngx_bayeux_waiter_t *w);
static void ngx_bayeux_memory_cancel(ngx_bayeux_endpoint_t *ep,
    ngx_bayeux_waiter_t *w);

static void ngx_bayeux_memory_slab_init(ngx_bayeux_memory_slab_t *slab,
    size_t size);
static void *ngx_bayeux_memory_alloc(ngx_bayeux_memory_slab_t *slab,
    ngx_log_t *log);
static void ngx_bayeux_memory_free(ngx_bayeux_memory_slab_t *slab,
    void *p, ngx_log_t *log);
static void ngx_bayeux_memory_slab_destroy(ngx_bayeux_memory_slab_t *slab,
    ngx_log_t *log);
static void *ngx_bayeux_memory_map(size_t size, ngx_log_t *log);
static void ngx_bayeux_memory_unmap(void *p, size_t size, ngx_log_t *log);
static ngx_bayeux_memory_session_t *ngx_bayeux_memory_session(
    ngx_bayeux_memory_t *mem, ngx_bayeux_op_t *op);
static void ngx_bayeux_memory_destroy(ngx_bayeux_memory_session_t *s,
    ngx_uint_t notify, ngx_uint_t reason);
static void ngx_bayeux_memory_schedule_expiry(
    ngx_bayeux_memory_session_t *s);
static void ngx_bayeux_memory_expire_handler(ngx_event_t *ev);
static void ngx_bayeux_memory_wake_handler(ngx_event_t *ev);
static void ngx_bayeux_memory_inactive_handler(ngx_event_t *ev);
static ngx_bayeux_waiter_t *ngx_bayeux_memory_detach(
    ngx_bayeux_memory_session_t *s);
static ngx_int_t ngx_bayeux_memory_drain(ngx_bayeux_memory_session_t *s,
    ngx_bayeux_waiter_t *w, ngx_pool_t *pool, ngx_array_t **messages);
static void ngx_bayeux_memory_acked(ngx_bayeux_memory_session_t *s,
    ngx_uint_t batch);
static ngx_uint_t ngx_bayeux_memory_kept(ngx_bayeux_memory_session_t *s);
static void ngx_bayeux_memory_unqueue(ngx_bayeux_memory_session_t *s,
    ngx_bayeux_memory_item_t *item);
static ngx_int_t ngx_bayeux_memory_deliver(ngx_bayeux_memory_t *mem,
    ngx_str_t *name, ngx_bayeux_memory_msg_t *msg, ngx_bayeux_op_t *op);
static ngx_int_t ngx_bayeux_memory_enqueue(ngx_bayeux_memory_session_t *s,
    ngx_bayeux_memory_msg_t *msg, ngx_uint_t lazy);
static void ngx_bayeux_memory_lazy_handler(ngx_event_t *ev);
static void ngx_bayeux_memory_empty(ngx_bayeux_memory_session_t *s);
static void ngx_bayeux_memory_overflowed(ngx_bayeux_memory_session_t *s,
    ngx_bayeux_waiter_t *w);
static ngx_bayeux_memory_channel_t *ngx_bayeux_memory_channel(
    ngx_bayeux_memory_t *mem, ngx_str_t *name, uint32_t hash);
static ngx_bayeux_memory_sub_t *ngx_bayeux_memory_find_sub(
    ngx_bayeux_memory_session_t *s, ngx_bayeux_memory_channel_t *ch);
static void ngx_bayeux_memory_unsubscribe_one(ngx_bayeux_memory_t *mem,
    ngx_bayeux_memory_sub_t *sub);
static void ngx_bayeux_memory_msg_release(ngx_bayeux_memory_msg_t *msg);


ngx_bayeux_engine_t  ngx_bayeux_engine_memory = {
    ngx_string("memory"),
    0,
    ngx_bayeux_memory_init_endpoint,
    ngx_bayeux_memory_init_process,
    ngx_bayeux_memory_exit_process,
    ngx_bayeux_memory_handshake,
    ngx_bayeux_memory_connect,
    ngx_bayeux_memory_subscribe,
    ngx_bayeux_memory_unsubscribe,
    ngx_bayeux_memory_publish,
    ngx_bayeux_memory_deliver_op,
    ngx_bayeux_memory_count,
    ngx_bayeux_memory_disconnect,
    ngx_bayeux_memory_touch,
    ngx_bayeux_memory_release,
    ngx_bayeux_memory_cancel
};


static ngx_int_t
ngx_bayeux_memory_init_endpoint(ngx_conf_t *cf, ngx_bayeux_endpoint_t *ep)
{
    ngx_bayeux_memory_t  *mem;

    mem = ngx_pcalloc(cf->pool, sizeof(ngx_bayeux_memory_t));
    if (mem == NULL) {
        return NGX_ERROR;
    }

    ngx_rbtree_init(&mem->sessions, &mem->sessions_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_rbtree_init(&mem->channels, &mem->channels_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_rbtree_init(&mem->users, &mem->users_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_rbtree_sentinel_init(&mem->subs_sentinel);
    ngx_queue_init(&mem->all);

    ngx_bayeux_memory_slab_init(&mem->session_slab,
                                sizeof(ngx_bayeux_memory_session_t));
    ngx_bayeux_memory_slab_init(&mem->sub_slab,
                                sizeof(ngx_bayeux_memory_sub_t));
    ngx_bayeux_memory_slab_init(&mem->item_slab,
                                sizeof(ngx_bayeux_memory_item_t));

    mem->endpoint = ep;
    mem->log = cf->log;

    ep->data = mem;

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_memory_init_process(ngx_cycle_t *cycle, ngx_bayeux_endpoint_t *ep)
{
    ngx_bayeux_memory_t  *mem = ep->data;

    mem->log = cycle->log;

    return NGX_OK;
}


static void
ngx_bayeux_memory_exit_process(ngx_cycle_t *cycle, ngx_bayeux_endpoint_t *ep)
{
    ngx_queue_t          *q;
    ngx_bayeux_memory_t  *mem = ep->data;

    while (!ngx_queue_empty(&mem->all)) {
        q = ngx_queue_head(&mem->all);
        ngx_bayeux_memory_destroy(
            ngx_queue_data(q, ngx_bayeux_memory_session_t, link), 0, 0);
    }

    ngx_bayeux_memory_slab_destroy(&mem->session_slab, cycle->log);
    ngx_bayeux_memory_slab_destroy(&mem->sub_slab, cycle->log);
    ngx_bayeux_memory_slab_destroy(&mem->item_slab, cycle->log);
}


static void
ngx_bayeux_memory_slab_init(ngx_bayeux_memory_slab_t *slab, size_t size)
{
    ngx_queue_init(&slab->partial);
    ngx_queue_init(&slab->full);

    slab->empty = NULL;
    slab->size = ngx_align(sizeof(void *) + size, sizeof(void *));

    /* at least 64 objects, and as many more as the last page holds */

    slab->chunk_size = ngx_align(sizeof(ngx_bayeux_memory_chunk_t)
                                 + NGX_BAYEUX_MEMORY_SLAB_OBJECTS
                                   * slab->size,
                                 ngx_pagesize);
    slab->objects = (slab->chunk_size - sizeof(ngx_bayeux_memory_chunk_t))
                    / slab->size;
}


/* an object is preceded by a pointer to its chunk */

static void *
ngx_bayeux_memory_alloc(ngx_bayeux_memory_slab_t *slab, ngx_log_t *log)
{
    u_char                     *p;
    ngx_uint_t                  i;
    ngx_queue_t                *q;
    ngx_bayeux_memory_chunk_t  *chunk;

    if (ngx_queue_empty(&slab->partial)) {

        chunk = ngx_bayeux_memory_map(slab->chunk_size, log);
        if (chunk == NULL) {
            return NULL;
        }

        chunk->free = NULL;
        chunk->used = 0;

        p = (u_char *) chunk + sizeof(ngx_bayeux_memory_chunk_t);

        for (i = 0; i < slab->objects; i++) {
            *(ngx_bayeux_memory_chunk_t **) p = chunk;
            *(void **) (p + sizeof(void *)) = chunk->free;
            chunk->free = p + sizeof(void *);
            p += slab->size;
        }

        ngx_queue_insert_head(&slab->partial, &chunk->queue);
    }

    q = ngx_queue_head(&slab->partial);
    chunk = ngx_queue_data(q, ngx_bayeux_memory_chunk_t, queue);

    if (chunk == slab->empty) {
        slab->empty = NULL;
    }

    p = chunk->free;
    chunk->free = *(void **) p;
    chunk->used++;

    if (chunk->free == NULL) {
        ngx_queue_remove(&chunk->queue);
        ngx_queue_insert_head(&slab->full, &chunk->queue);
    }

    return p;
}


static void
ngx_bayeux_memory_free(ngx_bayeux_memory_slab_t *slab, void *p,
    ngx_log_t *log)
{
    ngx_bayeux_memory_chunk_t  *chunk;

    chunk = *(ngx_bayeux_memory_chunk_t **) ((u_char *) p - sizeof(void *));

    if (chunk->free == NULL) {
        /* it has a free object again: taken from before emptier ones */
        ngx_queue_remove(&chunk->queue);
        ngx_queue_insert_head(&slab->partial, &chunk->queue);
    }

    *(void **) p = chunk->free;
    chunk->free = p;

    if (--chunk->used) {
        return;
    }

    ngx_queue_remove(&chunk->queue);

    if (slab->empty == NULL) {
        /* kept, and taken from last */
        slab->empty = chunk;
        ngx_queue_insert_tail(&slab->partial, &chunk->queue);
        return;
    }

    ngx_bayeux_memory_unmap(chunk, slab->chunk_size, log);
}


static void
ngx_bayeux_memory_slab_destroy(ngx_bayeux_memory_slab_t *slab,
    ngx_log_t *log)
{
    ngx_queue_t  *q;

    while (!ngx_queue_empty(&slab->partial)) {
        q = ngx_queue_head(&slab->partial);
        ngx_queue_remove(q);
        ngx_bayeux_memory_unmap(ngx_queue_data(q, ngx_bayeux_memory_chunk_t,
                                               queue),
                                slab->chunk_size, log);
    }

    while (!ngx_queue_empty(&slab->full)) {
        q = ngx_queue_head(&slab->full);
        ngx_queue_remove(q);
        ngx_bayeux_memory_unmap(ngx_queue_data(q, ngx_bayeux_memory_chunk_t,
                                               queue),
                                slab->chunk_size, log);
    }

    slab->empty = NULL;
}


static void *
ngx_bayeux_memory_map(size_t size, ngx_log_t *log)
{
#if (NGX_HAVE_MAP_ANON)
    void  *p;

    p = mmap(NULL, size, PROT_READ|PROT_WRITE, MAP_ANON|MAP_PRIVATE, -1, 0);

    if (p == MAP_FAILED) {
        ngx_log_error(NGX_LOG_EMERG, log, ngx_errno,
                      "mmap(MAP_ANON|MAP_PRIVATE, %uz) failed", size);
        return NULL;
    }

    return p;
#else
    return ngx_alloc(size, log);
#endif
}


static void
ngx_bayeux_memory_unmap(void *p, size_t size, ngx_log_t *log)
{
#if (NGX_HAVE_MAP_ANON)
    if (munmap(p, size) == -1) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      "munmap(%p, %uz) failed", p, size);
    }
#else
    ngx_free(p);
#endif
}


/* the session of the operation, if it comes from the session's browser */

static ngx_bayeux_memory_session_t *
ngx_bayeux_memory_session(ngx_bayeux_memory_t *mem, ngx_bayeux_op_t *op)
{
    ngx_str_t                    *id;
    ngx_bayeux_memory_session_t  *s;

    id = &op->client_id;

    if (id->len != NGX_BAYEUX_CLIENT_ID_LEN) {
        return NULL;
    }

    s = (ngx_bayeux_memory_session_t *)
            ngx_str_rbtree_lookup(&mem->sessions, id,
                                  ngx_crc32_short(id->data, id->len));

    if (s == NULL || op->browser.len == 0) {
        return s;
    }

    if (op->browser.len != s->browser_len
        || ngx_memcmp(op->browser.data, s->browser, s->browser_len) != 0)
    {
        return NULL;
    }

    return s;
}


static void
ngx_bayeux_memory_handshake(ngx_bayeux_op_t *op)
{
    ngx_bayeux_memory_t          *mem = op->endpoint->data;
    ngx_bayeux_memory_session_t  *s;

    op->rc = NGX_ERROR;

    s = ngx_bayeux_memory_alloc(&mem->session_slab, mem->log);
    if (s == NULL) {
        goto done;
    }

    ngx_memzero(s, sizeof(ngx_bayeux_memory_session_t));

    if (ngx_bayeux_client_id(s->id) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, op->log, ngx_errno,
                      "bayeux: getrandom() failed");
        ngx_bayeux_memory_free(&mem->session_slab, s, mem->log);
        goto done;
    }

    s->browser_len = ngx_min(op->browser.len, NGX_BAYEUX_BROWSER_ID_LEN);
    ngx_memcpy(s->browser, op->browser.data, s->browser_len);

    if (op->grants.len) {
        s->grants.data = ngx_alloc(op->grants.len, mem->log);
        if (s->grants.data == NULL) {
            ngx_bayeux_memory_free(&mem->session_slab, s, mem->log);
            goto done;
        }

        ngx_memcpy(s->grants.data, op->grants.data, op->grants.len);
        s->grants.len = op->grants.len;
    }

    s->memory = mem;
    s->node.str.data = s->id;
    s->node.str.len = NGX_BAYEUX_CLIENT_ID_LEN;
    s->node.node.key = ngx_crc32_short(s->id, NGX_BAYEUX_CLIENT_ID_LEN);

    ngx_queue_init(&s->queue);
    ngx_rbtree_init(&s->subscriptions, &mem->subs_sentinel,
                    ngx_rbtree_insert_value);

    s->expire.handler = ngx_bayeux_memory_expire_handler;
    s->expire.data = s;
    s->expire.log = mem->log;
    s->expire.cancelable = 1;

    s->wake.handler = ngx_bayeux_memory_wake_handler;
    s->wake.data = s;
    s->wake.log = mem->log;

    s->lazy.handler = ngx_bayeux_memory_lazy_handler;
    s->lazy.data = s;
    s->lazy.log = mem->log;
    s->lazy.cancelable = 1;

    s->active = ngx_current_msec;
    s->inactive.handler = ngx_bayeux_memory_inactive_handler;
    s->inactive.data = s;
    s->inactive.log = mem->log;
    s->inactive.cancelable = 1;

    if (op->user.len
        && ngx_bayeux_memory_user_add(mem, s, &op->user) != NGX_OK)
    {
        if (s->grants.data) {
            ngx_free(s->grants.data);
        }

        ngx_bayeux_memory_free(&mem->session_slab, s, mem->log);
        goto done;
    }

    ngx_rbtree_insert(&mem->sessions, &s->node.node);
    ngx_queue_insert_tail(&mem->all, &s->link);

    ngx_bayeux_memory_schedule_expiry(s);

    if (op->endpoint->conf->max_inactivity) {
        ngx_add_timer(&s->inactive, op->endpoint->conf->max_inactivity);
    }

    op->client_id.data = ngx_pnalloc(op->pool, NGX_BAYEUX_CLIENT_ID_LEN);
    if (op->client_id.data == NULL) {
        ngx_bayeux_memory_destroy(s, 0, 0);
        goto done;
    }

    if (s->user && s->user->nsessions == 1 && op->endpoint->user_present) {
        op->endpoint->user_present(op->endpoint, &s->user->node.str);
    }

    ngx_memcpy(op->client_id.data, s->id, NGX_BAYEUX_CLIENT_ID_LEN);
    op->client_id.len = NGX_BAYEUX_CLIENT_ID_LEN;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, op->log, 0,
                   "bayeux memory: session %V created", &op->client_id);

    op->rc = NGX_OK;

done:

    op->handler(op);
}


static void
ngx_bayeux_memory_connect(ngx_bayeux_op_t *op)
{
    ngx_bayeux_waiter_t          *old;
    ngx_bayeux_memory_t          *mem = op->endpoint->data;
    ngx_bayeux_memory_session_t  *s;

    s = ngx_bayeux_memory_session(mem, op);
    if (s == NULL) {
        op->rc = NGX_DECLINED;
        op->handler(op);
        return;
    }

    old = ngx_bayeux_memory_detach(s);

    if (old) {
        /* the older connect is answered, not left hanging */
        old->messages = NULL;
        old->handler(old, NGX_BAYEUX_WAKE_SUPERSEDED);
    }

    if (s->overflowed) {
        ngx_bayeux_memory_overflowed(s, NULL);
        op->rc = NGX_BAYEUX_OVERFLOW;
        op->handler(op);
        return;
    }

    if (op->waiter->ack != NGX_BAYEUX_NO_ACK) {
        ngx_bayeux_memory_acked(s, (ngx_uint_t) op->waiter->ack);
    }

    /*
     * lazy messages not yet due, and nothing the ack extension keeps:
     * held with them, as with none
     */

    if (s->lazy.timer_set && s->connected && op->hold
        && !ngx_bayeux_memory_kept(s))
    {
        goto park;
    }

    if (ngx_bayeux_memory_drain(s, op->waiter, op->pool, &op->messages)
        != NGX_OK)
    {
        op->rc = NGX_ERROR;
        op->handler(op);
        return;
    }

    if (op->messages->nelts || !s->connected || op->hold == 0) {
        s->connected = 1;
        ngx_bayeux_memory_schedule_expiry(s);

        op->rc = NGX_OK;
        op->handler(op);
        return;
    }

park:

    /* no expiry while a connect is held */

    if (s->expire.timer_set) {
        ngx_del_timer(&s->expire);
    }

    s->waiter = op->waiter;
    op->waiter->engine_data = s;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, op->log, 0,
                   "bayeux memory: session %V parked", &op->client_id);

    op->rc = NGX_AGAIN;
    op->handler(op);
}


/*
 * A subscribe is applied whole or not at all: what it added is taken
 * back if it fails, or if the session would have more subscriptions
 * than bayeux_max_subscriptions.
 */

static void
ngx_bayeux_memory_subscribe(ngx_bayeux_op_t *op)
{
    uint32_t                      hash;
    ngx_str_t                    *name;
    ngx_uint_t                    i, n, max;
    ngx_bayeux_memory_t          *mem = op->endpoint->data;
    ngx_bayeux_memory_sub_t      *sub, **added;
    ngx_bayeux_memory_session_t  *s;
    ngx_bayeux_memory_channel_t  *ch;

    s = ngx_bayeux_memory_session(mem, op);
    if (s == NULL) {
        op->rc = NGX_DECLINED;
        op->handler(op);
        return;
    }

    if (op->active) {
        s->active = ngx_current_msec;
    }

    op->rc = NGX_ERROR;

    added = ngx_palloc(op->pool,
                       op->channels->nelts * sizeof(ngx_bayeux_memory_sub_t *));
    if (added == NULL) {
        op->handler(op);
        return;
    }

    max = op->endpoint->conf->max_subscriptions;
    name = op->channels->elts;
    n = 0;

    for (i = 0; i < op->channels->nelts; i++) {

        hash = ngx_crc32_short(name[i].data, name[i].len);

        ch = ngx_bayeux_memory_channel(mem, &name[i], hash);

        if (ch && ngx_bayeux_memory_find_sub(s, ch)) {
            continue;
        }

        if (s->nsubscriptions >= max) {
            op->rc = NGX_BAYEUX_LIMIT;
            goto failed;
        }

        if (ch == NULL) {
            ch = ngx_alloc(sizeof(ngx_bayeux_memory_channel_t) + name[i].len,
                           mem->log);
            if (ch == NULL) {
                goto failed;
            }

            ch->node.str.data = (u_char *) ch
                                + sizeof(ngx_bayeux_memory_channel_t);
            ch->node.str.len = name[i].len;
            ngx_memcpy(ch->node.str.data, name[i].data, name[i].len);
            ch->node.node.key = hash;

            ngx_queue_init(&ch->subscribers);
            ch->nsubscribers = 0;
            ngx_rbtree_insert(&mem->channels, &ch->node.node);
        }

        sub = ngx_bayeux_memory_alloc(&mem->sub_slab, mem->log);
        if (sub == NULL) {
            if (ngx_queue_empty(&ch->subscribers)) {
                ngx_rbtree_delete(&mem->channels, &ch->node.node);
                ngx_free(ch);
            }

            goto failed;
        }

        sub->node.key = (ngx_rbtree_key_t) (uintptr_t) ch;
        sub->session = s;
        sub->channel = ch;
        ngx_queue_insert_tail(&ch->subscribers, &sub->in_channel);
        ch->nsubscribers++;
        ngx_rbtree_insert(&s->subscriptions, &sub->node);
        s->nsubscriptions++;

        added[n++] = sub;

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, op->log, 0,
                       "bayeux memory: %V subscribed to %V",
                       &op->client_id, &name[i]);
    }

    op->rc = NGX_OK;
    op->handler(op);
    return;

failed:

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, op->log, 0,
                   "bayeux memory: subscribe of %V refused (%i)",
                   &op->client_id, op->rc);

    while (n) {
        ngx_bayeux_memory_unsubscribe_one(mem, added[--n]);
    }

    op->handler(op);
}


static void
ngx_bayeux_memory_unsubscribe(ngx_bayeux_op_t *op)
{
    ngx_str_t                    *name;
    ngx_uint_t                    i;
    ngx_bayeux_memory_t          *mem = op->endpoint->data;
    ngx_bayeux_memory_sub_t      *sub;
    ngx_bayeux_memory_session_t  *s;
    ngx_bayeux_memory_channel_t  *ch;

    s = ngx_bayeux_memory_session(mem, op);
    if (s == NULL) {
        op->rc = NGX_DECLINED;
        op->handler(op);
        return;
    }

    if (op->active) {
        s->active = ngx_current_msec;
    }

    name = op->channels->elts;

    for (i = 0; i < op->channels->nelts; i++) {
        ch = ngx_bayeux_memory_channel(mem, &name[i],
                                   ngx_crc32_short(name[i].data, name[i].len));
        if (ch == NULL) {
            continue;
        }

        sub = ngx_bayeux_memory_find_sub(s, ch);

        if (sub) {
            ngx_bayeux_memory_unsubscribe_one(mem, sub);
        }
    }

    op->rc = NGX_OK;
    op->handler(op);
}


static ngx_bayeux_memory_channel_t *
ngx_bayeux_memory_channel(ngx_bayeux_memory_t *mem, ngx_str_t *name,
    uint32_t hash)
{
    return (ngx_bayeux_memory_channel_t *)
               ngx_str_rbtree_lookup(&mem->channels, name, hash);
}


static ngx_bayeux_memory_sub_t *
ngx_bayeux_memory_find_sub(ngx_bayeux_memory_session_t *s,
    ngx_bayeux_memory_channel_t *ch)
{
    ngx_rbtree_key_t    key;
    ngx_rbtree_node_t  *node, *sentinel;

    key = (ngx_rbtree_key_t) (uintptr_t) ch;

    node = s->subscriptions.root;
    sentinel = s->subscriptions.sentinel;

    while (node != sentinel) {

        if (key == node->key) {
            return (ngx_bayeux_memory_sub_t *) node;
        }

        node = (key < node->key) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_bayeux_memory_unsubscribe_one(ngx_bayeux_memory_t *mem,
    ngx_bayeux_memory_sub_t *sub)
{
    ngx_bayeux_memory_channel_t  *ch;

    ch = sub->channel;

    ngx_queue_remove(&sub->in_channel);
    ch->nsubscribers--;
    ngx_rbtree_delete(&sub->session->subscriptions, &sub->node);
    sub->session->nsubscriptions--;
    ngx_bayeux_memory_free(&mem->sub_slab, sub, mem->log);

    if (ngx_queue_empty(&ch->subscribers)) {
        ngx_rbtree_delete(&mem->channels, &ch->node.node);
        ngx_free(ch);
    }
}


static void
ngx_bayeux_memory_publish(ngx_bayeux_op_t *op)
{
    u_char                       *buf;
    ngx_str_t                     pattern;
    ngx_bayeux_memory_t          *mem = op->endpoint->data;
    ngx_bayeux_memory_msg_t      *msg;
    ngx_bayeux_wildcards_t        w;
    ngx_bayeux_memory_session_t  *publisher;

    op->rc = NGX_ERROR;

    publisher = NULL;

    if (op->client_id.len) {
        publisher = ngx_bayeux_memory_session(mem, op);
        if (publisher == NULL) {
            op->rc = NGX_DECLINED;
            goto done;
        }

        if (op->active) {
            publisher->active = ngx_current_msec;
        }
    }

    op->count = 0;

    buf = ngx_pnalloc(op->pool, op->channel.len + 2);
    if (buf == NULL) {
        goto done;
    }

    msg = ngx_alloc(sizeof(ngx_bayeux_memory_msg_t) + op->message.len,
                    mem->log);
    if (msg == NULL) {
        goto done;
    }

    msg->refs = 1;
    msg->len = op->message.len;
    ngx_memcpy(msg->data, op->message.data, op->message.len);

    /* a session subscribed by several patterns gets the message once */

    mem->generation++;

    if (publisher && !op->endpoint->conf->broadcast_to_publisher) {
        publisher->generation = mem->generation;
    }

    if (ngx_bayeux_memory_deliver(mem, &op->channel, msg, op)
        != NGX_OK)
    {
        ngx_bayeux_memory_msg_release(msg);
        goto done;
    }

    ngx_bayeux_wildcards_init(&w, &op->channel, buf);

    while (ngx_bayeux_wildcards_next(&w, &pattern) == NGX_OK) {
        if (ngx_bayeux_memory_deliver(mem, &pattern, msg, op) != NGX_OK)
        {
            ngx_bayeux_memory_msg_release(msg);
            goto done;
        }
    }

    ngx_bayeux_memory_msg_release(msg);

    op->rc = NGX_OK;

done:

    op->handler(op);
}


static ngx_int_t
ngx_bayeux_memory_deliver(ngx_bayeux_memory_t *mem, ngx_str_t *name,
    ngx_bayeux_memory_msg_t *msg, ngx_bayeux_op_t *op)
{
    ngx_int_t                     rc;
    ngx_queue_t                  *q;
    ngx_bayeux_memory_sub_t      *sub;
    ngx_bayeux_memory_channel_t  *ch;

    ch = ngx_bayeux_memory_channel(mem, name,
                                   ngx_crc32_short(name->data, name->len));
    if (ch == NULL) {
        return NGX_OK;
    }

    for (q = ngx_queue_head(&ch->subscribers);
         q != ngx_queue_sentinel(&ch->subscribers);
         q = ngx_queue_next(q))
    {
        sub = ngx_queue_data(q, ngx_bayeux_memory_sub_t, in_channel);

        if (sub->session->generation == mem->generation) {
            continue;
        }

        sub->session->generation = mem->generation;

        rc = ngx_bayeux_memory_enqueue(sub->session, msg, op->lazy);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_OK) {
            op->count++;
        }
    }

    return NGX_OK;
}


/*
 * NGX_OK: queued; NGX_DECLINED: dropped, for the session's queue
 * overflowed (now or before): its next connect ends it; NGX_ERROR
 */

static ngx_int_t
ngx_bayeux_memory_enqueue(ngx_bayeux_memory_session_t *s,
    ngx_bayeux_memory_msg_t *msg, ngx_uint_t lazy)
{
    size_t                     size;
    ngx_uint_t                 max, first;
    ngx_queue_t               *prev;
    ngx_bayeux_memory_item_t  *item, *before;
    ngx_bayeux_endpoint_t     *ep;

    ep = s->memory->endpoint;

    if (s->overflowed) {
        ngx_bayeux_stat(ep, NGX_BAYEUX_STAT_DROPPED_QUEUE, 1);
        return NGX_DECLINED;
    }

    max = ep->conf->max_queue;
    size = ep->conf->max_queue_size;

    if ((max && s->queued >= max)
        || (size && s->queued_size + msg->len > size))
    {
        /*
         * The queue is full: nothing more is queued, what was is freed,
         * and the session's next connect (or the one it holds) is told
         * to handshake again, as the session ends: messages are lost,
         * but not silently.
         */

        /* a clientId is a credential: named at debug level only */
        ngx_log_error(NGX_LOG_WARN, s->memory->log, 0,
                      "bayeux: queue of a session is full "
                      "(bayeux_max_queue %ui, bayeux_max_queue_size %uz), "
                      "the session ends", max, size);
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, s->memory->log, 0,
                       "bayeux: full queue: session %*s",
                       (size_t) NGX_BAYEUX_CLIENT_ID_LEN, s->id);

        ngx_bayeux_stat(ep, NGX_BAYEUX_STAT_QUEUE_OVERFLOWS, 1);
        ngx_bayeux_stat(ep, NGX_BAYEUX_STAT_DROPPED_QUEUE, s->queued + 1);

        ngx_bayeux_memory_empty(s);
        s->overflowed = 1;

        if (s->waiter && !s->wake.posted) {
            ngx_post_event(&s->wake, &ngx_posted_events);
        }

        return NGX_DECLINED;
    }

    item = ngx_bayeux_memory_alloc(&s->memory->item_slab, s->memory->log);
    if (item == NULL) {
        return NGX_ERROR;
    }

    item->msg = msg;
    item->batch = 0;
    msg->refs++;

    ngx_queue_insert_tail(&s->queue, &item->queue);
    s->queued++;
    s->queued_size += msg->len;

    if (ep->conf->activity == NGX_BAYEUX_ACTIVITY_CLIENT_SERVER) {
        /* what the server sends it counts too */
        s->active = ngx_current_msec;
    }

    /*
     * A lazy message into an empty queue (or one of messages given, kept
     * by the ack extension) starts the lazy timeout; into a queue of lazy
     * messages it waits with them; into one whose messages are due, it
     * goes with them.  A message that is not lazy makes what waits due.
     */

    first = 1;
    prev = ngx_queue_prev(&item->queue);

    if (prev != ngx_queue_sentinel(&s->queue)) {
        before = ngx_queue_data(prev, ngx_bayeux_memory_item_t, queue);
        first = (before->batch != 0);
    }

    if (lazy && (first || s->lazy.timer_set)) {

        if (!s->lazy.timer_set) {
            ngx_add_timer(&s->lazy, ep->conf->max_lazy_timeout);
        }

        return NGX_OK;
    }

    if (s->lazy.timer_set) {
        ngx_del_timer(&s->lazy);
    }

    if (s->waiter && !s->wake.posted) {
        /* posted, so that a batch of publishes goes out in one reply */
        ngx_post_event(&s->wake, &ngx_posted_events);
    }

    return NGX_OK;
}


/* the lazy messages of a session are due: its held connect takes them */

static void
ngx_bayeux_memory_lazy_handler(ngx_event_t *ev)
{
    ngx_bayeux_memory_session_t  *s = ev->data;

    if (s->waiter && !s->wake.posted) {
        ngx_post_event(&s->wake, &ngx_posted_events);
    }
}


static void
ngx_bayeux_memory_msg_release(ngx_bayeux_memory_msg_t *msg)
{
    if (--msg->refs == 0) {
        ngx_free(msg);
    }
}


/*
 * What a connect is given: the whole queue, taken; or, for a connect that
 * acknowledges (the ack extension; its connect forgot what it
 * acknowledged), the queue, kept until a later connect acknowledges it,
 * its items not given before becoming the session's next batch.
 */

static ngx_int_t
ngx_bayeux_memory_drain(ngx_bayeux_memory_session_t *s,
    ngx_bayeux_waiter_t *w, ngx_pool_t *pool, ngx_array_t **messages)
{
    ngx_str_t                 *m;
    ngx_uint_t                 keep, batch;
    ngx_queue_t               *q, *next;
    ngx_bayeux_memory_item_t  *item;

    keep = (w->ack != NGX_BAYEUX_NO_ACK);

    *messages = ngx_array_create(pool, s->queued ? s->queued : 1,
                                 sizeof(ngx_str_t));
    if (*messages == NULL) {
        return NGX_ERROR;
    }

    batch = 0;

    for (q = ngx_queue_head(&s->queue);
         q != ngx_queue_sentinel(&s->queue);
         q = next)
    {
        next = ngx_queue_next(q);
        item = ngx_queue_data(q, ngx_bayeux_memory_item_t, queue);

        m = ngx_array_push(*messages);
        if (m == NULL) {
            return NGX_ERROR;
        }

        m->data = ngx_pnalloc(pool, item->msg->len);
        if (m->data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(m->data, item->msg->data, item->msg->len);
        m->len = item->msg->len;

        if (keep) {
            if (item->batch == 0) {
                if (batch == 0) {
                    batch = ++s->batch;
                }

                item->batch = batch;
            }

            continue;
        }

        ngx_bayeux_memory_unqueue(s, item);
    }

    w->batch = s->batch;

    if (s->lazy.timer_set) {
        ngx_del_timer(&s->lazy);
    }

    return NGX_OK;
}


/* the ack extension: messages given and not acknowledged wait */

static ngx_uint_t
ngx_bayeux_memory_kept(ngx_bayeux_memory_session_t *s)
{
    ngx_bayeux_memory_item_t  *item;

    if (ngx_queue_empty(&s->queue)) {
        return 0;
    }

    item = ngx_queue_data(ngx_queue_head(&s->queue),
                          ngx_bayeux_memory_item_t, queue);

    return item->batch != 0;
}


/* the ack extension: the batches up to "batch" arrived, they go */

static void
ngx_bayeux_memory_acked(ngx_bayeux_memory_session_t *s, ngx_uint_t batch)
{
    ngx_queue_t               *q;
    ngx_bayeux_memory_item_t  *item;

    while (!ngx_queue_empty(&s->queue)) {
        q = ngx_queue_head(&s->queue);
        item = ngx_queue_data(q, ngx_bayeux_memory_item_t, queue);

        if (item->batch == 0 || item->batch > batch) {
            break;
        }

        ngx_bayeux_memory_unqueue(s, item);
    }
}


static void
ngx_bayeux_memory_unqueue(ngx_bayeux_memory_session_t *s,
    ngx_bayeux_memory_item_t *item)
{
    ngx_queue_remove(&item->queue);
    s->queued--;
    s->queued_size -= item->msg->len;
    ngx_bayeux_memory_msg_release(item->msg);
    ngx_bayeux_memory_free(&s->memory->item_slab, item, s->memory->log);
}


/* frees what the session's queue holds */

static void
ngx_bayeux_memory_empty(ngx_bayeux_memory_session_t *s)
{
    ngx_queue_t               *q;
    ngx_bayeux_memory_item_t  *item;

    while (!ngx_queue_empty(&s->queue)) {
        q = ngx_queue_head(&s->queue);
        item = ngx_queue_data(q, ngx_bayeux_memory_item_t, queue);

        ngx_bayeux_memory_unqueue(s, item);
    }

    if (s->lazy.timer_set) {
        ngx_del_timer(&s->lazy);
    }
}


static ngx_bayeux_waiter_t *
ngx_bayeux_memory_detach(ngx_bayeux_memory_session_t *s)
{
    ngx_bayeux_waiter_t  *w;

    w = s->waiter;

    if (w == NULL) {
        return NULL;
    }

    s->waiter = NULL;
    w->engine_data = NULL;

    if (s->wake.posted) {
        ngx_delete_posted_event(&s->wake);
    }

    ngx_bayeux_memory_schedule_expiry(s);

    return w;
}


static void
ngx_bayeux_memory_wake_handler(ngx_event_t *ev)
{
    ngx_bayeux_waiter_t          *w;
    ngx_bayeux_memory_session_t  *s = ev->data;

    w = ngx_bayeux_memory_detach(s);

    if (w == NULL) {
        return;
    }

    if (s->overflowed) {
        ngx_bayeux_memory_overflowed(s, w);
        return;
    }

    if (ngx_bayeux_memory_drain(s, w, w->pool, &w->messages) != NGX_OK) {
        w->handler(w, NGX_BAYEUX_WAKE_ERROR);
        return;
    }

    w->handler(w, NGX_BAYEUX_WAKE_MESSAGES);
}


/*
 * The session whose queue overflowed ends, as if it had disconnected;
 * "w", the connect it held, if any (detached), is told.
 */

static void
ngx_bayeux_memory_overflowed(ngx_bayeux_memory_session_t *s,
    ngx_bayeux_waiter_t *w)
{
    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, s->memory->log, 0,
                   "bayeux memory: session %*s ends: its queue overflowed",
                   (size_t) NGX_BAYEUX_CLIENT_ID_LEN, s->id);

    ngx_bayeux_memory_destroy(s, 0, NGX_BAYEUX_END_OVERFLOW);

    if (w) {
        w->engine_data = NULL;
        w->messages = NULL;
        w->handler(w, NGX_BAYEUX_WAKE_OVERFLOW);
    }
}


static void
ngx_bayeux_memory_release(ngx_bayeux_endpoint_t *ep, ngx_bayeux_waiter_t *w)
{
    ngx_bayeux_memory_session_t  *s = w->engine_data;

    if (s == NULL || s->waiter != w) {
        return;
    }

    ngx_bayeux_memory_detach(s);

    if (s->overflowed) {
        ngx_bayeux_memory_overflowed(s, w);
        return;
    }

    if (ngx_bayeux_memory_drain(s, w, w->pool, &w->messages) != NGX_OK) {
        w->handler(w, NGX_BAYEUX_WAKE_ERROR);
        return;
    }

    w->handler(w, w->messages->nelts ? NGX_BAYEUX_WAKE_MESSAGES
                                     : NGX_BAYEUX_WAKE_TIMEOUT);
}


static void
ngx_bayeux_memory_cancel(ngx_bayeux_endpoint_t *ep, ngx_bayeux_waiter_t *w)
{
    ngx_bayeux_memory_session_t  *s = w->engine_data;

    if (s == NULL || s->waiter != w) {
        return;
    }

    ngx_bayeux_memory_detach(s);
}


static void
ngx_bayeux_memory_disconnect(ngx_bayeux_op_t *op)
{
    ngx_bayeux_memory_t          *mem = op->endpoint->data;
    ngx_bayeux_memory_session_t  *s;

    s = ngx_bayeux_memory_session(mem, op);
    if (s == NULL) {
        op->rc = NGX_DECLINED;
        op->handler(op);
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, op->log, 0,
                   "bayeux memory: session %V disconnected", &op->client_id);

    ngx_bayeux_memory_destroy(s, 1, NGX_BAYEUX_END_DISCONNECT);

    op->rc = NGX_OK;
    op->handler(op);
}


static void
ngx_bayeux_memory_touch(ngx_bayeux_op_t *op)
{
    ngx_bayeux_memory_t          *mem = op->endpoint->data;
    ngx_bayeux_memory_session_t  *s;

    s = ngx_bayeux_memory_session(mem, op);

    if (s == NULL) {
        op->rc = NGX_DECLINED;

    } else {
        if (op->active) {
            s->active = ngx_current_msec;
        }

        /* the session may be gone once the handler returns */
        op->rc = NGX_OK;
        ngx_str_null(&op->grants);

        if (s->grants.len) {
            op->grants.data = ngx_pstrdup(op->pool, &s->grants);
            op->grants.len = s->grants.len;

            if (op->grants.data == NULL) {
                op->rc = NGX_ERROR;
            }
        }
    }

    op->handler(op);
}


/* to one session, or to every session of a user */

static void
ngx_bayeux_memory_deliver_op(ngx_bayeux_op_t *op)
{
    ngx_int_t                     rc;
    ngx_queue_t                  *q;
    ngx_str_t                     none;
    ngx_bayeux_memory_t          *mem = op->endpoint->data;
    ngx_bayeux_memory_msg_t      *msg;
    ngx_bayeux_memory_user_t     *user;
    ngx_bayeux_memory_session_t  *s;

    op->rc = NGX_ERROR;
    op->count = 0;

    s = NULL;
    user = NULL;

    if (op->user.len) {
        user = ngx_bayeux_memory_user(mem, &op->user);
        if (user == NULL) {
            op->rc = NGX_OK;
            goto done;
        }

    } else {
        /* the server's: any browser */
        none = op->browser;
        ngx_str_null(&op->browser);
        s = ngx_bayeux_memory_session(mem, op);
        op->browser = none;

        if (s == NULL) {
            op->rc = NGX_DECLINED;
            goto done;
        }
    }

    msg = ngx_alloc(sizeof(ngx_bayeux_memory_msg_t) + op->message.len,
                    mem->log);
    if (msg == NULL) {
        goto done;
    }

    msg->refs = 1;
    msg->len = op->message.len;
    ngx_memcpy(msg->data, op->message.data, op->message.len);

    if (s) {
        rc = ngx_bayeux_memory_enqueue(s, msg, op->lazy);

        if (rc == NGX_ERROR) {
            goto release;
        }

        op->count = (rc == NGX_OK);

    } else {
        for (q = ngx_queue_head(&user->sessions);
             q != ngx_queue_sentinel(&user->sessions);
             q = ngx_queue_next(q))
        {
            s = ngx_queue_data(q, ngx_bayeux_memory_session_t, in_user);

            rc = ngx_bayeux_memory_enqueue(s, msg, op->lazy);

            if (rc == NGX_ERROR) {
                goto release;
            }

            if (rc == NGX_OK) {
                op->count++;
            }
        }
    }

    op->rc = NGX_OK;

release:

    ngx_bayeux_memory_msg_release(msg);

done:

    op->handler(op);
}


static void
ngx_bayeux_memory_count(ngx_bayeux_op_t *op)
{
    ngx_bayeux_memory_t          *mem = op->endpoint->data;
    ngx_bayeux_memory_user_t     *user;
    ngx_bayeux_memory_channel_t  *ch;

    op->count = 0;

    if (op->user.len) {
        user = ngx_bayeux_memory_user(mem, &op->user);
        op->count = user ? user->nsessions : 0;

    } else {
        ch = ngx_bayeux_memory_channel(mem, &op->channel,
                                       ngx_crc32_short(op->channel.data,
                                                       op->channel.len));
        op->count = ch ? ch->nsubscribers : 0;
    }

    op->rc = NGX_OK;
    op->handler(op);
}


static ngx_bayeux_memory_user_t *
ngx_bayeux_memory_user(ngx_bayeux_memory_t *mem, ngx_str_t *name)
{
    return (ngx_bayeux_memory_user_t *)
               ngx_str_rbtree_lookup(&mem->users, name,
                                     ngx_crc32_short(name->data, name->len));
}


static ngx_int_t
ngx_bayeux_memory_user_add(ngx_bayeux_memory_t *mem,
    ngx_bayeux_memory_session_t *s, ngx_str_t *name)
{
    ngx_bayeux_memory_user_t  *user;

    user = ngx_bayeux_memory_user(mem, name);

    if (user == NULL) {
        user = ngx_alloc(sizeof(ngx_bayeux_memory_user_t) + name->len,
                         mem->log);
        if (user == NULL) {
            return NGX_ERROR;
        }

        user->node.str.data = (u_char *) (user + 1);
        user->node.str.len = name->len;
        ngx_memcpy(user->node.str.data, name->data, name->len);
        user->node.node.key = ngx_crc32_short(name->data, name->len);

        ngx_queue_init(&user->sessions);
        user->nsessions = 0;

        ngx_rbtree_insert(&mem->users, &user->node.node);
    }

    ngx_queue_insert_tail(&user->sessions, &s->in_user);
    user->nsessions++;
    s->user = user;

    return NGX_OK;
}


static void
ngx_bayeux_memory_schedule_expiry(ngx_bayeux_memory_session_t *s)
{
    ngx_bayeux_loc_conf_t  *conf;

    conf = s->memory->endpoint->conf;

    ngx_add_timer(&s->expire, conf->interval + conf->max_interval);
}


static void
ngx_bayeux_memory_expire_handler(ngx_event_t *ev)
{
    ngx_bayeux_memory_session_t  *s = ev->data;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "bayeux memory: session %*s expired",
                   (size_t) NGX_BAYEUX_CLIENT_ID_LEN, s->id);

    ngx_bayeux_stat(s->memory->endpoint, NGX_BAYEUX_STAT_ENDED_EXPIRED, 1);

    ngx_bayeux_memory_destroy(s, 1, NGX_BAYEUX_END_EXPIRED);
}


/*
 * bayeux_max_inactivity: the session ends if nothing that counts
 * happened for the whole period; else it is checked again when the
 * period from its last activity ends.  Its held connect, if any, is told
 * as a connect that comes later is: the session is unknown.
 */

static void
ngx_bayeux_memory_inactive_handler(ngx_event_t *ev)
{
    ngx_msec_t                    max, idle;
    ngx_bayeux_waiter_t          *w;
    ngx_bayeux_endpoint_t        *ep;
    ngx_bayeux_memory_session_t  *s = ev->data;

    ep = s->memory->endpoint;
    max = ep->conf->max_inactivity;
    idle = ngx_current_msec - s->active;

    if (idle < max) {
        ngx_add_timer(&s->inactive, max - idle);
        return;
    }

    /* a clientId is a credential: named at debug level only */
    ngx_log_error(NGX_LOG_INFO, ev->log, 0,
                  "bayeux: a session was inactive for bayeux_max_inactivity "
                  "(%M ms), the session ends", max);
    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "bayeux: inactive: session %*s",
                   (size_t) NGX_BAYEUX_CLIENT_ID_LEN, s->id);

    ngx_bayeux_stat(ep, NGX_BAYEUX_STAT_ENDED_INACTIVE, 1);

    w = ngx_bayeux_memory_detach(s);

    ngx_bayeux_memory_destroy(s, 0, NGX_BAYEUX_END_INACTIVE);

    if (w) {
        w->messages = NULL;
        w->handler(w, NGX_BAYEUX_WAKE_INACTIVE);
    }
}


static void
ngx_bayeux_memory_destroy(ngx_bayeux_memory_session_t *s, ngx_uint_t notify,
    ngx_uint_t reason)
{
    ngx_bayeux_endpoint_t     *ep;
    ngx_bayeux_session_end_t   end;

    ngx_bayeux_waiter_t       *w;
    ngx_bayeux_memory_t       *mem;

    mem = s->memory;

    w = s->waiter;
    s->waiter = NULL;

    if (s->wake.posted) {
        ngx_delete_posted_event(&s->wake);
    }

    if (s->expire.timer_set) {
        ngx_del_timer(&s->expire);
    }

    if (s->inactive.timer_set) {
        ngx_del_timer(&s->inactive);
    }

    while (s->subscriptions.root != s->subscriptions.sentinel) {
        ngx_bayeux_memory_unsubscribe_one(mem,
                      (ngx_bayeux_memory_sub_t *) s->subscriptions.root);
    }

    ngx_bayeux_memory_empty(s);

    if (s->grants.data) {
        ngx_free(s->grants.data);
    }

    ep = mem->endpoint;

    ngx_memzero(&end, sizeof(ngx_bayeux_session_end_t));

    end.client_id.data = s->id;
    end.client_id.len = NGX_BAYEUX_CLIENT_ID_LEN;
    end.reason = reason;

    if (s->user) {
        ngx_queue_remove(&s->in_user);

        end.user = s->user->node.str;
        end.last = (--s->user->nsessions == 0);
    }

    /* the user's name is the user's: told before it may go */

    if (reason && ep->session_ended) {
        ep->session_ended(ep, &end);
    }

    if (end.last) {
        ngx_rbtree_delete(&mem->users, &s->user->node.node);
        ngx_free(s->user);
    }

    ngx_rbtree_delete(&mem->sessions, &s->node.node);
    ngx_queue_remove(&s->link);

    ngx_bayeux_memory_free(&mem->session_slab, s, mem->log);

    if (w && notify) {
        w->engine_data = NULL;
        w->messages = NULL;
        w->handler(w, NGX_BAYEUX_WAKE_DISCONNECTED);
    }
}
