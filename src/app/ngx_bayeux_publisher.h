
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_PUBLISHER_H_INCLUDED_
#define _NGX_BAYEUX_PUBLISHER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/*
 * bayeux_publisher: a location for backends, that publishes into a
 * bayeux endpoint (POST) and tells who is there (GET).
 */

char *ngx_bayeux_publisher_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* postconfiguration: each publisher finds its endpoint, by name */
ngx_int_t ngx_bayeux_publisher_resolve(ngx_conf_t *cf);


#endif /* _NGX_BAYEUX_PUBLISHER_H_INCLUDED_ */
