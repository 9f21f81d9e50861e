
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_redis_ssl.h"


#if (NGX_SSL)

ngx_ssl_t *
ngx_bayeux_redis_ssl_create(ngx_conf_t *cf, ngx_bayeux_loc_conf_t *conf)
{
    ngx_ssl_t           *ssl;
    ngx_pool_cleanup_t  *cln;

    ssl = ngx_pcalloc(cf->pool, sizeof(ngx_ssl_t));
    if (ssl == NULL) {
        return NULL;
    }

    ssl->log = cf->log;

    if (ngx_ssl_create(ssl, conf->redis_ssl_protocols, NULL) != NGX_OK) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        ngx_ssl_cleanup_ctx(ssl);
        return NULL;
    }

    cln->handler = ngx_ssl_cleanup_ctx;
    cln->data = ssl;

    /* commands are appended while a write waits for the socket */

    SSL_CTX_set_mode(ssl->ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

    if (ngx_ssl_ciphers(cf, ssl, &conf->redis_ssl_ciphers, 0) != NGX_OK) {
        return NULL;
    }

    if (conf->redis_ssl_certificate.len) {

        if (conf->redis_ssl_certificate_key.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "no \"bayeux_redis_ssl_certificate_key\" is "
                               "defined for certificate \"%V\"",
                               &conf->redis_ssl_certificate);
            return NULL;
        }

        if (ngx_ssl_certificate(cf, ssl, &conf->redis_ssl_certificate,
                                &conf->redis_ssl_certificate_key, NULL)
            != NGX_OK)
        {
            return NULL;
        }

    } else if (conf->redis_ssl_certificate_key.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no \"bayeux_redis_ssl_certificate\" is defined "
                           "for key \"%V\"",
                           &conf->redis_ssl_certificate_key);
        return NULL;
    }

    if (conf->redis_ssl_verify) {

        if (conf->redis_ssl_trusted_certificate.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "no \"bayeux_redis_ssl_trusted_certificate\" "
                               "is defined for \"bayeux_redis_ssl_verify\"");
            return NULL;
        }

        if (ngx_ssl_trusted_certificate(cf, ssl,
                                        &conf->redis_ssl_trusted_certificate,
                                        conf->redis_ssl_verify_depth)
            != NGX_OK)
        {
            return NULL;
        }
    }

    return ssl;
}

#endif
