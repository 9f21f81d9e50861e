
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_LAZY_H_INCLUDED_
#define _NGX_BAYEUX_LAZY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux.h"


/*
 * CometD's lazy channels (bayeux_lazy_channel): a message published to
 * one of them is queued without waking the session's held connect; the
 * engine delivers it when bayeux_max_lazy_timeout has passed, when the
 * connect's hold time is over, or with the session's next message that
 * is not lazy, whichever comes first.  The protocol tells which messages
 * are lazy (op->lazy), the engine when they go.
 */

char *ngx_bayeux_lazy_channel_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* is a message published to "channel" lazy */
ngx_uint_t ngx_bayeux_lazy(ngx_bayeux_loc_conf_t *conf, ngx_str_t *channel);


#endif /* _NGX_BAYEUX_LAZY_H_INCLUDED_ */
