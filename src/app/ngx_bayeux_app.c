
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_message.h"
#include "ngx_bayeux_json.h"
#include "ngx_bayeux_batch.h"
#include "ngx_bayeux_hooks.h"
#include "ngx_bayeux_app_request.h"
#include "ngx_bayeux_app.h"


/*
 * bayeux_handshake_request: every /meta/handshake of the endpoint waits
 * for the application's answer to "POST uri" with the message as JSON.
 * 2xx: the handshake goes on; 401 or 403: denied; anything else (the
 * application down, too slow, an error, an answer that is not HTTP):
 * refused as unavailable, with retry advice.  It fails closed.
 */


static ngx_int_t ngx_bayeux_app_handshake(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, void *data);
static void ngx_bayeux_app_handshake_cancel(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, void *data);
static void ngx_bayeux_app_handshake_answer(ngx_bayeux_app_request_t *ar);
static ngx_int_t ngx_bayeux_app_unavailable(ngx_bayeux_app_request_t *ar);
static ngx_int_t ngx_bayeux_app_handshake_json(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, ngx_str_t *out);


/* one line per failure burst: at most one a second per worker */
static time_t  ngx_bayeux_app_failure_logged;


ngx_int_t
ngx_bayeux_app_init_endpoint(ngx_conf_t *cf, ngx_bayeux_endpoint_t *ep)
{
    ngx_bayeux_incoming_hook_t  *hook;

    if (ep->conf->handshake_request.len == 0) {
        return NGX_OK;
    }

    hook = ngx_bayeux_hook_add_incoming(cf, ep,
                              ngx_bayeux_kind_mask(NGX_BAYEUX_KIND_HANDSHAKE),
                              ngx_bayeux_app_handshake,
                              &ep->conf->handshake_request);
    if (hook == NULL) {
        return NGX_ERROR;
    }

    hook->cancel = ngx_bayeux_app_handshake_cancel;

    ep->subrequests = 1;

    return NGX_OK;
}


/* a URI of this server, or "off" (to undo an inherited one) */

char *
ngx_bayeux_app_request_uri(ngx_conf_t *cf, void *post, void *data)
{
    ngx_str_t  *uri = data;

    ngx_str_t  *value;

    value = cf->args->elts;

    if (uri->len == 3 && ngx_strncmp(uri->data, "off", 3) == 0) {
        uri->len = 0;
        uri->data = (u_char *) "";
        return NGX_CONF_OK;
    }

    if (uri->len == 0 || uri->data[0] != '/') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must be a URI starting with \"/\" "
                           "(a location of this server), or \"off\"",
                           &value[0]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_bayeux_app_handshake(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m,
    void *data)
{
    ngx_str_t                  body;
    ngx_bayeux_app_request_t  *ar;

    ar = ngx_pcalloc(b->pool, sizeof(ngx_bayeux_app_request_t));
    if (ar == NULL) {
        return NGX_ERROR;
    }

    ar->batch = b;
    ar->uri = data;
    ar->handler = ngx_bayeux_app_handshake_answer;

    if (ngx_bayeux_app_handshake_json(b, m, &body) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_bayeux_app_request(ar, &body) != NGX_AGAIN) {
        return ngx_bayeux_app_unavailable(ar);
    }

    b->hook_ctx = ar;

    return NGX_AGAIN;
}


static void
ngx_bayeux_app_handshake_cancel(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, void *data)
{
    ngx_bayeux_app_request_cancel(b->hook_ctx);
}


static void
ngx_bayeux_app_handshake_answer(ngx_bayeux_app_request_t *ar)
{
    ngx_int_t            rc;
    ngx_bayeux_batch_t  *b;

    b = ar->batch;

    if (ar->cancelled || b->aborted) {
        /* nothing will be made of the answer */
        rc = NGX_ERROR;

    } else if (ar->not_http) {
        rc = ngx_bayeux_app_unavailable(ar);

    } else if (ar->status >= NGX_HTTP_OK
               && ar->status < NGX_HTTP_SPECIAL_RESPONSE)
    {
        rc = NGX_OK;

    } else if (ar->status == NGX_HTTP_UNAUTHORIZED
               || ar->status == NGX_HTTP_FORBIDDEN)
    {
        rc = ngx_bayeux_batch_error(b, "403::handshake_denied",
                                    NGX_BAYEUX_ERROR_TRANSPORTS);

    } else {
        rc = ngx_bayeux_app_unavailable(ar);
    }

    ngx_bayeux_batch_resume(b, rc);
}


/* fails closed: the message is refused, and a line is logged */

static ngx_int_t
ngx_bayeux_app_unavailable(ngx_bayeux_app_request_t *ar)
{
    ngx_bayeux_batch_t  *b;

    b = ar->batch;

    if (ngx_bayeux_app_failure_logged != ngx_time()) {
        ngx_bayeux_app_failure_logged = ngx_time();

        if (ar->not_http) {
            ngx_log_error(NGX_LOG_ERR, b->log, 0,
                          "bayeux: handshake request \"%V\" failed: "
                          "the answer is not HTTP", ar->uri);

        } else if (ar->status) {
            ngx_log_error(NGX_LOG_ERR, b->log, 0,
                          "bayeux: handshake request \"%V\" failed: "
                          "status %ui", ar->uri, ar->status);

        } else {
            ngx_log_error(NGX_LOG_ERR, b->log, 0,
                          "bayeux: handshake request \"%V\" failed: "
                          "no subrequest could be made", ar->uri);
        }
    }

    ngx_bayeux_batch_error(b, "503::application_unavailable",
                           NGX_BAYEUX_ERROR_RETRY);

    /* as any refused handshake: what the server supports */
    b->refusal.transports = 1;

    return NGX_DECLINED;
}


/*
 * What the application receives: the handshake as the module read it,
 * written again from its fields (channel, version, minimumVersion,
 * supportedConnectionTypes, id, ext, advice), whatever the transport
 * carried it in (a JSON body, a form, a JSONP query, a websocket frame).
 * ext is passed as the client sent it; fields the module does not read
 * are not passed.
 */

static ngx_int_t
ngx_bayeux_app_handshake_json(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m,
    ngx_str_t *out)
{
    u_char             *p;
    ngx_bayeux_json_t   j;
    u_char              advice[2 * NGX_INT_T_LEN + sizeof("{,}")
                               + sizeof("\"timeout\":\"interval\":")];

    if (ngx_bayeux_json_init(&j, b->pool, 256 + m->ext.len) != NGX_OK
        || ngx_bayeux_json_literal(&j, "{") != NGX_OK
        || ngx_bayeux_json_key(&j, "channel") != NGX_OK
        || ngx_bayeux_json_string(&j, &m->channel) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_bayeux_json_string_field(&j, "version", &m->version) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_bayeux_json_string_field(&j, "minimumVersion", &m->minimum_version)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (m->connection_types
        && ngx_bayeux_json_strings_field(&j, "supportedConnectionTypes",
                                         m->connection_types)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_bayeux_json_raw_field(&j, "id", &m->id) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_bayeux_json_raw_field(&j, "ext", &m->ext) != NGX_OK) {
        return NGX_ERROR;
    }

    if (m->advice_timeout >= 0 || m->advice_interval >= 0) {
        p = ngx_cpymem(advice, "{", 1);

        if (m->advice_timeout >= 0) {
            p = ngx_sprintf(p, "\"timeout\":%i", m->advice_timeout);
        }

        if (m->advice_interval >= 0) {
            p = ngx_sprintf(p, "%s\"interval\":%i",
                            (m->advice_timeout >= 0) ? "," : "",
                            m->advice_interval);
        }

        *p++ = '}';

        if (ngx_bayeux_json_key(&j, "advice") != NGX_OK
            || ngx_bayeux_json_raw(&j, advice, p - advice) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_bayeux_json_literal(&j, "}") != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_bayeux_json_result(&j, out);

    return NGX_OK;
}
