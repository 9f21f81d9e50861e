
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_HTTP_H_INCLUDED_
#define _NGX_BAYEUX_HTTP_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


ngx_table_elt_t *ngx_bayeux_http_header(ngx_http_request_t *r, char *name);
ngx_int_t ngx_bayeux_http_token(ngx_str_t *list, ngx_str_t *token);
ngx_int_t ngx_bayeux_http_origin_allowed(ngx_http_request_t *r);
ngx_int_t ngx_bayeux_http_add_header(ngx_http_request_t *r, char *name,
    ngx_str_t *value);
ngx_int_t ngx_bayeux_http_form_decode(ngx_pool_t *pool, ngx_str_t *value,
    ngx_str_t *decoded);


ngx_int_t ngx_bayeux_http_body_text(ngx_http_request_t *r, ngx_str_t *text);


#endif /* _NGX_BAYEUX_HTTP_H_INCLUDED_ */
