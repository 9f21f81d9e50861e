
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_EXT_TIMESYNC_H_INCLUDED_
#define _NGX_BAYEUX_EXT_TIMESYNC_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux.h"


/*
 * CometD's timesync extension, server side: a /meta message whose ext
 * has timesync {tc, l, o} (the client's time, its network lag and clock
 * offset estimates, in ms) is answered with ext.timesync {tc, ts, p, a}:
 * tc echoed, ts the server's time when the message came, p how long the
 * server took to reply, a = tc + o + l - ts, as CometD's
 * TimesyncExtension computes them.  Always on: a client that does not
 * send timesync gets nothing of it.
 */

ngx_int_t ngx_bayeux_timesync_init_endpoint(ngx_conf_t *cf,
    ngx_bayeux_endpoint_t *ep);


#endif /* _NGX_BAYEUX_EXT_TIMESYNC_H_INCLUDED_ */
