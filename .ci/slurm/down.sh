#!/usr/bin/env bash
# Stop the CI SLURM cluster started by .ci/slurm/up.sh BASE_DIR.
#
#   usage: bash .ci/slurm/down.sh BASE_DIR
#
# Cancels remaining jobs (running job steps would outlive slurmd otherwise), then stops slurmd, slurmctld,
# slurmdbd, mariadb and munged by the PID in each pid file and waits for them to exit. State stays in BASE_DIR,
# so a later up.sh is a warm restart. Idempotent: fine when nothing runs.
set -uo pipefail

log() { echo "down.sh: $*" >&2; }
[[ $# -eq 1 && -n "$1" ]] || { echo "usage: bash $0 BASE_DIR" >&2; exit 1; }
BASE=$1
[[ $BASE == /* ]] || BASE=$PWD/$BASE
BASE=${BASE%/}
[[ -d $BASE ]] || { log "$BASE does not exist: nothing to stop"; exit 0; }

export SLURM_CONF=$BASE/etc/slurm.conf
unset SLURM_JOB_ID SLURM_JOBID
SL=$BASE/slurm
T0=$SECONDS

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# 1. cancel every job while slurmctld and slurmd can still clean up their steps
if pid_of slurmctld "$SL/slurmctld.pid" >/dev/null && [[ -f $SLURM_CONF ]]; then
    jobs=$(squeue -h -o %A 2>/dev/null | tr '\n' ' ')
    if [[ -n ${jobs// /} ]]; then
        log "cancelling jobs: $jobs"
        # shellcheck disable=SC2086
        scancel $jobs 2>/dev/null
        # wait (at most 40 s: KillWait is 30 s) for running and completing jobs to be gone
        for ((i = 0; i < 400; i++)); do
            [[ -z $(squeue -h -t R,CG,S,CF,PD -o %A 2>/dev/null) ]] && break
            sleep 0.1
        done
        left=$(squeue -h -o '%A %T' 2>/dev/null | tr '\n' ' ')
        [[ -n ${left// /} ]] && log "WARNING: jobs still listed after scancel: $left"
    fi
fi

# 2. daemons, in reverse start order (each takes about 2 s to exit, so independent ones stop together):
#    slurm daemons first (they need munged), slurmdbd after slurmctld has flushed its records, then its database
stop 30 slurmd "$SL/slurmd.pid" slurmctld "$SL/slurmctld.pid"
stop 30 slurmdbd "$SL/slurmdbd.pid"
stop 60 mariadbd "$BASE/mysql/mysqld.pid" munged "$BASE/munge/munged.pid"

log "cluster at $BASE is down ($((SECONDS - T0)) s)"
exit 0
