# CometD's multiple-clients rule: the tabs of one browser (one
# BAYEUX_BROWSER cookie) hold at most bayeux_max_sessions_per_browser
# long-polls; the others poll.

use strict;
use warnings;

use lib 't/lib';
use Test::Nginx::Bayeux;

block_defaults(config => <<'CONF');
    location /cometd {
        bayeux;
        bayeux_timeout 2s;
        bayeux_multi_session_interval 1500ms;
    }
CONF

run_tests();

__DATA__

=== TEST 1: the handshake sets the BAYEUX_BROWSER cookie, once
--- bayeux
my $c = client();
$c->handshake;
my $set = $c->last_response->header('Set-Cookie');
like($set, qr/^BAYEUX_BROWSER=[0-9a-f]{32}; Path=\/; HttpOnly$/, 'cookie set');
$c->handshake;
ok(!defined $c->last_response->header('Set-Cookie'), 'not again when the browser has it');



=== TEST 2: a second tab gets multiple-clients advice and polls
--- bayeux
my $jar = {};
my $tab1 = client(cookie_jar => $jar);
my $tab2 = client(cookie_jar => $jar);
$tab1->handshake;
$tab2->handshake;
ok(exists $jar->{BAYEUX_BROWSER}, 'one browser');
$tab1->connect;
$tab2->connect;
my $held = $tab1->connect_start;
sleep 0.3;
my $r = $tab2->connect(timeout => 5);
cmp_ok($r->{elapsed}, '<', 0.5, 'the second tab is not held');
ok($r->{reply}{successful}, 'successful');
is_deeply($r->{reply}{advice}, { reconnect => 'retry', interval => 1500,
                                 timeout => 2000,
                                 'multiple-clients' => JSON::PP::true },
          'multiple-clients advice with bayeux_multi_session_interval');
my $r1 = $tab1->connect_finish($held, timeout => 5);
cmp_ok($r1->{elapsed}, '>=', 1.9, 'the first tab was held');

# the same session's newer connect is not another tab
my $h1 = $tab1->connect_start;
sleep 0.2;
my $h2 = $tab1->connect_start;
$r1 = $tab1->connect_finish($h1, timeout => 5);
cmp_ok($r1->{elapsed}, '<', 1, 'older connect of the same tab answered');
$r1 = $tab1->connect_finish($h2, timeout => 5);
cmp_ok($r1->{elapsed}, '>=', 1.5, 'newer one held, not refused');
ok(!$r1->{reply}{advice}{'multiple-clients'}, 'no multiple-clients advice');



=== TEST 3: another browser is not limited; a freed slot can be taken
--- bayeux
my $a = client();
my $b = client();
$a->handshake; $b->handshake;
$a->connect; $b->connect;
my $ha = $a->connect_start;
sleep 0.2;
my $r = $b->connect(timeout => 5);
cmp_ok($r->{elapsed}, '>=', 1.5, 'a tab of another browser is held too');
$a->connect_finish($ha, timeout => 5);

my $jar = {};
my $t1 = client(cookie_jar => $jar); $t1->handshake; $t1->connect;
my $t2 = client(cookie_jar => $jar); $t2->handshake; $t2->connect;
my $h = $t1->connect_start;
sleep 0.2;
$t1->disconnect;
$t1->connect_finish($h, timeout => 5);
$r = $t2->connect(timeout => 5);
cmp_ok($r->{elapsed}, '>=', 1.5, 'after the first tab left, the second is held');



=== TEST 4: bayeux_max_sessions_per_browser 2
--- config
    location /cometd {
        bayeux;
        bayeux_timeout 1s;
        bayeux_max_sessions_per_browser 2;
    }
--- bayeux
my $jar = {};
my @tabs = map { client(cookie_jar => $jar) } 1 .. 3;
$_->handshake for @tabs;
$_->connect for @tabs;
my @h = map { $_->connect_start } @tabs[0, 1];
sleep 0.2;
my $r = $tabs[2]->connect(timeout => 5);
ok($r->{reply}{advice}{'multiple-clients'}, 'the third tab polls');
my @r = map { $tabs[$_]->connect_finish($h[$_], timeout => 5) } 0, 1;
ok(!$_->{reply}{advice}{'multiple-clients'}, 'the first two were held') for @r;



=== TEST 5: a connect without clientId but with a BAYEUX_BROWSER cookie: 402, and it holds no slot of the browser
--- request
POST /cometd/connect
[{"channel":"/meta/connect","connectionType":"long-polling"}]
--- more_headers
Content-Type: application/json
Cookie: BAYEUX_BROWSER=0123456789abcdef0123456789abcdef
--- error_code: 200
--- response_body: [{"channel":"/meta/connect","successful":false,"error":"402::session_unknown","advice":{"reconnect":"handshake","interval":0}}]
--- bayeux
my $c = client(headers => [ Cookie => 'BAYEUX_BROWSER=0123456789abcdef0123456789abcdef' ]);
$c->handshake;
$c->connect;
my $r = $c->connect(timeout => 5);
ok(!$r->{reply}{advice}{'multiple-clients'}, 'the next connect of that browser is held');
cmp_ok($r->{elapsed}, '>=', 1.5, 'for the hold time');
--- no_error_log
[error]
