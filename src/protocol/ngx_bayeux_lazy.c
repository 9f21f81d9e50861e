
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_channel.h"
#include "ngx_bayeux_lazy.h"


/*
 * bayeux_lazy_channel <channel or pattern> ...: may repeat; the names add
 * up.  A pattern marks lazy what it would receive as a subscription: the
 * channel walker gives the patterns a name matches, so a message is
 * matched by equality with the name and each of them.
 */

char *
ngx_bayeux_lazy_channel_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_bayeux_loc_conf_t *blcf = conf;

    ngx_str_t   *value, *name;
    ngx_uint_t   i, flags;

    if (blcf->lazy_channels == NGX_CONF_UNSET_PTR) {
        blcf->lazy_channels = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                               sizeof(ngx_str_t));
        if (blcf->lazy_channels == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_bayeux_channel_parse(&value[i], &flags) != NGX_OK
            || (flags & (NGX_BAYEUX_CHANNEL_META|NGX_BAYEUX_CHANNEL_SERVICE)))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"bayeux_lazy_channel\" takes channel "
                               "names or patterns (/a/b, /a/*, /a/**), "
                               "not /meta or /service: \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        name = ngx_array_push(blcf->lazy_channels);
        if (name == NULL) {
            return NGX_CONF_ERROR;
        }

        *name = value[i];
    }

    return NGX_CONF_OK;
}


ngx_uint_t
ngx_bayeux_lazy(ngx_bayeux_loc_conf_t *conf, ngx_str_t *channel)
{
    u_char                  buf[NGX_BAYEUX_CHANNEL_MAX_LEN + 2];
    ngx_str_t              *name, pattern;
    ngx_uint_t              i;
    ngx_bayeux_wildcards_t  w;

    if (conf->lazy_channels == NULL
        || channel->len > NGX_BAYEUX_CHANNEL_MAX_LEN)
    {
        return 0;
    }

    name = conf->lazy_channels->elts;

    pattern = *channel;

    ngx_bayeux_wildcards_init(&w, channel, buf);

    do {
        for (i = 0; i < conf->lazy_channels->nelts; i++) {
            if (name[i].len == pattern.len
                && ngx_memcmp(name[i].data, pattern.data, pattern.len) == 0)
            {
                return 1;
            }
        }

    } while (ngx_bayeux_wildcards_next(&w, &pattern) == NGX_OK);

    return 0;
}
