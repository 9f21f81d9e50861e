
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux_channel.h"


/*
 * Bayeux 1.0 channel grammar: "/" segment ( "/" segment )*, where a
 * segment is one or more of ALPHA, DIGIT and "-_!~()$@".  A pattern
 * may end in a "*" or "**" segment.
 */

static ngx_uint_t
ngx_bayeux_channel_char(u_char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9'))
    {
        return 1;
    }

    switch (c) {
    case '-':
    case '_':
    case '!':
    case '~':
    case '(':
    case ')':
    case '$':
    case '@':
        return 1;
    }

    return 0;
}


ngx_int_t
ngx_bayeux_channel_parse(ngx_str_t *name, ngx_uint_t *flags)
{
    u_char  *p, *last, *segment;

    *flags = 0;

    if (name->len < 2 || name->len > NGX_BAYEUX_CHANNEL_MAX_LEN
        || name->data[0] != '/')
    {
        return NGX_DECLINED;
    }

    p = name->data + 1;
    last = name->data + name->len;

    for ( ;; ) {
        segment = p;

        while (p < last && *p != '/') {
            p++;
        }

        if (p == segment) {
            return NGX_DECLINED;
        }

        if (p - segment == 1 && *segment == '*') {
            if (p != last) {
                return NGX_DECLINED;
            }

            *flags |= NGX_BAYEUX_CHANNEL_WILD;
            break;
        }

        if (p - segment == 2 && segment[0] == '*' && segment[1] == '*') {
            if (p != last) {
                return NGX_DECLINED;
            }

            *flags |= NGX_BAYEUX_CHANNEL_DEEP_WILD;
            break;
        }

        while (segment < p) {
            if (!ngx_bayeux_channel_char(*segment)) {
                return NGX_DECLINED;
            }

            segment++;
        }

        if (p == last) {
            break;
        }

        p++;
    }

    if (name->len >= 5 && ngx_strncmp(name->data, "/meta", 5) == 0
        && (name->len == 5 || name->data[5] == '/'))
    {
        *flags |= NGX_BAYEUX_CHANNEL_META;

    } else if (name->len >= 8 && ngx_strncmp(name->data, "/service", 8) == 0
               && (name->len == 8 || name->data[8] == '/'))
    {
        *flags |= NGX_BAYEUX_CHANNEL_SERVICE;
    }

    return NGX_OK;
}


void
ngx_bayeux_wildcards_init(ngx_bayeux_wildcards_t *w, ngx_str_t *name,
    u_char *buf)
{
    w->name = *name;
    w->buf = buf;
    w->step = 0;

    /* the prefix up to and including the last "/" */

    w->prefix = name->len;

    while (w->prefix > 0 && name->data[w->prefix - 1] != '/') {
        w->prefix--;
    }
}


ngx_int_t
ngx_bayeux_wildcards_next(ngx_bayeux_wildcards_t *w, ngx_str_t *pattern)
{
    u_char  *p;

    if (w->prefix == 0) {
        return NGX_DONE;
    }

    p = ngx_cpymem(w->buf, w->name.data, w->prefix);

    if (w->step == 0) {
        *p++ = '*';
        w->step = 1;

    } else {
        *p++ = '*';
        *p++ = '*';

        /* go up one level */

        w->prefix--;

        while (w->prefix > 0 && w->name.data[w->prefix - 1] != '/') {
            w->prefix--;
        }
    }

    pattern->data = w->buf;
    pattern->len = p - w->buf;

    return NGX_OK;
}
