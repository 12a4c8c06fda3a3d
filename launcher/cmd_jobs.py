"""`buckle jobs`, `buckle status ID`, `buckle logs ID [--follow]`, `buckle cancel ID`."""
from __future__ import annotations

import argparse

HELP_JOBS = "list submitted jobs (states refreshed from their backends)"
HELP_STATUS = "show a job's state as its backend reports it"
HELP_LOGS = "print a job's output (--follow: until it ends)"
HELP_CANCEL = "cancel a job"


def add_jobs_arguments(p: argparse.ArgumentParser) -> None:
    """Register `buckle jobs` flags."""
    p.add_argument("--limit", type=int, default=20, help="show at most this many, newest first")
    p.add_argument("--cached", action="store_true",
                   help="show the last state seen instead of asking the backends")
    p.add_argument("--profiles", action="store_true", help="list the available profiles instead")


def add_status_arguments(p: argparse.ArgumentParser) -> None:
    """Register `buckle status` flags."""
    p.add_argument("job_id", help="buckle job id (bk-...) or the backend's id")


def add_logs_arguments(p: argparse.ArgumentParser) -> None:
    """Register `buckle logs` flags."""
    p.add_argument("job_id", help="buckle job id (bk-...) or the backend's id")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing until the job ends")
    p.add_argument("--poll", type=float, default=2.0, help="seconds between polls with --follow")


def add_cancel_arguments(p: argparse.ArgumentParser) -> None:
    """Register `buckle cancel` flags."""
    p.add_argument("job_id", help="buckle job id (bk-...) or the backend's id")


def run_jobs(args: argparse.Namespace) -> int:
    """Run `buckle jobs`."""
    import time

    from buckle.cluster import jobs
    from buckle.cluster.jobdb import JobStore

    if args.profiles:
        from buckle.cluster.profiles import list_profiles, load_profile

        for name, path in list_profiles().items():
            try:
                prof = load_profile(str(path))
                print(f"{name:20s} {prof.backend:8s} {prof.description}")
            except ValueError as exc:
                print(f"{name:20s} invalid  {exc}")
        return 0
    store = JobStore()
    print(f"{'ID':12s} {'STATE':12s} {'BACKEND':8s} {'BACKEND ID':24s} {'SUBMITTED':19s} COMMAND")
    for rec in store.all(limit=args.limit):
        state = rec.state or "?"
        if not args.cached and not (rec.state and jobs.is_terminal(rec, rec.state)):
            try:
                state = jobs.status(rec.id, store)
            except (ValueError, RuntimeError, OSError) as exc:
                state = f"{state}? ({str(exc)[:60]})"
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(rec.submitted))
        print(f"{rec.id:12s} {state:12s} {rec.backend:8s} {str(rec.backend_id):24s} {when:19s} "
              f"{' '.join(rec.command)}")
    return 0


def _on_job(job_id: str, action: str) -> tuple[object, str]:
    """The job's record and what `jobs.<action>` (status or cancel) says of it."""
    from buckle.cluster import jobs
    from buckle.cluster.jobdb import JobStore

    store = JobStore()
    rec = store.get(job_id)
    return rec, getattr(jobs, action)(rec.id, store)


def run_status(args: argparse.Namespace) -> int:
    """Run `buckle status`."""
    rec, state = _on_job(args.job_id, "status")
    print(f"{rec.id} {state} ({rec.backend} {rec.backend_id})")
    return 0


def run_logs(args: argparse.Namespace) -> int:
    """Run `buckle logs`."""
    from buckle.cluster import jobs

    if args.follow:
        state = jobs.follow(args.job_id, poll_s=args.poll)
        print(f"[buckle] job {args.job_id} ended: {state}")
        return 0
    print(jobs.logs(args.job_id), end="")
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    """Run `buckle cancel`."""
    rec, state = _on_job(args.job_id, "cancel")
    print(f"{rec.id} {state}")
    return 0
