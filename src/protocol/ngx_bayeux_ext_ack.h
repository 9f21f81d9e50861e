
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_EXT_ACK_H_INCLUDED_
#define _NGX_BAYEUX_EXT_ACK_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux.h"


/*
 * CometD's ack extension (AcknowledgedMessagesExtension), server side,
 * on unless "bayeux_ack off": a handshake with "ext":{"ack":true} gets
 * "ext":{"ack":true} in its reply; each /meta/connect of that session
 * then sends "ext":{"ack":N}, the last batch it received, and its
 * successful reply carries the number of the batch it gives.  The
 * engine keeps what it gave until it is acknowledged (ngx_bayeux_waiter_t:
 * ack, batch), and such a connect is never pushed to: its deliveries go
 * in its reply, also over a websocket.
 */

ngx_int_t ngx_bayeux_ack_init_endpoint(ngx_conf_t *cf,
    ngx_bayeux_endpoint_t *ep);


#endif /* _NGX_BAYEUX_EXT_ACK_H_INCLUDED_ */
