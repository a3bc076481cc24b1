"""``/jobs``: long work (tilesets, exports, drills) and its progress.

A caller sees its own jobs; an admin sees every job. Someone else's job is 404, as if it
did not exist. Cancelling needs a role that may start work.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.auth import CurrentPrincipal, Writer
from api.jobs import Job
from api.keys import Principal, Role
from api.state import State, TwinState
from cim.errors import NotFoundError

router = APIRouter(prefix="/jobs", tags=["jobs"])


def visible_job(state: TwinState, principal: Principal, job_id: str) -> Job:
    """The job, if the principal may see it.

    Raises
    ------
    NotFoundError
        If there is no such job or it is someone else's (404 either way).
    """
    job = state.jobs.get(job_id)
    if principal.role is not Role.ADMIN and job.owner != principal.key_id:
        raise NotFoundError(f"no job {job_id!r}")
    return job


@router.get("")
def list_jobs(state: State, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    """The caller's jobs (an admin: all jobs), newest first."""
    owner = None if principal.role is Role.ADMIN else principal.key_id
    return [job.to_public() for job in state.jobs.list(owner)]


@router.get("/{job_id}")
def read_job(job_id: str, state: State, principal: CurrentPrincipal) -> dict[str, Any]:
    """One job: state (queued, running, succeeded, failed, cancelled), progress 0..1 and
    message, timings, and its result or error once finished.

    Raises
    ------
    NotFoundError
        If there is no such job, or it is someone else's.
    """
    return visible_job(state, principal, job_id).to_public()


@router.delete("/{job_id}")
def cancel_job(job_id: str, state: State, principal: Writer) -> dict[str, Any]:
    """Ask a job to stop; a finished job is returned unchanged.

    Raises
    ------
    NotFoundError
        If there is no such job, or it is someone else's.
    """
    visible_job(state, principal, job_id)
    return state.jobs.cancel(job_id).to_public()
