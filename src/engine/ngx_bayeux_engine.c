
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
 * "bytes" bytes from the kernel's CSPRNG, in hex: "dst" must hold twice
 * as many.  clientIds and browser ids are made of them.
 */

ngx_int_t
ngx_bayeux_random_hex(u_char *dst, size_t bytes)
{
    u_char   random[64];
    size_t   got;
    ssize_t  n;

    if (bytes > sizeof(random)) {
        return NGX_ERROR;
    }

    for (got = 0; got < bytes; got += n) {
        n = getrandom(random + got, bytes - got, 0);

        if (n == -1) {
            if (ngx_errno == NGX_EINTR) {
                n = 0;
                continue;
            }

            return NGX_ERROR;
        }
    }

    ngx_hex_dump(dst, random, bytes);

    return NGX_OK;
}


/* a clientId: "buf" must hold NGX_BAYEUX_CLIENT_ID_LEN bytes */

ngx_int_t
ngx_bayeux_client_id(u_char *buf)
{
    return ngx_bayeux_random_hex(buf, NGX_BAYEUX_CLIENT_ID_BYTES);
}
