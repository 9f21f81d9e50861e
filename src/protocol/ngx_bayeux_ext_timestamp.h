
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_EXT_TIMESTAMP_H_INCLUDED_
#define _NGX_BAYEUX_EXT_TIMESTAMP_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux.h"


/*
 * CometD's timestamp extension, server side (bayeux_timestamp on): every
 * message the server sends, replies and deliveries, gets a "timestamp"
 * field, the server's local time as CometD's TimestampExtension writes
 * it by default ("EEE MMM dd HH:mm:ss zzz yyyy", as Java's Date prints:
 * "Sun Nov 29 18:40:00 UTC 2026").  A delivery is written once for all
 * its subscribers: its timestamp is when it was published.
 */

ngx_int_t ngx_bayeux_timestamp_init_endpoint(ngx_conf_t *cf,
    ngx_bayeux_endpoint_t *ep);


#endif /* _NGX_BAYEUX_EXT_TIMESTAMP_H_INCLUDED_ */
