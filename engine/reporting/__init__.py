"""Reporting: the queue event log, contact-center figures from it, and Erlang C staffing.

``QueueLog`` (a service) records routing events; :func:`compute` turns log rows into service level,
ASA, AHT and abandonment per queue, agent and half hour; :func:`forecast` sizes staff per half hour.
"""

from ._log import LOGGED, MIGRATIONS, QueueLog
from ._staffing import agents_needed, forecast
from ._stats import Report, compute

__all__ = ["LOGGED", "MIGRATIONS", "QueueLog", "Report", "agents_needed", "compute", "forecast"]
