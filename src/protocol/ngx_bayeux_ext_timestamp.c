
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_message.h"
#include "ngx_bayeux_json.h"
#include "ngx_bayeux_engine.h"
#include "ngx_bayeux_batch.h"
#include "ngx_bayeux_hooks.h"
#include "ngx_bayeux_ext_timestamp.h"


static ngx_int_t ngx_bayeux_timestamp_add(ngx_bayeux_batch_t *b,
    ngx_bayeux_message_t *m, ngx_bayeux_json_t *j, void *data);


/* "Sun Nov 29 18:40:00 UTC 2026", made once a second */

static u_char      ngx_bayeux_timestamp_buf[64];
static ngx_str_t   ngx_bayeux_timestamp_text;
static time_t      ngx_bayeux_timestamp_sec = -1;


ngx_int_t
ngx_bayeux_timestamp_init_endpoint(ngx_conf_t *cf, ngx_bayeux_endpoint_t *ep)
{
    if (!ep->conf->timestamp) {
        return NGX_OK;
    }

    if (ngx_bayeux_hook_add_outgoing(cf, ep, NGX_BAYEUX_KIND_ANY,
                                     ngx_bayeux_timestamp_add, NULL)
        == NULL
        || ngx_bayeux_hook_add_delivery(cf, ep, ngx_bayeux_timestamp_add,
                                        NULL)
           == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_timestamp_add(ngx_bayeux_batch_t *b, ngx_bayeux_message_t *m,
    ngx_bayeux_json_t *j, void *data)
{
    size_t     n;
    time_t     sec;
    struct tm  tm;

    sec = ngx_time();

    if (sec != ngx_bayeux_timestamp_sec) {
        ngx_libc_localtime(sec, &tm);

        /* nginx keeps the C locale: English names, as Java's default */
        n = strftime((char *) ngx_bayeux_timestamp_buf,
                     sizeof(ngx_bayeux_timestamp_buf),
                     "%a %b %d %H:%M:%S %Z %Y", &tm);
        if (n == 0) {
            return NGX_ERROR;
        }

        ngx_bayeux_timestamp_text.data = ngx_bayeux_timestamp_buf;
        ngx_bayeux_timestamp_text.len = n;
        ngx_bayeux_timestamp_sec = sec;
    }

    if (ngx_bayeux_json_key(j, "timestamp") != NGX_OK
        || ngx_bayeux_json_string(j, &ngx_bayeux_timestamp_text) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}
