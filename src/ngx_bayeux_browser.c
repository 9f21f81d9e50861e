
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <sys/random.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_http.h"
#include "ngx_bayeux_browser.h"


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


/* the browser id of the request's BAYEUX_BROWSER cookie, if any */

ngx_int_t
ngx_bayeux_browser_id(ngx_http_request_t *r, ngx_str_t *id)
{
    u_char           *p, *last, *start;
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = sizeof(NGX_BAYEUX_BROWSER_COOKIE) - 1;
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NGX_DECLINED;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len != 6
            || ngx_strncasecmp(h[i].key.data, (u_char *) "Cookie", 6) != 0)
        {
            continue;
        }

        p = h[i].value.data;
        last = p + h[i].value.len;

        while (p < last) {

            while (p < last && (*p == ' ' || *p == ';')) {
                p++;
            }

            start = p;

            while (p < last && *p != ';') {
                p++;
            }

            if ((size_t) (p - start) == len + 1 + NGX_BAYEUX_BROWSER_ID_LEN
                && ngx_strncmp(start, NGX_BAYEUX_BROWSER_COOKIE "=",
                               len + 1)
                   == 0)
            {
                id->data = start + len + 1;
                id->len = NGX_BAYEUX_BROWSER_ID_LEN;
                return NGX_OK;
            }
        }
    }
}


/* a new browser id: NGX_BAYEUX_BROWSER_ID_LEN hex digits in "buf" */

ngx_int_t
ngx_bayeux_browser_new_id(u_char *buf)
{
    u_char   random[NGX_BAYEUX_BROWSER_ID_LEN / 2];
    ssize_t  n;

    n = getrandom(random, sizeof(random), 0);
    if (n != (ssize_t) sizeof(random)) {
        return NGX_ERROR;
    }

    ngx_hex_dump(buf, random, sizeof(random));

    return NGX_OK;
}


/* sets a new BAYEUX_BROWSER cookie; "id" is its value */

ngx_int_t
ngx_bayeux_browser_set_cookie(ngx_http_request_t *r, ngx_str_t *id)
{
    u_char     *p;
    ngx_str_t   cookie;

    cookie.len = sizeof(NGX_BAYEUX_BROWSER_COOKIE "=; Path=/; HttpOnly") - 1
                 + NGX_BAYEUX_BROWSER_ID_LEN;
    cookie.data = ngx_pnalloc(r->pool, cookie.len);
    if (cookie.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(cookie.data, NGX_BAYEUX_BROWSER_COOKIE "=",
                   sizeof(NGX_BAYEUX_BROWSER_COOKIE));

    if (ngx_bayeux_browser_new_id(p) != NGX_OK) {
        return NGX_ERROR;
    }

    id->data = p;
    id->len = NGX_BAYEUX_BROWSER_ID_LEN;

    p += NGX_BAYEUX_BROWSER_ID_LEN;
    ngx_memcpy(p, "; Path=/; HttpOnly", sizeof("; Path=/; HttpOnly") - 1);

    return ngx_bayeux_http_add_header(r, "Set-Cookie", &cookie);
}


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
