
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_http.h"


ngx_table_elt_t *
ngx_bayeux_http_header(ngx_http_request_t *r, char *name)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = ngx_strlen(name);
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}


/* is "token" in the comma-separated "list"? (case-insensitive) */

ngx_int_t
ngx_bayeux_http_token(ngx_str_t *list, ngx_str_t *token)
{
    u_char  *p, *last, *start, *end;

    p = list->data;
    last = list->data + list->len;

    while (p < last) {

        while (p < last && (*p == ' ' || *p == '\t' || *p == ',')) {
            p++;
        }

        start = p;

        while (p < last && *p != ',') {
            p++;
        }

        end = p;

        while (end > start && (end[-1] == ' ' || end[-1] == '\t')) {
            end--;
        }

        if ((size_t) (end - start) == token->len
            && ngx_strncasecmp(start, token->data, token->len) == 0)
        {
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


/*
 * NGX_OK when the request has no Origin, when bayeux_allow_origin is not
 * set (Bayeux sessions are not tied to cookies, so a page of another
 * origin gains nothing it could not get by itself), or when the Origin is
 * listed; NGX_DECLINED otherwise.
 */

ngx_int_t
ngx_bayeux_http_origin_allowed(ngx_http_request_t *r)
{
    ngx_str_t              *o;
    ngx_uint_t              i;
    ngx_table_elt_t        *origin;
    ngx_bayeux_loc_conf_t  *blcf;

    blcf = ngx_http_get_module_loc_conf(r, ngx_bayeux_module);

    if (blcf->allow_origin == NULL) {
        return NGX_OK;
    }

    origin = ngx_bayeux_http_header(r, "Origin");

    if (origin == NULL) {
        return NGX_OK;
    }

    o = blcf->allow_origin->elts;

    for (i = 0; i < blcf->allow_origin->nelts; i++) {

        if (o[i].len == 1 && o[i].data[0] == '*') {
            return NGX_OK;
        }

        if (o[i].len == origin->value.len
            && ngx_strncasecmp(o[i].data, origin->value.data, o[i].len) == 0)
        {
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


ngx_int_t
ngx_bayeux_http_add_header(ngx_http_request_t *r, char *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value = *value;

    return NGX_OK;
}


/*
 * A form-encoded value (a query string's, or a form body's) decoded into
 * the pool: "+" is a blank, "%XX" a byte.  The value is changed in place.
 */

ngx_int_t
ngx_bayeux_http_form_decode(ngx_pool_t *pool, ngx_str_t *value,
    ngx_str_t *decoded)
{
    u_char  *p, *dst;

    for (p = value->data; p < value->data + value->len; p++) {
        if (*p == '+') {
            *p = ' ';
        }
    }

    decoded->data = ngx_pnalloc(pool, value->len ? value->len : 1);
    if (decoded->data == NULL) {
        return NGX_ERROR;
    }

    dst = decoded->data;
    p = value->data;
    ngx_unescape_uri(&dst, &p, value->len, 0);
    decoded->len = dst - decoded->data;

    return NGX_OK;
}


/* a request body read whole, as one text (from memory or its file) */

ngx_int_t
ngx_bayeux_http_body_text(ngx_http_request_t *r, ngx_str_t *text)
{
    off_t         len;
    u_char       *p;
    ssize_t       n;
    ngx_buf_t    *buf;
    ngx_chain_t  *cl;

    ngx_str_null(text);

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL && !cl->buf->in_file) {
        text->data = cl->buf->pos;
        text->len = cl->buf->last - cl->buf->pos;
        return NGX_OK;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    if (len == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, (size_t) len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    text->data = p;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        buf = cl->buf;

        if (buf->in_file) {
            n = ngx_read_file(buf->file, p, buf->file_last - buf->file_pos,
                              buf->file_pos);
            if (n != buf->file_last - buf->file_pos) {
                return NGX_ERROR;
            }

            p += n;

        } else if (buf->last > buf->pos) {
            /* the buffer that ends a chunked body has no memory */
            p = ngx_cpymem(p, buf->pos, buf->last - buf->pos);
        }
    }

    text->len = p - text->data;

    return NGX_OK;
}
