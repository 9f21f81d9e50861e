
/*
 * Copyright (C) ngx_bayeux_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include <yajl/yajl_tree.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_channel.h"
#include "ngx_bayeux_jwt.h"


/* RFC 7518, 3.2: an HMAC key at least as long as the hash */
#define NGX_BAYEUX_JWT_MIN_SECRET    32

/* RFC 7518, 3.3 */
#define NGX_BAYEUX_JWT_MIN_RSA_BITS  2048

#define NGX_BAYEUX_JWT_MAX_PEM       65536
#define NGX_BAYEUX_JWT_SHA256_LEN    32
#define NGX_BAYEUX_JWT_ES256_LEN     64


typedef char *(*ngx_bayeux_jwt_load_pt)(ngx_conf_t *cf,
    ngx_bayeux_jwt_key_t *key, ngx_str_t *value);
typedef ngx_int_t (*ngx_bayeux_jwt_check_pt)(ngx_bayeux_jwt_key_t *key,
    u_char *input, size_t len, u_char *sig, size_t sig_len);


typedef struct {
    ngx_str_t                  name;        /* the JWS "alg", exactly */
    ngx_bayeux_jwt_load_pt     load;
    ngx_bayeux_jwt_check_pt    check;
} ngx_bayeux_jwt_alg_t;


struct ngx_bayeux_jwt_key_s {
    ngx_bayeux_jwt_alg_t      *alg;
    EVP_MAC_CTX               *mac;         /* HS256: keyed, copied per use */
    EVP_MD                    *md;          /* RS256, ES256 */
    EVP_PKEY                  *pkey;        /* RS256, ES256 */

    /*
     * the header of the last token accepted (ngx_alloc()): issuers sign
     * every token with the same, which needs to be read only once
     */
    u_char                    *header;
    size_t                     header_len;
};


typedef struct {
    ngx_bayeux_jwt_key_t      *key;
    ngx_pool_t                *pool;
    ngx_bayeux_grants_t        grants;
    ngx_uint_t                 alg;         /* the header's "alg" was seen */
    const char                *why;
} ngx_bayeux_jwt_ctx_t;


typedef ngx_int_t (*ngx_bayeux_jwt_field_pt)(ngx_bayeux_jwt_ctx_t *ctx,
    yajl_val v, size_t offset);

typedef struct {
    ngx_str_t                  name;
    ngx_bayeux_jwt_field_pt    handler;
    size_t                     offset;
} ngx_bayeux_jwt_field_t;


static char *ngx_bayeux_jwt_load_secret(ngx_conf_t *cf,
    ngx_bayeux_jwt_key_t *key, ngx_str_t *value);
static char *ngx_bayeux_jwt_load_rsa(ngx_conf_t *cf,
    ngx_bayeux_jwt_key_t *key, ngx_str_t *value);
static char *ngx_bayeux_jwt_load_ec(ngx_conf_t *cf,
    ngx_bayeux_jwt_key_t *key, ngx_str_t *value);
static char *ngx_bayeux_jwt_load_pem(ngx_conf_t *cf,
    ngx_bayeux_jwt_key_t *key, ngx_str_t *value, ngx_str_t *file);
static void ngx_bayeux_jwt_cleanup(void *data);

static ngx_int_t ngx_bayeux_jwt_check_hmac(ngx_bayeux_jwt_key_t *key,
    u_char *input, size_t len, u_char *sig, size_t sig_len);
static ngx_int_t ngx_bayeux_jwt_check_rsa(ngx_bayeux_jwt_key_t *key,
    u_char *input, size_t len, u_char *sig, size_t sig_len);
static ngx_int_t ngx_bayeux_jwt_check_ec(ngx_bayeux_jwt_key_t *key,
    u_char *input, size_t len, u_char *sig, size_t sig_len);
static ngx_int_t ngx_bayeux_jwt_check_pkey(ngx_bayeux_jwt_key_t *key,
    u_char *input, size_t len, u_char *sig, size_t sig_len);
static u_char *ngx_bayeux_jwt_der_integer(u_char *p, u_char *n, size_t len);

static void ngx_bayeux_jwt_remember_header(ngx_bayeux_jwt_key_t *key,
    u_char *start, u_char *end);
static ngx_int_t ngx_bayeux_jwt_decode(ngx_pool_t *pool, u_char *start,
    u_char *end, ngx_str_t *dst);
static ngx_int_t ngx_bayeux_jwt_object(ngx_bayeux_jwt_ctx_t *ctx,
    u_char *start, u_char *end, ngx_bayeux_jwt_field_t *fields);
static ngx_uint_t ngx_bayeux_jwt_depth_ok(u_char *p, u_char *last);
static ngx_int_t ngx_bayeux_jwt_fields(ngx_bayeux_jwt_ctx_t *ctx,
    yajl_val obj, ngx_bayeux_jwt_field_t *fields);

static ngx_int_t ngx_bayeux_jwt_alg(ngx_bayeux_jwt_ctx_t *ctx, yajl_val v,
    size_t offset);
static ngx_int_t ngx_bayeux_jwt_typ(ngx_bayeux_jwt_ctx_t *ctx, yajl_val v,
    size_t offset);
static ngx_int_t ngx_bayeux_jwt_crit(ngx_bayeux_jwt_ctx_t *ctx, yajl_val v,
    size_t offset);
static ngx_int_t ngx_bayeux_jwt_sub(ngx_bayeux_jwt_ctx_t *ctx, yajl_val v,
    size_t offset);
static ngx_int_t ngx_bayeux_jwt_exp(ngx_bayeux_jwt_ctx_t *ctx, yajl_val v,
    size_t offset);
static ngx_int_t ngx_bayeux_jwt_nbf(ngx_bayeux_jwt_ctx_t *ctx, yajl_val v,
    size_t offset);
static ngx_int_t ngx_bayeux_jwt_time(yajl_val v, double *t);
static ngx_int_t ngx_bayeux_jwt_patterns(ngx_bayeux_jwt_ctx_t *ctx,
    yajl_val v, size_t offset);


static ngx_bayeux_jwt_alg_t  ngx_bayeux_jwt_algs[] = {

    { ngx_string("HS256"),
      ngx_bayeux_jwt_load_secret,
      ngx_bayeux_jwt_check_hmac },

    { ngx_string("RS256"),
      ngx_bayeux_jwt_load_rsa,
      ngx_bayeux_jwt_check_rsa },

    { ngx_string("ES256"),
      ngx_bayeux_jwt_load_ec,
      ngx_bayeux_jwt_check_ec },

    { ngx_null_string, NULL, NULL }
};


/* at most 32 of each: a bit per field tells a repeated name */

static ngx_bayeux_jwt_field_t  ngx_bayeux_jwt_header[] = {
    { ngx_string("alg"), ngx_bayeux_jwt_alg, 0 },
    { ngx_string("typ"), ngx_bayeux_jwt_typ, 0 },
    { ngx_string("crit"), ngx_bayeux_jwt_crit, 0 },
    { ngx_null_string, NULL, 0 }
};


static ngx_bayeux_jwt_field_t  ngx_bayeux_jwt_claims[] = {
    { ngx_string("sub"), ngx_bayeux_jwt_sub, 0 },
    { ngx_string("exp"), ngx_bayeux_jwt_exp, 0 },
    { ngx_string("nbf"), ngx_bayeux_jwt_nbf, 0 },
    { ngx_string("subscribe"), ngx_bayeux_jwt_patterns,
      offsetof(ngx_bayeux_grants_t, subscribe) },
    { ngx_string("publish"), ngx_bayeux_jwt_patterns,
      offsetof(ngx_bayeux_grants_t, publish) },
    { ngx_null_string, NULL, 0 }
};


char *
ngx_bayeux_jwt_key_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_bayeux_loc_conf_t *blcf = conf;

    ngx_str_t             *value;
    ngx_pool_cleanup_t    *cln;
    ngx_bayeux_jwt_alg_t  *alg;
    ngx_bayeux_jwt_key_t  *key;

    if (blcf->jwt_key != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2) {
        if (value[1].len == 3
            && ngx_strncmp(value[1].data, "off", 3) == 0)
        {
            blcf->jwt_key = NULL;
            return NGX_CONF_OK;
        }

        return "takes \"off\", or an algorithm (HS256, RS256, ES256) "
               "and its key";
    }

    for (alg = ngx_bayeux_jwt_algs; alg->name.len; alg++) {
        if (alg->name.len == value[1].len
            && ngx_strncasecmp(alg->name.data, value[1].data,
                               value[1].len)
               == 0)
        {
            break;
        }
    }

    if (alg->name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown \"bayeux_jwt_key\" algorithm \"%V\"; "
                           "known: HS256, RS256, ES256", &value[1]);
        return NGX_CONF_ERROR;
    }

    key = ngx_pcalloc(cf->pool, sizeof(ngx_bayeux_jwt_key_t));
    if (key == NULL) {
        return NGX_CONF_ERROR;
    }

    key->alg = alg;

    /* first: what a failed load took is given back too */

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_bayeux_jwt_cleanup;
    cln->data = key;

    if (alg->load(cf, key, &value[2]) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    blcf->jwt_key = key;

    return NGX_CONF_OK;
}


static char *
ngx_bayeux_jwt_load_secret(ngx_conf_t *cf, ngx_bayeux_jwt_key_t *key,
    ngx_str_t *value)
{
    EVP_MAC     *mac;
    OSSL_PARAM   params[2];

    if (value->len < NGX_BAYEUX_JWT_MIN_SECRET) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bayeux_jwt_key\" HS256 secret is %uz bytes "
                           "long: it must have at least %d (RFC 7518, 3.2)",
                           value->len, NGX_BAYEUX_JWT_MIN_SECRET);
        return NGX_CONF_ERROR;
    }

    mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
    if (mac == NULL) {
        goto failed;
    }

    key->mac = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);

    if (key->mac == NULL) {
        goto failed;
    }

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *) "SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();

    if (EVP_MAC_init(key->mac, value->data, value->len, params) != 1) {
        goto failed;
    }

    return NGX_CONF_OK;

failed:

    ERR_clear_error();

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"bayeux_jwt_key\": OpenSSL has no HMAC-SHA256");

    return NGX_CONF_ERROR;
}


static char *
ngx_bayeux_jwt_load_rsa(ngx_conf_t *cf, ngx_bayeux_jwt_key_t *key,
    ngx_str_t *value)
{
    int        bits;
    ngx_str_t  file;

    if (ngx_bayeux_jwt_load_pem(cf, key, value, &file) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (!EVP_PKEY_is_a(key->pkey, "RSA")) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bayeux_jwt_key\" RS256 needs an RSA public "
                           "key: \"%V\" holds a %s key", &file,
                           EVP_PKEY_get0_type_name(key->pkey));
        return NGX_CONF_ERROR;
    }

    bits = EVP_PKEY_get_bits(key->pkey);

    if (bits < NGX_BAYEUX_JWT_MIN_RSA_BITS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bayeux_jwt_key\" RS256 key \"%V\" has %d "
                           "bits: it must have at least %d (RFC 7518, 3.3)",
                           &file, bits, NGX_BAYEUX_JWT_MIN_RSA_BITS);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_bayeux_jwt_load_ec(ngx_conf_t *cf, ngx_bayeux_jwt_key_t *key,
    ngx_str_t *value)
{
    char       group[64];
    size_t     len;
    ngx_str_t  file;

    if (ngx_bayeux_jwt_load_pem(cf, key, value, &file) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (!EVP_PKEY_is_a(key->pkey, "EC")) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bayeux_jwt_key\" ES256 needs an EC P-256 "
                           "public key: \"%V\" holds a %s key", &file,
                           EVP_PKEY_get0_type_name(key->pkey));
        return NGX_CONF_ERROR;
    }

    if (EVP_PKEY_get_utf8_string_param(key->pkey,
                                       OSSL_PKEY_PARAM_GROUP_NAME,
                                       group, sizeof(group), &len)
        != 1)
    {
        ERR_clear_error();
        ngx_cpystrn((u_char *) group, (u_char *) "unnamed", sizeof(group));
    }

    if (OBJ_txt2nid(group) != NID_X9_62_prime256v1) {
        ERR_clear_error();
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bayeux_jwt_key\" ES256 needs an EC P-256 "
                           "public key: \"%V\" is on the curve %s",
                           &file, group);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* a SubjectPublicKeyInfo PEM, as "openssl pkey -pubout" writes */

static char *
ngx_bayeux_jwt_load_pem(ngx_conf_t *cf, ngx_bayeux_jwt_key_t *key,
    ngx_str_t *value, ngx_str_t *file)
{
    BIO              *bio;
    off_t             size;
    u_char           *buf;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_err_t         err;
    const char       *why;
    ngx_file_info_t   fi;

    *file = *value;

    if (ngx_conf_full_name(cf->cycle, file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(file->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"bayeux_jwt_key\" cannot open \"%V\"", file);
        return NGX_CONF_ERROR;
    }

    n = NGX_ERROR;
    err = 0;
    buf = NULL;
    size = 0;
    why = "";

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        err = ngx_errno;

    } else {
        size = ngx_file_size(&fi);

        if (size <= 0 || size > NGX_BAYEUX_JWT_MAX_PEM) {
            why = ": empty, or too large for a public key";

        } else {
            buf = ngx_pnalloc(cf->temp_pool, (size_t) size);

            if (buf) {
                n = ngx_read_fd(fd, buf, (size_t) size);
                err = (n == NGX_ERROR) ? ngx_errno : 0;
            }
        }
    }

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_ALERT, cf, ngx_errno,
                           ngx_close_file_n " \"%V\" failed", file);
    }

    if (n != size || n <= 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, err,
                           "\"bayeux_jwt_key\" cannot read \"%V\"%s",
                           file, why);
        return NGX_CONF_ERROR;
    }

    bio = BIO_new_mem_buf(buf, (int) n);
    if (bio == NULL) {
        ERR_clear_error();
        return NGX_CONF_ERROR;
    }

    key->pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    ERR_clear_error();

    if (key->pkey == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bayeux_jwt_key\" file \"%V\" is not a PEM "
                           "public key (\"-----BEGIN PUBLIC KEY-----\", as "
                           "\"openssl pkey -pubout\" writes it)", file);
        return NGX_CONF_ERROR;
    }

    key->md = EVP_MD_fetch(NULL, "SHA256", NULL);

    if (key->md == NULL) {
        ERR_clear_error();
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bayeux_jwt_key\": OpenSSL has no SHA256");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void
ngx_bayeux_jwt_cleanup(void *data)
{
    ngx_bayeux_jwt_key_t  *key = data;

    EVP_MAC_CTX_free(key->mac);
    EVP_MD_free(key->md);
    EVP_PKEY_free(key->pkey);

    if (key->header) {
        ngx_free(key->header);
    }
}


ngx_int_t
ngx_bayeux_jwt_verify(ngx_bayeux_jwt_key_t *key, ngx_str_t *token,
    ngx_pool_t *pool, ngx_bayeux_grants_t *g, const char **why)
{
    u_char                *p, *last, *dot1, *dot2;
    ngx_int_t              rc;
    ngx_str_t              sig;
    ngx_bayeux_jwt_ctx_t   ctx;

    if (token->len > NGX_BAYEUX_JWT_MAX_LEN) {
        *why = "too long";
        return NGX_DECLINED;
    }

    *why = "malformed";

    /* header.payload.signature, base64url without padding */

    dot1 = NULL;
    dot2 = NULL;
    last = token->data + token->len;

    for (p = token->data; p < last; p++) {

        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')
            || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_')
        {
            continue;
        }

        if (*p != '.' || dot2) {
            return NGX_DECLINED;
        }

        if (dot1 == NULL) {
            dot1 = p;

        } else {
            dot2 = p;
        }
    }

    if (dot2 == NULL || dot1 == token->data || dot2 == dot1 + 1) {
        return NGX_DECLINED;
    }

    ngx_memzero(&ctx, sizeof(ngx_bayeux_jwt_ctx_t));
    ctx.key = key;
    ctx.pool = pool;
    ctx.why = "malformed";

    if (key->header == NULL
        || key->header_len != (size_t) (dot1 - token->data)
        || ngx_memcmp(key->header, token->data, key->header_len) != 0)
    {
        rc = ngx_bayeux_jwt_object(&ctx, token->data, dot1,
                                   ngx_bayeux_jwt_header);
        if (rc != NGX_OK) {
            *why = ctx.why;
            return rc;
        }

        if (!ctx.alg) {
            return NGX_DECLINED;
        }

        ngx_bayeux_jwt_remember_header(key, token->data, dot1);
    }

    /* the claims are read only once the signature holds */

    rc = ngx_bayeux_jwt_decode(pool, dot2 + 1, last, &sig);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = key->alg->check(key, token->data, dot2 - token->data,
                         sig.data, sig.len);
    if (rc != NGX_OK) {
        *why = "bad signature";
        return rc;
    }

    rc = ngx_bayeux_jwt_object(&ctx, dot1 + 1, dot2,
                               ngx_bayeux_jwt_claims);
    if (rc != NGX_OK) {
        *why = ctx.why;
        return rc;
    }

    if (ctx.grants.user.len == 0) {
        *why = "no sub";
        return NGX_DECLINED;
    }

    *g = ctx.grants;
    *why = "valid";

    return NGX_OK;
}


/*
 * A header that passed is passed again without being read: the same
 * bytes say the same.  Kept per worker, for the key's life.
 */

static void
ngx_bayeux_jwt_remember_header(ngx_bayeux_jwt_key_t *key, u_char *start,
    u_char *end)
{
    u_char  *p;
    size_t   len;

    len = end - start;

    p = ngx_alloc(len, ngx_cycle->log);
    if (p == NULL) {
        return;
    }

    ngx_memcpy(p, start, len);

    if (key->header) {
        ngx_free(key->header);
    }

    key->header = p;
    key->header_len = len;
}


static ngx_int_t
ngx_bayeux_jwt_check_hmac(ngx_bayeux_jwt_key_t *key, u_char *input,
    size_t len, u_char *sig, size_t sig_len)
{
    int           ok;
    size_t        n;
    u_char        mac[EVP_MAX_MD_SIZE];
    EVP_MAC_CTX  *ctx;

    if (sig_len != NGX_BAYEUX_JWT_SHA256_LEN) {
        return NGX_DECLINED;
    }

    ctx = EVP_MAC_CTX_dup(key->mac);
    if (ctx == NULL) {
        ERR_clear_error();
        return NGX_ERROR;
    }

    ok = EVP_MAC_update(ctx, input, len)
         && EVP_MAC_final(ctx, mac, &n, sizeof(mac));

    EVP_MAC_CTX_free(ctx);

    if (!ok || n != NGX_BAYEUX_JWT_SHA256_LEN) {
        ERR_clear_error();
        return NGX_ERROR;
    }

    if (CRYPTO_memcmp(mac, sig, NGX_BAYEUX_JWT_SHA256_LEN) != 0) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_jwt_check_rsa(ngx_bayeux_jwt_key_t *key, u_char *input,
    size_t len, u_char *sig, size_t sig_len)
{
    if (sig_len != (size_t) EVP_PKEY_get_size(key->pkey)) {
        return NGX_DECLINED;
    }

    return ngx_bayeux_jwt_check_pkey(key, input, len, sig, sig_len);
}


/* JWS has r || s (RFC 7518, 3.4); OpenSSL wants an ASN.1 ECDSA-Sig-Value */

static ngx_int_t
ngx_bayeux_jwt_check_ec(ngx_bayeux_jwt_key_t *key, u_char *input,
    size_t len, u_char *sig, size_t sig_len)
{
    u_char  *p, der[2 + 2 * (3 + NGX_BAYEUX_JWT_ES256_LEN / 2)];

    if (sig_len != NGX_BAYEUX_JWT_ES256_LEN) {
        return NGX_DECLINED;
    }

    p = ngx_bayeux_jwt_der_integer(der + 2, sig,
                                   NGX_BAYEUX_JWT_ES256_LEN / 2);
    p = ngx_bayeux_jwt_der_integer(p, sig + NGX_BAYEUX_JWT_ES256_LEN / 2,
                                   NGX_BAYEUX_JWT_ES256_LEN / 2);

    /* a SEQUENCE of at most 70 bytes: the short form of length */

    der[0] = 0x30;
    der[1] = (u_char) (p - der - 2);

    return ngx_bayeux_jwt_check_pkey(key, input, len, der, p - der);
}


static u_char *
ngx_bayeux_jwt_der_integer(u_char *p, u_char *n, size_t len)
{
    ngx_uint_t  pad;

    while (len > 1 && *n == 0) {
        n++;
        len--;
    }

    pad = (*n & 0x80) ? 1 : 0;

    *p++ = 0x02;
    *p++ = (u_char) (len + pad);

    if (pad) {
        *p++ = 0;
    }

    return ngx_cpymem(p, n, len);
}


static ngx_int_t
ngx_bayeux_jwt_check_pkey(ngx_bayeux_jwt_key_t *key, u_char *input,
    size_t len, u_char *sig, size_t sig_len)
{
    int          rc;
    EVP_MD_CTX  *md;

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        ERR_clear_error();
        return NGX_ERROR;
    }

    rc = EVP_DigestVerifyInit(md, NULL, key->md, NULL, key->pkey);

    if (rc == 1) {
        rc = EVP_DigestVerify(md, sig, sig_len, input, len);
    }

    EVP_MD_CTX_free(md);

    /* nginx's own TLS errors read this queue */
    ERR_clear_error();

    return rc == 1 ? NGX_OK : NGX_DECLINED;
}


static ngx_int_t
ngx_bayeux_jwt_decode(ngx_pool_t *pool, u_char *start, u_char *end,
    ngx_str_t *dst)
{
    ngx_str_t  src;

    src.data = start;
    src.len = end - start;

    /* one byte more: JSON is parsed from a C string */

    dst->data = ngx_pnalloc(pool, ngx_base64_decoded_length(src.len) + 1);
    if (dst->data == NULL) {
        return NGX_ERROR;
    }

    if (ngx_decode_base64url(dst, &src) != NGX_OK) {
        return NGX_DECLINED;
    }

    dst->data[dst->len] = '\0';

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_jwt_object(ngx_bayeux_jwt_ctx_t *ctx, u_char *start, u_char *end,
    ngx_bayeux_jwt_field_t *fields)
{
    char        err[64];
    yajl_val    root;
    ngx_int_t   rc;
    ngx_str_t   json;

    rc = ngx_bayeux_jwt_decode(ctx->pool, start, end, &json);
    if (rc != NGX_OK) {
        return rc;
    }

    if (json.len == 0
        || ngx_strlchr(json.data, json.data + json.len, '\0')
        || !ngx_bayeux_jwt_depth_ok(json.data, json.data + json.len))
    {
        return NGX_DECLINED;
    }

    root = yajl_tree_parse((const char *) json.data, err, sizeof(err));

    if (!YAJL_IS_OBJECT(root)) {
        yajl_tree_free(root);
        return NGX_DECLINED;
    }

    rc = ngx_bayeux_jwt_fields(ctx, root, fields);

    yajl_tree_free(root);

    return rc;
}


/*
 * yajl_tree has no depth limit: the nesting is counted before, strings
 * skipped; what is not JSON is refused by yajl after
 */

static ngx_uint_t
ngx_bayeux_jwt_depth_ok(u_char *p, u_char *last)
{
    ngx_uint_t  depth, string;

    depth = 0;
    string = 0;

    for ( /* void */ ; p < last; p++) {

        if (string) {
            if (*p == '\\') {
                p++;

            } else if (*p == '"') {
                string = 0;
            }

            continue;
        }

        switch (*p) {

        case '"':
            string = 1;
            break;

        case '{':
        case '[':
            if (++depth > NGX_BAYEUX_MAX_JSON_DEPTH) {
                return 0;
            }
            break;

        case '}':
        case ']':
            if (depth) {
                depth--;
            }
            break;
        }
    }

    return 1;
}


/* each field of the table once at most; other names are not read */

static ngx_int_t
ngx_bayeux_jwt_fields(ngx_bayeux_jwt_ctx_t *ctx, yajl_val obj,
    ngx_bayeux_jwt_field_t *fields)
{
    size_t                   i, len;
    uint32_t                 seen;
    ngx_int_t                rc;
    ngx_uint_t               n;
    const char              *name;
    ngx_bayeux_jwt_field_t  *f;

    seen = 0;

    for (i = 0; i < obj->u.object.len; i++) {
        name = obj->u.object.keys[i];
        len = ngx_strlen(name);

        for (f = fields, n = 0; f->name.len; f++, n++) {
            if (f->name.len == len
                && ngx_strncmp(f->name.data, name, len) == 0)
            {
                break;
            }
        }

        if (f->name.len == 0) {
            continue;
        }

        if (seen & (1u << n)) {
            ctx->why = "malformed";
            return NGX_DECLINED;
        }

        seen |= 1u << n;

        rc = f->handler(ctx, obj->u.object.values[i], f->offset);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


/* exactly the configured one: neither "none" nor another family */

static ngx_int_t
ngx_bayeux_jwt_alg(ngx_bayeux_jwt_ctx_t *ctx, yajl_val v, size_t offset)
{
    ngx_str_t  *name;

    if (!YAJL_IS_STRING(v)) {
        ctx->why = "malformed";
        return NGX_DECLINED;
    }

    name = &ctx->key->alg->name;

    if (ngx_strlen(v->u.string) != name->len
        || ngx_strncmp(v->u.string, name->data, name->len) != 0)
    {
        ctx->why = "algorithm mismatch";
        return NGX_DECLINED;
    }

    ctx->alg = 1;

    return NGX_OK;
}


/* a media type: "JWT" in any case (RFC 7519, 5.1) */

static ngx_int_t
ngx_bayeux_jwt_typ(ngx_bayeux_jwt_ctx_t *ctx, yajl_val v, size_t offset)
{
    if (!YAJL_IS_STRING(v)
        || ngx_strlen(v->u.string) != 3
        || ngx_strncasecmp((u_char *) v->u.string, (u_char *) "JWT", 3)
           != 0)
    {
        ctx->why = "not a JWT";
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* no extension is understood here: RFC 7515, 4.1.11 says refuse */

static ngx_int_t
ngx_bayeux_jwt_crit(ngx_bayeux_jwt_ctx_t *ctx, yajl_val v, size_t offset)
{
    ctx->why = "unsupported crit";
    return NGX_DECLINED;
}


static ngx_int_t
ngx_bayeux_jwt_sub(ngx_bayeux_jwt_ctx_t *ctx, yajl_val v, size_t offset)
{
    size_t  len;

    if (!YAJL_IS_STRING(v)) {
        ctx->why = "malformed";
        return NGX_DECLINED;
    }

    len = ngx_strlen(v->u.string);

    if (len == 0) {
        ctx->why = "no sub";
        return NGX_DECLINED;
    }

    ctx->grants.user.data = ngx_pnalloc(ctx->pool, len);
    if (ctx->grants.user.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(ctx->grants.user.data, v->u.string, len);
    ctx->grants.user.len = len;

    return NGX_OK;
}


/* no leeway: the token's issuer and nginx are expected to agree on time */

static ngx_int_t
ngx_bayeux_jwt_exp(ngx_bayeux_jwt_ctx_t *ctx, yajl_val v, size_t offset)
{
    double  t;

    if (ngx_bayeux_jwt_time(v, &t) != NGX_OK) {
        ctx->why = "malformed";
        return NGX_DECLINED;
    }

    if ((double) ngx_time() >= t) {
        ctx->why = "expired";
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_jwt_nbf(ngx_bayeux_jwt_ctx_t *ctx, yajl_val v, size_t offset)
{
    double  t;

    if (ngx_bayeux_jwt_time(v, &t) != NGX_OK) {
        ctx->why = "malformed";
        return NGX_DECLINED;
    }

    if ((double) ngx_time() < t) {
        ctx->why = "not yet valid";
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* a NumericDate: seconds since the epoch, maybe with a fraction */

static ngx_int_t
ngx_bayeux_jwt_time(yajl_val v, double *t)
{
    if (YAJL_IS_INTEGER(v)) {
        *t = (double) YAJL_GET_INTEGER(v);
        return NGX_OK;
    }

    if (YAJL_IS_DOUBLE(v)) {
        *t = YAJL_GET_DOUBLE(v);
        return NGX_OK;
    }

    return NGX_DECLINED;
}


/* an array of channels or channel patterns, each one valid */

static ngx_int_t
ngx_bayeux_jwt_patterns(ngx_bayeux_jwt_ctx_t *ctx, yajl_val v,
    size_t offset)
{
    size_t         i, n;
    yajl_val       item;
    ngx_str_t     *s, name;
    ngx_uint_t     flags;
    ngx_array_t   *a;

    if (!YAJL_IS_ARRAY(v)) {
        ctx->why = "malformed";
        return NGX_DECLINED;
    }

    n = v->u.array.len;

    a = ngx_array_create(ctx->pool, n ? n : 1, sizeof(ngx_str_t));
    if (a == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        item = v->u.array.values[i];

        if (!YAJL_IS_STRING(item)) {
            ctx->why = "malformed";
            return NGX_DECLINED;
        }

        name.data = (u_char *) item->u.string;
        name.len = ngx_strlen(item->u.string);

        if (ngx_bayeux_channel_parse(&name, &flags) != NGX_OK) {
            ctx->why = "malformed";
            return NGX_DECLINED;
        }

        s = ngx_array_push(a);
        if (s == NULL) {
            return NGX_ERROR;
        }

        s->data = ngx_pnalloc(ctx->pool, name.len);
        if (s->data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(s->data, name.data, name.len);
        s->len = name.len;
    }

    *(ngx_array_t **) ((u_char *) &ctx->grants + offset) = a;

    return NGX_OK;
}
