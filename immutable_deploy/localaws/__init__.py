"""The local AWS: moto plus a simulator of AWS's pace and faults (see :mod:`.sim`)."""

from immutable_deploy.localaws.clock import VirtualClock
from immutable_deploy.localaws.faults import Scenario
from immutable_deploy.localaws.sim import Pace, Simulator, TimelineEvent

__all__ = ["Pace", "Scenario", "Simulator", "TimelineEvent", "VirtualClock"]
