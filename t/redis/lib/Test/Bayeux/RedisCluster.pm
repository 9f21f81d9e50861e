package Test::Bayeux::RedisCluster;

# A Redis Cluster of its own for a test file: N primaries with R replicas
# each, every node a redis-server (Test::Bayeux::Redis) on free loopback
# ports (its client port and its cluster bus port) with its own temp dir,
# joined by "redis-cli --cluster create"; stopped when the object goes
# away.  Besides: the redis+cluster:// URL and the nginx configuration
# that point the Bayeux module at it, commands sent to the node that
# serves a key (MOVED and ASK followed), which node serves a slot, a node
# killed (SIGKILL) or stopped and started again, a failover waited for, a
# slot migrated from one primary to another, and the keys of every node.
#
#   use lib 't/lib', 't/redis/lib';
#   use Test::Bayeux::RedisCluster;
#   my $cluster = start_redis_cluster(primaries => 3, replicas => 1);
#   my $conf = $cluster->engine_conf;       # "bayeux_engine redis; ..."
#   my $slot = $cluster->keyslot('{bayeux:}');
#   my $node = $cluster->slot_node($slot);  # a Test::Bayeux::Redis
#   $cluster->cmd_key('{bayeux:}x', 'GET', '{bayeux:}x');
#   $cluster->kill_node($node);
#   my $new = $cluster->wait_slot_moved($slot, $node, 20);
#   $cluster->migrate_slot($slot, $other);
#   my %keys = $cluster->scan('*bayeux:*');  # port => [keys]
#
# Nodes are Test::Bayeux::Redis objects: ->port, ->pid, ->cmd, ->running.
# Skips the whole test file if redis-server or redis-cli is missing.

use strict;
use warnings;

use Exporter 'import';
use POSIX ();
use Test::More ();
use Time::HiRes qw(time sleep);

use Test::Bayeux::Redis;

our @EXPORT = qw(start_redis_cluster redis_cli_binary);

sub redis_cli_binary {
    return $ENV{TEST_REDIS_CLI} if $ENV{TEST_REDIS_CLI};
    for my $d (split(/:/, $ENV{PATH} // ''), '/usr/bin', '/usr/sbin') {
        return "$d/redis-cli" if -x "$d/redis-cli";
    }
    return undef;
}

# Options: primaries (default 3), replicas (per primary, default 1),
# password (requirepass and masterauth on every node, and in the URL),
# node_timeout (cluster-node-timeout, ms, default 1000), args (more
# redis-server arguments for every node), tls ({ cert, key, ca }: each
# node listens with TLS too, on a port of its own, and its cluster bus
# speaks TLS; the plain port stays for the test's own commands).
sub start_redis_cluster {
    my (%o) = @_;
    my $cli = redis_cli_binary();
    unless (Test::Bayeux::Redis::redis_binary() && $cli) {
        Test::More::plan(skip_all => 'redis-server or redis-cli not found '
                                     . '(apt-get install redis-server)');
        exit 0;
    }
    my $self = bless {
        cli => $cli,
        primaries => $o{primaries} // 3,
        replicas => $o{replicas} // 1,
        password => $o{password},
        node_timeout => $o{node_timeout} // 1000,
        args => $o{args} || [],
        tls => $o{tls},
        tls_ports => {},
        nodes => [],
        ids => {},
        owner => $$,
    }, __PACKAGE__;
    $self->_start_nodes;
    $self->_create;
    return $self;
}

sub nodes { @{ $_[0]{nodes} } }
sub password { $_[0]{password} }
sub node_id { $_[0]{ids}{ $_[1]->port } }

sub node_by_port {
    my ($self, $port) = @_;
    my ($n) = grep { $_->port == $port } $self->nodes;
    return $n;
}

sub _start_nodes {
    my ($self) = @_;
    my $count = $self->{primaries} * (1 + $self->{replicas});
    my @auth = defined $self->{password}
               ? ('--requirepass', $self->{password},
                  '--masterauth', $self->{password})
               : ();
    for (1 .. $count) {
        my $port = Test::Nginx::Bayeux::Server::unused_port();
        my $bus = Test::Nginx::Bayeux::Server::unused_port();
        my @tls;
        if (my $t = $self->{tls}) {
            my $tls_port = Test::Nginx::Bayeux::Server::unused_port();
            $self->{tls_ports}{$port} = $tls_port;
            @tls = ('--tls-port', $tls_port, '--tls-cluster', 'yes',
                    '--tls-replication', 'yes',
                    '--tls-cert-file', $t->{cert}, '--tls-key-file', $t->{key},
                    '--tls-ca-cert-file', $t->{ca},
                    '--tls-auth-clients', 'no');
        }
        # the node's own dir holds nodes.conf and the append-only file, so
        # a node started again knows its place and its data
        my $node = start_redis(
            port => $port,
            password => $self->{password},
            args => [ '--cluster-enabled', 'yes',
                      '--cluster-config-file', 'nodes.conf',
                      '--cluster-port', $bus,
                      '--cluster-node-timeout', $self->{node_timeout},
                      '--appendonly', 'yes',
                      @tls, @auth, @{ $self->{args} } ]);
        push @{ $self->{nodes} }, $node;
        $self->{ids}{$port} = $node->cmd('CLUSTER', 'MYID');
    }
}

sub _auth_args {
    my ($self) = @_;
    return defined $self->{password}
           ? ('-a', $self->{password}, '--no-auth-warning') : ();
}

sub _create {
    my ($self) = @_;
    my @addrs = map { '127.0.0.1:' . $_->port } $self->nodes;
    my $out = $self->_run_cli('--cluster', 'create', @addrs,
                              '--cluster-replicas', $self->{replicas},
                              '--cluster-yes');
    die "redis-cli --cluster create failed:\n$out\n"
        unless $out =~ /All \d+ slots covered/;
    $self->wait_ok(30);
    $self->wait_replicas_in_sync(30);
}

sub _run_cli {
    my ($self, @args) = @_;
    my $pid = open(my $fh, '-|');
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open(STDERR, '>&', \*STDOUT);
        open(STDIN, '<', '/dev/null');
        { no warnings 'exec'; exec $self->{cli}, $self->_auth_args, @args; }
        POSIX::_exit(127);
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    return $out;
}

# Every live node says cluster_state:ok and sees every other live node.
sub wait_ok {
    my ($self, $secs) = @_;
    my $deadline = time + ($secs // 30);
    while (time < $deadline) {
        my $ok = 1;
        for my $n ($self->live_nodes) {
            my $info = eval { $n->cmd('CLUSTER', 'INFO') } // '';
            my ($known) = $info =~ /cluster_known_nodes:(\d+)/;
            unless ($info =~ /cluster_state:ok/ && $known
                    && $known == $self->nodes)
            {
                $ok = 0;
                last;
            }
        }
        return 1 if $ok;
        sleep 0.1;
    }
    die "the cluster is not ok after ${\ ($secs // 30)} s:\n"
        . join('', map { $_->port . ': '
                         . (eval { $_->cmd('CLUSTER', 'INFO') } // $@)
                         . "\n" } $self->live_nodes);
}

# Every live replica has its primary's data (a failover needs that).
sub wait_replicas_in_sync {
    my ($self, $secs) = @_;
    my $deadline = time + ($secs // 30);
    while (time < $deadline) {
        my $ok = 1;
        for my $n ($self->live_nodes) {
            my $r = eval { $n->cmd('INFO', 'replication') } // '';
            next if $r =~ /role:master/;
            $ok = 0 unless $r =~ /master_link_status:up/;
        }
        return 1 if $ok;
        sleep 0.1;
    }
    die "the replicas are not in sync after ${\ ($secs // 30)} s\n";
}

sub live_nodes { grep { $_ && $_->running } $_[0]->nodes }

# CLUSTER NODES as one live node sees it: a list of hashes (id, port,
# flags: hashref, master: id or undef, slots: arrayref of [from, to]).
sub cluster_nodes {
    my ($self, $via) = @_;
    $via //= ($self->live_nodes)[0];
    my @r;
    for my $line (split /\n/, $via->cmd('CLUSTER', 'NODES')) {
        my ($id, $addr, $flags, $master, undef, undef, undef, undef,
            @slots) = split ' ', $line;
        my ($port) = $addr =~ /:(\d+)/;
        push @r, {
            id => $id, port => $port,
            flags => { map { $_ => 1 } split /,/, $flags },
            master => $master eq '-' ? undef : $master,
            slots => [ map { /^(\d+)(?:-(\d+))?$/ ? [ $1, $2 // $1 ] : () }
                       @slots ],
        };
    }
    return @r;
}

# The live primaries (that serve slots), by port.
sub primaries {
    my ($self) = @_;
    my @p;
    for my $n ($self->live_nodes) {
        my $role = eval { $n->cmd('ROLE') } or next;
        push @p, $n if $role->[0] eq 'master';
    }
    my @sorted = sort { $a->port <=> $b->port } @p;
    return @sorted;
}

# The live replicas of a primary.
sub replicas_of {
    my ($self, $primary) = @_;
    my $id = $self->node_id($primary);
    my ($via) = grep { $_ != $primary } $self->live_nodes;
    $via //= $primary;
    my %live = map { $_->port => $_ } $self->live_nodes;
    return map { $live{ $_->{port} } // () }
           grep { ($_->{master} // '') eq $id && !$_->{flags}{fail} }
           $self->cluster_nodes($via);
}

# CLUSTER KEYSLOT, asked of a live node.
sub keyslot {
    my ($self, $key) = @_;
    for my $n ($self->live_nodes) {
        my $s = eval { $n->cmd('CLUSTER', 'KEYSLOT', $key) };
        return $s if defined $s;
    }
    die "no live node answers CLUSTER KEYSLOT\n";
}

# The port that serves a slot according to one node (CLUSTER SLOTS).
sub _slot_port_via {
    my ($self, $slot, $via) = @_;
    my $r = eval { $via->cmd('CLUSTER', 'SLOTS') } or return undef;
    for my $range (@$r) {
        return $range->[2][1]
            if $slot >= $range->[0] && $slot <= $range->[1];
    }
    return undef;
}

# The node (Test::Bayeux::Redis) that serves a slot: the one every live
# node names, and that is a primary; undef while they disagree (during a
# failover or a migration).
sub slot_node {
    my ($self, $slot) = @_;
    my %ports;
    for my $n ($self->live_nodes) {
        my $p = $self->_slot_port_via($slot, $n);
        $ports{ $p // 'none' }++;
    }
    my @p = keys %ports;
    return undef unless @p == 1 && $p[0] ne 'none';
    my $node = $self->node_by_port($p[0]);
    return undef unless $node && $node->running;
    my $role = eval { $node->cmd('ROLE') } or return undef;
    return $role->[0] eq 'master' ? $node : undef;
}

sub key_node { my ($self, $key) = @_; $self->slot_node($self->keyslot($key)) }

# A command for the node that serves a key: sent to the node that serves
# its slot, following MOVED (and ASK, with ASKING first) as a cluster
# client does.
sub cmd_key {
    my ($self, $key, @cmd) = @_;
    my $node = $self->slot_node($self->keyslot($key))
               // ($self->live_nodes)[0];
    my $asking;
    for (1 .. 5) {
        my $r = eval {
            $node->cmd('ASKING') if $asking;
            $node->cmd(@cmd);
        };
        return $r unless $@;
        my $e = $@;
        if ($e =~ /^redis error: (MOVED|ASK) \d+ [\d.]+:(\d+)/) {
            $asking = $1 eq 'ASK';
            $node = $self->node_by_port($2)
                or die "redirected to an unknown node: $e";
            next;
        }
        die $e;
    }
    die "too many redirections for @cmd\n";
}

# Kills a node (SIGKILL: its connections reset, nothing saved).
sub kill_node { my ($self, $node) = @_; $node->kill }

# Stops a node (SIGTERM) / starts it again (its nodes.conf and
# append-only file make it rejoin: a former primary as a replica).
sub stop_node { my ($self, $node) = @_; $node->stop }
sub start_node { my ($self, $node) = @_; $node->start }

# Waits until a slot is served by a primary other than $old, as every
# live node sees it; returns that node, or undef after $secs.
sub wait_slot_moved {
    my ($self, $slot, $old, $secs) = @_;
    my $deadline = time + ($secs // 30);
    while (time < $deadline) {
        my $n = $self->slot_node($slot);
        return $n if $n && $n->port != $old->port;
        sleep 0.1;
    }
    return undef;
}

# The first step of a migration of $slot to $to: IMPORTING on $to,
# MIGRATING on the primary that serves it, which it returns (undef if
# that is $to); no key moved.  cancel_migration($slot, $from, $to) calls
# it off (STABLE on both).
sub start_migration {
    my ($self, $slot, $to) = @_;
    my $from = $self->slot_node($slot)
        or die "no single primary serves slot $slot\n";
    return undef if $from->port == $to->port;
    $to->cmd('CLUSTER', 'SETSLOT', $slot, 'IMPORTING', $self->node_id($from));
    $from->cmd('CLUSTER', 'SETSLOT', $slot, 'MIGRATING', $self->node_id($to));
    return $from;
}

sub cancel_migration {
    my ($self, $slot, @nodes) = @_;
    $_->cmd('CLUSTER', 'SETSLOT', $slot, 'STABLE') for @nodes;
}

# Moves a slot (and its keys) from the primary that serves it to $to, as
# "redis-cli --cluster reshard" does: IMPORTING on $to, MIGRATING on the
# source, MIGRATE of the keys in batches, then SETSLOT NODE on $to, the
# source and every other primary.  $between (optional) is called after
# each batch: traffic during the migration; $before_node (optional) with
# the source once every key has moved, before the slot is given to $to.
# Returns the number of keys moved.
sub migrate_slot {
    my ($self, $slot, $to, %o) = @_;
    my $from = $self->start_migration($slot, $to) or return 0;
    my ($from_id, $to_id) = ($self->node_id($from), $self->node_id($to));
    my $batch = $o{batch} // 10;
    my @auth = defined $self->{password}
               ? ('AUTH', $self->{password}) : ();
    my $moved = 0;
    for (;;) {
        my $keys = $from->cmd('CLUSTER', 'GETKEYSINSLOT', $slot, $batch);
        last unless @$keys;
        $from->cmd('MIGRATE', '127.0.0.1', $to->port, '', 0, 5000,
                   @auth, 'KEYS', @$keys);
        $moved += @$keys;
        $o{between}->() if $o{between};
    }
    $o{before_node}->($from) if $o{before_node};
    $to->cmd('CLUSTER', 'SETSLOT', $slot, 'NODE', $to_id);
    $from->cmd('CLUSTER', 'SETSLOT', $slot, 'NODE', $to_id);
    for my $p ($self->primaries) {
        next if $p->port == $to->port || $p->port == $from->port;
        $p->cmd('CLUSTER', 'SETSLOT', $slot, 'NODE', $to_id);
    }
    # the replicas learn it from their primaries' gossip
    my $deadline = time + 10;
    until (($self->slot_node($slot) // 0) == $to) {
        die "slot $slot: not every node names port " . $to->port
            . " after 10 s\n" if time > $deadline;
        sleep 0.05;
    }
    return $moved;
}

# The keys of every live node matching a pattern: (port => [keys]).
# Replicas hold copies of their primary's keys; primaries => 1 looks at
# the primaries only.
sub scan {
    my ($self, $pattern, %o) = @_;
    my %keys;
    for my $n ($o{primaries} ? $self->primaries : $self->live_nodes) {
        $keys{ $n->port } = [ $n->scan($pattern) ];
    }
    return %keys;
}

# redis+cluster://[:password@]127.0.0.1:p1,127.0.0.1:p2,...: the seeds are
# $o{seeds} (nodes) or the first $o{count} nodes (default: all); on a
# cluster started with tls, rediss+cluster://[:password@]localhost:t1,...
# (the nodes' TLS ports, the name their certificate has).
sub url {
    my ($self, %o) = @_;
    my @seeds = $o{seeds} ? @{ $o{seeds} } : $self->nodes;
    splice(@seeds, $o{count}) if $o{count} && $o{count} < @seeds;
    my $auth = defined $self->{password} ? ":$self->{password}@" : '';
    return "rediss+cluster://$auth" . join(',', map {
        'localhost:' . $self->tls_port($_) } @seeds) if $self->{tls};
    return "redis+cluster://$auth"
           . join(',', map { '127.0.0.1:' . $_->port } @seeds);
}

sub tls_port { $_[0]{tls_ports}{ $_[1]->port } }

# The http-level directives that make every bayeux location of an nginx
# use this cluster; %o: prefix, connect_timeout, command_timeout, shards
# (bayeux_redis_shards; TEST_BAYEUX_REDIS_SHARDS when not given), and
# url()'s seeds and count.
sub engine_conf {
    my ($self, %o) = @_;
    my $c = "bayeux_engine redis;\n"
          . "bayeux_redis_url " . $self->url(%o) . ";\n";
    $c .= "bayeux_redis_prefix $o{prefix};\n" if defined $o{prefix};
    $c .= "bayeux_redis_connect_timeout $o{connect_timeout};\n"
        if $o{connect_timeout};
    $c .= "bayeux_redis_command_timeout $o{command_timeout};\n"
        if $o{command_timeout};
    my $shards = $o{shards} // $ENV{TEST_BAYEUX_REDIS_SHARDS};
    $c .= "bayeux_redis_shards $shards;\n" if $shards;
    return $c;
}

sub stop {
    my ($self) = @_;
    $_->stop for $self->live_nodes;
}

sub DESTROY {
    my ($self) = @_;
    return unless $self->{owner} && $self->{owner} == $$;
    local ($@, $?);
    $self->stop;
}

1;
