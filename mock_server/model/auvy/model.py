"""AUVY: the model, made of the parts of this package."""

from __future__ import annotations

from .control import JobControl
from .forcing import Forcing
from .starting import JobStarter


class AuvyModel(JobStarter, JobControl, Forcing):
    """Workspaces, keys, pathways and jobs: starting jobs (starting), running them (running,
    streams), reading them (reading), acting on them and answering their interventions (control,
    responding), forcing outcomes (forcing); the state and setup are in world."""
