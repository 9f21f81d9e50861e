
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_FAKE_REQUEST_H_INCLUDED_
#define _NGX_BAYEUX_FAKE_REQUEST_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* what a subrequest needs of a request that is gone (a websocket's upgrade) */

typedef struct {
    void                         **main_conf;
    void                         **srv_conf;
    void                         **loc_conf;
    ngx_http_log_handler_pt        log_handler;

    /* the real connection's: read while a fake request is built */
    ngx_http_connection_t         *http_connection;

    ngx_str_t                      uri;
    ngx_str_t                      args;
    ngx_str_t                      unparsed_uri;

    ngx_str_t                      addr_text;
    struct sockaddr               *sockaddr;
    socklen_t                      socklen;

    ngx_uint_t                     nheaders;
    ngx_str_t                     *headers;     /* name, value, name, ... */
} ngx_bayeux_kept_request_t;


ngx_bayeux_kept_request_t *ngx_bayeux_keep_request(ngx_http_request_t *r,
    ngx_pool_t *pool);
ngx_bayeux_kept_request_t *ngx_bayeux_keep_location(ngx_pool_t *pool,
    ngx_http_conf_ctx_t *ctx, ngx_str_t *uri, ngx_connection_t **origin);

/* "owner": NULL for a request of the server's own */
ngx_http_request_t *ngx_bayeux_fake_request(ngx_bayeux_kept_request_t *kept,
    ngx_connection_t *c, ngx_pool_t *owner);


#endif /* _NGX_BAYEUX_FAKE_REQUEST_H_INCLUDED_ */
