"""Request and response schemas; they also generate the OpenAPI document."""

import unicodedata
from datetime import UTC, datetime

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ..branches.models import CounterStatus
from ..tickets.models import Priority, Source, TicketStatus
from .lookups import MAX_ID

# --- input fields: what the database can store, refused with a 422 otherwise -----------------


class Text(fields.String):
    """A string without NUL, other control characters or lone surrogates.

    PostgreSQL cannot store NUL in text and neither database driver can encode a lone
    surrogate; both would otherwise fail deep inside a query. `multiline` text (notes) may
    contain tabs and line breaks.
    """

    def __init__(self, *args, multiline: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.allowed = {"\t", "\n", "\r"} if multiline else set()

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        for char in text:
            if char in self.allowed:
                continue
            category = unicodedata.category(char)
            if category == "Cs":
                raise ValidationError("Not valid Unicode text.")
            if category == "Cc":
                raise ValidationError("Control characters are not allowed.")
        return text


class Id(fields.Integer):
    """A row id: a JSON integer (not 1.0, not "1") that fits the database's id columns."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, validate=validate.Range(min=1, max=MAX_ID), **kwargs)


class StrictBoolean(fields.Boolean):
    """`true` or `false`; not 1, "yes" or "on"."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


# appointment times outside this span are typing errors, and would overflow on conversion
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


class BranchSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    timezone = fields.String(required=True, metadata={"example": "Asia/Jakarta"})
    locale = fields.String()
    country = fields.String()
    city = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    opening_hours = fields.Dict(
        keys=fields.String(), values=fields.List(fields.List(fields.String()))
    )
    is_open = fields.Boolean()
    priority_policy = fields.String()


class BranchListSchema(Schema):
    items = fields.List(fields.Nested(BranchSchema))


class ServiceSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    names = fields.Dict(keys=fields.String(), values=fields.String())
    prefix = fields.String(required=True)
    segment = fields.String(allow_none=True)
    expected_duration_s = fields.Integer()
    target_wait_s = fields.Integer()
    waiting = fields.Integer()
    open_counters = fields.Integer()


class ServiceListSchema(Schema):
    items = fields.List(fields.Nested(ServiceSchema))


class CustomerInSchema(Schema):
    phone = Text(
        validate=validate.Length(min=3, max=32),
        metadata={
            "description": "as people write it; stored in E.164",
            "example": "0812-3456-7890",
        },
    )
    external_id = Text(validate=validate.Length(min=1, max=64))
    name = Text(validate=validate.Length(min=1, max=120))


class IssueTicketSchema(Schema):
    service = Text(required=True, validate=validate.Length(min=1, max=32))
    priority = fields.Enum(Priority, by_value=True, load_default=Priority.NORMAL)
    source = fields.Enum(Source, by_value=True, load_default=Source.KIOSK)
    customer = fields.Nested(CustomerInSchema)
    appointment_due_at = fields.AwareDateTime(
        validate=validate.Range(min=EARLIEST, max=LATEST),
        metadata={"description": "appointment time; only with source=appointment"},
    )

    @validates_schema
    def _due_only_for_appointments(self, data, **_kwargs):
        # routing puts a due appointment first: no other ticket may claim to be one
        if "appointment_due_at" in data and data.get("source") != Source.APPOINTMENT:
            raise ValidationError(
                "only an appointment ticket has an appointment time", "appointment_due_at"
            )


class CounterRefSchema(Schema):
    id = fields.Integer()
    name = fields.String()


class TicketSchema(Schema):
    id = fields.Integer(required=True)
    number = fields.String(required=True)
    token = fields.String(metadata={"description": "the customer's secret for following the visit"})
    status = fields.Enum(TicketStatus, by_value=True, required=True)
    branch = fields.String()
    service = fields.String()
    service_name = fields.String()
    priority = fields.Enum(Priority, by_value=True)
    source = fields.Enum(Source, by_value=True)
    step = fields.Integer()
    position = fields.Integer(allow_none=True)
    estimated_wait_s = fields.Integer(allow_none=True)
    issued_at = fields.AwareDateTime()
    queue_since = fields.AwareDateTime()
    called_at = fields.AwareDateTime(allow_none=True)
    started_at = fields.AwareDateTime(allow_none=True)
    finished_at = fields.AwareDateTime(allow_none=True)
    recall_count = fields.Integer()
    counter = fields.Nested(CounterRefSchema, allow_none=True)
    outcome_code = fields.String(allow_none=True)
    handover_note = fields.String(allow_none=True)


class PublicTicketSchema(Schema):
    """What the holder of the token sees: no staff notes, no ids of people."""

    number = fields.String(required=True)
    status = fields.Enum(TicketStatus, by_value=True, required=True)
    branch = fields.String()
    service = fields.String()
    service_name = fields.String()
    position = fields.Integer(allow_none=True)
    estimated_wait_s = fields.Integer(allow_none=True)
    issued_at = fields.AwareDateTime()
    called_at = fields.AwareDateTime(allow_none=True)
    counter = fields.Nested(CounterRefSchema, allow_none=True)


class TicketListSchema(Schema):
    items = fields.List(fields.Nested(TicketSchema))


class StaffRefSchema(Schema):
    username = fields.String()
    display_name = fields.String()


class CounterSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    services = fields.List(
        fields.String(), metadata={"description": "service codes, in priority order"}
    )
    status = fields.Enum(CounterStatus, by_value=True)
    pause_reason = fields.String(allow_none=True)
    staff = fields.Nested(StaffRefSchema, allow_none=True)
    current_ticket = fields.Nested(TicketSchema, allow_none=True)


class CounterListSchema(Schema):
    items = fields.List(fields.Nested(CounterSchema))


class EmptySchema(Schema):
    """No body, or an empty object: an action that takes no arguments."""


class PauseSchema(Schema):
    reason = Text(validate=validate.Length(max=120))


class CallSchema(Schema):
    counter_id = Id(metadata={"description": "defaults to the counter the caller is signed in at"})


class FinishSchema(Schema):
    outcome = Text(
        validate=[validate.Length(min=1, max=40), validate.Regexp(r"^[a-z0-9_.-]+$")],
        metadata={"example": "account_opened"},
    )
    note = Text(multiline=True, validate=validate.Length(max=2000))


class NoteSchema(Schema):
    note = Text(multiline=True, validate=validate.Length(max=2000))


class CancelSchema(Schema):
    reason = Text(validate=validate.Length(max=200))


class TransferSchema(Schema):
    service = Text(validate=validate.Length(min=1, max=32))
    counter_id = Id()
    note = Text(multiline=True, validate=validate.Length(max=2000))
    keep_place = StrictBoolean()


class ErrorDetailSchema(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    fields_ = fields.Dict(data_key="fields")


class ErrorSchema(Schema):
    error = fields.Nested(ErrorDetailSchema, required=True)
