
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_ENGINE_REDIS_H_INCLUDED_
#define _NGX_BAYEUX_ENGINE_REDIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_engine.h"


#define NGX_BAYEUX_REDIS_DEFAULT_URL     "redis://127.0.0.1:6379/0"
#define NGX_BAYEUX_REDIS_DEFAULT_PREFIX  "bayeux:"


extern ngx_bayeux_engine_t  ngx_bayeux_engine_redis;


/* the post handler of "bayeux_redis_url": checks and resolves the URL */
char *ngx_bayeux_redis_url_post(ngx_conf_t *cf, void *post, void *data);


#endif /* _NGX_BAYEUX_ENGINE_REDIS_H_INCLUDED_ */
