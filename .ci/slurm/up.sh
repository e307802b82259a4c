#!/usr/bin/env bash
# Start a real single-node SLURM cluster (munged, mariadb, slurmdbd, slurmctld, slurmd) for CI and tests.
#
#   usage: bash .ci/slurm/up.sh BASE_DIR        (e.g. /tmp/trifecta-slurm; must not be under /root)
#
# Installs the Debian packages if missing, keeps all state, configs, logs and pid files under BASE_DIR, starts the
# daemons as plain background processes (no systemd), and waits until the node is idle and sacct answers.
# Idempotent: a second call while the cluster is up is a fast no-op. Stop with .ci/slurm/down.sh BASE_DIR.
# Writes BASE_DIR/env.sh (source it) and prints the same export lines at the end.
#
# Optional environment: SLURM_CI_DB_PORT (MariaDB TCP port on 127.0.0.1, default 33306),
#                       SLURM_CI_TIMEOUT (seconds to wait for the cluster, default 90).
set -euo pipefail

die() { echo "up.sh: ERROR: $*" >&2; exit 1; }
log() { echo "up.sh: $*" >&2; }

[[ $# -eq 1 && -n "$1" ]] || die "usage: bash $0 BASE_DIR"
[[ $EUID -eq 0 ]] || die "must run as root"

BASE=$1
[[ $BASE == /* ]] || BASE=$PWD/$BASE
BASE=${BASE%/}
case "$BASE/" in /root/*) die "BASE_DIR must not be under /root (munge and mysql users must traverse it)";; esac

DB_PORT=${SLURM_CI_DB_PORT:-33306}
TIMEOUT=${SLURM_CI_TIMEOUT:-90}
T0=$SECONDS
deadline=$((SECONDS + TIMEOUT))

ETC=$BASE/etc
CONF=$ETC/slurm.conf
MUNGE_DIR=$BASE/munge
MUNGE_SOCK=$MUNGE_DIR/munge.socket.2
DB_DIR=$BASE/mysql
DB_SOCK=$DB_DIR/mysqld.sock
SL=$BASE/slurm
LOGS=$BASE/log
GPU_DIR=$BASE/fakegpu
NODE=$(hostname -s)
CLUSTER=localci

export SLURM_CONF=$CONF
# a caller's SLURM job environment must not leak into our client commands
unset SLURM_JOB_ID SLURM_JOBID

# ---------------------------------------------------------------- helpers
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
running() { pid_of "$1" "$2" >/dev/null; }

fail_with_log() {   # fail_with_log MESSAGE LOGFILE...
    local msg=$1; shift
    echo "up.sh: ERROR: $msg (after $((SECONDS - T0)) s)" >&2
    local f
    for f in "$@"; do
        [[ -f $f ]] || continue
        echo "----- tail of $f -----" >&2
        grep -vE 'pmix|MPI: Cannot create context' "$f" | tail -n 25 >&2   # pmix noise is harmless
    done
    exit 1
}

# wait_for DESCRIPTION LOGFILE COMMAND...: poll COMMAND until it succeeds or the overall deadline passes
wait_for() {
    local what=$1 logf=$2; shift 2
    until "$@" >/dev/null 2>&1; do
        (( SECONDS < deadline )) || fail_with_log "timed out waiting for $what" "$logf"
        sleep 0.2
    done
}

# every daemon: own session, no inherited stdio (a caller capturing our output must not hang on open pipes)
spawn() { setsid "$@" </dev/null >/dev/null 2>&1; }

# ---------------------------------------------------------------- refuse a second cluster elsewhere
if [[ -L /etc/slurm/slurm.conf ]]; then
    other=$(readlink /etc/slurm/slurm.conf)
    other_base=${other%/etc/slurm.conf}
    if [[ $other != "$CONF" && $other_base != "$other" ]] &&
        running slurmctld "$other_base/slurm/slurmctld.pid"; then
        die "another CI cluster is running from $other_base; stop it first: bash $(dirname "$0")/down.sh $other_base"
    fi
fi

# ---------------------------------------------------------------- fast path: already up
node_state() { sinfo -h -N -n "$NODE" -o %t 2>/dev/null | head -n1 | tr -d '*~#!%$@^-'; }
all_running() {
    running munged "$MUNGE_DIR/munged.pid" && running mariadbd "$DB_DIR/mysqld.pid" &&
        running slurmdbd "$SL/slurmdbd.pid" && running slurmctld "$SL/slurmctld.pid" &&
        running slurmd "$SL/slurmd.pid"
}
write_env() {
    cat >"$BASE/env.sh" <<EOF
export SLURM_CONF=$CONF
export SLURM_CI_BASE=$BASE
EOF
}
print_env() {
    echo "# SLURM CI cluster up ($NODE, partitions debug/urgent, gres gpu:fake:2). To use it:"
    echo "#   source $BASE/env.sh    (/etc/slurm/slurm.conf also links to $CONF)"
    cat "$BASE/env.sh"
}

# ---------------------------------------------------------------- packages
PKGS=(munge mariadb-server slurmdbd slurmctld slurmd slurm-client)
missing=()
for p in "${PKGS[@]}"; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ $st == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    made_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        # keep package scripts from starting daemons through /etc/init.d
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    apt_install() {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"
    }
    rc=0
    apt_log=$(mktemp)
    if ! apt_install >"$apt_log" 2>&1; then
        log "apt-get install failed; running apt-get update and retrying"
        DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$apt_log" 2>&1 || true
        apt_install >>"$apt_log" 2>&1 || rc=$?
    fi
    ((made_policy)) && rm -f /usr/sbin/policy-rc.d
    if ((rc)); then tail -n 30 "$apt_log" >&2; rm -f "$apt_log"; die "apt-get install ${missing[*]} failed"; fi
    rm -f "$apt_log"
    deadline=$((SECONDS + TIMEOUT))   # the wait budget is for the daemons, not for apt
fi
for b in munged mungekey mariadbd mariadb-install-db mariadb slurmdbd slurmctld slurmd sinfo sacct; do
    command -v "$b" >/dev/null || die "$b not found after installing ${PKGS[*]}"
done
id munge >/dev/null 2>&1 || die "user munge missing"
id mysql >/dev/null 2>&1 || die "user mysql missing"

# ---------------------------------------------------------------- directories, fake GPUs, configs
mkdir -p "$BASE" "$ETC" "$SL/state" "$SL/spool" "$LOGS" "$GPU_DIR" "$MUNGE_DIR" "$DB_DIR"
chmod 755 "$BASE" "$ETC" "$LOGS" "$GPU_DIR"
chmod 700 "$SL/state" "$SL/spool"
chown munge:munge "$MUNGE_DIR"; chmod 755 "$MUNGE_DIR"
chown mysql:mysql "$DB_DIR"; chmod 755 "$DB_DIR"
for i in 0 1; do
    dev=$GPU_DIR/nvidia$i
    if [[ ! -c $dev ]]; then rm -f "$dev"; mknod -m 666 "$dev" c 1 3; fi   # a /dev/null clone
done

ncpu=$(nproc)
mem=$(slurmd -C 2>/dev/null | tr ' ' '\n' | sed -n 's/^RealMemory=//p' | head -n1)
[[ $mem =~ ^[0-9]+$ ]] || die "could not read RealMemory from 'slurmd -C'"
mem=$((mem * 95 / 100))

# update_file PATH MODE: replace PATH with stdin if the content differs; return 0 if it changed
update_file() {
    local f=$1 mode=$2 tmp
    tmp=$(mktemp "$f.XXXXXX")
    cat >"$tmp"
    chmod "$mode" "$tmp"
    if [[ -f $f ]] && cmp -s "$tmp" "$f"; then rm -f "$tmp"; return 1; fi
    mv -f "$tmp" "$f"
    return 0
}

conf_changed=0
update_file "$CONF" 644 <<EOF && conf_changed=1 || true
# generated by .ci/slurm/up.sh -- single-node CI cluster, all state under $BASE
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCK,cred_expire=30
StateSaveLocation=$SL/state
SlurmdSpoolDir=$SL/spool
SlurmctldPidFile=$SL/slurmctld.pid
SlurmdPidFile=$SL/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
# SIGTERM -> SIGKILL grace for scancel and preemption (default 30 s); a preempting job waits for it
KillWait=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
# rescan pending jobs every 5 s: a requeued job becomes eligible after cred_expire without any event to wake the scheduler
SchedulerParameters=sched_interval=5,bf_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
EnforcePartLimits=ALL
DefMemPerCPU=1000
MinJobAge=300
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=6819
AccountingStoragePass=$MUNGE_SOCK
AccountingStorageTRES=gres/gpu
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/none
GresTypes=gpu
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$ncpu RealMemory=$mem Gres=gpu:fake:2 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES PriorityTier=1 MaxTime=INFINITE State=UP
PartitionName=urgent Nodes=ALL Default=NO PriorityTier=2 MaxTime=INFINITE State=UP
EOF
update_file "$ETC/gres.conf" 644 <<EOF && conf_changed=1 || true
Name=gpu Type=fake File=$GPU_DIR/nvidia[0-1]
EOF

DB_PW_FILE=$DB_DIR/slurm.pw
if [[ ! -s $DB_PW_FILE ]]; then
    (umask 077; head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$DB_PW_FILE")
fi
DB_PW=$(cat "$DB_PW_FILE")
update_file "$ETC/slurmdbd.conf" 600 <<EOF || true
# generated by .ci/slurm/up.sh
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCK
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
PidFile=$SL/slurmdbd.pid
LogFile=$LOGS/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PW
StorageLoc=slurm_acct_db
EOF
chown root:root "$ETC/slurmdbd.conf"

# the executor plugin's job step strips SLURM_CONF, so the default location must lead to our config
mkdir -p /etc/slurm
if [[ -e /etc/slurm/slurm.conf && ! -L /etc/slurm/slurm.conf && ! -e /etc/slurm/slurm.conf.pre-ci ]]; then
    mv /etc/slurm/slurm.conf /etc/slurm/slurm.conf.pre-ci
    log "moved the existing /etc/slurm/slurm.conf to /etc/slurm/slurm.conf.pre-ci"
fi
ln -sfn "$CONF" /etc/slurm/slurm.conf

# a changed node/gres layout needs the slurm daemons restarted
if ((conf_changed)) && { running slurmctld "$SL/slurmctld.pid" || running slurmd "$SL/slurmd.pid"; }; then
    log "configuration changed: restarting slurmd and slurmctld"
    stop 30 slurmd "$SL/slurmd.pid" slurmctld "$SL/slurmctld.pid"
fi

if all_running && [[ $(node_state) =~ ^(idle|mix|alloc|comp)$ ]] && sacct -n -X -a -S now -o JobID >/dev/null 2>&1; then
    write_env
    log "cluster already up ($((SECONDS - T0)) s)"
    print_env
    exit 0
fi

# ---------------------------------------------------------------- munged
if ! running munged "$MUNGE_DIR/munged.pid"; then
    if [[ ! -s $MUNGE_DIR/munge.key ]]; then
        mungekey --create --keyfile="$MUNGE_DIR/munge.key" >/dev/null
    fi
    chown munge:munge "$MUNGE_DIR/munge.key"; chmod 400 "$MUNGE_DIR/munge.key"
    rm -f "$MUNGE_SOCK" "$MUNGE_SOCK.lock" "$MUNGE_DIR/munged.pid"
    touch "$LOGS/munged.log"; chown munge:munge "$LOGS/munged.log"
    spawn runuser -u munge -- munged \
        --key-file="$MUNGE_DIR/munge.key" --socket="$MUNGE_SOCK" --pid-file="$MUNGE_DIR/munged.pid" \
        --log-file="$LOGS/munged.log" --seed-file="$MUNGE_DIR/munged.seed" ||
        fail_with_log "munged failed to start" "$LOGS/munged.log"
fi
munge_ok() { munge -n -S "$MUNGE_SOCK" | unmunge -S "$MUNGE_SOCK"; }
wait_for munged "$LOGS/munged.log" munge_ok

# ---------------------------------------------------------------- mariadb
DB_LOG=$LOGS/mariadb.log
if ! running mariadbd "$DB_DIR/mysqld.pid"; then
    if [[ ! -e $DB_DIR/.initialised ]]; then
        rm -rf "$DB_DIR/data"
        mkdir -p "$DB_DIR/data"; chown mysql:mysql "$DB_DIR/data"; chmod 750 "$DB_DIR/data"
        log "initialising mariadb in $DB_DIR/data"
        mariadb-install-db --no-defaults --user=mysql --datadir="$DB_DIR/data" \
            --auth-root-authentication-method=socket --skip-test-db >"$LOGS/mariadb-install.log" 2>&1 ||
            fail_with_log "mariadb-install-db failed" "$LOGS/mariadb-install.log"
    fi
    touch "$DB_LOG"; chown mysql:mysql "$DB_LOG"
    rm -f "$DB_SOCK" "$DB_DIR/mysqld.pid"
    setsid mariadbd --no-defaults --user=mysql --datadir="$DB_DIR/data" --socket="$DB_SOCK" \
        --pid-file="$DB_DIR/mysqld.pid" --bind-address=127.0.0.1 --port="$DB_PORT" --skip-name-resolve \
        --log-error="$DB_LOG" --innodb-lock-wait-timeout=900 --innodb-buffer-pool-size=128M \
        --skip-log-bin </dev/null >>"$DB_LOG" 2>&1 &
fi
db_ok() { mariadb --no-defaults -S "$DB_SOCK" -u root -e 'SELECT 1'; }
wait_for mariadb "$DB_LOG" db_ok
if [[ ! -e $DB_DIR/.initialised ]]; then
    mariadb --no-defaults -S "$DB_SOCK" -u root >>"$LOGS/mariadb-install.log" 2>&1 <<EOF ||
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PW';
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PW';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
EOF
        fail_with_log "creating the slurm database user failed" "$LOGS/mariadb-install.log" "$DB_LOG"
    touch "$DB_DIR/.initialised"
fi

# ---------------------------------------------------------------- slurmdbd
if ! running slurmdbd "$SL/slurmdbd.pid"; then
    spawn slurmdbd || fail_with_log "slurmdbd failed to start" "$LOGS/slurmdbd.log"
fi
wait_for slurmdbd "$LOGS/slurmdbd.log" sacctmgr -n -i list cluster

# ---------------------------------------------------------------- slurmctld, slurmd
if ! running slurmctld "$SL/slurmctld.pid"; then
    spawn slurmctld -f "$CONF" || fail_with_log "slurmctld failed to start" "$LOGS/slurmctld.log"
fi
wait_for slurmctld "$LOGS/slurmctld.log" scontrol ping
if ! running slurmd "$SL/slurmd.pid"; then
    spawn slurmd -f "$CONF" -N "$NODE" || fail_with_log "slurmd failed to start" "$LOGS/slurmd.log"
fi

resumed=0
until [[ $(node_state) =~ ^(idle|mix|alloc)$ ]]; do
    (( SECONDS < deadline )) || fail_with_log "node $NODE is not idle (state: '$(node_state)')" \
        "$LOGS/slurmd.log" "$LOGS/slurmctld.log"
    st=$(node_state)
    if [[ $st =~ ^(down|drain|drng|fail)$ ]] && ((resumed == 0)) && running slurmd "$SL/slurmd.pid"; then
        sleep 1
        scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true
        resumed=1
    fi
    sleep 0.2
done
wait_for "sacct (slurmctld registered with slurmdbd)" "$LOGS/slurmdbd.log" \
    bash -c "sacctmgr -n -P list cluster format=cluster | grep -qx $CLUSTER && sacct -n -X -a -S now -o JobID"

write_env
log "cluster up in $((SECONDS - T0)) s"
print_env
