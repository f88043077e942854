#!/usr/bin/env bash
# A real single-node SLURM cluster for the tests: munge, MariaDB, slurmdbd, slurmctld, slurmd, one fake GPU.
#
#   tests/slurm/cluster.sh up     install (Debian packages) if needed, configure, start; prints `export SLURM_CONF=...`
#   tests/slurm/cluster.sh down   stop exactly the daemons `up` started (by their recorded PIDs)
#   tests/slurm/cluster.sh env    print the environment a client needs
#
# Everything lives under $OPTIMBENCH_SLURM_DIR (default /tmp/optimbench-slurm): configs, sockets, logs,
# spool, the database. Daemons already running on this machine are never touched: MariaDB gets its own
# socket and port, SLURM its own ports, and a munged already serving the default socket is reused.
set -euo pipefail

STATE=${OPTIMBENCH_SLURM_DIR:-/tmp/optimbench-slurm}
NODE=$(hostname -s)
CLUSTER=optimbench
DB_PORT=${OPTIMBENCH_SLURM_DB_PORT:-3307}
DBD_PORT=${OPTIMBENCH_SLURMDBD_PORT:-6819}
CTLD_PORT=${OPTIMBENCH_SLURMCTLD_PORT:-6817}
SLURMD_PORT=${OPTIMBENCH_SLURMD_PORT:-6818}
PACKAGES=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server)
export SLURM_CONF=$STATE/etc/slurm.conf

log() { echo "[cluster] $*" >&2; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2
    shift 2
    for _ in $(seq $((seconds * 5))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    log "timed out after ${seconds}s waiting for $what"
    return 1
}

install_packages() {
    local missing=()
    for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    # Package scripts must not start services: Debian's policy-rc.d hook refuses them (exit 101).
    if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; fi
    apt_get update -qq
    apt_get install -y -qq "${missing[@]}" >/dev/null
}

APT_LOCK_WAIT=${OPTIMBENCH_APT_LOCK_WAIT:-600}  # seconds to wait for another apt-get's locks
APT_LOCK_POLL=${OPTIMBENCH_APT_LOCK_POLL:-5}

apt_get() {  # apt-get ARGS..., waiting up to APT_LOCK_WAIT seconds while another apt/dpkg holds a lock
    # DPkg::Lock::Timeout makes apt wait for dpkg's frontend lock, but apt 2.6 fails at once on its other
    # locks (/var/lib/apt/lists/lock for update, /var/cache/apt/archives/lock): those are retried here.
    local deadline=$((SECONDS + APT_LOCK_WAIT)) out
    while true; do
        if out=$(DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$APT_LOCK_WAIT" "$@" 2>&1); then
            [ -z "$out" ] || printf '%s\n' "$out"
            return 0
        fi
        if ! grep -q "Could not get lock" <<<"$out" || [ "$SECONDS" -ge "$deadline" ]; then
            printf '%s\n' "$out" >&2
            return 1
        fi
        log "apt is locked by another process ($(grep -m1 'Could not get lock' <<<"$out")); waiting"
        sleep "$APT_LOCK_POLL"
    done
}

record() { echo "$2" >"$STATE/pids/$1"; }  # record NAME PID

pid_of() { cat "$STATE/pids/$1" 2>/dev/null || true; }

alive() { local pid; pid=$(pid_of "$1"); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
    # SLURM's clients only use munge's default socket, so a munged already serving it is used as it is
    # (and left running by `down`); otherwise this script starts one there.
    if munge_works; then log "using the munged already running"; return 0; fi
    install -d -o munge -g munge -m 0755 /run/munge
    if [ ! -s /etc/munge/munge.key ]; then
        install -d -o munge -g munge -m 0700 /etc/munge
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    fi
    install -d -o munge -g munge -m 0700 "$STATE/munge"
    runuser -u munge -- /usr/sbin/munged --pid-file="$STATE/munge/munged.pid" --log-file="$STATE/munge/munged.log"
    wait_for 10 munged test -s "$STATE/munge/munged.pid"
    record munged "$(cat "$STATE/munge/munged.pid")"
    wait_for 10 "a munge credential" munge_works
}

start_mariadb() {
    # mariadbd dies silently if its files point into a root-owned folder: it gets one owned by mysql.
    install -d -o mysql -g mysql -m 0750 "$STATE/mysql"
    mariadb-install-db --user=mysql --datadir="$STATE/mysql/data" --auth-root-authentication-method=normal \
        >"$STATE/log/mariadb-install.log" 2>&1
    setsid /usr/sbin/mariadbd --user=mysql --datadir="$STATE/mysql/data" --socket="$STATE/mysql/mysqld.sock" \
        --port="$DB_PORT" --bind-address=127.0.0.1 --pid-file="$STATE/mysql/mysqld.pid" \
        --log-error="$STATE/mysql/error.log" --innodb-buffer-pool-size=64M </dev/null >/dev/null 2>&1 &
    record mariadbd $!
    wait_for 60 MariaDB mariadb --socket="$STATE/mysql/mysqld.sock" -u root -e "SELECT 1"
    mariadb --socket="$STATE/mysql/mysqld.sock" -u root <<SQL
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
SQL
}

write_configs() {
    local geometry memory
    geometry=$(slurmd -C | head -n1 | sed -E 's/^NodeName=[^ ]+ //; s/ RealMemory=[0-9]+//')
    memory=$(slurmd -C | sed -nE 's/.*RealMemory=([0-9]+).*/\1/p')
    cat >"$STATE/etc/slurm.conf" <<CONF
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
MinJobAge=300
MailProg=/bin/true
ReturnToService=2
JobRequeue=1
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
AccountingStorageTRES=gres/gpu,gres/shard
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/none
GresTypes=gpu,shard
NodeName=$NODE $geometry RealMemory=$((memory - 2048)) Gres=gpu:1,shard:4 State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
    # A fake GPU: schedulable and accounted (gres/gpu), backed by /dev/null; split into 4 shards
    # (gres/shard) for jobs that share it.
    printf 'AutoDetect=off\nNodeName=%s Name=gpu File=/dev/null\nNodeName=%s Name=shard Count=4\n' \
        "$NODE" "$NODE" >"$STATE/etc/gres.conf"
    cat >"$STATE/etc/slurmdbd.conf" <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdPort=$DBD_PORT
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
PidFile=$STATE/run/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
CONF
    chmod 600 "$STATE/etc/slurmdbd.conf"
}

DEFAULT_CONF=/etc/slurm/slurm.conf

link_default_config() {
    # The jobstep plugin drops SLURM_* variables (SLURM_CONF too) before its nested srun, which then
    # reads the default path: point it at this cluster's config, never over a config of someone else's.
    if [ -e "$DEFAULT_CONF" ] || [ -L "$DEFAULT_CONF" ]; then
        if [ "$(readlink "$DEFAULT_CONF")" != "$SLURM_CONF" ]; then
            log "$DEFAULT_CONF exists and is not this test cluster's: move it away to run the SLURM tests"
            return 1
        fi
    fi
    mkdir -p "$(dirname "$DEFAULT_CONF")"
    ln -sfn "$SLURM_CONF" "$DEFAULT_CONF"
}

start_daemon() {  # start_daemon NAME PIDFILE COMMAND...  (SLURM daemons fork and write their pid file)
    local name=$1 pidfile=$2
    shift 2
    rm -f "$pidfile"
    "$@"
    wait_for 30 "$name's pid file" test -s "$pidfile"
    record "$name" "$(cat "$pidfile")"
}

up() {
    if alive slurmctld; then log "already up ($STATE)"; print_env; return 0; fi
    install_packages
    down 2>/dev/null  # leftovers of an earlier `up` whose `down` never ran
    rm -rf "$STATE"
    mkdir -p "$STATE"/{etc,log,run,pids,spool/ctld,spool/d}
    start_munge
    start_mariadb
    write_configs
    link_default_config
    start_daemon slurmdbd "$STATE/run/slurmdbd.pid" slurmdbd
    wait_for 60 slurmdbd timeout 5 sacctmgr -i list cluster
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
    start_daemon slurmctld "$STATE/run/slurmctld.pid" slurmctld
    start_daemon slurmd "$STATE/run/slurmd.pid" slurmd
    wait_for 60 "node $NODE idle" sh -c "timeout 5 sinfo -h -N -o %T | grep -qx idle"
    [ "$(timeout 60 srun -N1 hostname)" = "$(hostname)" ] || { log "srun smoke test failed"; return 1; }
    log "up: $(sinfo -h -o '%P %D %T %G')"
    print_env
}

down() {
    for name in slurmd slurmctld slurmdbd mariadbd munged; do
        local pid
        pid=$(pid_of "$name")
        [ -n "$pid" ] || continue
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid"
            for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        fi
        rm -f "$STATE/pids/$name"
    done
    [ "$(readlink "$DEFAULT_CONF" 2>/dev/null)" = "$SLURM_CONF" ] && rm -f "$DEFAULT_CONF"
    log "down"
}

print_env() { echo "export SLURM_CONF=$SLURM_CONF"; }

if [ "${BASH_SOURCE[0]}" = "$0" ]; then  # run, not sourced (the tests source it to reach one function)
    case "${1:-}" in
        up) up ;;
        down) down ;;
        env) print_env ;;
        *) echo "usage: $0 up|down|env" >&2; exit 2 ;;
    esac
fi
