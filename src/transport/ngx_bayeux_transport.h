
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_TRANSPORT_H_INCLUDED_
#define _NGX_BAYEUX_TRANSPORT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_bayeux_batch.h"


/*
 * The HTTP view of a transport: the protocol's table first, so that a
 * batch's b->transport is one of these, then what only HTTP knows: the
 * requests the content handler gives it, and how a subrequest finds a
 * parent.
 */

typedef struct {
    ngx_bayeux_transport_t         bayeux;      /* first */

    ngx_uint_t                     methods;     /* NGX_HTTP_GET... */

    /*
     * the Upgrade those requests ask for (case-insensitive); empty: the
     * header is not looked at
     */
    ngx_str_t                      upgrade;

    ngx_http_handler_pt            handler;

    /*
     * the request a subrequest can hang off for the batch; NULL: none
     * now (a websocket between its upgrade and its close)
     */
    ngx_http_request_t          *(*parent)(ngx_bayeux_batch_t *b);
} ngx_bayeux_http_transport_t;


#define ngx_bayeux_http_transport(b)                                          \
    ((const ngx_bayeux_http_transport_t *) (b)->transport)

#define ngx_bayeux_transport_parent(b)                                        \
    ngx_bayeux_http_transport(b)->parent(b)


#endif /* _NGX_BAYEUX_TRANSPORT_H_INCLUDED_ */
