
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_LONGPOLL_H_INCLUDED_
#define _NGX_BAYEUX_LONGPOLL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


ngx_int_t ngx_bayeux_longpoll_handler(ngx_http_request_t *r);
void ngx_bayeux_longpoll_start(ngx_http_request_t *r, ngx_str_t *text,
    ngx_str_t *callback);
void ngx_bayeux_longpoll_bad_request(ngx_http_request_t *r,
    ngx_str_t *reason);


#endif /* _NGX_BAYEUX_LONGPOLL_H_INCLUDED_ */
