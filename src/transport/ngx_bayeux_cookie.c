
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

/*
 * sets a new BAYEUX_BROWSER cookie; "id" is its value.  Its attributes
 * are those of CometD's browserCookie* parameters:
 * bayeux_browser_cookie_secure, _samesite and _partitioned.
 */

ngx_int_t
ngx_bayeux_browser_set_cookie(ngx_http_request_t *r, ngx_str_t *id)
{
    u_char                 *p;
    ngx_str_t               cookie, samesite;
    ngx_bayeux_loc_conf_t  *blcf;

    blcf = ngx_http_get_module_loc_conf(r, ngx_bayeux_module);

    switch (blcf->browser_cookie_samesite) {

    case NGX_BAYEUX_SAMESITE_STRICT:
        ngx_str_set(&samesite, "; SameSite=Strict");
        break;

    case NGX_BAYEUX_SAMESITE_LAX:
        ngx_str_set(&samesite, "; SameSite=Lax");
        break;

    case NGX_BAYEUX_SAMESITE_NONE:
        ngx_str_set(&samesite, "; SameSite=None");
        break;

    default: /* NGX_BAYEUX_SAMESITE_OFF */
        ngx_str_null(&samesite);
    }

    cookie.len = sizeof(NGX_BAYEUX_BROWSER_COOKIE "=; Path=/; HttpOnly") - 1
                 + NGX_BAYEUX_BROWSER_ID_LEN
                 + (blcf->browser_cookie_secure ? sizeof("; Secure") - 1 : 0)
                 + samesite.len
                 + (blcf->browser_cookie_partitioned
                    ? sizeof("; Partitioned") - 1 : 0);

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
    p = ngx_cpymem(p, "; Path=/; HttpOnly", sizeof("; Path=/; HttpOnly") - 1);

    if (blcf->browser_cookie_secure) {
        p = ngx_cpymem(p, "; Secure", sizeof("; Secure") - 1);
    }

    if (samesite.len) {
        p = ngx_cpymem(p, samesite.data, samesite.len);
    }

    if (blcf->browser_cookie_partitioned) {
        ngx_memcpy(p, "; Partitioned", sizeof("; Partitioned") - 1);
    }

    return ngx_bayeux_http_add_header(r, "Set-Cookie", &cookie);
}
