# CometD's server extensions that are always there or a directive away:
# timesync (ext.timesync {tc, l, o} in a /meta message; the reply's
# ext.timesync {tc, ts, p, a} as CometD's TimesyncExtension computes
# them, merged with the application's ext) and timestamp
# (bayeux_timestamp on: a "timestamp" on every message sent, in the
# format of CometD's TimestampExtension).

use strict;
use warnings;

use lib 't/lib';
use Test::Nginx::Bayeux;
use Test::Bayeux::App;
use POSIX qw(strftime);
use Time::HiRes qw(time sleep);

our $APP = Test::Bayeux::App->new;
$ENV{TEST_NGINX_APP_PORT} = $APP->port;

sub now_ms { int(time * 1000) }

run_tests();

__DATA__

=== TEST 1: timesync: tc echoed, ts the server's time when the message came, p its time to reply, a = tc + o + l - ts
--- config
    location /cometd { bayeux; bayeux_timeout 1s; }
--- bayeux
my $c = client();
# a client clock 5 s behind, no estimate yet (l = 0: always answered)
my $before = main::now_ms();
my $tc = $before - 5000;
my $r = $c->handshake(ext => { timesync => { tc => $tc, l => 0, o => 0 } });
my $after = main::now_ms();
my $t = $r->{ext}{timesync};
is_deeply([ sort keys %{ $t || {} } ], [ qw(a p tc ts) ], 'tc, ts, p, a');
is($t->{tc}, $tc, 'tc echoed');
cmp_ok($t->{ts}, '>=', $before - 5, 'ts: the server time, not before the request');
cmp_ok($t->{ts}, '<=', $after + 5, 'ts: not after the reply');
cmp_ok($t->{p}, '>=', 0, 'p >= 0');
cmp_ok($t->{p}, '<', 100, 'p: a handshake takes no time');
is($t->{a}, $tc - $t->{ts}, 'a = tc + o + l - ts');

# a held connect: p is the time it was held
$c->connect;
$tc = main::now_ms();
$r = $c->connect(ext => { timesync => { tc => $tc, l => 3, o => 2000 } });
$t = $r->{reply}{ext}{timesync};
ok($t, 'a connect is answered with timesync');
cmp_ok($t->{p}, '>=', 900, 'p: the connect was held about 1 s');
cmp_ok($t->{p}, '<', 1500, 'p: not much longer');
is($t->{a}, $tc + 2000 + 3 - $t->{ts}, 'a with o and l');

# an estimate within 25 ms (CometD's accuracy target): nothing to say
$tc = main::now_ms();
$r = $c->publish('/x', 1, ext => { timesync => { tc => $tc, l => 1, o => 0 } });
ok(!exists $r->{ext}, 'not a /meta message: no timesync');
$r = $c->subscribe('/y', { ext => { timesync => { tc => main::now_ms(), l => 1, o => 0 } } });
ok($r->{successful} && !exists $r->{ext}, 'accurate enough: no timesync');

# the old form, without l and o: tc, ts, p
$tc = main::now_ms();
$r = $c->unsubscribe('/y', { ext => { timesync => { tc => $tc } } });
is_deeply([ sort keys %{ $r->{ext}{timesync} || {} } ], [ qw(p tc ts) ],
          'the old form: tc, ts, p');

# a refused message is answered too; absurd numbers are ignored
my $x = client(); $x->client_id('0' x 40);
$r = $x->connect(ext => { timesync => { tc => 1, l => 0, o => 0 } });
is($r->{reply}{error}, '402::session_unknown', 'refused');
is($r->{reply}{ext}{timesync}{tc}, 1, 'with timesync');
$r = $c->subscribe('/z', { ext => { timesync => { tc => 9e15, l => 0, o => 0 } } });
ok($r->{successful} && !exists $r->{ext}, 'tc beyond 2^53: ignored');
--- no_error_log
[error]



=== TEST 2: timesync merges with the ext the application gives a handshake: one "ext"
--- config
    location /cometd {
        bayeux;
        bayeux_handshake_request /_app/handshake;
    }
    location /_app/ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_APP_PORT;
    }
--- bayeux
for my $ext ('{"greeting":"hi","n":[1,{"k":"}"}]}', '{}') {
    $main::APP->clear;
    $main::APP->answer('/_app/handshake', status => 200,
                       body => '{"ext":' . $ext . '}');
    my $c = client();
    my $res = $c->post('/handshake', [ { channel => '/meta/handshake',
        version => '1.0', supportedConnectionTypes => [ 'long-polling' ],
        ext => { timesync => { tc => 1000, l => 0, o => 0 } } } ]);
    my $body = $res->body;
    my @n = $body =~ /"ext":/g;
    is(scalar @n, 1, "$ext: one ext") or diag $body;
    my $got = $res->{messages}[0]{ext};
    my $want = $c->decode_json($ext);
    is($got->{timesync}{tc}, 1000, "$ext: timesync in it");
    delete $got->{timesync};
    is_deeply($got, $want, "$ext: the application's members kept");
}
--- no_error_log
[error]



=== TEST 3: bayeux_timestamp on: replies and deliveries carry CometD's timestamp
--- config
    location /cometd { bayeux; bayeux_timeout 1s; bayeux_timestamp on; }
--- bayeux
my $fmt = qr/\A(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d\d \d\d:\d\d:\d\d \S+ \d{4}\z/;
my @now = map { POSIX::strftime('%a %b %d %H:%M:%S %Z %Y', localtime(CORE::time() + $_)) } -1, 0, 1;
my $c = client();
my $r = $c->handshake;
like($r->{timestamp}, $fmt, 'handshake reply: "EEE MMM dd HH:mm:ss zzz yyyy"');
ok((grep { $_ eq $r->{timestamp} } @now), 'now, in the local time zone')
    or diag "$r->{timestamp} vs @now";
$c->subscribe('/t');
$r = $c->connect;
like($r->{reply}{timestamp}, $fmt, 'connect reply');
my $pub = client(); $pub->handshake;
my $p = $pub->publish('/t', 'hello');
like($p->{timestamp}, $fmt, 'publish reply');
$r = $c->connect;
is(scalar @{ $r->{deliveries} }, 1, 'one delivery');
like($r->{deliveries}[0]{timestamp}, $fmt, 'the delivery');
my $x = client(); $x->client_id('0' x 40);
$r = $x->connect;
like($r->{reply}{timestamp}, $fmt, 'an error reply');
--- no_error_log
[error]



=== TEST 4: without bayeux_timestamp, no timestamp
--- config
    location /cometd { bayeux; bayeux_timeout 1s; }
--- bayeux
my $c = client();
my $r = $c->handshake;
ok(!exists $r->{timestamp}, 'handshake reply');
$c->subscribe('/t');
$c->connect;
client()->handshake;
my $pub = client(); $pub->handshake;
ok(!exists $pub->publish('/t', 'hello')->{timestamp}, 'publish reply');
$r = $c->connect;
ok(!exists $r->{deliveries}[0]{timestamp}, 'the delivery');
