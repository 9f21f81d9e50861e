# bayeux_jwt_key: the keys it takes, what `nginx -t` refuses; and a
# self-test of t/lib/Test/Bayeux/JWT.pm against the openssl command line.

use strict;
use warnings;

use lib 't/lib';
use File::Path qw(make_path);
use Test::More;
use Test::Nginx::Bayeux;
use Test::Nginx::Bayeux::Server;
use Test::Bayeux::JWT;

# keys made once for the file, named in configurations as
# $TEST_NGINX_JWT_DIR/<name>.pub.pem

my $dir = Test::Nginx::Bayeux::Server::top_root() . '/jwt';
make_path($dir);
$ENV{TEST_NGINX_JWT_DIR} = $dir;

our %KEY;
$KEY{rs256} = [jwt_keypair($dir, 'RS256')];
$KEY{es256} = [jwt_keypair($dir, 'ES256')];
$KEY{p384} = [jwt_keypair($dir, 'ES256', curve => 'P-384', name => 'p384')];
$KEY{rsa1024} = [jwt_keypair($dir, 'RS256', bits => 1024,
                             name => 'rsa1024')];

sub pem { my ($f) = @_; open my $fh, '<', $f or die "$f: $!"; local $/; <$fh> }

run_tests();

# JWT.pm makes what openssl verifies, so end-to-end tests can trust it

my %claims = (sub => 'alice', exp => time + 60,
              subscribe => ['/chat/**'], publish => ['/chat/room']);

for my $alg (qw(RS256 ES256)) {
    my ($priv, $pub) = @{ $KEY{lc $alg} };
    for my $i (1 .. ($alg eq 'ES256' ? 8 : 2)) {
        my $t = jwt_sign($alg, $priv, { %claims, n => $i });
        ok jwt_openssl_verify($alg, $pub, $t), "$alg token $i verifies";
        my ($h, $p, $s) = split /\./, $t;
        is length(b64url_decode($s)), $alg eq 'ES256' ? 64 : 256,
            "$alg signature $i is the JWS size";
    }
    my $t = jwt_sign($alg, $priv, \%claims);
    my ($h, $p, $s) = split /\./, $t;
    my $forged = "$h." . b64url('{"sub":"mallory"}') . ".$s";
    ok !jwt_openssl_verify($alg, $pub, $forged),
        "$alg: another payload under the same signature does not verify";
}

{
    my $secret = 'k' x 32;
    my $t = jwt_hs256($secret, \%claims);
    my ($h, $p, $s) = split /\./, $t;
    my $out = `printf '%s' '$h.$p' | openssl dgst -sha256 -hmac '$secret' -binary | od -An -tx1 | tr -d ' \\n'`;
    is unpack('H*', b64url_decode($s)), $out,
        'HS256 signature is what openssl computes';
    my $header = JSON::PP->new->decode(b64url_decode($h));
    is_deeply $header, { alg => 'HS256', typ => 'JWT' }, 'HS256 header';
    is_deeply(JSON::PP->new->decode(b64url_decode($p)), \%claims,
              'claims as given');
}

done_testing();

__DATA__

=== TEST 1: HS256 with a secret of 32 bytes (the key works: a handshake without a token is denied, t/103-jwt.t has the rest)
--- config
    location /cometd {
        bayeux;
        bayeux_jwt_key HS256 0123456789abcdef0123456789abcdef;
    }
--- request
POST /cometd/handshake
[{"channel":"/meta/handshake","version":"1.0"}]
--- error_code: 200
--- response_body_like: "error":"403::handshake_denied"
--- no_error_log
[emerg]
[alert]



=== TEST 2: RS256 with an RSA public key
--- config
    location /cometd {
        bayeux;
        bayeux_jwt_key RS256 $TEST_NGINX_JWT_DIR/rs256.pub.pem;
    }
--- request
POST /cometd/handshake
[{"channel":"/meta/handshake","version":"1.0"}]
--- error_code: 200
--- no_error_log
[emerg]
[alert]



=== TEST 3: ES256 with an EC P-256 public key; algorithm in any case
--- config
    location /cometd {
        bayeux;
        bayeux_jwt_key es256 $TEST_NGINX_JWT_DIR/es256.pub.pem;
    }
--- request
POST /cometd/handshake
[{"channel":"/meta/handshake","version":"1.0"}]
--- error_code: 200
--- no_error_log
[emerg]
[alert]



=== TEST 4: a relative file name is relative to the configuration's directory
--- user_files eval
{ 'ec.pub.pem' => main::pem("$main::KEY{es256}[1]") }
--- config
    location /cometd {
        bayeux;
        bayeux_jwt_key ES256 ../html/ec.pub.pem;
    }
--- request
POST /cometd/handshake
[{"channel":"/meta/handshake","version":"1.0"}]
--- error_code: 200
--- no_error_log
[emerg]



=== TEST 5: inherited from the server level, undone by "off" in a location
--- config
    bayeux_jwt_key RS256 $TEST_NGINX_JWT_DIR/rs256.pub.pem;
    location /cometd { bayeux; }
    location /open { bayeux; bayeux_jwt_key off; }
--- request eval
[
  "POST /cometd/handshake\n" . '[{"channel":"/meta/handshake","version":"1.0"}]',
  "POST /open/handshake\n" . '[{"channel":"/meta/handshake","version":"1.0"}]',
]
--- error_code eval
[200, 200]
--- no_error_log
[emerg]



=== TEST 6: unknown algorithm
--- config
    location /cometd { bayeux; bayeux_jwt_key HS512 0123456789abcdef0123456789abcdef; }
--- must_die
--- error_log
unknown "bayeux_jwt_key" algorithm "HS512"; known: HS256, RS256, ES256



=== TEST 7: "none" is not an algorithm
--- config
    location /cometd { bayeux; bayeux_jwt_key none x; }
--- must_die
--- error_log
unknown "bayeux_jwt_key" algorithm "none"



=== TEST 8: empty HS256 secret
--- config
    location /cometd { bayeux; bayeux_jwt_key HS256 ""; }
--- must_die
--- error_log
"bayeux_jwt_key" HS256 secret is 0 bytes long: it must have at least 32 (RFC 7518, 3.2)



=== TEST 9: HS256 secret shorter than 32 bytes
--- config
    location /cometd { bayeux; bayeux_jwt_key HS256 0123456789abcdef0123456789abcde; }
--- must_die
--- error_log
"bayeux_jwt_key" HS256 secret is 31 bytes long



=== TEST 10: a key file that does not exist
--- config
    location /cometd { bayeux; bayeux_jwt_key RS256 $TEST_NGINX_JWT_DIR/nothere.pem; }
--- must_die
--- error_log eval
qr{"bayeux_jwt_key" cannot open "[^"]*/jwt/nothere\.pem" \(2: No such file or directory\)}



=== TEST 11: an EC key for RS256
--- config
    location /cometd { bayeux; bayeux_jwt_key RS256 $TEST_NGINX_JWT_DIR/es256.pub.pem; }
--- must_die
--- error_log eval
qr{"bayeux_jwt_key" RS256 needs an RSA public key: "[^"]*/es256\.pub\.pem" holds a EC key}



=== TEST 12: an RSA key for ES256
--- config
    location /cometd { bayeux; bayeux_jwt_key ES256 $TEST_NGINX_JWT_DIR/rs256.pub.pem; }
--- must_die
--- error_log eval
qr{"bayeux_jwt_key" ES256 needs an EC P-256 public key: "[^"]*/rs256\.pub\.pem" holds a RSA key}



=== TEST 13: an EC key on another curve for ES256
--- config
    location /cometd { bayeux; bayeux_jwt_key ES256 $TEST_NGINX_JWT_DIR/p384.pub.pem; }
--- must_die
--- error_log eval
qr{"bayeux_jwt_key" ES256 needs an EC P-256 public key: "[^"]*/p384\.pub\.pem" is on the curve secp384r1}



=== TEST 14: a private key is not a public key
--- config
    location /cometd { bayeux; bayeux_jwt_key RS256 $TEST_NGINX_JWT_DIR/rs256.key.pem; }
--- must_die
--- error_log eval
qr{"bayeux_jwt_key" file "[^"]*/rs256\.key\.pem" is not a PEM public key}



=== TEST 15: a file that is not PEM at all
--- user_files
>>> junk.pem
this is not a key
--- config
    location /cometd { bayeux; bayeux_jwt_key ES256 ../html/junk.pem; }
--- must_die
--- error_log eval
qr{"bayeux_jwt_key" file "[^"]*/html/junk\.pem" is not a PEM public key}



=== TEST 16: an empty file
--- user_files
>>> empty.pem
--- config
    location /cometd { bayeux; bayeux_jwt_key ES256 ../html/empty.pem; }
--- must_die
--- error_log eval
qr{"bayeux_jwt_key" cannot read "[^"]*/html/empty\.pem": empty, or too large}



=== TEST 17: an RSA key shorter than 2048 bits
--- config
    location /cometd { bayeux; bayeux_jwt_key RS256 $TEST_NGINX_JWT_DIR/rsa1024.pub.pem; }
--- must_die
--- error_log eval
qr{"bayeux_jwt_key" RS256 key "[^"]*/rsa1024\.pub\.pem" has 1024 bits: it must have at least 2048}



=== TEST 18: one argument that is not "off"
--- config
    location /cometd { bayeux; bayeux_jwt_key 0123456789abcdef0123456789abcdef; }
--- must_die
--- error_log
"bayeux_jwt_key" directive takes "off", or an algorithm (HS256, RS256, ES256) and its key



=== TEST 19: twice in one location
--- config
    location /cometd {
        bayeux;
        bayeux_jwt_key HS256 0123456789abcdef0123456789abcdef;
        bayeux_jwt_key off;
    }
--- must_die
--- error_log
"bayeux_jwt_key" directive is duplicate



=== TEST 20: three arguments
--- config
    location /cometd { bayeux; bayeux_jwt_key HS256 a b; }
--- must_die
--- error_log
invalid number of arguments in "bayeux_jwt_key" directive
