"""Request and response schemas; they also generate the OpenAPI document."""

from marshmallow import Schema, fields, validate

from ..branches.models import CounterStatus
from ..tickets.models import Priority, Source, TicketStatus


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
    phone = fields.String(validate=validate.Length(min=3, max=32))
    external_id = fields.String(validate=validate.Length(min=1, max=64))
    name = fields.String(validate=validate.Length(min=1, max=120))


class IssueTicketSchema(Schema):
    service = fields.String(required=True, validate=validate.Length(min=1, max=32))
    priority = fields.Enum(Priority, by_value=True, load_default=Priority.NORMAL)
    source = fields.Enum(Source, by_value=True, load_default=Source.KIOSK)
    customer = fields.Nested(CustomerInSchema)
    appointment_due_at = fields.AwareDateTime(
        metadata={"description": "appointment time; only with source=appointment"}
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


class PauseSchema(Schema):
    reason = fields.String(validate=validate.Length(max=120))


class CallSchema(Schema):
    counter_id = fields.Integer(
        metadata={"description": "defaults to the counter the caller is signed in at"}
    )


class FinishSchema(Schema):
    outcome = fields.String(
        validate=[validate.Length(min=1, max=40), validate.Regexp(r"^[a-z0-9_.-]+$")],
        metadata={"example": "account_opened"},
    )
    note = fields.String(validate=validate.Length(max=2000))


class NoteSchema(Schema):
    note = fields.String(validate=validate.Length(max=2000))


class CancelSchema(Schema):
    reason = fields.String(validate=validate.Length(max=200))


class TransferSchema(Schema):
    service = fields.String(validate=validate.Length(min=1, max=32))
    counter_id = fields.Integer()
    note = fields.String(validate=validate.Length(max=2000))
    keep_place = fields.Boolean()


class ErrorDetailSchema(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    fields_ = fields.Dict(data_key="fields")


class ErrorSchema(Schema):
    error = fields.Nested(ErrorDetailSchema, required=True)
