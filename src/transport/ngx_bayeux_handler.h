
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_HANDLER_H_INCLUDED_
#define _NGX_BAYEUX_HANDLER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* the names and bits of bayeux_transports, by preference */
extern ngx_conf_bitmask_t  ngx_bayeux_transport_masks[];


void ngx_bayeux_http_init_transports(void);
ngx_int_t ngx_bayeux_http_handler(ngx_http_request_t *r);


#endif /* _NGX_BAYEUX_HANDLER_H_INCLUDED_ */
