
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_REDIS_URL_H_INCLUDED_
#define _NGX_BAYEUX_REDIS_URL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* where Redis is, as "bayeux_redis_url" says it */

typedef struct {
    ngx_str_t                      user;
    ngx_str_t                      password;
    ngx_str_t                      addr;        /* for the log */
    ngx_str_t                      host;        /* a name for TLS, NUL */
    ngx_addr_t                     peer;        /* resolved */
    ngx_int_t                      db;
    unsigned                       ssl:1;

    /* redis+sentinel://: the sentinels (ngx_addr_t) and the master's name */
    ngx_array_t                   *sentinels;
    ngx_str_t                      master;

    /* redis+cluster://: the seed nodes (ngx_addr_t) */
    ngx_array_t                   *seeds;
} ngx_bayeux_redis_url_t;


/* NULL, or what is wrong with the URL (it is never repeated: a password) */
char *ngx_bayeux_redis_url_parse(ngx_pool_t *pool, ngx_str_t *url,
    ngx_bayeux_redis_url_t *ru);


#endif /* _NGX_BAYEUX_REDIS_URL_H_INCLUDED_ */
