#!/bin/bash
# An example Slurm batch script: 4 nodes, one rank per core, resumable.
# Submit with `sbatch launch/slurm-example.sh`; resubmit the same script after
# a preemption and the run continues from its newest checkpoint.
#SBATCH --job-name=ddtrain
#SBATCH --nodes=4
#SBATCH --ntasks-per-node=32
#SBATCH --cpus-per-task=1
#SBATCH --time=04:00:00
#SBATCH --signal=B:TERM@120     # SIGTERM two minutes before the limit: checkpoint and exit
#SBATCH --requeue
set -euo pipefail
help() { awk 'NR == 1 { next } !/^#/ || /^#SBATCH/ { exit } { sub(/^# ?/, ""); print }' "$0"; }
case ${1-} in -h|--help) help; exit 0 ;; esac
cd "${SLURM_SUBMIT_DIR:-.}"
run_dir=${RUN_DIR:-runs/slurm-$SLURM_JOB_NAME}
# srun starts the ranks itself (Open MPI reads Slurm's allocation); one BLAS
# thread per rank. The batch shell passes SIGTERM to srun, srun to the ranks,
# which checkpoint and exit 0.
export OPENBLAS_NUM_THREADS=1
srun --cpu-bind=cores ./ddtrain train --run-dir "$run_dir" --resume auto \
  --batch-size 8192 --lr 0.1 --lr-scaling linear --warmup-epochs 5 --lr-decay cosine \
  --epochs 90 --ckpt-every 500 &
job=$!
trap 'kill -TERM "$job"' TERM
wait "$job" || wait "$job"
