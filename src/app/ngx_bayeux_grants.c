
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux_channel.h"
#include "ngx_bayeux_grants.h"


/*
 * The text is the user on the first line, then "s <pattern>" for each
 * subscribe grant and "p <pattern>" for each publish grant, a line
 * each: neither a user nor a channel name may hold a line feed.
 */


static ngx_int_t ngx_bayeux_grants_check_patterns(ngx_array_t *patterns,
    const char **why);
static ngx_uint_t ngx_bayeux_grant_covers(u_char *pattern, size_t len,
    ngx_str_t *channel);


ngx_int_t
ngx_bayeux_grants_check(ngx_bayeux_grants_t *g, const char **why)
{
    u_char  *p, *last;

    if (g->user.len > NGX_BAYEUX_USER_MAX_LEN) {
        *why = "the user is too long";
        return NGX_DECLINED;
    }

    last = g->user.data + g->user.len;

    for (p = g->user.data; p < last; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            *why = "the user has control characters";
            return NGX_DECLINED;
        }
    }

    if (ngx_bayeux_grants_check_patterns(g->subscribe, why) != NGX_OK
        || ngx_bayeux_grants_check_patterns(g->publish, why) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_grants_check_patterns(ngx_array_t *patterns, const char **why)
{
    ngx_str_t   *name;
    ngx_uint_t   i, flags;

    if (patterns == NULL) {
        return NGX_OK;
    }

    name = patterns->elts;

    for (i = 0; i < patterns->nelts; i++) {
        if (ngx_bayeux_channel_parse(&name[i], &flags) != NGX_OK
            || (flags & NGX_BAYEUX_CHANNEL_META))
        {
            *why = "a granted channel is not a channel or a pattern";
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_bayeux_grants_write(ngx_bayeux_grants_t *g, ngx_pool_t *pool,
    ngx_str_t *text)
{
    u_char       *p;
    size_t        len;
    ngx_str_t    *name;
    ngx_uint_t    i, k;
    ngx_array_t  *lists[2];
    u_char        what[2] = { NGX_BAYEUX_GRANT_SUBSCRIBE,
                              NGX_BAYEUX_GRANT_PUBLISH };

    lists[0] = g->subscribe;
    lists[1] = g->publish;

    len = g->user.len;

    for (k = 0; k < 2; k++) {
        if (lists[k] == NULL) {
            continue;
        }

        name = lists[k]->elts;

        for (i = 0; i < lists[k]->nelts; i++) {
            len += sizeof("\ns ") - 1 + name[i].len;
        }
    }

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    text->data = p;
    text->len = len;

    if (g->user.len) {
        p = ngx_cpymem(p, g->user.data, g->user.len);
    }

    for (k = 0; k < 2; k++) {
        if (lists[k] == NULL) {
            continue;
        }

        name = lists[k]->elts;

        for (i = 0; i < lists[k]->nelts; i++) {
            *p++ = '\n';
            *p++ = what[k];
            *p++ = ' ';
            p = ngx_cpymem(p, name[i].data, name[i].len);
        }
    }

    return NGX_OK;
}


void
ngx_bayeux_grants_user(ngx_str_t *text, ngx_str_t *user)
{
    u_char  *nl;

    nl = ngx_strlchr(text->data, text->data + text->len, '\n');

    user->data = text->data;
    user->len = (nl ? nl : text->data + text->len) - text->data;
}


/* is "channel" (a name, or a pattern a client subscribes to) granted */

ngx_uint_t
ngx_bayeux_grants_allow(ngx_str_t *text, u_char what, ngx_str_t *channel)
{
    u_char  *p, *last, *nl, *end;

    last = text->data + text->len;

    p = ngx_strlchr(text->data, last, '\n');

    while (p) {
        p++;
        nl = ngx_strlchr(p, last, '\n');
        end = nl ? nl : last;

        if (end - p > 2 && p[0] == what
            && ngx_bayeux_grant_covers(p + 2, end - (p + 2), channel))
        {
            return 1;
        }

        p = nl;
    }

    return 0;
}


/*
 * A grant covers its own name; a deep wildcard ("**" as the last
 * segment) every name under its prefix; a wildcard ("*") every name one
 * segment under it, but the deep wildcard there, which reaches further
 * than the grant.
 */

static ngx_uint_t
ngx_bayeux_grant_covers(u_char *pattern, size_t len, ngx_str_t *channel)
{
    u_char  *rest;
    size_t   prefix, rest_len;

    if (len == channel->len && ngx_memcmp(pattern, channel->data, len) == 0) {
        return 1;
    }

    if (len >= 3 && ngx_memcmp(pattern + len - 3, "/**", 3) == 0) {
        prefix = len - 2;

        return channel->len > prefix
               && ngx_memcmp(pattern, channel->data, prefix) == 0;
    }

    if (len >= 2 && ngx_memcmp(pattern + len - 2, "/*", 2) == 0) {
        prefix = len - 1;

        if (channel->len <= prefix
            || ngx_memcmp(pattern, channel->data, prefix) != 0)
        {
            return 0;
        }

        rest = channel->data + prefix;
        rest_len = channel->len - prefix;

        return ngx_strlchr(rest, rest + rest_len, '/') == NULL
               && !(rest_len == 2 && rest[0] == '*' && rest[1] == '*');
    }

    return 0;
}
