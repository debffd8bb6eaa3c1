"""The scaling report: a study's runs read back from MLflow, as figures and one HTML page (no Ray)."""

from rllib_sparse.report.build import Report, build_report
from rllib_sparse.report.stats import Summary, iqm, summarize
from rllib_sparse.report.study import ReportError, Study, load_study

__all__ = ["Report", "ReportError", "Study", "Summary", "build_report", "iqm", "load_study", "summarize"]
