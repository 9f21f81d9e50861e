
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_engine.h"
#include "ngx_bayeux_http.h"
#include "ngx_bayeux_cookie.h"


/*
 * The BAYEUX_BROWSER cookie: tells browsers apart, for CometD's
 * multiple-clients rule and to bind a session to the browser that
 * handshook it.
 */


/* the browser id of the request's BAYEUX_BROWSER cookie, if any */

ngx_int_t
ngx_bayeux_browser_id(ngx_http_request_t *r, ngx_str_t *id)
{
    u_char           *p, *last, *start;
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = sizeof(NGX_BAYEUX_BROWSER_COOKIE) - 1;
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NGX_DECLINED;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len != 6
            || ngx_strncasecmp(h[i].key.data, (u_char *) "Cookie", 6) != 0)
        {
            continue;
        }

        p = h[i].value.data;
        last = p + h[i].value.len;

        while (p < last) {

            while (p < last && (*p == ' ' || *p == ';')) {
                p++;
            }

            start = p;

            while (p < last && *p != ';') {
                p++;
            }

            if ((size_t) (p - start) == len + 1 + NGX_BAYEUX_BROWSER_ID_LEN
                && ngx_strncmp(start, NGX_BAYEUX_BROWSER_COOKIE "=",
                               len + 1)
                   == 0)
            {
                id->data = start + len + 1;
                id->len = NGX_BAYEUX_BROWSER_ID_LEN;
                return NGX_OK;
            }
        }
    }
}

/* a new browser id: NGX_BAYEUX_BROWSER_ID_LEN hex digits in "buf" */

ngx_int_t
ngx_bayeux_browser_new_id(u_char *buf)
{
    return ngx_bayeux_random_hex(buf, NGX_BAYEUX_BROWSER_ID_LEN / 2);
}

/* sets a new BAYEUX_BROWSER cookie; "id" is its value */

ngx_int_t
ngx_bayeux_browser_set_cookie(ngx_http_request_t *r, ngx_str_t *id)
{
    u_char     *p;
    ngx_str_t   cookie;

    cookie.len = sizeof(NGX_BAYEUX_BROWSER_COOKIE "=; Path=/; HttpOnly") - 1
                 + NGX_BAYEUX_BROWSER_ID_LEN;
    cookie.data = ngx_pnalloc(r->pool, cookie.len);
    if (cookie.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(cookie.data, NGX_BAYEUX_BROWSER_COOKIE "=",
                   sizeof(NGX_BAYEUX_BROWSER_COOKIE));

    if (ngx_bayeux_browser_new_id(p) != NGX_OK) {
        return NGX_ERROR;
    }

    id->data = p;
    id->len = NGX_BAYEUX_BROWSER_ID_LEN;

    p += NGX_BAYEUX_BROWSER_ID_LEN;
    ngx_memcpy(p, "; Path=/; HttpOnly", sizeof("; Path=/; HttpOnly") - 1);

    return ngx_bayeux_http_add_header(r, "Set-Cookie", &cookie);
}
