
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_WEBSOCKET_H_INCLUDED_
#define _NGX_BAYEUX_WEBSOCKET_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


ngx_int_t ngx_bayeux_websocket_handler(ngx_http_request_t *r);


#endif /* _NGX_BAYEUX_WEBSOCKET_H_INCLUDED_ */
