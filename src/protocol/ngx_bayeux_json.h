
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_JSON_H_INCLUDED_
#define _NGX_BAYEUX_JSON_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * A growing JSON text in a pool, for replies and deliveries.
 */

typedef struct {
    ngx_pool_t                *pool;
    u_char                    *start;
    u_char                    *pos;
    u_char                    *end;
} ngx_bayeux_json_t;


ngx_int_t ngx_bayeux_json_init(ngx_bayeux_json_t *json, ngx_pool_t *pool,
    size_t size);
ngx_int_t ngx_bayeux_json_raw(ngx_bayeux_json_t *json, u_char *data,
    size_t len);
ngx_int_t ngx_bayeux_json_string(ngx_bayeux_json_t *json, ngx_str_t *str);
ngx_int_t ngx_bayeux_json_key(ngx_bayeux_json_t *json, char *key);
ngx_int_t ngx_bayeux_json_string_field(ngx_bayeux_json_t *json, char *key,
    ngx_str_t *value);
ngx_int_t ngx_bayeux_json_strings_field(ngx_bayeux_json_t *json, char *key,
    ngx_array_t *values);
ngx_int_t ngx_bayeux_json_raw_field(ngx_bayeux_json_t *json, char *key,
    ngx_str_t *value);
void ngx_bayeux_json_result(ngx_bayeux_json_t *json, ngx_str_t *out);

#define ngx_bayeux_json_literal(json, s)                                      \
    ngx_bayeux_json_raw(json, (u_char *) s, sizeof(s) - 1)


#endif /* _NGX_BAYEUX_JSON_H_INCLUDED_ */
