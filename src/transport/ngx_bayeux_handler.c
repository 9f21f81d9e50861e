
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_http.h"
#include "ngx_bayeux_transport.h"
#include "ngx_bayeux_polling.h"
#include "ngx_bayeux_websocket.h"
#include "ngx_bayeux_handler.h"


/*
 * The content handler of a "bayeux" location: picks the transport of a
 * request, and answers cross-origin requests as bayeux_allow_origin says.
 */

static ngx_int_t ngx_bayeux_http_upgrade(ngx_http_request_t *r,
    const ngx_bayeux_http_transport_t *t);
static ngx_int_t ngx_bayeux_http_cors(ngx_http_request_t *r,
    ngx_table_elt_t *origin);
static ngx_int_t ngx_bayeux_http_preflight(ngx_http_request_t *r,
    ngx_table_elt_t *origin);


/*
 * The transports, in the order a handshake offers them.  A request goes
 * to the first whose method it has and, for one with an upgrade, that
 * asks for an upgrade.
 */

static const ngx_bayeux_http_transport_t  *ngx_bayeux_http_transports[] = {
    &ngx_bayeux_websocket,
    &ngx_bayeux_long_polling,
    &ngx_bayeux_callback_polling,
    NULL
};


/* filled from the table above before the configuration is read */

ngx_conf_bitmask_t  ngx_bayeux_transport_masks[
    sizeof(ngx_bayeux_http_transports)
    / sizeof(ngx_bayeux_http_transports[0])];


void
ngx_bayeux_http_init_transports(void)
{
    ngx_uint_t                           i;
    ngx_conf_bitmask_t                  *mask;
    const ngx_bayeux_http_transport_t  **t;

    t = ngx_bayeux_http_transports;
    mask = ngx_bayeux_transport_masks;

    for (i = 0; t[i]; i++) {
        mask[i].name = t[i]->bayeux.name;
        mask[i].mask = t[i]->bayeux.mask;
    }

    ngx_str_null(&mask[i].name);
    mask[i].mask = 0;
}


ngx_int_t
ngx_bayeux_http_handler(ngx_http_request_t *r)
{
    ngx_table_elt_t                     *origin;
    const ngx_bayeux_http_transport_t  **t;

    if (r != r->main) {
        /*
         * a Bayeux location serves clients, not subrequests (one that
         * asks itself as its application would never end)
         */
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "bayeux: a subrequest cannot be served by a bayeux "
                      "location");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    origin = ngx_bayeux_http_header(r, "Origin");

    if (origin && ngx_bayeux_http_origin_allowed(r) == NGX_OK
        && ngx_bayeux_http_cors(r, origin) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r->method == NGX_HTTP_OPTIONS) {
        return ngx_bayeux_http_preflight(r, origin);
    }

    for (t = ngx_bayeux_http_transports; *t; t++) {

        if (!(r->method & (*t)->methods)) {
            continue;
        }

        if ((*t)->upgrade.len == 0) {
            return (*t)->handler(r);
        }

        if (r->headers_in.upgrade) {
            return ngx_bayeux_http_upgrade(r, *t);
        }
    }

    return NGX_HTTP_NOT_ALLOWED;
}


/*
 * A request that asks for an upgrade where a transport upgrades asks for
 * that transport: another upgrade is refused rather than answered as
 * plain HTTP, and so is the transport when it is not enabled.  (Plain
 * HTTP requests carry the handshakes of every transport, as Faye's
 * client handshakes before it upgrades: only their /meta/connect is
 * refused.)
 */

static ngx_int_t
ngx_bayeux_http_upgrade(ngx_http_request_t *r,
    const ngx_bayeux_http_transport_t *t)
{
    ngx_str_t              *upgrade;
    ngx_bayeux_loc_conf_t  *blcf;

    blcf = ngx_http_get_module_loc_conf(r, ngx_bayeux_module);

    upgrade = &r->headers_in.upgrade->value;

    if (upgrade->len != t->upgrade.len
        || ngx_strncasecmp(upgrade->data, t->upgrade.data, upgrade->len)
           != 0)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "bayeux: unsupported upgrade \"%V\"", upgrade);
        return NGX_HTTP_BAD_REQUEST;
    }

    if (!(blcf->transports & t->bayeux.mask)) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "bayeux: the %V transport is not enabled",
                      &t->bayeux.name);
        return NGX_HTTP_BAD_REQUEST;
    }

    return t->handler(r);
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
