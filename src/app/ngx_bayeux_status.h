
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_STATUS_H_INCLUDED_
#define _NGX_BAYEUX_STATUS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/*
 * bayeux_status: a location that answers with the counters of every
 * "bayeux" endpoint, as JSON or in Prometheus' text format.
 */

char *ngx_bayeux_status_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* the shared memory of the counters, and the log phase that counts 4xx */
ngx_int_t ngx_bayeux_status_init(ngx_conf_t *cf);


#endif /* _NGX_BAYEUX_STATUS_H_INCLUDED_ */
