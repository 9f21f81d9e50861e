
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_engine.h"
#include "ngx_bayeux_message.h"
#include "ngx_bayeux_batch.h"
#include "ngx_bayeux_hooks.h"
#include "ngx_bayeux_clients.h"


/*
 * CometD's multiple-clients rule: a browser (told apart by the
 * BAYEUX_BROWSER cookie) has few connections per host, so it may hold
 * only bayeux_max_sessions_per_browser long-polls at once; the sessions
 * of its other tabs poll instead.  The holds are counted per worker
 * process.
 */

typedef struct {
    ngx_str_node_t                 node;
    ngx_queue_t                    holds;
    u_char                         id[NGX_BAYEUX_BROWSER_ID_LEN];
} ngx_bayeux_browser_t;


struct ngx_bayeux_browser_hold_s {
    ngx_queue_t                    queue;
    ngx_bayeux_browser_t          *browser;
    u_char                         client_id[NGX_BAYEUX_CLIENT_ID_LEN];
};


static ngx_rbtree_t       ngx_bayeux_browsers;
static ngx_rbtree_node_t  ngx_bayeux_browsers_sentinel;


/*
 * Registers a held long-poll of "client_id" for "browser".  NGX_DECLINED
 * when the browser already holds "max" long-polls of other sessions.
 */

ngx_int_t
ngx_bayeux_browser_hold(ngx_str_t *browser, ngx_str_t *client_id,
    ngx_uint_t max, ngx_log_t *log, ngx_bayeux_browser_hold_t **hold)
{
    uint32_t                    hash;
    ngx_uint_t                  others;
    ngx_queue_t                *q;
    ngx_bayeux_browser_t       *b;
    ngx_bayeux_browser_hold_t  *h;

    if (ngx_bayeux_browsers.root == NULL) {
        ngx_rbtree_init(&ngx_bayeux_browsers, &ngx_bayeux_browsers_sentinel,
                        ngx_str_rbtree_insert_value);
    }

    hash = ngx_crc32_short(browser->data, browser->len);

    b = (ngx_bayeux_browser_t *)
            ngx_str_rbtree_lookup(&ngx_bayeux_browsers, browser, hash);

    if (b) {
        others = 0;

        for (q = ngx_queue_head(&b->holds);
             q != ngx_queue_sentinel(&b->holds);
             q = ngx_queue_next(q))
        {
            h = ngx_queue_data(q, ngx_bayeux_browser_hold_t, queue);

            if (client_id->len != NGX_BAYEUX_CLIENT_ID_LEN
                || ngx_strncmp(h->client_id, client_id->data,
                               NGX_BAYEUX_CLIENT_ID_LEN) != 0)
            {
                others++;
            }
        }

        if (max && others >= max) {
            return NGX_DECLINED;
        }

    } else {
        b = ngx_alloc(sizeof(ngx_bayeux_browser_t), log);
        if (b == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(b->id, browser->data, NGX_BAYEUX_BROWSER_ID_LEN);
        b->node.str.data = b->id;
        b->node.str.len = NGX_BAYEUX_BROWSER_ID_LEN;
        b->node.node.key = hash;
        ngx_queue_init(&b->holds);

        ngx_rbtree_insert(&ngx_bayeux_browsers, &b->node.node);
    }

    h = ngx_alloc(sizeof(ngx_bayeux_browser_hold_t), log);
    if (h == NULL) {
        if (ngx_queue_empty(&b->holds)) {
            ngx_rbtree_delete(&ngx_bayeux_browsers, &b->node.node);
            ngx_free(b);
        }

        return NGX_ERROR;
    }

    h->browser = b;
    ngx_memzero(h->client_id, NGX_BAYEUX_CLIENT_ID_LEN);

    /* a connect without a clientId has no memory for it */
    if (client_id->len) {
        ngx_memcpy(h->client_id, client_id->data,
                   ngx_min(client_id->len, NGX_BAYEUX_CLIENT_ID_LEN));
    }
    ngx_queue_insert_tail(&b->holds, &h->queue);

    *hold = h;

    return NGX_OK;
}


void
ngx_bayeux_browser_unhold(ngx_bayeux_browser_hold_t *hold)
{
    ngx_bayeux_browser_t  *b;

    b = hold->browser;

    ngx_queue_remove(&hold->queue);
    ngx_free(hold);

    if (ngx_queue_empty(&b->holds)) {
        ngx_rbtree_delete(&ngx_bayeux_browsers, &b->node.node);
        ngx_free(b);
    }
}


/*
 * The rule at /meta/connect, an incoming hook: a long-poll that would be
 * held counts against its browser's; beyond the browser's share it is
 * answered at once, and its reply tells the client to poll
 * (b->multiple_clients).
 */

static ngx_int_t
ngx_bayeux_clients_connect(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m,
    void *data)
{
    if (b->browser.len == 0 || b->hold == 0) {
        return NGX_OK;
    }

    switch (ngx_bayeux_browser_hold(&b->browser, &m->client_id,
                                b->endpoint->conf->max_sessions_per_browser,
                                b->log, &b->browser_hold))
    {
    case NGX_OK:
        return NGX_OK;

    case NGX_DECLINED:
        /* another tab holds the long-poll: this one polls */
        b->hold = 0;
        b->multiple_clients = 1;
        return NGX_OK;

    default:
        return NGX_ERROR;
    }
}


ngx_int_t
ngx_bayeux_clients_init_endpoint(ngx_conf_t *cf, ngx_bayeux_endpoint_t *ep)
{
    if (ngx_bayeux_hook_add_incoming(cf, ep,
                                ngx_bayeux_kind_mask(NGX_BAYEUX_KIND_CONNECT),
                                ngx_bayeux_clients_connect, NULL)
        == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}
