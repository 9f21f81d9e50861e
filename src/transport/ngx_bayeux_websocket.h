
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_WEBSOCKET_H_INCLUDED_
#define _NGX_BAYEUX_WEBSOCKET_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_bayeux_batch.h"


ngx_int_t ngx_bayeux_websocket_handler(ngx_http_request_t *r);
ngx_http_request_t *ngx_bayeux_ws_parent(ngx_bayeux_batch_t *b);


#endif /* _NGX_BAYEUX_WEBSOCKET_H_INCLUDED_ */
