"""The decision log: every decision recorded in SQL by a background writer, queried by the
admin API and ``pdp decisions``."""

from pdp.decision_log.model import DecisionRow
from pdp.decision_log.query import DecisionFilter, DecisionPage, DecisionReader, parse_time
from pdp.decision_log.writer import DecisionLog, DecisionLogStats, PersonalData

__all__ = ["DecisionFilter", "DecisionLog", "DecisionLogStats", "DecisionPage", "DecisionReader",
           "DecisionRow", "PersonalData", "parse_time"]
