
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_APP_H_INCLUDED_
#define _NGX_BAYEUX_APP_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_bayeux.h"


/*
 * What talks to the application: the incoming hooks that ask it, by the
 * endpoint's configuration (bayeux_handshake_request).
 */

ngx_int_t ngx_bayeux_app_init_endpoint(ngx_conf_t *cf,
    ngx_bayeux_endpoint_t *ep);

char *ngx_bayeux_app_request_uri(ngx_conf_t *cf, void *post, void *data);


#endif /* _NGX_BAYEUX_APP_H_INCLUDED_ */
