
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_session.h"


static void ngx_bayeux_session_known_cleanup(void *data);


ngx_bayeux_session_known_t *
ngx_bayeux_session_known_create(ngx_pool_t *pool)
{
    ngx_pool_cleanup_t          *cln;
    ngx_bayeux_session_known_t  *k;

    cln = ngx_pool_cleanup_add(pool, sizeof(ngx_bayeux_session_known_t));
    if (cln == NULL) {
        return NULL;
    }

    k = cln->data;
    ngx_memzero(k, sizeof(ngx_bayeux_session_known_t));

    cln->handler = ngx_bayeux_session_known_cleanup;

    return k;
}


ngx_bayeux_session_known_t *
ngx_bayeux_session_known_pooled(ngx_pool_t *pool)
{
    ngx_bayeux_session_known_t  *k;

    k = ngx_pcalloc(pool, sizeof(ngx_bayeux_session_known_t));
    if (k == NULL) {
        return NULL;
    }

    k->pool = pool;

    return k;
}


ngx_int_t
ngx_bayeux_session_learn(ngx_bayeux_session_known_t *k,
    ngx_str_t *client_id, ngx_str_t *grants, ngx_log_t *log)
{
    u_char  *p;

    k->client_id.len = 0;

    if (client_id->len != NGX_BAYEUX_CLIENT_ID_LEN) {
        return NGX_OK;
    }

    if (k->pool) {
        ngx_str_null(&k->grants);

        if (grants->len) {
            k->grants.data = ngx_pstrdup(k->pool, grants);
            if (k->grants.data == NULL) {
                return NGX_ERROR;
            }

            k->grants.len = grants->len;
        }

        goto id;
    }

    /* one buffer, grown only: a websocket may serve a few sessions */

    if (grants->len > k->size) {
        p = ngx_alloc(grants->len, log);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (k->grants.data) {
            ngx_free(k->grants.data);
        }

        k->grants.data = p;
        k->size = grants->len;
    }

    if (grants->len) {
        ngx_memcpy(k->grants.data, grants->data, grants->len);
    }

    k->grants.len = grants->len;

id:

    ngx_memcpy(k->id, client_id->data, NGX_BAYEUX_CLIENT_ID_LEN);
    k->client_id.data = k->id;
    k->client_id.len = NGX_BAYEUX_CLIENT_ID_LEN;

    return NGX_OK;
}


ngx_str_t *
ngx_bayeux_session_grants(ngx_bayeux_session_known_t *k, ngx_str_t *client_id)
{
    if (k == NULL
        || k->client_id.len == 0
        || client_id->len != k->client_id.len
        || ngx_memcmp(client_id->data, k->client_id.data, client_id->len) != 0)
    {
        return NULL;
    }

    return &k->grants;
}


static void
ngx_bayeux_session_known_cleanup(void *data)
{
    ngx_bayeux_session_known_t  *k = data;

    if (k->grants.data) {
        ngx_free(k->grants.data);
    }
}
