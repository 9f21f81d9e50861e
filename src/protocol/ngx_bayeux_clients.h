
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_CLIENTS_H_INCLUDED_
#define _NGX_BAYEUX_CLIENTS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux.h"


typedef struct ngx_bayeux_browser_hold_s  ngx_bayeux_browser_hold_t;


ngx_int_t ngx_bayeux_browser_hold(ngx_str_t *browser, ngx_str_t *client_id,
    ngx_uint_t max, ngx_log_t *log, ngx_bayeux_browser_hold_t **hold);
void ngx_bayeux_browser_unhold(ngx_bayeux_browser_hold_t *hold);
ngx_int_t ngx_bayeux_clients_init_endpoint(ngx_conf_t *cf,
    ngx_bayeux_endpoint_t *ep);


#endif /* _NGX_BAYEUX_CLIENTS_H_INCLUDED_ */
