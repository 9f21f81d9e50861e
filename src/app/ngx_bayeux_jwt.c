
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

#include <yajl/yajl_parse.h>

#include "ngx_bayeux.h"
#include "ngx_bayeux_channel.h"
#include "ngx_bayeux_jwt.h"
#include "ngx_bayeux_message.h"


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
    EVP_MAC_CTX               *mac;         /* HS256: keyed, reused */
    EVP_MD                    *md;          /* RS256, ES256 */
    EVP_PKEY                  *pkey;        /* RS256, ES256 */

    /*
     * RS256, ES256: made once at load, and used by each worker for every
     * token: the digest of the signed input, and the verification of a
     * signature of it, set up with the key and SHA-256
     */
    EVP_MD_CTX                *digest;
    EVP_PKEY_CTX              *verify;

    /*
     * the header of the last token accepted (ngx_alloc()): issuers sign
     * every token with the same, which needs to be read only once
     */
    u_char                    *header;
    size_t                     header_len;
};


/* a member's value as yajl's callbacks give it */

typedef enum {
    NGX_BAYEUX_JWT_STRING = 0,
    NGX_BAYEUX_JWT_NUMBER,
    NGX_BAYEUX_JWT_ARRAY,                   /* opened: its items follow */
    NGX_BAYEUX_JWT_OTHER                    /* object, boolean, null */
} ngx_bayeux_jwt_type_e;

typedef struct {
    ngx_bayeux_jwt_type_e      type;
    ngx_str_t                  text;        /* a string's, a number's */
} ngx_bayeux_jwt_value_t;


typedef struct ngx_bayeux_jwt_ctx_s    ngx_bayeux_jwt_ctx_t;
typedef struct ngx_bayeux_jwt_field_s  ngx_bayeux_jwt_field_t;

typedef ngx_int_t (*ngx_bayeux_jwt_field_pt)(ngx_bayeux_jwt_ctx_t *ctx,
    ngx_bayeux_jwt_value_t *v, size_t offset);

struct ngx_bayeux_jwt_field_s {
    ngx_str_t                  name;
    ngx_bayeux_jwt_field_pt    handler;
    size_t                     offset;
};


struct ngx_bayeux_jwt_ctx_s {
    ngx_bayeux_jwt_key_t      *key;
    ngx_pool_t                *pool;
    ngx_bayeux_grants_t        grants;
    ngx_uint_t                 alg;         /* the header's "alg" was seen */
    const char                *why;

    /* the object being read (header or claims) */
    ngx_bayeux_jwt_field_t    *fields;
    ngx_bayeux_jwt_field_t    *field;       /* its value comes next */
    ngx_array_t               *items;       /* the patterns being read */
    ngx_uint_t                 depth;
    uint32_t                   seen;
    ngx_int_t                  rc;          /* the first refusal, or OK */
};


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
static int ngx_bayeux_jwt_value(ngx_bayeux_jwt_ctx_t *ctx,
    ngx_bayeux_jwt_type_e type, const unsigned char *s, size_t len);
static int ngx_bayeux_jwt_json_null(void *data);
static int ngx_bayeux_jwt_json_boolean(void *data, int v);
static int ngx_bayeux_jwt_json_number(void *data, const char *s, size_t len);
static int ngx_bayeux_jwt_json_string(void *data, const unsigned char *s,
    size_t len);
static int ngx_bayeux_jwt_json_start_map(void *data);
static int ngx_bayeux_jwt_json_key(void *data, const unsigned char *s,
    size_t len);
static int ngx_bayeux_jwt_json_start_array(void *data);
static int ngx_bayeux_jwt_json_end(void *data);
static int ngx_bayeux_jwt_json_deeper(ngx_bayeux_jwt_ctx_t *ctx);

static ngx_int_t ngx_bayeux_jwt_alg(ngx_bayeux_jwt_ctx_t *ctx,
    ngx_bayeux_jwt_value_t *v, size_t offset);
static ngx_int_t ngx_bayeux_jwt_typ(ngx_bayeux_jwt_ctx_t *ctx,
    ngx_bayeux_jwt_value_t *v, size_t offset);
static ngx_int_t ngx_bayeux_jwt_crit(ngx_bayeux_jwt_ctx_t *ctx,
    ngx_bayeux_jwt_value_t *v, size_t offset);
static ngx_int_t ngx_bayeux_jwt_sub(ngx_bayeux_jwt_ctx_t *ctx,
    ngx_bayeux_jwt_value_t *v, size_t offset);
static ngx_int_t ngx_bayeux_jwt_exp(ngx_bayeux_jwt_ctx_t *ctx,
    ngx_bayeux_jwt_value_t *v, size_t offset);
static ngx_int_t ngx_bayeux_jwt_nbf(ngx_bayeux_jwt_ctx_t *ctx,
    ngx_bayeux_jwt_value_t *v, size_t offset);
static ngx_int_t ngx_bayeux_jwt_time(ngx_bayeux_jwt_ctx_t *ctx,
    ngx_bayeux_jwt_value_t *v, double *t);
static ngx_int_t ngx_bayeux_jwt_patterns(ngx_bayeux_jwt_ctx_t *ctx,
    ngx_bayeux_jwt_value_t *v, size_t offset);
static ngx_int_t ngx_bayeux_jwt_pattern(ngx_bayeux_jwt_ctx_t *ctx,
    ngx_bayeux_jwt_value_t *v);


static yajl_callbacks  ngx_bayeux_jwt_callbacks = {
    ngx_bayeux_jwt_json_null,
    ngx_bayeux_jwt_json_boolean,
    NULL,
    NULL,
    ngx_bayeux_jwt_json_number,
    ngx_bayeux_jwt_json_string,
    ngx_bayeux_jwt_json_start_map,
    ngx_bayeux_jwt_json_key,
    ngx_bayeux_jwt_json_end,
    ngx_bayeux_jwt_json_start_array,
    ngx_bayeux_jwt_json_end
};


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

    key->digest = EVP_MD_CTX_new();
    key->verify = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL);

    if (key->digest == NULL
        || key->verify == NULL
        || EVP_PKEY_verify_init(key->verify) != 1
        || EVP_PKEY_CTX_set_signature_md(key->verify, key->md) != 1)
    {
        ERR_clear_error();
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"bayeux_jwt_key\": OpenSSL cannot verify "
                           "SHA256 signatures with the key of \"%V\"",
                           file);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void
ngx_bayeux_jwt_cleanup(void *data)
{
    ngx_bayeux_jwt_key_t  *key = data;

    EVP_MAC_CTX_free(key->mac);
    EVP_MD_CTX_free(key->digest);
    EVP_PKEY_CTX_free(key->verify);
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
    int      ok;
    size_t   n;
    u_char   mac[EVP_MAX_MD_SIZE];

    if (sig_len != NGX_BAYEUX_JWT_SHA256_LEN) {
        return NGX_DECLINED;
    }

    /*
     * the worker's own context, keyed at load: started again with no key
     * it keeps that one (OpenSSL 3), with no copy and no allocation
     */

    ok = EVP_MAC_init(key->mac, NULL, 0, NULL)
         && EVP_MAC_update(key->mac, input, len)
         && EVP_MAC_final(key->mac, mac, &n, sizeof(mac));

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


/*
 * The contexts made at load, started again: no algorithm fetched, no
 * context made or freed per token
 */

static ngx_int_t
ngx_bayeux_jwt_check_pkey(ngx_bayeux_jwt_key_t *key, u_char *input,
    size_t len, u_char *sig, size_t sig_len)
{
    int           rc;
    u_char        hash[EVP_MAX_MD_SIZE];
    unsigned int  n;

    if (EVP_DigestInit_ex2(key->digest, key->md, NULL) != 1
        || EVP_DigestUpdate(key->digest, input, len) != 1
        || EVP_DigestFinal_ex(key->digest, hash, &n) != 1)
    {
        ERR_clear_error();
        return NGX_ERROR;
    }

    rc = EVP_PKEY_verify(key->verify, sig, sig_len, hash, n);

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

    dst->data = ngx_pnalloc(pool, ngx_base64_decoded_length(src.len));
    if (dst->data == NULL) {
        return NGX_ERROR;
    }

    if (ngx_decode_base64url(dst, &src) != NGX_OK) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * The header or the claims: one JSON object whose members of the table
 * are read as yajl gives them, each once at most; other members are
 * skipped whatever they hold.  The first rule a member breaks is the
 * reason, once the whole text is known to be JSON: what is not is
 * "malformed", as is nesting deeper than any message may have.
 */

static ngx_int_t
ngx_bayeux_jwt_object(ngx_bayeux_jwt_ctx_t *ctx, u_char *start, u_char *end,
    ngx_bayeux_jwt_field_t *fields)
{
    ngx_int_t          rc;
    ngx_str_t          json;
    yajl_handle        h;
    yajl_status        status;
    yajl_alloc_funcs   af;

    rc = ngx_bayeux_jwt_decode(ctx->pool, start, end, &json);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx->fields = fields;
    ctx->field = NULL;
    ctx->items = NULL;
    ctx->depth = 0;
    ctx->seen = 0;
    ctx->rc = NGX_OK;

    ngx_bayeux_yajl_pool_funcs(&af, ctx->pool);

    h = yajl_alloc(&ngx_bayeux_jwt_callbacks, &af, ctx);
    if (h == NULL) {
        return NGX_ERROR;
    }

    status = yajl_parse(h, json.data, json.len);

    if (status == yajl_status_ok) {
        status = yajl_complete_parse(h);
    }

    yajl_free(h);

    if (ctx->rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (status != yajl_status_ok) {
        ctx->why = "malformed";
        return NGX_DECLINED;
    }

    return ctx->rc;
}


/*
 * A value at depth 1 is the current member's; an array's items are at
 * depth 2.  After a refusal the rest is only checked as JSON.
 */

static int
ngx_bayeux_jwt_value(ngx_bayeux_jwt_ctx_t *ctx, ngx_bayeux_jwt_type_e type,
    const unsigned char *s, size_t len)
{
    ngx_int_t                rc;
    ngx_bayeux_jwt_field_t  *f;
    ngx_bayeux_jwt_value_t   v;

    if (ctx->depth == 0) {
        /* the text is not an object */
        ctx->rc = NGX_DECLINED;
        ctx->why = "malformed";
        return 0;
    }

    v.type = type;
    v.text.data = (u_char *) s;
    v.text.len = len;

    if (ctx->depth == 1) {
        f = ctx->field;
        ctx->field = NULL;

        if (f == NULL || ctx->rc != NGX_OK) {
            return 1;
        }

        rc = f->handler(ctx, &v, f->offset);

    } else if (ctx->depth == 2 && ctx->items && ctx->rc == NGX_OK) {
        rc = ngx_bayeux_jwt_pattern(ctx, &v);

    } else {
        return 1;
    }

    if (rc == NGX_ERROR) {
        ctx->rc = NGX_ERROR;
        return 0;
    }

    ctx->rc = rc;

    return 1;
}


static int
ngx_bayeux_jwt_json_null(void *data)
{
    return ngx_bayeux_jwt_value(data, NGX_BAYEUX_JWT_OTHER, NULL, 0);
}


static int
ngx_bayeux_jwt_json_boolean(void *data, int v)
{
    return ngx_bayeux_jwt_value(data, NGX_BAYEUX_JWT_OTHER, NULL, 0);
}


static int
ngx_bayeux_jwt_json_number(void *data, const char *s, size_t len)
{
    return ngx_bayeux_jwt_value(data, NGX_BAYEUX_JWT_NUMBER,
                                (const unsigned char *) s, len);
}


static int
ngx_bayeux_jwt_json_string(void *data, const unsigned char *s, size_t len)
{
    return ngx_bayeux_jwt_value(data, NGX_BAYEUX_JWT_STRING, s, len);
}


static int
ngx_bayeux_jwt_json_start_map(void *data)
{
    ngx_bayeux_jwt_ctx_t  *ctx = data;

    if (ctx->depth && !ngx_bayeux_jwt_value(ctx, NGX_BAYEUX_JWT_OTHER,
                                            NULL, 0))
    {
        return 0;
    }

    return ngx_bayeux_jwt_json_deeper(ctx);
}


static int
ngx_bayeux_jwt_json_start_array(void *data)
{
    ngx_bayeux_jwt_ctx_t  *ctx = data;

    if (!ngx_bayeux_jwt_value(ctx, NGX_BAYEUX_JWT_ARRAY, NULL, 0)) {
        return 0;
    }

    return ngx_bayeux_jwt_json_deeper(ctx);
}


/* a map or an array opens: too deep is malformed */

static int
ngx_bayeux_jwt_json_deeper(ngx_bayeux_jwt_ctx_t *ctx)
{
    if (++ctx->depth > NGX_BAYEUX_MAX_JSON_DEPTH) {
        ctx->rc = NGX_DECLINED;
        return 0;
    }

    return 1;
}


static int
ngx_bayeux_jwt_json_end(void *data)
{
    ngx_bayeux_jwt_ctx_t  *ctx = data;

    if (--ctx->depth == 1) {
        /* the patterns' array, if it was one, is whole */
        ctx->items = NULL;
    }

    return 1;
}


static int
ngx_bayeux_jwt_json_key(void *data, const unsigned char *s, size_t len)
{
    ngx_bayeux_jwt_ctx_t  *ctx = data;

    ngx_uint_t               n;
    ngx_bayeux_jwt_field_t  *f;

    if (ctx->depth != 1) {
        return 1;
    }

    for (f = ctx->fields, n = 0; f->name.len; f++, n++) {
        if (f->name.len == len && ngx_strncmp(f->name.data, s, len) == 0) {
            break;
        }
    }

    if (f->name.len == 0) {
        ctx->field = NULL;
        return 1;
    }

    /* at most 32 fields a table: a bit each tells a repeated name */

    if ((ctx->seen & (1u << n)) && ctx->rc == NGX_OK) {
        ctx->rc = NGX_DECLINED;
        ctx->why = "malformed";
    }

    ctx->seen |= 1u << n;
    ctx->field = f;

    return 1;
}


/* exactly the configured one: neither "none" nor another family */

static ngx_int_t
ngx_bayeux_jwt_alg(ngx_bayeux_jwt_ctx_t *ctx, ngx_bayeux_jwt_value_t *v,
    size_t offset)
{
    ngx_str_t  *name;

    if (v->type != NGX_BAYEUX_JWT_STRING) {
        ctx->why = "malformed";
        return NGX_DECLINED;
    }

    name = &ctx->key->alg->name;

    if (v->text.len != name->len
        || ngx_strncmp(v->text.data, name->data, name->len) != 0)
    {
        ctx->why = "algorithm mismatch";
        return NGX_DECLINED;
    }

    ctx->alg = 1;

    return NGX_OK;
}


/* a media type: "JWT" in any case (RFC 7519, 5.1) */

static ngx_int_t
ngx_bayeux_jwt_typ(ngx_bayeux_jwt_ctx_t *ctx, ngx_bayeux_jwt_value_t *v,
    size_t offset)
{
    if (v->type != NGX_BAYEUX_JWT_STRING
        || v->text.len != 3
        || ngx_strncasecmp(v->text.data, (u_char *) "JWT", 3) != 0)
    {
        ctx->why = "not a JWT";
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* no extension is understood here: RFC 7515, 4.1.11 says refuse */

static ngx_int_t
ngx_bayeux_jwt_crit(ngx_bayeux_jwt_ctx_t *ctx, ngx_bayeux_jwt_value_t *v,
    size_t offset)
{
    ctx->why = "unsupported crit";
    return NGX_DECLINED;
}


/* a user name with a NUL in it would be another name to C code */

static ngx_int_t
ngx_bayeux_jwt_sub(ngx_bayeux_jwt_ctx_t *ctx, ngx_bayeux_jwt_value_t *v,
    size_t offset)
{
    if (v->type != NGX_BAYEUX_JWT_STRING
        || ngx_strlchr(v->text.data, v->text.data + v->text.len, '\0'))
    {
        ctx->why = "malformed";
        return NGX_DECLINED;
    }

    if (v->text.len == 0) {
        ctx->why = "no sub";
        return NGX_DECLINED;
    }

    ctx->grants.user.data = ngx_pnalloc(ctx->pool, v->text.len);
    if (ctx->grants.user.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(ctx->grants.user.data, v->text.data, v->text.len);
    ctx->grants.user.len = v->text.len;

    return NGX_OK;
}


/* no leeway: the token's issuer and nginx are expected to agree on time */

static ngx_int_t
ngx_bayeux_jwt_exp(ngx_bayeux_jwt_ctx_t *ctx, ngx_bayeux_jwt_value_t *v,
    size_t offset)
{
    double     t;
    ngx_int_t  rc;

    rc = ngx_bayeux_jwt_time(ctx, v, &t);
    if (rc != NGX_OK) {
        return rc;
    }

    if ((double) ngx_time() >= t) {
        ctx->why = "expired";
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_jwt_nbf(ngx_bayeux_jwt_ctx_t *ctx, ngx_bayeux_jwt_value_t *v,
    size_t offset)
{
    double     t;
    ngx_int_t  rc;

    rc = ngx_bayeux_jwt_time(ctx, v, &t);
    if (rc != NGX_OK) {
        return rc;
    }

    if ((double) ngx_time() < t) {
        ctx->why = "not yet valid";
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * A NumericDate: seconds since the epoch, maybe with a fraction.  yajl
 * has checked the text is a JSON number; one out of a double's range is
 * refused.
 */

static ngx_int_t
ngx_bayeux_jwt_time(ngx_bayeux_jwt_ctx_t *ctx, ngx_bayeux_jwt_value_t *v,
    double *t)
{
    char  *end, buf[64], *text;

    if (v->type != NGX_BAYEUX_JWT_NUMBER) {
        ctx->why = "malformed";
        return NGX_DECLINED;
    }

    if (v->text.len < sizeof(buf)) {
        text = buf;

    } else {
        text = ngx_pnalloc(ctx->pool, v->text.len + 1);
        if (text == NULL) {
            return NGX_ERROR;
        }
    }

    ngx_memcpy(text, v->text.data, v->text.len);
    text[v->text.len] = '\0';

    ngx_set_errno(0);
    *t = strtod(text, &end);

    if (ngx_errno != 0 || *end != '\0') {
        ctx->why = "malformed";
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* an array of channels or channel patterns, each one valid */

static ngx_int_t
ngx_bayeux_jwt_patterns(ngx_bayeux_jwt_ctx_t *ctx,
    ngx_bayeux_jwt_value_t *v, size_t offset)
{
    ngx_array_t  *a;

    if (v->type != NGX_BAYEUX_JWT_ARRAY) {
        ctx->why = "malformed";
        return NGX_DECLINED;
    }

    a = ngx_array_create(ctx->pool, 2, sizeof(ngx_str_t));
    if (a == NULL) {
        return NGX_ERROR;
    }

    *(ngx_array_t **) ((u_char *) &ctx->grants + offset) = a;
    ctx->items = a;

    return NGX_OK;
}


static ngx_int_t
ngx_bayeux_jwt_pattern(ngx_bayeux_jwt_ctx_t *ctx, ngx_bayeux_jwt_value_t *v)
{
    ngx_str_t   *s;
    ngx_uint_t   flags;

    if (v->type != NGX_BAYEUX_JWT_STRING
        || ngx_bayeux_channel_parse(&v->text, &flags) != NGX_OK)
    {
        ctx->why = "malformed";
        return NGX_DECLINED;
    }

    s = ngx_array_push(ctx->items);
    if (s == NULL) {
        return NGX_ERROR;
    }

    s->data = ngx_pnalloc(ctx->pool, v->text.len);
    if (s->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(s->data, v->text.data, v->text.len);
    s->len = v->text.len;

    return NGX_OK;
}
