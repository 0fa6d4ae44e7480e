"""Reading request bodies: strict JSON, and the blueprint class every API module uses."""

import json
from http import HTTPStatus

import flask_smorest
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request


def _refuse_constant(name: str):
    # Python's json module accepts NaN, Infinity and -Infinity; JSON (RFC 8259) does not.
    raise json.JSONDecodeError(f"{name} is not a JSON value", name, 0)


class StrictJsonParser(FlaskParser):
    """webargs' Flask parser, refusing what is not JSON instead of failing inside the view.

    - `NaN` and `Infinity` are not JSON: 400 like any other malformed body;
    - a body nested deeper than the JSON decoder's recursion limit is malformed too, not a
      `RecursionError` (which would be a 500).
    """

    def _raw_load_json(self, req):
        if not is_json_request(req):
            return core.missing
        raw = req.get_data(cache=True)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise json.JSONDecodeError(f"not UTF-8: {exc.reason}", "<bytes>", exc.start) from exc
        if text == "":
            # webargs reads an empty document as "no body"
            raise json.JSONDecodeError("empty body", "", 0)
        try:
            return json.loads(text, parse_constant=_refuse_constant)
        except RecursionError:
            raise json.JSONDecodeError("nested too deeply", text[:100], 0) from None


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictJsonParser()

    def arguments(self, schema, *, location="json", **kwargs):
        """flask-smorest's `arguments`; a JSON body also documents its 400 (`bad_json`: a
        body that is not JSON at all, refused before validation), as 422 is for the rest."""
        decorator = super().arguments(schema, location=location, **kwargs)
        if location != "json":
            return decorator

        def documented(view):
            view = decorator(view)
            view._apidoc["arguments"]["responses"][400] = HTTPStatus.BAD_REQUEST.name
            return view

        return documented
