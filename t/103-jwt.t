# bayeux_jwt_key end to end: a token in the handshake's ext.token decides
# the handshake alone, its claims are the session's user and grants; a
# token that fails any rule denies (403::handshake_denied, and an info
# line saying why); without a token the handshake request decides, or
# nobody does and it is denied.  On each transport; t/redis/010-protocol.t
# runs it on Redis.  Keys are made by the test (t/lib/Test/Bayeux/JWT.pm).

use strict;
use warnings;

use lib 't/lib';
use File::Path qw(make_path);
use Test::Nginx::Bayeux;
use Test::Nginx::Bayeux::Server;
use Test::Bayeux::App;
use Test::Bayeux::JWT;
use Test::Bayeux::Session;

our $APP = Test::Bayeux::App->new;
$ENV{TEST_NGINX_APP_PORT} = $APP->port;

my $dir = Test::Nginx::Bayeux::Server::top_root() . '/jwt';
make_path($dir);
$ENV{TEST_NGINX_JWT_DIR} = $dir;

our $SECRET = 'k' x 32;
our %KEY = (RS256 => [ jwt_keypair($dir, 'RS256') ],
            ES256 => [ jwt_keypair($dir, 'ES256') ]);
our @TRANSPORTS = ('long-polling', 'callback-polling', 'websocket');
our $DENIED = '403::handshake_denied';

# alice's claims, valid for a minute
sub claims {
    return { sub => 'alice', exp => time + 60,
             subscribe => [ '/chat/**' ], publish => [ '/chat/room' ], @_ };
}

sub token {
    my ($alg, @claims) = @_;
    return $alg eq 'HS256' ? jwt_hs256($main::SECRET, claims(@claims))
                           : jwt_sign($alg, $main::KEY{$alg}[0],
                                      claims(@claims));
}

block_defaults(config => <<'CONF');
    location /hs {
        bayeux;
        bayeux_jwt_key HS256 kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk;
    }
    location /rs {
        bayeux;
        bayeux_jwt_key RS256 $TEST_NGINX_JWT_DIR/rs256.pub.pem;
    }
    location /es {
        bayeux;
        bayeux_jwt_key ES256 $TEST_NGINX_JWT_DIR/es256.pub.pem;
    }
    location /both {
        bayeux;
        bayeux_jwt_key HS256 kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk;
        bayeux_handshake_request /_app/handshake;
    }
    location /_app/ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_APP_PORT;
    }
CONF

run_tests();

$APP->stop;

# the session's grants at work: granted subscribe and publish pass, the
# rest is denied
sub granted {
    my ($s) = @_;
    my @r = $s->send([
        { channel => '/meta/subscribe', subscription => '/chat/a/b' },
        { channel => '/chat/room', data => { n => 1 } },
        { channel => '/meta/subscribe', subscription => '/news' },
        { channel => '/chat/other', data => { n => 2 } },
    ]);
    return join ' ', map { $_->{successful} ? 'ok' : $_->{error} } @r;
}

sub count_lines {
    my ($re) = @_;
    my $server = Test::Nginx::Bayeux::Conversation::server();
    return scalar grep { /$re/ } split /\n/, $server->error_log_text;
}

__DATA__

=== TEST 1: a valid token (HS256, RS256, ES256) on each transport: accepted, its claims grant, with no request
--- bayeux
for my $alg ('HS256', 'RS256', 'ES256') {
    my $path = { HS256 => '/hs', RS256 => '/rs', ES256 => '/es' }->{$alg};
    for my $t (@main::TRANSPORTS) {
        my $s = Test::Bayeux::Session->new($t, path => $path,
                    ext => { token => main::token($alg) });
        ok $s->handshake->{successful}, "$alg $t: accepted";
        is main::granted($s),
           'ok ok 403:denied_by_security_policy:subscribe_denied '
           . '403:denied_by_security_policy:publish_denied',
           "$alg $t: the claims' grants, and only those";
    }
}
is scalar @{ $main::APP->requests }, 0, 'the application was not asked';
--- no_error_log
[error]

=== TEST 2: tokens that break a rule are denied, each with its reason logged at info
--- bayeux
my $now = time;
my @cases = (
    [ 'expired', '/hs', main::token('HS256', exp => $now - 10) ],
    [ 'not yet valid', '/hs', main::token('HS256', nbf => $now + 3600) ],
    [ 'bad signature', '/hs',
      Test::Bayeux::JWT::jwt_hs256('x' x 32, main::claims()) ],
    [ 'algorithm mismatch', '/rs', main::token('HS256') ],
    [ 'algorithm mismatch', '/hs',
      Test::Bayeux::JWT::jwt_sign('HS256', $main::SECRET, main::claims(),
               header => { alg => 'none', typ => 'JWT' }) ],
    [ 'bad signature', '/es',
      do { my $t = main::token('ES256'); $t =~ s/.{4}$/AAAA/; $t } ],
    [ 'no sub', '/hs', main::token('HS256', sub => '') ],
    [ 'malformed', '/hs', main::token('HS256', subscribe => '/chat/**') ],
    [ 'malformed', '/hs', 'not.a.token' ],
    [ 'too long', '/hs', 'a' x 9000 ],
);
for my $c (@cases) {
    my ($why, $path, $token) = @$c;
    for my $t ('long-polling', 'websocket') {
        my $s = Test::Bayeux::Session->new($t, path => $path,
                                           ext => { token => $token });
        is $s->handshake->{error}, $main::DENIED, "$why ($t): denied";
        is_deeply $s->handshake->{advice}, { reconnect => 'none' },
                  "$why ($t): no retry";
    }
    ok main::count_lines(qr/\[info\].*bayeux: handshake denied: token refused \(\Q$why\E\)/) >= 2,
       "$why: logged";
}
--- no_error_log
[error]

=== TEST 3: no token, no handshake request: denied; with one, the application decides (and a token skips it)
--- bayeux
for my $t (@main::TRANSPORTS) {
    $main::APP->clear;
    my $s = Test::Bayeux::Session->new($t, path => '/hs');
    is $s->handshake->{error}, $main::DENIED, "$t: no token: denied";
    $main::APP->answer('/_app/handshake', status => 200,
                       body => '{"user":"bob","subscribe":["/chat/**"],'
                             . '"publish":["/chat/room"]}');
    $s = Test::Bayeux::Session->new($t, path => '/both');
    ok $s->handshake->{successful}, "$t: no token: asked, accepted";
    is scalar @{ $main::APP->requests }, 1, "$t: one request";
    $s = Test::Bayeux::Session->new($t, path => '/both',
                                    ext => { token => main::token('HS256') });
    ok $s->handshake->{successful}, "$t: a token: accepted";
    is scalar @{ $main::APP->requests }, 1, "$t: with no request";
    $s = Test::Bayeux::Session->new($t, path => '/both',
             ext => { token => main::token('HS256', exp => time - 1) });
    is $s->handshake->{error}, $main::DENIED,
       "$t: a bad token is denied, not asked";
    is scalar @{ $main::APP->requests }, 1, "$t: still one request";
}
--- no_error_log
[error]
