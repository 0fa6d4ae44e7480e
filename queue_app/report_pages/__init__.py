"""The report pages (`/reports/`): a day, week or month of a branch or of the network with its
charts, tables and hour-of-week heat map, its CSV and XLSX exports, and the staffing advice
(`/reports/staffing`). For branch managers (their branches), CX agents, executives and admins;
thin views over `reports/`.
"""

from flask import Blueprint

bp = Blueprint("report_pages", __name__, url_prefix="/reports")

from . import views  # noqa: E402, F401, I001
from . import staffing  # noqa: E402, F401
