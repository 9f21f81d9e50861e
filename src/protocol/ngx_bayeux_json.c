
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux_json.h"


/* a growing JSON text in a pool, for replies and deliveries */

static ngx_int_t ngx_bayeux_json_reserve(ngx_bayeux_json_t *json,
    size_t len);


ngx_int_t
ngx_bayeux_json_init(ngx_bayeux_json_t *json, ngx_pool_t *pool, size_t size)
{
    json->pool = pool;

    json->start = ngx_pnalloc(pool, size);
    if (json->start == NULL) {
        return NGX_ERROR;
    }

    json->pos = json->start;
    json->end = json->start + size;

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_json_reserve(ngx_bayeux_json_t *json, size_t len)
{
    size_t   size, used;
    u_char  *p;

    if ((size_t) (json->end - json->pos) >= len) {
        return NGX_OK;
    }

    used = json->pos - json->start;
    size = ngx_max(2 * (size_t) (json->end - json->start), used + len);

    p = ngx_pnalloc(json->pool, size);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, json->start, used);

    ngx_pfree(json->pool, json->start);

    json->start = p;
    json->pos = p + used;
    json->end = p + size;

    return NGX_OK;
}


ngx_int_t
ngx_bayeux_json_raw(ngx_bayeux_json_t *json, u_char *data, size_t len)
{
    if (ngx_bayeux_json_reserve(json, len) != NGX_OK) {
        return NGX_ERROR;
    }

    json->pos = ngx_cpymem(json->pos, data, len);

    return NGX_OK;
}


ngx_int_t
ngx_bayeux_json_string(ngx_bayeux_json_t *json, ngx_str_t *str)
{
    size_t  len;

    len = str->len + ngx_escape_json(NULL, str->data, str->len);

    if (ngx_bayeux_json_reserve(json, len + 2) != NGX_OK) {
        return NGX_ERROR;
    }

    *json->pos++ = '"';
    json->pos = (u_char *) ngx_escape_json(json->pos, str->data, str->len);
    *json->pos++ = '"';

    return NGX_OK;
}


ngx_int_t
ngx_bayeux_json_key(ngx_bayeux_json_t *json, char *key)
{
    size_t  len;

    len = ngx_strlen(key);

    if (ngx_bayeux_json_reserve(json, len + 4) != NGX_OK) {
        return NGX_ERROR;
    }

    if (json->pos > json->start
        && json->pos[-1] != '{' && json->pos[-1] != '[')
    {
        *json->pos++ = ',';
    }

    *json->pos++ = '"';
    json->pos = ngx_cpymem(json->pos, key, len);
    *json->pos++ = '"';
    *json->pos++ = ':';

    return NGX_OK;
}


/* "key":value, or nothing when the value is absent (empty) */

ngx_int_t
ngx_bayeux_json_string_field(ngx_bayeux_json_t *json, char *key,
    ngx_str_t *value)
{
    if (value->len == 0) {
        return NGX_OK;
    }

    if (ngx_bayeux_json_key(json, key) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_bayeux_json_string(json, value);
}


/* "key":["a","b",...] from an array of ngx_str_t */

ngx_int_t
ngx_bayeux_json_strings_field(ngx_bayeux_json_t *json, char *key,
    ngx_array_t *values)
{
    ngx_str_t   *value;
    ngx_uint_t   i;

    if (ngx_bayeux_json_key(json, key) != NGX_OK
        || ngx_bayeux_json_literal(json, "[") != NGX_OK)
    {
        return NGX_ERROR;
    }

    value = values->elts;

    for (i = 0; i < values->nelts; i++) {
        if ((i && ngx_bayeux_json_literal(json, ",") != NGX_OK)
            || ngx_bayeux_json_string(json, &value[i]) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return ngx_bayeux_json_literal(json, "]");
}


/* the same for a value that is JSON text already */

ngx_int_t
ngx_bayeux_json_raw_field(ngx_bayeux_json_t *json, char *key,
    ngx_str_t *value)
{
    if (value->len == 0) {
        return NGX_OK;
    }

    if (ngx_bayeux_json_key(json, key) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_bayeux_json_raw(json, value->data, value->len);
}


void
ngx_bayeux_json_result(ngx_bayeux_json_t *json, ngx_str_t *out)
{
    out->data = json->start;
    out->len = json->pos - json->start;
}
