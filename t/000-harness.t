# Self-tests of the test harness (t/lib/Test/Nginx/Bayeux.pm), the server
# manager (Test::Nginx::Bayeux::Server) and the HTTP layer of the Bayeux
# client (t/lib/Bayeux/Client.pm), against plain nginx: no block loads the
# Bayeux module.

use strict;
use warnings;

use lib 't/lib';
use Test::Nginx::Bayeux;

use Bayeux::Client;
use File::Temp qw(tempdir);
use Test::Nginx::Bayeux::Server;
use Time::HiRes qw(time sleep);

block_defaults(no_module => 1);

run_tests();

my $Server = 'Test::Nginx::Bayeux::Server';

# A process that exists and is not a zombie.
sub alive {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my $stat = <$fh> // return 0;
    return $stat !~ /\)\s+Z\s/;
}

#
# Test::Nginx::Bayeux::Server used directly
#

{
    # free_port() never hands out a port twice, though the kernel may
    # give a closed socket's port again (two listens of one test, the
    # second bound after the first server started, collided so)
    local $ENV{TEST_NGINX_PORT};
    my %seen;
    my $twice = grep { $seen{ Test::Nginx::Bayeux::Server::free_port() }++ }
                1 .. 2000;
    is($twice, 0, 'free_port: 2000 ports, none handed out twice');
}

{
    # two servers at once, reload, kill
    my $a = $Server->new(no_module => 1,
                         config => 'location / { return 200 "a"; }');
    my $b = $Server->new(no_module => 1, workers => 2,
                         config => 'location / { return 200 "b1"; }');
    $a->start;
    $b->start;
    SKIP: {
        skip 'no worker processes under valgrind', 1 if use_valgrind();
        # nginx listens before it forks its workers: taken at once, the
        # worker pids may be none yet (util/fuzz saw that under ASan)
        is scalar(my @w = $b->wait_workers), 2,
           'server: wait_workers, right after start: both workers';
    }
    isnt $a->port, $b->port, 'server: two servers, two ports';
    isnt $a->root, $b->root, 'server: two servers, two roots';

    my $ca = Bayeux::Client->new(port => $a->port);
    my $cb = Bayeux::Client->new(port => $b->port);
    is $ca->request(method => 'GET', uri => '/')->body, 'a', 'server: a';
    is $cb->request(method => 'GET', uri => '/')->body, 'b1', 'server: b';
    SKIP: {
        skip 'no worker processes under valgrind', 1 if use_valgrind();
        is scalar(my @w = $b->worker_pids), 2, 'server: b has two workers';
    }

    my $old_master = $b->pid;
    ok $b->reload(config => 'location / { return 200 "b2"; }'),
        'server: reload done';
    is $b->pid, $old_master, 'server: same master after reload';
    SKIP: {
        # (nginx applies a reload only with a master process)
        skip 'no master process under valgrind', 1 if use_valgrind();
        is $cb->request(method => 'GET', uri => '/', new_connection => 1)
            ->body, 'b2', 'server: new config after reload';
    }

    my @pids = ($b->pid, $b->worker_pids);
    $b->kill;
    ok !$b->running, 'server: killed';
    ok !(grep { alive($_) } @pids), 'server: no process left after kill';
    is $ca->request(method => 'GET', uri => '/')->body, 'a',
        'server: a still up';

    my $off = $a->error_log_offset;
    $ca->request(method => 'GET', uri => '/missing-marker-uri');
    ok $a->wait_for_log(qr/missing-marker-uri/, offset => $off, timeout => 5),
        'server: wait_for_log';
    ok $a->stop, 'server: graceful stop';
    like $a->error_log_text, qr/signal 3 \(SIGQUIT\) received/,
        'server: error_log_text has the shutdown';

    # a restart keeps the logs; error_log_text is since the last start
    $a->start;
    is $ca->request(method => 'GET', uri => '/', new_connection => 1)->body,
        'a', 'server: restarted';
    unlike $a->error_log_text, qr/missing-marker-uri/,
        'server: error_log_text is since the restart';
    like $a->all_log_text, qr/missing-marker-uri/,
        'server: all_log_text is since the first start';
    $a->stop;
}

{
    # the test process is killed: its nginx does not outlive it
    my $dir = tempdir(CLEANUP => 1);
    local $ENV{TEST_NGINX_SERVROOT} = $dir;
    my $pid = open(my $fh, '-|', $^X, '-It/lib', '-e', <<'PERL') or die;
use Test::Nginx::Bayeux::Server;
my $s = Test::Nginx::Bayeux::Server->new(no_module => 1, workers => 2,
    config => 'location / { return 200; }');
$s->start;
$| = 1;
print join(' ', $s->pid, $s->worker_pids), "\n";
sleep 60;
PERL
    my @pids = split ' ', scalar(<$fh> // '');
    ok @pids >= 1, 'watchdog: subprocess started nginx';
    kill 'KILL', $pid;
    waitpid($pid, 0);
    my $deadline = time + 5;
    sleep 0.01 while (grep { alive($_) } @pids) && time < $deadline;
    ok !(grep { alive($_) } @pids), 'watchdog: nginx gone with its test';
}

{
    # a missing module: start fails, start_error tells why
    my $s = $Server->new(module => '/nonexistent/ngx_bayeux_module.so',
                         config => 'location / { return 200; }');
    ok !$s->try_start, 'server: bad module path does not start';
    like $s->start_error, qr/dlopen\(\) "\/nonexistent/,
        'server: start_error has the dlopen error';
    ok !eval { $s->start; 1 }, 'server: start dies';
    like $s->conf_text, qr{^load_module /nonexistent/ngx_bayeux_module\.so;}m,
        'server: load_module line';
}

{
    # variable substitution: ours replaced, nginx's kept
    local $ENV{TEST_NGINX_FOO} = 'foo-value';
    my $s = $Server->new(no_module => 1, port => 12345,
        config => 'return 200 "$TEST_NGINX_FOO ${TEST_NGINX_FOO} $uri '
                . '${host} $TEST_NGINX_SERVER_PORT";');
    like $s->build_conf,
        qr/return 200 "foo-value foo-value \$uri \$\{host\} 12345";/,
        'server: $TEST_NGINX_* substituted, nginx variables kept';
    ok !eval { $s->expand('$TEST_NGINX_NOT_SET_ANYWHERE'); 1 },
        'server: unknown $TEST_NGINX_ variable dies';
}

{
    # the valgrind log parser, on made-up logs
    my $dir = tempdir(CLEANUP => 1);
    mkdir "$dir/logs";
    my $s = $Server->new(no_module => 1, root => $dir);
    open my $fh, '>', "$dir/logs/valgrind.1.log" or die;
    print $fh <<'LOG';
==1== Memcheck, a memory error detector
==1== 
==1== 8 bytes in 1 blocks are definitely lost in loss record 1 of 9
==1==    at 0x48417B4: malloc (vg_replace_malloc.c:381)
==1==    by 0x154CFE: ngx_alloc (ngx_alloc.c:22)
==1==    by 0x12E404: ngx_set_environment (nginx.c:612)
==1== 
==1== ERROR SUMMARY: 1 errors from 1 contexts (suppressed: 0 from 0)
LOG
    close $fh;
    is $s->valgrind_errors, '', 'valgrind: leak outside the module ignored';

    open $fh, '>', "$dir/logs/valgrind.2.log" or die;
    print $fh <<'LOG';
==2== 
==2== Invalid read of size 4
==2==    at 0x1234: ngx_bayeux_channel_match (ngx_bayeux_channel.c:42)
==2== 
==2== 16 bytes in 1 blocks are definitely lost in loss record 2 of 9
==2==    at 0x48417B4: malloc (vg_replace_malloc.c:381)
==2==    by 0x5678: ngx_bayeux_session_create (ngx_bayeux_session.c:10)
==2== 
LOG
    close $fh;
    my $errors = $s->valgrind_errors;
    like $errors, qr/Invalid read of size 4/, 'valgrind: invalid read found';
    like $errors, qr/definitely lost.*\n.*\n.*ngx_bayeux_session_create/,
        'valgrind: module leak found';
}

#
# Bayeux::Client: the HTTP layer, against plain nginx
#

my $fake = $Server->new(no_module => 1, user_files => { 'slow.txt' => 'slow' },
                       http_config => <<'HTTP', config => <<'CONF');
    limit_req_zone $server_port zone=slow:1m rate=2r/s;
HTTP
    location = /conn {
        return 200 "$connection:$connection_requests";
    }
    location = /slow {
        # (return would answer before limit_req runs)
        limit_req zone=slow burst=10;
        root html;
        try_files /slow.txt =404;
    }
    location = /cookie {
        add_header Set-Cookie "BAYEUX_BROWSER=b123; Path=/";
        return 200 "[]";
    }
    location = /echo-headers {
        return 200 "cookie=$http_cookie ct=$content_type te=$http_transfer_encoding";
    }
    location = /echo-body {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/sink;
        proxy_set_header X-Body $request_body;
    }
    location = /sink {
        return 200 "$http_x_body";
    }
    location = /jsonp/connect {
        default_type text/javascript;
        return 200 '$arg_jsonp([{"channel":"/meta/connect","successful":true,"q":"$arg_message"}])';
    }
    location /cometd {
        default_type application/json;
        return 200 '[{"channel":"/meta/handshake","successful":true,"clientId":"c1","id":"1","advice":{"reconnect":"retry"}},{"channel":"/foo","data":{"n":1},"id":"1"}]';
    }
CONF
$fake->start;

{
    my $c = Bayeux::Client->new(port => $fake->port);

    # keep-alive: two requests on one connection
    my $r1 = $c->request(method => 'GET', uri => '/conn');
    my $r2 = $c->request(method => 'GET', uri => '/conn');
    is $r1->status, 200, 'client: first request';
    my ($c1, $n1) = split /:/, $r1->body;
    my ($c2, $n2) = split /:/, $r2->body;
    is "$c2:$n2", "$c1:2", 'client: second request on the same connection';
    is $c->connections, 1, 'client: one connection open';

    # a request left waiting on one connection while another completes
    $c->request(method => 'GET', uri => '/slow');      # uses up the burst slot
    my $h = $c->request_start(method => 'GET', uri => '/slow');
    my $quick = $c->request(method => 'GET', uri => '/conn');
    is $quick->status, 200, 'client: request on another connection';
    is $c->connections, 2, 'client: two connections open';
    ok !$h->ready, 'client: held request not ready yet';
    my $poll = $c->request_finish($h, timeout => 0);
    ok $poll->timed_out, 'client: request_finish with timeout 0 polls';
    ok(Bayeux::Client->wait_any(5, $h), 'client: wait_any');
    my $slow = $c->request_finish($h, timeout => 5);
    is $slow->body, 'slow', 'client: held request completed';
    cmp_ok $slow->elapsed, '>', 0.1, 'client: elapsed measured (> 0.1 s)';
    cmp_ok $slow->elapsed, '<', 2, 'client: elapsed measured (< 2 s)';

    # abandon a pending request
    my $h2 = $c->request_start(method => 'GET', uri => '/slow');
    $c->abandon($h2);
    is $c->request(method => 'GET', uri => '/conn')->status, 200,
        'client: works after abandon';

    # chunked request body, content type, form body
    my $e = $c->request(uri => '/echo-body', body => 'hello chunked world',
                        chunked => 5);
    is $e->body, 'hello chunked world', 'client: chunked body received';
    my $h3 = $c->request(uri => '/echo-headers', body => 'x', chunked => 1,
                         content_type => 'text/x-test');
    like $h3->body, qr/ct=text\/x-test te=chunked/,
        'client: content type and transfer-encoding sent';
    my $ec = Bayeux::Client->new(port => $fake->port, path => '/echo-body');
    my $f = $ec->post('', [ { channel => '/a' } ], form => 1);
    like $f->body, qr/^message=%5B%7B%22channel%22%3A%22%2Fa%22/,
        'client: form-encoded message= body';

    # cookies are kept and sent back
    $c->request(method => 'GET', uri => '/cookie');
    is $c->cookie_jar->{BAYEUX_BROWSER}, 'b123', 'client: cookie kept';
    like $c->request(method => 'GET', uri => '/echo-headers')->body,
        qr/cookie=BAYEUX_BROWSER=b123/, 'client: cookie sent';

    # the Bayeux layer against a canned reply
    my $b = Bayeux::Client->new(port => $fake->port);
    my $reply = $b->handshake;
    is $reply->{clientId}, 'c1', 'client: handshake reply';
    is $b->client_id, 'c1', 'client: client_id set';
    is $b->advice->{reconnect}, 'retry', 'client: advice kept';
    my $d = $b->deliveries;
    is scalar @$d, 1, 'client: delivery collected';
    is $d->[0]{data}{n}, 1, 'client: delivery data';
    my ($status, $msgs, $body) = $b->post('/', [ { channel => '/x' } ]);
    is $status, 200, 'client: post in list context: status';
    is ref $msgs, 'ARRAY', 'client: post in list context: messages';
    like $body, qr/^\[/, 'client: post in list context: body';
    my $r = $b->connect(timeout => 5);
    is $r->{status}, 200, 'client: connect status';
    ok !$r->{timed_out}, 'client: connect not timed out';
    ok defined $r->{elapsed}, 'client: connect elapsed';
    is scalar @{ $r->{deliveries} }, 1, 'client: connect deliveries';

    # callback-polling (JSONP)
    my $j = Bayeux::Client->new(port => $fake->port, path => '/jsonp');
    my $jr = $j->post('/connect', [ { channel => '/meta/connect' } ],
                      jsonp => 'cb7');
    like $jr->body, qr/^cb7\(\[/, 'client: jsonp callback';
    is $jr->{messages}[0]{channel}, '/meta/connect', 'client: jsonp decoded';
    like $jr->{messages}[0]{q}, qr/^%5B%7B%22channel%22/,
        'client: jsonp message= parameter';
}

$fake->stop;

{
    # a server that is down: errors, not exceptions
    my $c = Bayeux::Client->new(port => $fake->port);
    my $r = $c->request(method => 'GET', uri => '/');
    ok !defined $r->status, 'client: no status when the server is down';
    like $r->error, qr/cannot connect/, 'client: ... and an error';
    ok !defined $c->handshake, 'client: handshake gives no reply';
    ok !defined $c->client_id, 'client: ... and no clientId';
}

#
# The harness seen from outside: a test file in a subprocess (ONLY, a
# failing block, a block whose nginx does not start)
#

sub run_file {
    my ($text) = @_;
    my $dir = tempdir(CLEANUP => 1);
    open my $fh, '>', "$dir/x.t" or die;
    print $fh $text;
    close $fh;
    local $ENV{TEST_NGINX_SERVROOT} = "$dir/servroot";
    my $out = `$^X -It/lib $dir/x.t 2>&1`;
    return ($out, $? >> 8);
}

{
    my ($out, $rc) = run_file(<<'T');
use Test::Nginx::Bayeux;
block_defaults(no_module => 1);
run_tests();
__DATA__
=== TEST 1: not run
--- config
location / { return 200; }
--- request
GET /
--- error_code: 200
=== TEST 2: only this
--- ONLY
--- config
location / { return 200 "only"; }
--- request
GET /
--- response_body: only
T
    like $out, qr/^ok 1 - TEST 2: only this - response_body ok$/m,
        'subprocess: ONLY block ran';
    unlike $out, qr/TEST 1/, 'subprocess: other block not run';
    like $out, qr/^1\.\.1$/m, 'subprocess: plan counted';
    is $rc, 0, 'subprocess: exit code 0';
}

{
    my ($out, $rc) = run_file(<<'T');
use Test::Nginx::Bayeux;
plan tests => blocks() * 2;
block_defaults(no_module => 1);
run_tests();
__DATA__
=== TEST 1: wrong body
--- config
location / { return 200 "right"; }
--- request
GET /
--- error_code: 200
--- response_body: wrong
=== TEST 2: nginx does not start
--- config
location / { no_such_directive; }
--- request
GET /
--- error_code: 200
--- response_body: x
=== TEST 3: must_die but starts
--- config
location / { return 200; }
--- must_die
--- error_log
nothing
T
    like $out, qr/^1\.\.6$/m, 'subprocess: declared plan';
    like $out, qr/^ok 1 - TEST 1: wrong body - status code ok/m,
        'subprocess: passing check';
    like $out, qr/^not ok 2 - TEST 1: wrong body - response_body ok/m,
        'subprocess: failing check';
    like $out, qr/server root of the failed block: .*block-1/,
        'subprocess: failed block root named';
    like $out, qr/^not ok 3 - TEST 2: nginx does not start - status code/m,
        'subprocess: nginx not started fails the checks';
    like $out, qr/unknown directive "no_such_directive"/,
        'subprocess: start error in the diagnostics';
    like $out, qr/^not ok 5 - TEST 3: must_die but starts - nginx failed/m,
        'subprocess: must_die that starts fails';
    is $rc, 5, 'subprocess: five failures';
}

{
    my ($out, $rc) = run_file(<<'T');
use Test::Nginx::Bayeux;
block_defaults(no_module => 1);
run_tests();
__DATA__
=== TEST 1: a conversation that dies
--- config
location / { return 200; }
--- bayeux
ok 1, 'before';
die "conversation broke\n";
=== TEST 2: a conversation that does not compile
--- config
location / { return 200; }
--- bayeux
ok(1,
T
    like $out, qr/^ok 1 - before$/m, 'subprocess: conversation ran';
    like $out, qr/^not ok 2 - TEST 1: .* - bayeux section ran to the end$/m,
        'subprocess: die fails the block';
    like $out, qr/conversation broke/, 'subprocess: with the message';
    like $out, qr/^not ok 3 - TEST 2: .* - bayeux section compiles$/m,
        'subprocess: syntax error fails the block';

    ($out, $rc) = run_file(<<'T');
use Test::Nginx::Bayeux;
run_tests();
__DATA__
=== TEST 1: bad eval
--- request eval
["GET /a",
T
    like $out, qr/eval of a section of TEST 1: bad eval failed/,
        'subprocess: an eval section that does not compile stops the file';
    isnt $rc, 0, 'subprocess: ... with an error';
}

SKIP: {
    skip 'no worker processes under valgrind', 3 if use_valgrind();
    my ($out, $rc) = run_file(<<'T');
use Test::Nginx::Bayeux;
block_defaults(no_module => 1);
run_tests();
__DATA__
=== TEST 1: a worker crashes
--- config
location / { return 200; }
--- bayeux
my ($w) = $server->worker_pids;
kill 'SEGV', $w;
# (an nginx built with ASan reports the SEGV itself and exits with 1)
ok $server->wait_for_log(qr/exited on signal 11|AddressSanitizer: SEGV/),
    'crash logged';
T
    like $out, qr/^ok 1 - crash logged/m, 'subprocess: worker crashed';
    like $out, qr/^not ok 2 - TEST 1: a worker crashes - no process crashed/m,
        'subprocess: a crash fails the block';
    is $rc, 1, 'subprocess: one failure';
}

__DATA__

=== TEST 1: plain response, headers, body, no error
--- config
    location / { return 200 "hello"; }
--- request
GET /
--- error_code: 200
--- response_headers
Content-Type: text/plain
Content-Length: 5
!X-Not-There
--- response_headers_like eval
["Server: ^nginx/\\d+\\.", "Content-Type: ^text/"]
--- response_body: hello
--- no_error_log
[error]
[warn]



=== TEST 2: body with a trailing newline, body_like
--- config
    location / { return 200 "line one\nline two\n"; }
--- request
GET /
--- response_body
line one
line two
--- response_body_like: ^line one\nline
--- response_body_unlike: three



=== TEST 3: must_die with a bad directive
--- config
    location / { bogus_directive on; }
--- must_die
--- error_log
[emerg]
unknown directive "bogus_directive"
qr/in \S+nginx\.conf:\d+/



=== TEST 4: error_log at info level, regex and plain patterns
--- log_level: info
--- config
    location / { root html; }
--- request
GET /missing.txt
--- error_code: 404
--- error_log
open() "
qr/\[error\] \d+#\d+: \*\d+ open\(\) ".*missing\.txt" failed \(2: No such file/
--- no_error_log
[debug]
[alert]



=== TEST 5: error_log eval with strings and regexes
--- config
    location / { return 200; }
--- request
GET /abc?x=1
--- error_log eval
["http request line: \"GET /abc?x=1 HTTP/1.1\"", qr/http args: "x=1"/]
--- no_error_log eval
qr/\[(?:error|crit|alert|emerg)\]/



=== TEST 6: several requests on one server start
--- config
    location = /a { return 200 "A"; }
    location = /b { return 201 "B"; }
--- request eval
["GET /a", "GET /b", "GET /c"]
--- error_code eval
[200, 201, 404]
--- response_body_like eval
["^A\$", "^B\$", "404 Not Found"]



=== TEST 7: request body and Content-Length, more_headers
--- config
    location = /cometd/handshake {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/sink;
        proxy_set_header X-Body $request_body;
        proxy_set_header X-Len $http_content_length;
        proxy_set_header X-Custom $http_x_custom;
    }
    location = /sink {
        return 200 "$http_x_body|$http_x_len|$http_x_custom";
    }
--- request
POST /cometd/handshake
[{"channel":"/meta/handshake","port":"$TEST_NGINX_SERVER_PORT"}]
--- more_headers
Content-Type: application/json
X-Custom: custom value
--- response_body_like: ^\[\{"channel":"/meta/handshake","port":"\d+"\}\]\|\d+\|custom value$



=== TEST 8: chunked request body from Transfer-Encoding in more_headers
--- config
    location / {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/sink;
        proxy_set_header X-Body $request_body;
    }
    location = /sink { return 200 "got:$http_x_body"; }
--- request
POST /
hello chunked world
--- more_headers
Transfer-Encoding: chunked
--- chunk_size: 4
--- response_body: got:hello chunked world
--- error_log
http chunked byte
http header: "Transfer-Encoding: chunked"



=== TEST 9: chunked_body eval: explicit chunks, with a delay between them
--- config
    location / {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/sink;
        proxy_set_header X-Body $request_body;
    }
    location = /sink { return 200 "got:$http_x_body"; }
--- request
POST /
--- chunked_body eval
["abc", "def", "ghi"]
--- chunk_delay: 0.02
--- response_body: got:abcdefghi



=== TEST 10: raw_request, text as written (LF line ends)
--- config
    location / { return 200 "raw:$request_method:$http_x_a"; }
--- raw_request
GET /x HTTP/1.1
Host: localhost
X-A: 1
Connection: close

--- error_code: 200
--- response_body: raw:GET:1



=== TEST 11: raw_request eval: CRLFs, sent in pieces
--- config
    location / { return 200 "raw:$request_method:$http_x_a"; }
--- raw_request eval
["GET /x HTTP/1.1\r\nHost: loc", "alhost\r\nX-A: 2\r\n", "Connection: close\r\n\r\n"]
--- raw_request_delay: 0.02
--- response_body: raw:GET:2
--- error_log
http header: "X-A: 2"



=== TEST 12: raw_request, HTTP/1.0 bad request
--- config
    location / { return 200; }
--- raw_request eval
"FOO\r\n\r\n"
--- error_code: 400



=== TEST 13: http_config, main_config, $TEST_NGINX_ vars from the environment
--- init
$ENV{TEST_NGINX_GREETING} = 'hi there';
--- main_config: worker_rlimit_nofile 2048;
--- http_config
    map $uri $mapped {
        default "mapped:$uri";
    }
--- config
    location / { return 200 "$mapped $TEST_NGINX_GREETING"; }
--- request
GET /m
--- response_body: mapped:/m hi there



=== TEST 14: user_files served from html/
--- user_files
>>> index.html
<p>index</p>
>>> sub/file.txt
port $TEST_NGINX_SERVER_PORT
--- config
    location / { root html; }
--- request eval
["GET /", "GET /sub/file.txt"]
--- response_body_like eval
["^<p>index</p>\n\$", "^port \\d+\n\$"]



=== TEST 15: HEAD request
--- config
    location / { return 200 "some body"; }
--- request
HEAD /
--- error_code: 200
--- response_headers
Content-Length: 9
--- response_body:



=== TEST 16: response_json: subset match
--- config
    location / {
        default_type application/json;
        return 200 '[{"channel":"/meta/handshake","successful":true,"clientId":"x1y2","version":"1.0","advice":{"reconnect":"retry","interval":0}}]';
    }
--- request
GET /
--- response_json
[{"channel":"/meta/handshake","successful":true,"advice":{"reconnect":"retry"}}]



=== TEST 17: response_json eval with regexes
--- config
    location / {
        default_type application/json;
        return 200 '[{"channel":"/meta/connect","successful":false,"error":"402::session_unknown"}]';
    }
--- request
GET /
--- response_json eval
[{ channel => '/meta/connect', successful => 0, error => qr/^402::/ }]



=== TEST 18: workers and a bayeux section (Perl conversation)
--- skip_valgrind
--- workers: 2
--- config
    location / { return 200 "$pid"; }
--- bayeux
my @w = $server->worker_pids;
is scalar @w, 2, 'two workers';
my $c = client();
my $r = $c->request(method => 'GET', uri => '/');
is $r->status, 200, 'request from the conversation';
ok((grep { $_ == $r->body } @w), 'served by one of the workers');
is $c->path, '/cometd', 'client() default path';



=== TEST 19: skipped block
--- skip: shows that skip works
--- config
    location / { this_would_fail; }
--- request
GET /
--- error_code: 200



=== TEST 20: timeout and ignore_response: an incomplete request
--- config
    location / { return 200; }
--- raw_request eval
"GET / HTTP/1.1\r\nHost: x\r\n"
--- timeout: 0.3
--- ignore_response
--- no_error_log
[error]
