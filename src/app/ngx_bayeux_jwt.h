
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_JWT_H_INCLUDED_
#define _NGX_BAYEUX_JWT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux_grants.h"


/*
 * Signed tokens (bayeux_jwt_key): a compact JWS checked with the key of
 * the location, whose claims give the session its user ("sub") and its
 * channel grants ("subscribe", "publish").  The rules are in
 * docs/application.md, "Signed tokens".
 */

#define NGX_BAYEUX_JWT_MAX_LEN  8192


typedef struct ngx_bayeux_jwt_key_s  ngx_bayeux_jwt_key_t;


/*
 * bayeux_jwt_key HS256 <secret> | RS256 <file.pem> | ES256 <file.pem>
 * | off; the key is loaded once, here, into the loc conf's "jwt_key"
 */

char *ngx_bayeux_jwt_key_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/*
 * NGX_OK: the token is valid, "g" is filled (allocations in "pool");
 * NGX_DECLINED: it is not, "why" is a short static reason for a log line;
 * NGX_ERROR: no memory.
 */

ngx_int_t ngx_bayeux_jwt_verify(ngx_bayeux_jwt_key_t *key, ngx_str_t *token,
    ngx_pool_t *pool, ngx_bayeux_grants_t *g, const char **why);


#endif /* _NGX_BAYEUX_JWT_H_INCLUDED_ */
