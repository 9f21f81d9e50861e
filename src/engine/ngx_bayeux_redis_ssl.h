
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_REDIS_SSL_H_INCLUDED_
#define _NGX_BAYEUX_REDIS_SSL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux.h"


#if (NGX_SSL)

/*
 * The TLS context of an endpoint's rediss:// link, made of its
 * bayeux_redis_ssl_* directives when the configuration is read, so that
 * "nginx -t" tells a missing key or an unreadable file.
 */
ngx_ssl_t *ngx_bayeux_redis_ssl_create(ngx_conf_t *cf,
    ngx_bayeux_loc_conf_t *conf);

#endif


#endif /* _NGX_BAYEUX_REDIS_SSL_H_INCLUDED_ */
