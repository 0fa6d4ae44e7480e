from flask import jsonify, redirect, render_template, request, session, url_for
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from ..branches.models import Branch
from ..core.types import utcnow
from ..extensions import db
from ..i18n import SESSION_KEY, supported
from . import bp


@bp.get("/")
def index():
    branches = db.session.scalars(
        select(Branch).where(Branch.active.is_(True)).order_by(Branch.code)
    ).all()
    return render_template("web/index.html", branches=branches, now=utcnow())


@bp.get("/lang/<code>")
def switch_language(code):
    if code in supported():
        session[SESSION_KEY] = code
    target = request.args.get("next") or ""
    # only same-site paths, never an open redirect
    if not target.startswith("/") or target.startswith("//"):
        target = url_for("web.index")
    return redirect(target)


@bp.get("/healthz")
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
    except SQLAlchemyError as exc:
        db.session.rollback()
        return jsonify(status="unavailable", error=type(exc).__name__), 503
    return jsonify(status="ok")
