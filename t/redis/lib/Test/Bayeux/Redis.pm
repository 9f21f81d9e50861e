package Test::Bayeux::Redis;

# A redis-server of its own for a test file: started on a free loopback
# port without persistence, stopped (and restarted, paused, resumed) on
# demand, killed when the object goes away.  Also a tiny synchronous RESP
# client to look at the keys, and the nginx configuration that points the
# Bayeux module at this Redis.
#
#   use lib 't/lib', 't/redis/lib';
#   use Test::Bayeux::Redis;
#   my $redis = start_redis();          # skips the file without redis-server
#   my $conf = $redis->engine_conf;     # "bayeux_engine redis; ..."
#   $redis->cmd('SET', 'k', 'v');
#   my @keys = $redis->scan('bayeux:*');
#   $redis->stop; $redis->start;
#
# Without TCP: start_redis(unixsocket => 1) listens on a unix socket of
# its temp dir only; start_redis(tls => { cert => ..., key => ..., ca =>
# ..., auth_clients => 'no' }) on TLS only (rediss://localhost:port).
#
# A sentinel: start_redis(sentinel => "sentinel monitor mymaster ...\n")
# writes that configuration to its temp dir and runs redis-server on it
# with --sentinel (Sentinel rewrites the file as it learns).

use strict;
use warnings;

use Exporter 'import';
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::IP;
use POSIX qw(WNOHANG);
use Test::More ();
use Time::HiRes qw(time sleep);

use Test::Nginx::Bayeux::Server;
use Bayeux::Client;
use Bayeux::WebSocket;

our @EXPORT = qw(start_redis redis_binary until_true new_publisher publish
                 elsewhere worker_restarted);
# websocket sessions whose connect is held (t/redis/140, 145); the texts
# of a long-polling connect's deliveries (t/redis/150, 155, 160); a
# connect that acknowledges (t/redis/155, 160); who missed a publish
# (t/redis/135, 165)
our @EXPORT_OK = qw(ws_send held_session hold texts ack_connect
                    missing_deliveries);

sub redis_binary {
    return $ENV{TEST_REDIS_SERVER} if $ENV{TEST_REDIS_SERVER};
    for my $d (split(/:/, $ENV{PATH} // ''), '/usr/bin', '/usr/sbin') {
        return "$d/redis-server" if -x "$d/redis-server";
    }
    return undef;
}

# Options: args (extra redis-server arguments, e.g. ['--requirepass', 'x']),
# password (for cmd()), port (default: a free one).  Skips the whole test file if there is no
# redis-server.
sub start_redis {
    my (%o) = @_;
    my $bin = redis_binary();
    unless ($bin) {
        Test::More::plan(skip_all => 'redis-server not found '
                                     . '(apt-get install redis-server)');
        exit 0;
    }
    my $self = bless {
        bin => $bin,
        port => $o{port} // Test::Nginx::Bayeux::Server::unused_port(),
        dir => tempdir('bayeux-redis-XXXXXX', TMPDIR => 1, CLEANUP => 1),
        args => $o{args} || [],
        password => $o{password},
        unixsocket => $o{unixsocket},
        tls => $o{tls},
        sentinel => $o{sentinel},
        owner => $$,
    }, __PACKAGE__;
    $self->start;
    return $self;
}

sub port { $_[0]{port} }
sub pid { $_[0]{pid} }
sub running { defined $_[0]{pid} }
sub log_file { "$_[0]{dir}/redis.log" }
sub dir { $_[0]{dir} }
sub socket_path { "$_[0]{dir}/redis.sock" }

# redis://[:password@]127.0.0.1:port/db, unix:/path?db=N,
# rediss://[:password@]localhost:port/db
sub url {
    my ($self, $db) = @_;
    $db //= 0;
    if ($self->{unixsocket}) {
        return 'unix:' . $self->socket_path . "?db=$db"
               . (defined $self->{password}
                  ? "&password=$self->{password}" : '');
    }
    my $auth = defined $self->{password} ? ":$self->{password}@" : '';
    return "rediss://${auth}localhost:$self->{port}/$db" if $self->{tls};
    return "redis://${auth}127.0.0.1:$self->{port}/$db";
}

# how this Redis listens: TCP, a unix socket, or TLS only
sub _listen_args {
    my ($self) = @_;
    if ($self->{unixsocket}) {
        return ('--port', 0, '--unixsocket', $self->socket_path,
                '--unixsocketperm', 700);
    }
    if (my $t = $self->{tls}) {
        return ('--port', 0, '--tls-port', $self->{port},
                '--bind', '127.0.0.1',
                '--tls-cert-file', $t->{cert}, '--tls-key-file', $t->{key},
                '--tls-ca-cert-file', $t->{ca},
                '--tls-auth-clients', $t->{auth_clients} // 'yes');
    }
    return ('--port', $self->{port}, '--bind', '127.0.0.1');
}

# The http-level directives that make every bayeux location of an nginx use
# this Redis; %o: prefix, db, connect_timeout, command_timeout, shards
# (bayeux_redis_shards; TEST_BAYEUX_REDIS_SHARDS when not given), url
# (another address that leads to it, a proxy's).
sub engine_conf {
    my ($self, %o) = @_;
    my $c = "bayeux_engine redis;\n"
          . "bayeux_redis_url " . ($o{url} // $self->url($o{db})) . ";\n";
    $c .= "bayeux_redis_prefix $o{prefix};\n" if defined $o{prefix};
    $c .= "bayeux_redis_connect_timeout $o{connect_timeout};\n"
        if $o{connect_timeout};
    $c .= "bayeux_redis_command_timeout $o{command_timeout};\n"
        if $o{command_timeout};
    my $shards = $o{shards} // $ENV{TEST_BAYEUX_REDIS_SHARDS};
    $c .= "bayeux_redis_shards $shards;\n" if $shards;
    return $c;
}

sub start {
    my ($self) = @_;
    die "redis already running\n" if $self->{pid};
    my @sentinel;
    if (defined $self->{sentinel}) {
        my $conf = "$self->{dir}/sentinel.conf";
        unless (-e $conf) {
            open(my $fh, '>', $conf) or die "$conf: $!";
            print $fh $self->{sentinel};
            close $fh;
        }
        @sentinel = ($conf, '--sentinel');
    }
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        POSIX::setpgid(0, 0);
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>>', "$self->{dir}/stdout.log");
        open(STDERR, '>&', \*STDOUT);
        { no warnings 'exec'; exec $self->{bin}, @sentinel,
            $self->_listen_args,
            '--save', '', '--appendonly', 'no', '--dir', $self->{dir},
            '--logfile', $self->log_file, '--daemonize', 'no',
            @{ $self->{args} }; }
        POSIX::_exit(127);
    }
    $self->{pid} = $pid;
    my $deadline = time + 10;
    while (time < $deadline) {
        my $r = eval { $self->cmd('PING') };
        return $self if defined $r && $r eq 'PONG';
        if (waitpid($pid, WNOHANG) == $pid) {
            delete $self->{pid};
            die "redis-server exited at startup: "
                . `tail -5 $self->{dir}/stdout.log ${\ $self->log_file}`;
        }
        sleep 0.02;
    }
    die "redis-server did not answer on " . $self->url . "\n";
}

# Stops Redis (no save) and waits until it is gone and the port is closed.
sub stop {
    my ($self) = @_;
    my $pid = $self->{pid} or return;
    # (waitpid sets $?, which at the end of a test is its exit status)
    local $?;
    kill 'CONT', $pid;
    kill 'TERM', $pid;
    my $deadline = time + 10;
    while (time < $deadline) {
        last if waitpid($pid, WNOHANG) == $pid;
        sleep 0.01;
    }
    kill 'KILL', $pid if kill 0, $pid;
    waitpid($pid, 0);
    delete $self->{pid};
    delete $self->{sock};
}

sub restart { my ($self) = @_; $self->stop; $self->start }

# SIGKILL: a Redis that dies at once, its connections reset
sub kill {
    my ($self) = @_;
    my $pid = $self->{pid} or return;
    local $?;
    CORE::kill('KILL', $pid);
    waitpid($pid, 0);
    delete $self->{pid};
    delete $self->{sock};
}

# SIGSTOP / SIGCONT: a Redis that hangs without closing its connections
sub pause { my ($self) = @_; CORE::kill 'STOP', $self->{pid} }
sub resume { my ($self) = @_; CORE::kill 'CONT', $self->{pid} }

sub DESTROY {
    my ($self) = @_;
    return unless $self->{owner} && $self->{owner} == $$;
    $self->stop if $self->{pid};
}

#
# A synchronous RESP client (one connection, reopened as needed)
#

sub _sock {
    my ($self) = @_;
    return $self->{sock} if $self->{sock} && $self->{sock}->connected;
    my $s;
    if ($self->{unixsocket}) {
        require IO::Socket::UNIX;
        $s = IO::Socket::UNIX->new(Peer => $self->socket_path,
                                   Timeout => 2);
    } elsif (my $t = $self->{tls}) {
        require IO::Socket::SSL;
        $s = IO::Socket::SSL->new(
            PeerHost => '127.0.0.1', PeerPort => $self->{port},
            Timeout => 2, SSL_ca_file => $t->{ca},
            SSL_verifycn_name => 'localhost',
            ($t->{client_cert} ? (SSL_cert_file => $t->{client_cert},
                                  SSL_key_file => $t->{client_key}) : ()));
    } else {
        $s = IO::Socket::IP->new(PeerHost => '127.0.0.1',
                                 PeerPort => $self->{port},
                                 Proto => 'tcp', Timeout => 2);
    }
    $s or die "cannot connect to redis at " . $self->url . ": $@\n";
    $s->autoflush(1);
    $self->{sock} = $s;
    $self->{buf} = '';
    if (defined $self->{password}) {
        $self->cmd('AUTH', $self->{password});
    }
    return $s;
}

# Sends a command, returns the reply: a string, a number, an arrayref, or
# undef (nil).  An error reply dies with its text.
sub cmd {
    my ($self, @args) = @_;
    my $s = $self->_sock;
    my $req = '*' . @args . "\r\n";
    $req .= '$' . length($_) . "\r\n$_\r\n" for @args;
    my $ok = eval { print $s $req or die "write: $!\n"; 1 };
    unless ($ok) {
        delete $self->{sock};
        die $@;
    }
    my $r = eval { $self->_reply(time + 10) };
    if ($@) {
        my $e = $@;
        delete $self->{sock} unless $e =~ /^redis error/;
        die $e;
    }
    return $r;
}

# A one-worker nginx on this Redis, started: location /cometd is a Bayeux
# endpoint with the directives $conf (its lines, as they are written in
# the location), its keys under $prefix (the default's if undef); with
# status => 1, location /status is bayeux_status; url => as engine_conf.
sub bayeux_server {
    my ($self, $conf, $prefix, %o) = @_;
    return Test::Nginx::Bayeux::Server->new(
        workers => 1,
        http_config => $self->engine_conf(prefix => $prefix,
                                          url => $o{url}),
        config => "    location /cometd {\n        bayeux;\n$conf    }\n"
                  . ($o{status} ? "    location = /status { bayeux_status; }\n"
                                : ''),
    )->start;
}

# What the engine keeps for a session, under the default prefix unless
# one is given: its hash's field $f; whether it is held on channel $ch
# (in "H:"), or subscribed without being held (in "c:").
sub session_field {
    my ($self, $id, $f, $prefix) = @_;
    return $self->cmd('HGET', ($prefix // 'bayeux:') . "s:$id", $f);
}

sub is_held {
    my ($self, $id, $ch, $prefix) = @_;
    return $self->cmd('SISMEMBER', ($prefix // 'bayeux:') . "H:$ch", $id);
}

# whether session $id is held by no worker: its client went away while
# its worker held it, or it has not connected yet (it stays in "H:")
sub held_by_none {
    my ($self, $id, $prefix) = @_;
    my ($h, $w) = @{ $self->cmd('HMGET', ($prefix // 'bayeux:') . "s:$id",
                                'h', 'w') };
    return defined $h && $h ne '' && defined $w && $w eq '';
}

sub is_subscribed {
    my ($self, $id, $ch, $prefix) = @_;
    return $self->cmd('SISMEMBER', ($prefix // 'bayeux:') . "c:$ch", $id);
}

# starts a connect of client $c on nginx $server and waits until it
# parked (the worker's debug log says so: a connect that parks on the
# hold its session has since its first connect,
# t/redis/155-held-first-connect.t, changes nothing in Redis), and checks
# that the session is held on $ch (keys under $prefix, the default's if
# undef); returns the connect's handle
sub park {
    my ($self, $server, $c, $ch, $prefix) = @_;
    my $id = $c->client_id;
    my $from = -s $server->error_log_file;
    my $h = $c->connect_start;
    Test::More::ok($server->wait_for_log(
           qr/bayeux: session \Q$id\E: \/meta\/connect applied, rc:-2\b/,
           offset => $from, timeout => 3),
       'the connect parked');
    Test::More::ok($self->is_held($id, $ch, $prefix),
                   "its session is held: in H:$ch");
    return $h;
}

# how many RPUSH the server ran so far: one per message queued for a
# session that is not held
sub rpush_calls {
    my ($self) = @_;
    return $self->calls('rpush');
}

# how many times the server ran command $name (lower case) so far
sub calls {
    my ($self, $name) = @_;
    my $stats = $self->cmd('INFO', 'commandstats');
    return $stats =~ /cmdstat_\Q$name\E:calls=(\d+)/ ? $1 : 0;
}

# polls $cond every 20 ms until it is true or $timeout (5 s) passed;
# returns its last value
sub until_true {
    my ($cond, $timeout) = @_;
    my $end = time + ($timeout // 5);
    while (time < $end) {
        return 1 if $cond->();
        sleep 0.02;
    }
    return $cond->();
}

# A publisher that never connects, on $server: a new one for each part of
# a test, before its session expires; publish() posts { text => $text }
# to $ch with it.  Both are tests.
my $publisher;

sub new_publisher {
    my ($server) = @_;
    $publisher = Bayeux::Client->new(port => $server->port);
    Test::More::ok($publisher->handshake->{successful},
                   'publisher handshake');
}

sub publish {
    my ($ch, $text) = @_;
    my $r = $publisher->publish($ch, { text => $text });
    Test::More::ok($r && $r->{successful}, "published $text on $ch");
}

# the long-polling session of client $c, from $server (the same browser:
# its cookies)
sub elsewhere {
    my ($c, $server) = @_;
    my $o = Bayeux::Client->new(port => $server->port,
                                cookie_jar => $c->cookie_jar);
    $o->client_id($c->client_id);
    return $o;
}

# the "text" of the data of each delivery of a Bayeux::Client result
sub texts { [ map { $_->{data}{text} } @{ $_[0]{deliveries} } ] }

# the indexes of the clients of @$clients that did not get exactly @want
# on $channel, once each and in that order (the data's "n", or the data),
# waiting up to 5 s for each client
sub missing_deliveries {
    my ($clients, $channel, @want) = @_;
    my @missing;
    for my $i (0 .. $#$clients) {
        my $d = $clients->[$i]->wait_deliveries(count => scalar @want,
                                                channel => $channel);
        my $got = join(',', map { ref $_->{data} ? $_->{data}{n} : $_->{data} }
                            @$d);
        push @missing, $i unless $got eq join(',', @want);
    }
    return \@missing;
}

# a long-polling connect of client $c that acknowledges batch $ack (more
# connect arguments in %extra): the texts it got, the batch its reply
# names, and the result
sub ack_connect {
    my ($c, $ack, %extra) = @_;
    my $r = $c->connect(ext => { ack => $ack }, timeout => 4, %extra);
    Test::More::ok($r->{reply} && $r->{reply}{successful},
                   "a connect acknowledging $ack: answered");
    return (texts($r), $r->{reply} && $r->{reply}{ext}{ack}, $r);
}

# a message sent alone over websocket $ws
sub ws_send {
    my ($ws, $m) = @_;
    $ws->send_json([ $m ]);
}

# a websocket session on $port subscribed to @channels, its connect held:
# the websocket and the session's id
sub held_session {
    my ($port, @channels) = @_;
    my $ws = Bayeux::WebSocket->new(port => $port);
    $ws->handshake or die $ws->error;
    ws_send($ws, { channel => '/meta/handshake', version => '1.0',
                   supportedConnectionTypes => ['websocket'], id => 'h' });
    my $id = $ws->recv_json(timeout => 5)->[0]{clientId} or die 'handshake';
    for my $ch (@channels) {
        ws_send($ws, { channel => '/meta/subscribe', clientId => $id,
                       subscription => $ch, id => 's' });
        $ws->recv_json(timeout => 5);
    }
    ws_send($ws, { channel => '/meta/connect', clientId => $id,
                   connectionType => 'websocket', id => 'c0',
                   advice => { timeout => 0 } });
    $ws->recv_json(timeout => 5);
    hold($ws, $id);
    return ($ws, $id);
}

# a connect of session $id on websocket $ws, which the server holds
sub hold {
    my ($ws, $id) = @_;
    ws_send($ws, { channel => '/meta/connect', clientId => $id,
                   connectionType => 'websocket', id => 'c' });
}

# true once none of $server's worker processes is one of @pids
sub worker_restarted {
    my ($server, @pids) = @_;
    return until_true(sub {
        my @n = $server->worker_pids;
        @n && !grep { my $n = $_; grep { $_ == $n } @pids } @n
    }, 10);
}

sub _line {
    my ($self, $deadline) = @_;
    for (;;) {
        if ((my $i = index($self->{buf}, "\r\n")) >= 0) {
            my $l = substr($self->{buf}, 0, $i);
            substr($self->{buf}, 0, $i + 2) = '';
            return $l;
        }
        $self->_fill($deadline);
    }
}

sub _fill {
    my ($self, $deadline) = @_;
    my $s = $self->{sock};
    my $left = $deadline - time;
    die "redis: timeout\n" if $left <= 0;
    # (TLS may hold decrypted bytes that select() does not see)
    unless ($s->can('pending') && $s->pending) {
        IO::Select->new($s)->can_read($left) or die "redis: timeout\n";
    }
    my $n = sysread($s, my $chunk, 65536);
    die "redis: connection closed\n" unless $n;
    $self->{buf} .= $chunk;
}

sub _reply {
    my ($self, $deadline) = @_;
    my $l = $self->_line($deadline);
    my ($t, $rest) = (substr($l, 0, 1), substr($l, 1));
    return $rest if $t eq '+';
    return 0 + $rest if $t eq ':';
    die "redis error: $rest\n" if $t eq '-';
    if ($t eq '$') {
        return undef if $rest < 0;
        $self->_fill($deadline) while length($self->{buf}) < $rest + 2;
        my $v = substr($self->{buf}, 0, $rest);
        substr($self->{buf}, 0, $rest + 2) = '';
        return $v;
    }
    if ($t eq '*') {
        return undef if $rest < 0;
        return [ map { $self->_reply($deadline) } 1 .. $rest ];
    }
    die "redis: bad reply line '$l'\n";
}

# Every key matching a pattern (SCAN, as "redis-cli --scan" does).
sub scan {
    my ($self, $pattern, $db) = @_;
    $self->cmd('SELECT', $db) if defined $db;
    my ($cursor, @keys) = (0);
    do {
        my $r = $self->cmd('SCAN', $cursor, 'MATCH', $pattern // '*',
                           'COUNT', 1000);
        $cursor = $r->[0];
        push @keys, @{ $r->[1] };
    } while ($cursor ne '0');
    $self->cmd('SELECT', 0) if defined $db;
    my %seen;
    my @sorted = sort grep { !$seen{$_}++ } @keys;
    return @sorted;
}

# "redis-cli --scan" itself, for tests that want to show the real tool.
sub cli_scan {
    my ($self, $pattern) = @_;
    my @auth = defined $self->{password} ? ('-a', $self->{password},
                                            '--no-auth-warning') : ();
    my $out = `redis-cli -p $self->{port} @auth --scan --pattern '$pattern' 2>&1`;
    my @sorted = sort grep { length } split /\n/, $out;
    return @sorted;
}

1;
