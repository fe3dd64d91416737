#!/usr/bin/env bash
# Prints the slurm.conf lines every test cluster shares (tests/slurm and tests/multinode):
# root daemons, munge, process tracking without cgroups, PMIx, nodes back on their own.
cat <<'CONF'
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
ReturnToService=2
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
MinJobAge=600
CONF
