
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_NOTICES_H_INCLUDED_
#define _NGX_BAYEUX_NOTICES_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_bayeux.h"


/*
 * What the endpoint tells when sessions end and users come and go:
 * bayeux_disconnect_request (a notice to the application) and
 * bayeux_presence_channel (a message to the endpoint's subscribers).
 */

ngx_int_t ngx_bayeux_notices_init_endpoint(ngx_conf_t *cf,
    ngx_bayeux_endpoint_t *ep);

char *ngx_bayeux_presence_channel(ngx_conf_t *cf, void *post, void *data);


#endif /* _NGX_BAYEUX_NOTICES_H_INCLUDED_ */
