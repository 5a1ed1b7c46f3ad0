"""Reports on a force's crime recording, estimated from its incident events.

``build_report`` replays an events file and computes the figures; ``render_html``
turns them into one self-contained page; ``Report.to_json`` gives the same figures as
JSON.
"""

from cdi_stream.report.build import STATEMENT, build_report
from cdi_stream.report.html import render_html
from cdi_stream.report.model import Report

__all__ = ["STATEMENT", "Report", "build_report", "render_html"]
