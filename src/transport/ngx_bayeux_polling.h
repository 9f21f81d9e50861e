
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_POLLING_H_INCLUDED_
#define _NGX_BAYEUX_POLLING_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_bayeux_transport.h"


#define NGX_BAYEUX_JSONP_MAX_CALLBACK  64


extern const ngx_bayeux_http_transport_t  ngx_bayeux_long_polling;
extern const ngx_bayeux_http_transport_t  ngx_bayeux_callback_polling;


ngx_int_t ngx_bayeux_longpoll_handler(ngx_http_request_t *r);
void ngx_bayeux_longpoll_start(ngx_http_request_t *r, ngx_str_t *text,
    ngx_str_t *callback);
void ngx_bayeux_longpoll_bad_request(ngx_http_request_t *r,
    ngx_str_t *reason);
ngx_int_t ngx_bayeux_jsonp_handler(ngx_http_request_t *r);

/* the batch of a polling request, once its messages are read, or NULL */
ngx_bayeux_batch_t *ngx_bayeux_polling_batch(ngx_http_request_t *r);
ngx_int_t ngx_bayeux_jsonp_wrap(ngx_http_request_t *r, ngx_str_t *callback,
    ngx_str_t *body);


#endif /* _NGX_BAYEUX_POLLING_H_INCLUDED_ */
