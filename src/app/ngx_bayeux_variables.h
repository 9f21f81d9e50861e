
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_VARIABLES_H_INCLUDED_
#define _NGX_BAYEUX_VARIABLES_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_bayeux_batch.h"


/*
 * $bayeux_client_id, $bayeux_user, $bayeux_channel, $bayeux_transport:
 * in a subrequest to the application, those of the message it asks
 * about; in a polling request (log_format), those of its batch.
 */

typedef struct {
    ngx_str_t                  client_id;
    ngx_str_t                  user;
    ngx_str_t                  channel;
    ngx_str_t                  transport;
} ngx_bayeux_variables_t;


ngx_int_t ngx_bayeux_variables_add(ngx_conf_t *cf);

/* those of message "m", for a subrequest: copied into its pool */
ngx_int_t ngx_bayeux_variables_set(ngx_http_request_t *sr,
    ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m, ngx_str_t *grants);


#endif /* _NGX_BAYEUX_VARIABLES_H_INCLUDED_ */
