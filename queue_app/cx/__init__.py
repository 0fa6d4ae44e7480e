"""The CX team's pages (`/cx/`): feedback metrics per touchpoint, cases and their work, the
weekly management review. For CX agents, branch managers (their branches), executives and
admins; thin views over `feedback/` and `cases/`.
"""

from flask import Blueprint

bp = Blueprint("cx", __name__, url_prefix="/cx")

# each page module registers its routes on `bp`; the modules are imported at the end of this
# file (added as they are written: metrics, cases, review)
from . import metrics  # noqa: E402, F401, I001
from . import review  # noqa: E402, F401
from . import cases  # noqa: E402, F401
