
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_WEBSOCKET_H_INCLUDED_
#define _NGX_BAYEUX_WEBSOCKET_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_bayeux_batch.h"
#include "ngx_bayeux_transport.h"


extern const ngx_bayeux_http_transport_t  ngx_bayeux_websocket;


ngx_int_t ngx_bayeux_websocket_handler(ngx_http_request_t *r);
ngx_http_request_t *ngx_bayeux_ws_parent(ngx_bayeux_batch_t *b);


/*
 * A websocket's closing line (bayeux_websocket_log): the access log of
 * its location gets a line for its whole life, written through a request
 * of its own, while this says what the websocket was (ngx_bayeux_ws_log,
 * set only for that while).
 */

typedef struct {
    ngx_http_request_t            *request;
    ngx_str_t                      client_id;   /* its session */
    ngx_str_t                      grants;      /* what it was granted */
    ngx_uint_t                     messages;    /* messages in */
} ngx_bayeux_ws_log_t;


extern ngx_bayeux_ws_log_t  *ngx_bayeux_ws_log;


#endif /* _NGX_BAYEUX_WEBSOCKET_H_INCLUDED_ */
