"""Imports every model so metadata, Alembic and relationships see them all."""

from .accounts.models import ApiToken, Role, User, user_branches, user_services
from .alerts.models import Alert, AlertRule, AlertStep
from .audit.models import AuditEntry
from .booking.models import Appointment, AppointmentSlot, AppointmentStatus, BranchClosure
from .branches.models import Branch, Counter, CounterService, CounterStatus, PriorityPolicy, Service
from .cases.models import Case, CaseStep
from .customers.models import ContactVerification, Customer
from .devices.models import Device, DeviceKind
from .feedback.models import FeedbackInvitation, FeedbackResponse, SurveyConfig
from .insights.models import WaitStat
from .notify.models import OutboxMessage
from .reports.models import ReportSnapshot
from .tickets.models import (
    JourneyEvent,
    Priority,
    Source,
    Ticket,
    TicketSequence,
    TicketStatus,
    Visit,
)
from .webhooks.models import WebhookDelivery, WebhookEndpoint

__all__ = [
    "Alert",
    "AlertRule",
    "AlertStep",
    "ApiToken",
    "Appointment",
    "AppointmentSlot",
    "AppointmentStatus",
    "AuditEntry",
    "Branch",
    "BranchClosure",
    "Case",
    "CaseStep",
    "ContactVerification",
    "Counter",
    "CounterService",
    "CounterStatus",
    "Customer",
    "Device",
    "DeviceKind",
    "FeedbackInvitation",
    "FeedbackResponse",
    "JourneyEvent",
    "OutboxMessage",
    "Priority",
    "PriorityPolicy",
    "ReportSnapshot",
    "Role",
    "Service",
    "Source",
    "SurveyConfig",
    "Ticket",
    "TicketSequence",
    "TicketStatus",
    "User",
    "Visit",
    "WaitStat",
    "WebhookDelivery",
    "WebhookEndpoint",
    "user_branches",
    "user_services",
]
