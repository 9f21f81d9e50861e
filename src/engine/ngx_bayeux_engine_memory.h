
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#ifndef _NGX_BAYEUX_ENGINE_MEMORY_H_INCLUDED_
#define _NGX_BAYEUX_ENGINE_MEMORY_H_INCLUDED_


#include "ngx_bayeux_engine.h"


extern ngx_bayeux_engine_t  ngx_bayeux_engine_memory;


#endif /* _NGX_BAYEUX_ENGINE_MEMORY_H_INCLUDED_ */
