from flask import url_for
from marshmallow import Schema, fields

from .parsing import Blueprint

blp = Blueprint("meta", __name__, description="About this API")


class IndexSchema(Schema):
    name = fields.String()
    version = fields.String()
    openapi = fields.String(metadata={"description": "where the OpenAPI document is"})


@blp.get("/")
@blp.response(200, IndexSchema)
def index():
    """Name and version of the API, and where its OpenAPI document is."""
    return {"name": "queue_app", "version": "v1", "openapi": url_for("api-docs.openapi_json")}
