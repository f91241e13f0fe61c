"""Reporting: the queue event log, contact-center figures from it, and Erlang C staffing.

``QueueLog`` (a service) records routing events; :func:`compute` turns log rows into service level,
ASA, AHT, measured ACW, abandonment, occupancy and first-contact resolution per queue, agent, half
hour, channel and campaign; :func:`forecast` sizes staff per half hour.
"""

from ._log import LOGGED, MIGRATIONS, QueueLog
from ._staffing import agents_needed, forecast
from ._stats import Report, compute
from ._table import report_table

__all__ = ["LOGGED", "MIGRATIONS", "QueueLog", "Report", "agents_needed", "compute", "forecast", "report_table"]
