
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <sys/random.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_engine.h"
#include "ngx_bayeux_engine_memory.h"
#include "ngx_bayeux_engine_redis.h"


static ngx_bayeux_engine_t  *ngx_bayeux_engines[] = {
    &ngx_bayeux_engine_memory,
    &ngx_bayeux_engine_redis,
    NULL
};


ngx_bayeux_engine_t *
ngx_bayeux_engine_find(ngx_str_t *name)
{
    ngx_bayeux_engine_t  **e;

    for (e = ngx_bayeux_engines; *e; e++) {
        if ((*e)->name.len == name->len
            && ngx_strncmp((*e)->name.data, name->data, name->len) == 0)
        {
            return *e;
        }
    }

    return NULL;
}


/*
 * A clientId: NGX_BAYEUX_CLIENT_ID_BYTES bytes from the kernel's CSPRNG,
 * in hex.  "buf" must hold NGX_BAYEUX_CLIENT_ID_LEN bytes.
 */

ngx_int_t
ngx_bayeux_client_id(u_char *buf)
{
    u_char   random[NGX_BAYEUX_CLIENT_ID_BYTES];
    size_t   got;
    ssize_t  n;

    for (got = 0; got < sizeof(random); got += n) {
        n = getrandom(random + got, sizeof(random) - got, 0);

        if (n == -1) {
            if (ngx_errno == NGX_EINTR) {
                n = 0;
                continue;
            }

            return NGX_ERROR;
        }
    }

    ngx_hex_dump(buf, random, sizeof(random));

    return NGX_OK;
}
