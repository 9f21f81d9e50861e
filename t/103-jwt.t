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
# another pair of each, whose signatures the locations' keys refuse
our %OTHER = (RS256 => [ jwt_keypair($dir, 'RS256', name => 'rs256b') ],
              ES256 => [ jwt_keypair($dir, 'ES256', name => 'es256b') ]);
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
    location /hs2 {
        bayeux;
        bayeux_jwt_key HS256 jjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjj;
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

# a token signed with the test's secret, its header and claims as given
# text; its handshake's error (or 'ok') and the reason logged, if any
sub raw {
    my ($path, $header, $payload, %o) = @_;
    my $token = Test::Bayeux::JWT::jwt_sign('HS256', $o{secret} // $SECRET,
                    undef, header => $header, payload => $payload);
    my @before = reasons();
    my $s = Test::Bayeux::Session->new($o{transport} // 'long-polling',
                path => $path, ext => { token => $token });
    my @after = reasons();
    my $why = @after > @before ? $after[-1] : 'none';
    return ($s->handshake->{successful} ? 'ok' : $s->handshake->{error})
           . " ($why)";
}

sub reasons {
    my $server = Test::Nginx::Bayeux::Conversation::server();
    return $server->error_log_text =~ /token refused \(([^)]*)\)/g;
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


=== TEST 4: the claims are read as JSON whatever their shape: members the module does not know are skipped, each rule holds
--- bayeux
my $H = '{"alg":"HS256","typ":"JWT"}';
my $exp = int(time) + 60;
my $deep = '[' x 70 . ']' x 70;
my @cases = (
    [ 'ok (none)', qq({"sub":"alice","exp":$exp.5,"subscribe":["/chat/**"],)
                 . q("publish":[],"x":{"y":[1,{"z":null}],"sub":3},)
                 . q("b":true,"n":null,"f":-1.5e-3,"s":"\"}]") . '}' ],
    [ 'ok (none)', '{"sub":"alice","exp":1.9e9}' ],
    [ 'ok (none)', ' { "s\u0075b" : "alice" } ' ],
    [ 'ok (none)', '{"sub":"al\u00e9\ud83d\ude00"}' ],
    [ "$main::DENIED (malformed)", '{"sub":"alice","sub":"bob"}' ],
    [ "$main::DENIED (malformed)", '["sub","alice"]' ],
    [ "$main::DENIED (malformed)", '"alice"' ],
    [ "$main::DENIED (malformed)", '' ],
    [ "$main::DENIED (malformed)", '{"sub":"alice"} {}' ],
    [ "$main::DENIED (malformed)", '{"sub":"alice",' ],
    [ "$main::DENIED (malformed)", '{"sub":"al\u0000ice"}' ],
    [ "$main::DENIED (malformed)", '{"sub":5}' ],
    [ "$main::DENIED (malformed)", '{"sub":{"name":"alice"}}' ],
    [ "$main::DENIED (malformed)", '{"sub":"alice","exp":"tomorrow"}' ],
    [ "$main::DENIED (malformed)", '{"sub":"alice","exp":1e400}' ],
    [ "$main::DENIED (malformed)", '{"sub":"alice","exp":[1]}' ],
    [ "$main::DENIED (malformed)",
      '{"sub":"alice","subscribe":["/chat/**",3]}' ],
    [ "$main::DENIED (malformed)",
      '{"sub":"alice","subscribe":["/chat/**",["/a"]]}' ],
    [ "$main::DENIED (malformed)", '{"sub":"alice","publish":"/chat/**"}' ],
    [ "$main::DENIED (malformed)", '{"sub":"alice","publish":["chat"]}' ],
    [ "$main::DENIED (malformed)", qq({"sub":"alice","x":$deep}) ],
    [ "$main::DENIED (malformed)", qq({"sub":"alice","exp":1} x) ],
    [ "$main::DENIED (expired)", qq({"sub":"alice","exp":1,"sub":"b"}) ],
    [ "$main::DENIED (expired)", '{"sub":"alice","exp":1,"nbf":1}' ],
    [ "$main::DENIED (expired)", '{"exp":1}' ],
    [ "$main::DENIED (no sub)", qq({"exp":$exp}) ],
    [ "$main::DENIED (no sub)", '{"sub":""}' ],
    [ "$main::DENIED (not yet valid)",
      qq({"sub":"alice","nbf":) . ($exp + 3600) . '}' ],
);
for my $c (@cases) {
    my ($want, $payload) = @$c;
    is main::raw('/hs', $H, $payload), $want, "claims $payload";
}
--- no_error_log
[error]

=== TEST 5: a header read once is remembered per key, byte for byte: another header is read, and a key never passes what another key read
--- bayeux
my $p = '{"sub":"alice"}';
my @cases = (
    [ '/hs', '{"alg":"HS256","typ":"JWT"}', 'ok (none)' ],
    [ '/hs', '{"alg":"HS256","typ":"JWT","crit":["exp"]}',
      "$main::DENIED (unsupported crit)" ],
    [ '/hs', '{"typ":"JWT","alg":"HS256"}', 'ok (none)' ],
    [ '/hs', '{"alg":"HS256","typ":"JWT"}', 'ok (none)' ],
    [ '/hs', '{"alg":"HS256"}', 'ok (none)' ],
    [ '/hs', '{"alg":"HS256","typ":"jwt","kid":{"a":[1]}}', 'ok (none)' ],
    [ '/hs', '{"alg":"HS256","typ":"JOSE"}', "$main::DENIED (not a JWT)" ],
    [ '/hs', '{"alg":"HS256","typ":"JWT\u0000"}',
      "$main::DENIED (not a JWT)" ],
    [ '/hs', '{"alg":"HS256\u0000","typ":"JWT"}',
      "$main::DENIED (algorithm mismatch)" ],
    [ '/hs', '{"alg":"HS256","typ":"JWT","alg":"HS256"}',
      "$main::DENIED (malformed)" ],
    [ '/hs', '{"typ":"JWT"}', "$main::DENIED (malformed)" ],
    [ '/hs', '{"alg":"hs256","typ":"JWT"}',
      "$main::DENIED (algorithm mismatch)" ],
    [ '/hs', '{"alg":"HS256","typ":"JWT"', "$main::DENIED (malformed)" ],
    [ '/hs', '["HS256"]', "$main::DENIED (malformed)" ],
    [ '/hs', '{"alg":"HS256","typ":"JWT"}', 'ok (none)' ],
    # the header /hs remembers, at the other keys
    [ '/rs', '{"alg":"HS256","typ":"JWT"}',
      "$main::DENIED (algorithm mismatch)" ],
    [ '/es', '{"alg":"HS256","typ":"JWT"}',
      "$main::DENIED (algorithm mismatch)" ],
    [ '/hs2', '{"alg":"HS256","typ":"JWT"}',
      "$main::DENIED (bad signature)" ],
    [ '/hs2', '{"alg":"HS256","typ":"JWT"}', 'ok (none)',
      'j' x 32 ],
    [ '/hs', '{"alg":"HS256","typ":"JWT"}',
      "$main::DENIED (bad signature)", 'j' x 32 ],
    [ '/hs', '{"alg":"HS256","typ":"JWT"}', 'ok (none)' ],
);
for my $t ('long-polling', 'websocket') {
    for my $c (@cases) {
        my ($path, $header, $want, $secret) = @$c;
        is main::raw($path, $header, $p, transport => $t,
                     $secret ? (secret => $secret) : ()),
           $want, "$t $path $header" . ($secret ? ' (other secret)' : '');
    }
}
--- no_error_log
[error]

=== TEST 6: RS256 and ES256: a worker's verification passes and refuses tokens in any order, a refusal leaving nothing behind for the next
--- bayeux
for my $alg ('RS256', 'ES256') {
    my $path = $alg eq 'RS256' ? '/rs' : '/es';
    my $good = main::token($alg);
    my $other = Test::Bayeux::JWT::jwt_sign($alg, $main::OTHER{$alg}[0],
                                            main::claims());
    (my $short = $good) =~ s/\.[^.]*$/.AAAA/;
    my $flipped = $good;
    substr($flipped, -10, 1) = substr($flipped, -10, 1) eq 'A' ? 'B' : 'A';
    my $bob = main::token($alg, sub => 'bob');
    my @seq = ([ good => $good, 'ok' ], [ other => $other, 'bad signature' ],
               [ good => $good, 'ok' ], [ flipped => $flipped,
                                          'bad signature' ],
               [ bob => $bob, 'ok' ], [ short => $short, 'bad signature' ],
               [ other => $other, 'bad signature' ], [ good => $good, 'ok' ]);
    for my $t ('long-polling', 'websocket') {
        my @got = map {
            my $s = Test::Bayeux::Session->new($t, path => $path,
                                               ext => { token => $_->[1] });
            $s->handshake->{successful} ? 'ok' : $s->handshake->{error};
        } @seq;
        is "@got", join(' ', map { $_->[2] eq 'ok' ? 'ok' : $main::DENIED }
                                 @seq),
           "$alg $t: " . join(' ', map { $_->[0] } @seq);
    }
    ok main::count_lines(qr/token refused \(bad signature\)/)
       >= ($alg eq 'RS256' ? 8 : 16),
       "$alg: the refusals say why";
}
--- no_error_log
[error]


=== TEST 7: ext.token is the first string member "token" of ext, as sent in any shape or in pieces; elsewhere in ext it is no token
--- bayeux
my $good = main::token('HS256');
(my $escaped = $good) =~ s/^e/\\u0065/;
my @cases = (
    [ qq({"token":"$good"}), 'ok' ],
    [ qq({"ack":true,"token":"$good","timesync":{"tc":1,"l":0,"o":0}}),
      'ok' ],
    [ qq({"token":"$escaped"}), 'ok' ],
    [ qq({"token":5,"token":"$good"}), 'ok' ],
    [ qq({"token":"$good","token":"x"}), 'ok' ],
    [ qq({"token":"x","token":"$good"}), 'token refused (malformed)' ],
    [ '{"token":""}', 'token refused (malformed)' ],
    [ '{"token":5}', 'no token' ],
    [ '{"token":null}', 'no token' ],
    [ qq({"token":["$good"]}), 'no token' ],
    [ qq({"token":{"token":"$good"}}), 'no token' ],
    [ qq({"x":{"token":"$good"}}), 'no token' ],
    [ qq({"Token":"$good"}), 'no token' ],
    [ '{}', 'no token' ],
);
my $c = $server->client(path => '/hs');
for my $case (@cases) {
    my ($ext, $want) = @$case;
    my $body = '[{"channel":"/meta/handshake","version":"1.0",'
             . '"supportedConnectionTypes":["long-polling"],"ext":'
             . $ext . '}]';
    for my $pieces (1, 3) {
        my $n = int(length($body) / $pieces) + 1;
        my @chunks = unpack "(a$n)*", $body;
        my $before = () = $server->error_log_text =~ /handshake denied/g;
        my $r = $c->post('', undef, raw_body => $body,
                         $pieces > 1 ? (chunked => \@chunks) : ());
        my @why = $server->error_log_text =~ /handshake denied: ([^\n]*)/g;
        my $got = $r->json && $r->json->[0]{successful} ? 'ok'
                : @why > $before ? $why[-1] : 'denied, no reason';
        $got =~ s/, client: .*//;
        is $got, $want, "ext $ext in $pieces piece(s)";
    }
}
--- no_error_log
[error]
