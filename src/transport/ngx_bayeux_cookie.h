
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_COOKIE_H_INCLUDED_
#define _NGX_BAYEUX_COOKIE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


#define NGX_BAYEUX_BROWSER_COOKIE     "BAYEUX_BROWSER"


ngx_int_t ngx_bayeux_browser_id(ngx_http_request_t *r, ngx_str_t *id);
ngx_int_t ngx_bayeux_browser_set_cookie(ngx_http_request_t *r,
    ngx_str_t *id);
ngx_int_t ngx_bayeux_browser_new_id(u_char *buf);


#endif /* _NGX_BAYEUX_COOKIE_H_INCLUDED_ */
