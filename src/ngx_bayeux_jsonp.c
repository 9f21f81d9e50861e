
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_http.h"
#include "ngx_bayeux_longpoll.h"
#include "ngx_bayeux_jsonp.h"


/*
 * The callback-polling transport (JSONP): GET <url>?message=<batch>&
 * jsonp=<callback>, answered "callback([...]);" after an empty comment,
 * as a script.  The callback name is checked, never reflected when it is
 * refused: it runs in the page that loads the script.  A name is one
 * identifier, as the clients make them ("_cometd_jsonp_0", "__jsonp1__"):
 * no member access ("document.write"), nothing else.  The comment keeps
 * the reply from starting with bytes the caller chose.
 */

static ngx_int_t ngx_bayeux_jsonp_callback_valid(ngx_str_t *name);


ngx_int_t
ngx_bayeux_jsonp_handler(ngx_http_request_t *r)
{
    ngx_str_t  message, callback, text, reason;

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_arg(r, (u_char *) "jsonp", 5, &callback) != NGX_OK) {
        ngx_str_set(&callback, "jsonpcallback");
    }

    r->main->count++;

    if (ngx_bayeux_jsonp_callback_valid(&callback) != NGX_OK) {
        ngx_str_set(&reason, "invalid jsonp callback name");
        ngx_bayeux_longpoll_bad_request(r, &reason);
        return NGX_DONE;
    }

    if (ngx_http_arg(r, (u_char *) "message", 7, &message) != NGX_OK) {
        ngx_str_set(&reason, "no message parameter");
        ngx_bayeux_longpoll_bad_request(r, &reason);
        return NGX_DONE;
    }

    if (ngx_bayeux_http_form_decode(r->pool, &message, &text) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_DONE;
    }

    ngx_bayeux_longpoll_start(r, &text, &callback);

    return NGX_DONE;
}


static ngx_int_t
ngx_bayeux_jsonp_callback_valid(ngx_str_t *name)
{
    u_char  *p, c;

    if (name->len == 0 || name->len > NGX_BAYEUX_JSONP_MAX_CALLBACK) {
        return NGX_DECLINED;
    }

    for (p = name->data; p < name->data + name->len; p++) {
        c = *p;

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || c == '_' || c == '$'
            || (c >= '0' && c <= '9' && p > name->data))
        {
            continue;
        }

        return NGX_DECLINED;
    }

    return NGX_OK;
}


ngx_int_t
ngx_bayeux_jsonp_wrap(ngx_http_request_t *r, ngx_str_t *callback,
    ngx_str_t *body)
{
    u_char     *p, *q;
    ngx_str_t   nosniff;

    p = ngx_pnalloc(r->pool, sizeof("/**/();") - 1 + callback->len
                             + body->len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    q = ngx_cpymem(p, "/**/", sizeof("/**/") - 1);
    q = ngx_cpymem(q, callback->data, callback->len);
    *q++ = '(';
    q = ngx_cpymem(q, body->data, body->len);
    *q++ = ')';
    *q++ = ';';

    body->data = p;
    body->len = q - p;

    ngx_str_set(&nosniff, "nosniff");

    return ngx_bayeux_http_add_header(r, "X-Content-Type-Options",
                                      &nosniff);
}
