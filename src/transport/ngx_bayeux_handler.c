
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_http.h"
#include "ngx_bayeux_polling.h"
#include "ngx_bayeux_websocket.h"
#include "ngx_bayeux_handler.h"


/*
 * The content handler of a "bayeux" location: picks the transport of a
 * request, and answers cross-origin requests as bayeux_allow_origin says.
 */

static ngx_int_t ngx_bayeux_http_cors(ngx_http_request_t *r,
    ngx_table_elt_t *origin);
static ngx_int_t ngx_bayeux_http_preflight(ngx_http_request_t *r,
    ngx_table_elt_t *origin);


ngx_int_t
ngx_bayeux_http_handler(ngx_http_request_t *r)
{
    ngx_table_elt_t        *origin;
    ngx_bayeux_loc_conf_t  *blcf;

    blcf = ngx_http_get_module_loc_conf(r, ngx_bayeux_module);

    origin = ngx_bayeux_http_header(r, "Origin");

    if (origin && ngx_bayeux_http_origin_allowed(r) == NGX_OK
        && ngx_bayeux_http_cors(r, origin) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r->method == NGX_HTTP_OPTIONS) {
        return ngx_bayeux_http_preflight(r, origin);
    }

    if (r->method == NGX_HTTP_POST) {
        return ngx_bayeux_longpoll_handler(r);
    }

    if (r->method != NGX_HTTP_GET) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    if (r->headers_in.upgrade) {

        if (r->headers_in.upgrade->value.len != 9
            || ngx_strncasecmp(r->headers_in.upgrade->value.data,
                               (u_char *) "websocket", 9) != 0)
        {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "bayeux: unsupported upgrade \"%V\"",
                          &r->headers_in.upgrade->value);
            return NGX_HTTP_BAD_REQUEST;
        }

        if (!(blcf->transports & NGX_BAYEUX_TRANSPORT_WEBSOCKET)) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "bayeux: the websocket transport is not enabled");
            return NGX_HTTP_BAD_REQUEST;
        }

        return ngx_bayeux_websocket_handler(r);
    }

    return ngx_bayeux_jsonp_handler(r);
}


static ngx_int_t
ngx_bayeux_http_cors(ngx_http_request_t *r, ngx_table_elt_t *origin)
{
    ngx_str_t               value;
    ngx_bayeux_loc_conf_t  *blcf;

    blcf = ngx_http_get_module_loc_conf(r, ngx_bayeux_module);

    if (blcf->allow_origin == NULL) {
        return NGX_OK;
    }

    if (ngx_bayeux_http_add_header(r, "Access-Control-Allow-Origin",
                                   &origin->value)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_str_set(&value, "Origin");

    if (ngx_bayeux_http_add_header(r, "Vary", &value) != NGX_OK) {
        return NGX_ERROR;
    }

    if (blcf->allow_credentials) {
        ngx_str_set(&value, "true");

        if (ngx_bayeux_http_add_header(r, "Access-Control-Allow-Credentials",
                                       &value)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_http_preflight(ngx_http_request_t *r, ngx_table_elt_t *origin)
{
    ngx_int_t               rc;
    ngx_str_t               value;
    ngx_table_elt_t        *h;
    ngx_bayeux_loc_conf_t  *blcf;

    blcf = ngx_http_get_module_loc_conf(r, ngx_bayeux_module);

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (origin && blcf->allow_origin
        && ngx_bayeux_http_origin_allowed(r) == NGX_OK)
    {
        ngx_str_set(&value, "POST, GET, OPTIONS");

        if (ngx_bayeux_http_add_header(r, "Access-Control-Allow-Methods",
                                       &value)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h = ngx_bayeux_http_header(r, "Access-Control-Request-Headers");

        if (h) {
            value = h->value;

        } else {
            ngx_str_set(&value, "Content-Type");
        }

        if (ngx_bayeux_http_add_header(r, "Access-Control-Allow-Headers",
                                       &value)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_str_set(&value, "86400");

        if (ngx_bayeux_http_add_header(r, "Access-Control-Max-Age", &value)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    r->headers_out.status = NGX_HTTP_NO_CONTENT;
    r->headers_out.content_length_n = 0;
    r->header_only = 1;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        return rc;
    }

    return ngx_http_send_special(r, NGX_HTTP_LAST);
}
